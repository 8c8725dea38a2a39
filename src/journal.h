/*
 * journal: the upgrade's durable record of its phase, and the migrator
 * lock, both in the state dir (default <db dir>/.ferry) unless the store
 * keeps them itself (PostgreSQL: a table and an advisory lock). A phase is
 * durable before the work it names starts, so the next boot knows what to
 * undo.
 */
#ifndef FERRY_JOURNAL_H
#define FERRY_JOURNAL_H

#include <limits.h>
#include <stdbool.h>

enum phase {
	PHASE_NONE,
	PHASE_SNAPSHOTTING, /* writing the snapshot: database untouched */
	PHASE_SNAPSHOTTED,  /* snapshot durable: database untouched */
	PHASE_MIGRATING,    /* database may be changed: restore to undo */
	PHASE_VERIFYING,
	PHASE_RESTORING,    /* putting the snapshot back */
	PHASE_DONE,
};

struct journal {
	enum phase phase;
	long long from, to;
	char snapshot[PATH_MAX];
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
int journal_write(const struct state *st, const struct journal *j);
int journal_clear(const struct state *st);
const char *phase_name(enum phase p);

/*
 * Takes the migrator lock, waiting up to timeout seconds (0: do not wait).
 * Returns 0, 1 when it timed out (logged), -1 on error (logged).
 */
int state_lock(struct state *st, long long timeout);
void state_unlock(struct state *st);

#endif
