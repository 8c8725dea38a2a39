/*
 * journal: the upgrade's durable record of its phase, and the migrator
 * lock, both in the state dir (default <db dir>/.ferry) unless the store
 * keeps them itself (PostgreSQL: a table and an advisory lock). A phase is
 * durable before the work it names starts, so the next boot knows what to
 * undo.
 */
#ifndef FERRY_JOURNAL_H
#define FERRY_JOURNAL_H

#include "version.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * The phases, in the order an upgrade goes through them, and what the next
 * boot does when it finds the journal in each (upgrade.c's recovery):
 *
 *   none          no journal: nothing was interrupted.
 *   snapshotting  the snapshot was being written; the database is
 *                 untouched: the partial snapshot is removed.
 *   snapshotted   the snapshot is durable; the database is untouched:
 *                 nothing to undo.
 *   migrating     migrations were running: the ledger says where the
 *                 database stands; exactly at `from`: nothing to undo;
 *                 otherwise the snapshot goes back.
 *   verifying     the same as migrating.
 *   done          verified, the commit was under way: at `to` the upgrade
 *                 is kept, at `from` nothing to undo, else restore.
 *   applied       verified, and committed or about to be, but not yet
 *                 accepted (a health gate is still to say yes; written
 *                 instead of done): restore, unless nothing was committed.
 *   restoring     the snapshot was going back: it is put back again.
 *
 * A rollback (`ferry rollback`) goes from none straight to restoring.
 * An app upgrade (kind app) goes through the same phases, migrating while
 * the server's own migrate command runs (or the server itself, gated); in
 * migrating, verifying, done and applied the identity recorded in the
 * database decides instead of the ledger: app_to recorded, the upgrade is
 * kept; anything else, the snapshot goes back.
 * Each phase is durable before the work it names starts; the legal
 * transitions are journal.c's table, and journal_write refuses others.
 */
enum phase {
	PHASE_NONE,
	PHASE_SNAPSHOTTING,
	PHASE_SNAPSHOTTED,
	PHASE_MIGRATING,
	PHASE_VERIFYING,
	PHASE_RESTORING,
	PHASE_DONE,
	PHASE_APPLIED,
	PHASE_COUNT
};

/* What the journalled work is: its phases are the same table. */
enum journal_kind {
	KIND_UPGRADE,  /* an upgrade of the schema from `from` to `to` */
	KIND_ROLLBACK, /* ferry rollback: the snapshot put back by hand */
	/* ferry downgrade: down parts undoing `from` down to `to`, through the
	 * upgrade's phases (the ledger at `from` or `to` decides the same way) */
	KIND_DOWNGRADE,
	KIND_APP, /* mode = app: the image's identity changed, from app_from
		   * to app_to; the server's own migrations run (appmode.h) */
	KIND_COUNT
};

/* The longest image identity of mode = app ([app] version and friends) */
#define APP_IDENTITY_MAX 200

struct journal {
	enum journal_kind kind;
	enum phase phase;
	struct version from, to; /* as text in the file: "from=3", "to=1.2" */
	char snapshot[PATH_MAX];
	/* kind app: the identities, "" for none recorded */
	char app_from[APP_IDENTITY_MAX + 1], app_to[APP_IDENTITY_MAX + 1];
};

struct store;

struct state {
	struct store *store; /* may keep journal and lock itself */
	char *dir;
	char *journal_path;
	char *lock_path;
	int lock_fd;
};

void state_init(struct state *st, const char *dir, struct store *store);
void state_release(struct state *st);
/* 0 (phase NONE when there is no journal), -1 logged when it cannot be
 * read (73), -2 logged when what it holds makes no sense (65) */
int journal_read(const struct state *st, struct journal *j);
/* the exit status for journal_read's -1 or -2 */
int journal_status(int rc);
/* Moves j to phase (durable before it returns); an illegal transition is a
 * bug, refused with -1 like a failed write. */
int journal_write(const struct state *st, struct journal *j, enum phase phase);
int journal_clear(const struct state *st);
const char *phase_name(enum phase p);
const char *kind_name(enum journal_kind k);

/*
 * Takes the migrator lock, waiting up to timeout seconds (0: do not wait).
 * Returns 0, 1 when it timed out (logged), -1 on error (logged).
 */
int state_lock(struct state *st, long long timeout);
void state_unlock(struct state *st);
/*
 * Who holds the migrator lock, found without taking it (ferry doctor):
 * 0 free, 1 held, 2 free but a dead holder's work still runs, 3 cannot
 * tell; who says by whom or what is known. -1 logged.
 */
int state_lock_holder(const struct state *st, char *who, size_t size);

#endif
