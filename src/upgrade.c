/*
 * upgrade: the boot sequence of DESIGN.md, top to bottom in
 * upgrade_prepare(): open, fast path, lock, recover, plan, snapshot,
 * migrate, verify, done. Every failure after the first write ends in a
 * restore from the snapshot; the journal makes that true across crashes.
 */
#include "upgrade.h"
#include "config.h"
#include "exits.h"
#include "journal.h"
#include "log.h"
#include "migrations.h"
#include "plan.h"
#include "snapshot.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct boot {
	const struct config *c; /* &cfg */
	struct config cfg;      /* the caller's, directories resolved */
	char *state_dir, *snapshot_dir;
	struct store store;
	struct state state;
	struct migration_set set;
	struct ledger ledger;
	struct plan plan;
	bool db_exists;
	bool have_state, have_set;
};

static void boot_close(struct boot *b)
{
	plan_release(&b->plan);
	ledger_release(&b->ledger);
	free(b->state_dir);
	free(b->snapshot_dir);
	if (b->have_set)
		migrations_release(&b->set);
	if (b->have_state)
		state_release(&b->state);
	store_release(&b->store);
}

/* Parses the URL, reads the migrations; returns an exit status. */
static int boot_open(struct boot *b, const struct config *c, bool need_migrations)
{
	char *dir;
	int rc, e;

	memset(b, 0, sizeof(*b));
	/* a symlinked directory is used by its real path, like the database */
	b->cfg = *c;
	if (c->state_dir && (b->state_dir = realpath(c->state_dir, NULL)))
		b->cfg.state_dir = b->state_dir;
	if (c->snapshot_dir && (b->snapshot_dir = realpath(c->snapshot_dir, NULL)))
		b->cfg.snapshot_dir = b->snapshot_dir;
	b->c = c = &b->cfg;
	if (store_init(&b->store, c->database_url) < 0)
		return EXIT_CONFIG;
	if (need_migrations) {
		b->have_set = true;
		rc = migrations_load(&b->set, c->migrations_dir);
		if (rc)
			return rc;
		if (c->target_version && !migrations_find(&b->set, c->target_version))
			return error("[migrations] target_version %lld: no such migration in '%s'",
				     c->target_version, c->migrations_dir), EXIT_CONFIG;
	}
	b->store.wait_seconds = c->wait_seconds;
	b->store.lock_timeout = c->lock_timeout_seconds;
	b->store.statement_lock_timeout = c->statement_lock_timeout;
	b->store.snapshot_dir = c->snapshot_dir ? c->snapshot_dir : c->state_dir;
	b->store.maintenance_db = c->maintenance_db;
	e = b->store.ops->exists(&b->store);
	if (e < 0)
		return b->store.status ? b->store.status : EXIT_CONFIG;
	dir = dir_of(b->store.ops->location(&b->store));
	if (c->state_dir)
		state_init(&b->state, c->state_dir, &b->store);
	else {
		char *sd = xasprintf("%s/.ferry", dir);
		state_init(&b->state, sd, &b->store);
		free(sd);
	}
	free(dir);
	b->have_state = true;
	b->db_exists = e == 1;
	return 0;
}

/* Opens the database if it exists, reads the ledger, makes the plan. */
static int read_plan(struct boot *b)
{
	plan_release(&b->plan);
	ledger_release(&b->ledger);
	if (b->db_exists) {
		if (!b->store.db && b->store.ops->open(&b->store) < 0)
			return EXIT_DATA;
		if (b->store.ops->read_ledger(&b->store, &b->ledger) < 0)
			return EXIT_DATA;
	}
	plan_make(&b->plan, &b->set, &b->ledger, b->db_exists, b->c->target_version);
	return 0;
}

/* Puts the snapshot back, journalled so a crash midway is finished later. */
static int restore(struct boot *b, const struct journal *from)
{
	struct journal j = *from;

	char why[512];

	/* the backend may restore through its open connection and its lock */
	if (b->store.ops->snapshot_usable &&
	    !b->store.ops->snapshot_usable(&b->store, j.snapshot, why, sizeof(why))) {
		log_error("cannot restore from snapshot '%s': %s; the database %s was left "
			  "as it is", j.snapshot, why, b->store.url_redacted);
		return EXIT_RESTORE_FAILED;
	}
	j.phase = PHASE_RESTORING;
	if (from->phase != PHASE_RESTORING && journal_write(&b->state, &j) < 0)
		return EXIT_RESTORE_FAILED;
	if (b->store.ops->restore(&b->store, j.snapshot) < 0) {
		char by_hand[1024] = "restore it by hand with every process that uses it "
				     "stopped";

		if (b->store.ops->restore_by_hand)
			b->store.ops->restore_by_hand(&b->store, j.snapshot, by_hand,
						      sizeof(by_hand));
		log_error("restoring %s from '%s' failed: the database is not at its old "
			  "state; the snapshot and the journal are kept, so the next start "
			  "of ferry retries; or %s", b->store.url_redacted, j.snapshot,
			  by_hand);
		return EXIT_RESTORE_FAILED;
	}
	crash_point("restore:done");
	if (journal_clear(&b->state) < 0)
		return EXIT_RESTORE_FAILED;
	return 0;
}

/*
 * Where the database stands against an upgrade's journal. Every commit of
 * an upgrade carries ledger rows (a migration outside a transaction writes
 * a dirty one first), so a ledger still exactly at `from` means nothing
 * was committed, and a clean one at `to` means all of it was.
 */
enum standing { AT_FROM, AT_TO, BETWEEN };

static enum standing standing(struct boot *b, const struct journal *j)
{
	enum standing st = BETWEEN;
	struct ledger l;
	long long top = 0;
	bool dirty = false;

	if (!b->store.db && b->store.ops->open(&b->store) < 0)
		return BETWEEN;
	if (b->store.ops->read_ledger(&b->store, &l) < 0)
		return BETWEEN;
	for (size_t i = 0; i < l.n; i++) {
		dirty |= l.rows[i].dirty;
		if (l.rows[i].version > top)
			top = l.rows[i].version;
	}
	if (!dirty && top == j->from)
		st = AT_FROM;
	else if (!dirty && top == j->to)
		st = AT_TO;
	ledger_release(&l);
	return st;
}

/* Resolves an upgrade that an earlier boot did not finish. */
static int resolve(struct boot *b, const struct journal *jp);

static int recover(struct boot *b)
{
	struct journal j;
	int rc;

	rc = journal_read(&b->state, &j);
	if (rc < 0)
		return journal_status(rc);
	if (j.phase == PHASE_NONE)
		return 0;
	rc = resolve(b, &j);
	/* the crashed upgrade may have left others kept out; they stay out
	 * while a restore is still to be done */
	if (rc == 0 && b->store.ops->unhold)
		b->store.ops->unhold(&b->store);
	return rc;
}

static int resolve(struct boot *b, const struct journal *jp)
{
	struct journal j = *jp;
	char *tmp;
	int rc;

	switch (j.phase) {
	case PHASE_NONE:
		return 0;
	case PHASE_SNAPSHOTTING:
		/* the partial snapshot: under its temp name, or a whole one that
		 * had not moved to its place yet ([snapshot] keep > 1) */
		for (int i = 0; i < 5; i++) {
			/* (-journal: the backup API's, when it was copying) */
			tmp = xasprintf("%s%s", j.snapshot, (const char *[]){
				".tmp", ".new", ".new.tmp", ".tmp-journal", ".new.tmp-journal" }[i]);
			unlink(tmp);
			free(tmp);
		}
		log_info("an upgrade from %lld to %lld was interrupted while writing its "
			 "snapshot; the database was not touched: discarded the partial "
			 "snapshot", j.from, j.to);
		return journal_clear(&b->state) < 0 ? EXIT_CANTCREAT : 0;
	case PHASE_SNAPSHOTTED:
		log_info("an upgrade from %lld to %lld was interrupted before it changed "
			 "anything (phase %s): nothing to undo", j.from, j.to,
			 phase_name(j.phase));
		return journal_clear(&b->state) < 0 ? EXIT_CANTCREAT : 0;
	case PHASE_MIGRATING:
	case PHASE_VERIFYING:
	case PHASE_DONE:
		/* a restore would also undo what others wrote since the crash */
		switch (standing(b, &j)) {
		case AT_FROM:
			log_info("an upgrade from %lld to %lld was interrupted (phase %s) "
				 "before it committed anything: the database is still at "
				 "version %lld, nothing to undo", j.from, j.to,
				 phase_name(j.phase), j.from);
			return journal_clear(&b->state) < 0 ? EXIT_CANTCREAT : 0;
		case AT_TO:
			if (j.phase == PHASE_DONE) {
				log_info("an upgrade from %lld to %lld was interrupted after "
					 "it was verified and committed: the database is at "
					 "version %lld", j.from, j.to, j.to);
				return journal_clear(&b->state) < 0 ? EXIT_CANTCREAT : 0;
			}
			break;
		case BETWEEN:
			break;
		}
		/* fall through */
	case PHASE_RESTORING:
		log_info("an upgrade from %lld to %lld was interrupted (phase %s): "
			 "restoring the database from %s", j.from, j.to,
			 phase_name(j.phase), j.snapshot);
		rc = restore(b, &j);
		if (rc == 0)
			log_info("database restored from %s: back at version %lld",
				 j.snapshot, j.from);
		return rc;
	}
	return 0;
}

static void print_plan(const struct boot *b)
{
	const struct plan *p = &b->plan;

	printf("database: %s (%s)\n", b->store.url_redacted,
	       b->db_exists ? "exists" : "does not exist yet");
	printf("database version: %lld\n", p->db_version);
	printf("image version: %lld (%zu migrations in %s, %s format)\n",
	       p->image_version, b->set.n, b->set.dir, b->set.format);
	switch (p->kind) {
	case PLAN_CURRENT:
		printf("plan: nothing to do\n");
		break;
	case PLAN_REFUSE:
		printf("plan: refuse: %s\n", p->why);
		break;
	case PLAN_CREATE:
	case PLAN_UPGRADE:
		printf("plan: %s, applying %zu migration%s:\n",
		       p->kind == PLAN_CREATE ? "create the database" : "snapshot, then upgrade",
		       p->n_pending, p->n_pending == 1 ? "" : "s");
		for (size_t i = 0; i < p->n_pending; i++)
			printf("  %s%s\n", p->pending[i]->name,
			       p->pending[i]->no_transaction ? " (no transaction)" : "");
		break;
	}
}

/* Applies the plan's migrations in order; *failed names the one that failed. */
static int apply_pending(struct store *s, const struct plan *p,
			 const struct migration **failed)
{
	for (size_t i = 0; i < p->n_pending; i++) {
		const struct migration *m = p->pending[i];
		char point[64];
		long long ms = 0;

		if (s->ops->apply(s, m, &ms) < 0) {
			*failed = m;
			return -1;
		}
		log_info("applied %s (%lld ms)", m->name, ms);
		snprintf(point, sizeof(point), "migration:%lld:after-commit", m->version);
		crash_point(point);
	}
	return 0;
}

/* "migration 0003_bad failed: near line 4: ..." or the verification's words */
static void describe_failure(char *buf, size_t size, const struct store *s,
			     const struct migration *failed)
{
	if (failed)
		snprintf(buf, size, "migration %s failed: %s", failed->name, s->err);
	else if (!strncmp(s->err, "cannot commit", 13))
		snprintf(buf, size, "%s", s->err);
	else
		snprintf(buf, size, "verification after the upgrade failed: %s", s->err);
}

struct create_args {
	const struct plan *plan;
	const struct migration *failed;
};

static int create_fn(struct store *s, void *arg)
{
	struct create_args *a = arg;

	if (apply_pending(s, a->plan, &a->failed) < 0 || s->ops->verify(s) < 0)
		return -1;
	return 0;
}

/* Refuses (65) a pending migration the backend could not run whole. */
static int check_pending(struct store *s, const struct plan *p)
{
	for (size_t i = 0; s->ops->check_migration && i < p->n_pending; i++)
		if (s->ops->check_migration(s, p->pending[i]) < 0)
			return s->status ? s->status : EXIT_DATA;
	return 0;
}

static int create(struct boot *b)
{
	struct create_args a = { .plan = &b->plan };
	char why[1200];
	int rc = check_pending(&b->store, &b->plan);

	if (rc)
		return rc;
	log_info("no database yet: creating %s at version %lld (%zu migrations)",
		 b->store.path, b->plan.image_version, b->plan.n_pending);
	if (b->store.ops->create(&b->store, create_fn, &a) < 0) {
		if (b->store.err[0]) {
			describe_failure(why, sizeof(why), &b->store, a.failed);
			log_error("%s — no database was created", why);
		}
		return EXIT_UPGRADE_FAILED;
	}
	log_info("database created at version %lld", b->plan.image_version);
	return 0;
}

/*
 * A snapshot is needed when a failure cannot be undone by a rollback: a
 * migration commits on its own (and the hold must then be exclusive).
 */
static bool needs_snapshot(const struct store *s, const struct plan *p)
{
	for (size_t i = 0; i < p->n_pending; i++)
		if (store_outside_transaction(s, p->pending[i]))
			return true;
	return false;
}

/*
 * After an upgrade that needed no snapshot, a snapshot of an older version
 * predates more than this upgrade: restoring it would silently undo the
 * upgrades before too. It goes.
 */
static void retire_snapshots(struct boot *b)
{
	char *snap = snapshot_path(b->c, &b->store, 0);

	/* one taken at the version this upgrade started from stays */
	if (path_exists(snap) && (!b->store.ops->snapshot_version ||
				  b->store.ops->snapshot_version(&b->store, snap) !=
					  b->plan.db_version)) {
		log_info("removing the older snapshot %s: it predates this upgrade, and "
			 "restoring it would undo this upgrade as well", snap);
		snapshot_remove_all(b->c, &b->store);
		if (b->store.ops->cleanup)
			b->store.ops->cleanup(&b->store);
	}
	free(snap);
}

/* Transactional DDL: all pending migrations commit together or not at all. */
static int upgrade_in_one_transaction(struct boot *b)
{
	const struct plan *p = &b->plan;
	struct store *s = &b->store;
	const struct migration *failed = NULL;
	double t0 = now_seconds();
	char why[1200];

	log_info("schema version mismatch: database has %lld, image expects %lld "
		 "(%zu pending) — upgrading in one transaction (no snapshot needed: "
		 "a failure rolls everything back)", p->db_version, p->image_version,
		 p->n_pending);
	if (s->ops->apply_all(s, p->pending, p->n_pending, &failed) < 0) {
		describe_failure(why, sizeof(why), s, failed);
		log_error("%s — rolled back, database still at version %lld", why,
			  p->db_version);
		return s->status ? s->status : EXIT_UPGRADE_FAILED;
	}
	log_info("database upgraded from %lld to %lld in %.2f s", p->db_version,
		 p->image_version, now_seconds() - t0);
	retire_snapshots(b);
	return 0;
}

/*
 * A failed upgrade: the held work is rolled back; the snapshot goes back
 * only if something was committed, since a restore needs room and time and
 * would be the one step that can fail. 74 only when the database is not at
 * its old state.
 */
static int undo(struct boot *b, const struct journal *j, const char *why,
		bool may_have_committed)
{
	struct store *s = &b->store;
	int rc;

	if (s->ops->settle)
		s->ops->settle(s, false);
	/* without a step that commits on its own nothing was committed: no
	 * need to read the ledger (nor a reason to restore if that fails) */
	if (!may_have_committed || standing(b, j) == AT_FROM) {
		log_error("%s — rolled back: nothing was committed, the database is still "
			  "at version %lld (snapshot kept: %s)", why, j->from, j->snapshot);
		if (s->ops->unhold)
			s->ops->unhold(s);
		if (journal_clear(&b->state) < 0)
			return EXIT_CANTCREAT;
		/* busy: another process kept its lock; nothing changed, try later */
		return s->status == EXIT_TEMPFAIL ? EXIT_TEMPFAIL : EXIT_UPGRADE_FAILED;
	}
	rc = restore(b, j);
	/* after a failed restore others stay out: what they wrote now would be
	 * lost to the next boot's restore */
	if (rc == 0 && s->ops->unhold)
		s->ops->unhold(s);
	if (rc)
		log_error("%s — and the restore failed too", why);
	else
		log_error("%s — database restored from %s, still at version %lld", why,
			  j->snapshot, j->from);
	return rc ? rc : EXIT_UPGRADE_FAILED;
}

static int upgrade(struct boot *b, bool for_run)
{
	const struct plan *p = &b->plan;
	struct journal j = { .from = p->db_version, .to = p->image_version };
	struct store *s = &b->store;
	const struct migration *failed = NULL;
	double t0 = now_seconds();
	char *snap, why[1200];
	int rc;

	if (for_run && !b->c->auto_upgrade) {
		log_error("%zu migration%s pending (database at %lld, image at %lld): run "
			  "`ferry migrate`, then start again ([migrations] auto_upgrade = "
			  "false)", p->n_pending, p->n_pending == 1 ? "" : "s",
			  p->db_version, p->image_version);
		return EXIT_TEMPFAIL;
	}
	rc = check_pending(s, p);
	if (rc)
		return rc;
	if (s->ops->check_privileges && s->ops->check_privileges(s) < 0)
		return s->status ? s->status : EXIT_NOPERM;
	if (s->ops->apply_all && !needs_snapshot(s, p))
		return upgrade_in_one_transaction(b);
	log_info("schema version mismatch: database has %lld, image expects %lld "
		 "(%zu pending) — upgrading", p->db_version, p->image_version,
		 p->n_pending);
	if (s->ops->check(s) < 0) {
		log_error("refusing to upgrade a damaged database: nothing was changed; "
			  "restore it from a backup");
		return EXIT_DATA;
	}

	snap = snapshot_path(b->c, s, 0);
	snprintf(j.snapshot, sizeof(j.snapshot), "%s", snap);
	free(snap);
	j.phase = PHASE_SNAPSHOTTING;
	if (journal_write(&b->state, &j) < 0)
		return EXIT_CANTCREAT;
	/* from the snapshot to the commit, nobody else commits */
	if (s->ops->hold && s->ops->hold(s, needs_snapshot(s, p)) < 0) {
		if (s->ops->unhold)
			s->ops->unhold(s);
		journal_clear(&b->state);
		return s->status ? s->status : EXIT_CANTCREAT;
	}
	/* a restore follows a failure only when something was committed */
	rc = snapshot_take(b->c, s, p->db_version, needs_snapshot(s, p));
	if (rc) {
		if (s->ops->settle)
			s->ops->settle(s, false);
		if (s->ops->unhold)
			s->ops->unhold(s);
		journal_clear(&b->state);
		return rc;
	}
	j.phase = PHASE_SNAPSHOTTED;
	if (journal_write(&b->state, &j) < 0)
		goto cannot_journal;
	j.phase = PHASE_MIGRATING;
	if (journal_write(&b->state, &j) < 0)
		goto cannot_journal;
	if (apply_pending(s, p, &failed) < 0)
		goto failed;
	j.phase = PHASE_VERIFYING;
	if (journal_write(&b->state, &j) < 0) {
		snprintf(s->err, sizeof(s->err), "cannot write the journal");
		goto failed;
	}
	if (s->ops->verify(s) < 0)
		goto failed;
	/* verified: a crash from here on keeps whatever the commit made */
	j.phase = PHASE_DONE;
	if (journal_write(&b->state, &j) < 0) {
		snprintf(s->err, sizeof(s->err), "cannot write the journal");
		goto failed;
	}
	if (s->ops->settle && s->ops->settle(s, true) < 0) {
		failed = NULL;
		goto failed;
	}
	crash_point("upgrade:committed");
	if (s->ops->unhold)
		s->ops->unhold(s);
	s->ops->close(s);
	if (journal_clear(&b->state) < 0) {
		log_error("the upgrade succeeded but its journal cannot be cleared: the "
			  "next boot will finish it; not starting");
		return EXIT_CANTCREAT;
	}
	log_info("database upgraded from %lld to %lld in %.2f s (snapshot kept: %s)",
		 p->db_version, p->image_version, now_seconds() - t0, j.snapshot);
	return 0;

failed:
	describe_failure(why, sizeof(why), s, failed);
	return undo(b, &j, why, needs_snapshot(s, p));

cannot_journal: /* nothing was changed yet */
	if (s->ops->settle)
		s->ops->settle(s, false);
	if (s->ops->unhold)
		s->ops->unhold(s);
	journal_clear(&b->state);
	return EXIT_CANTCREAT;
}

/* state_lock's 1 (timed out) or -1 (failed, maybe with the store's reason) */
static int lock_status(const struct boot *b, int rc)
{
	if (rc > 0)
		return EXIT_TEMPFAIL;
	return b->store.status ? b->store.status : EXIT_CANTCREAT;
}

int upgrade_prepare(const struct config *c, bool dry_run, bool for_run)
{
	struct boot b;
	struct journal j;
	int rc;

	rc = boot_open(&b, c, true);
	if (rc)
		goto out;

	/* Fast path, no lock and no write: nothing to do on most boots. */
	rc = journal_read(&b.state, &j);
	if (rc < 0) {
		rc = journal_status(rc);
		goto out;
	}
	if (j.phase == PHASE_NONE || dry_run) {
		rc = read_plan(&b);
		if (rc)
			goto out;
		if (dry_run) {
			if (j.phase != PHASE_NONE)
				printf("journal: an interrupted upgrade (phase %s) will be "
				       "resolved first\n", phase_name(j.phase));
			print_plan(&b);
			rc = b.plan.kind == PLAN_REFUSE ? EXIT_DATA : 0;
			/* what the upgrade would refuse before its first write */
			if (b.plan.kind == PLAN_CREATE || b.plan.kind == PLAN_UPGRADE)
				rc = check_pending(&b.store, &b.plan);
			goto out;
		}
		if (b.plan.kind == PLAN_CURRENT) {
			log_info("schema up to date: database and image at version %lld",
				 b.plan.db_version);
			goto out;
		}
	}
	/* a replica that waits holds no session on the database itself: that
	 * would keep a template copy or a restore from happening */
	b.store.ops->close(&b.store);

	rc = state_lock(&b.state, c->lock_timeout_seconds);
	if (rc) {
		rc = lock_status(&b, rc);
		goto out;
	}
	rc = recover(&b);
	if (rc)
		goto out;
	/* re-read: another replica may have done the work while we waited */
	b.db_exists = b.store.ops->exists(&b.store) == 1;
	rc = read_plan(&b);
	if (rc)
		goto out;
	switch (b.plan.kind) {
	case PLAN_CURRENT:
		log_info("schema up to date: database and image at version %lld",
			 b.plan.db_version);
		break;
	case PLAN_REFUSE:
		log_error("%s (nothing was changed)", b.plan.why);
		rc = EXIT_DATA;
		break;
	case PLAN_CREATE:
		rc = create(&b);
		break;
	case PLAN_UPGRADE:
		rc = upgrade(&b, for_run);
		break;
	}
out:
	boot_close(&b);
	return rc;
}

/* Lock, and refuse when an upgrade is unfinished: for the commands below. */
static int take_quiet_lock(struct boot *b)
{
	struct journal j;
	int rc = state_lock(&b->state, 0);

	if (rc)
		return lock_status(b, rc);
	rc = journal_read(&b->state, &j);
	if (rc < 0)
		return journal_status(rc);
	if (j.phase != PHASE_NONE) {
		log_error("an upgrade from %lld to %lld was interrupted (phase %s): run "
			  "`ferry migrate` to resolve it first", j.from, j.to,
			  phase_name(j.phase));
		return EXIT_TEMPFAIL;
	}
	return 0;
}

int upgrade_snapshot(const struct config *c)
{
	long long version = 0;
	struct boot b;
	int rc = boot_open(&b, c, false);

	if (rc)
		goto out;
	if (!b.db_exists) {
		log_error("no database at '%s' to snapshot", b.store.path);
		rc = EXIT_DATA;
		goto out;
	}
	rc = take_quiet_lock(&b);
	if (rc)
		goto out;
	if (b.store.ops->open(&b.store) < 0 ||
	    b.store.ops->read_ledger(&b.store, &b.ledger) < 0) {
		rc = EXIT_DATA;
		goto out;
	}
	for (size_t i = 0; i < b.ledger.n; i++)
		if (b.ledger.rows[i].version > version)
			version = b.ledger.rows[i].version;
	rc = snapshot_take(b.c, &b.store, version, false);
out:
	boot_close(&b);
	return rc;
}

int upgrade_rollback(const struct config *c)
{
	struct journal j = { .phase = PHASE_RESTORING };
	struct boot b;
	char *snap = NULL, why[512];
	int rc = boot_open(&b, c, false);

	if (rc)
		goto out;
	rc = state_lock(&b.state, 0);
	if (rc) {
		if (rc > 0)
			log_error("refusing to roll back while another ferry is migrating");
		rc = lock_status(&b, rc);
		goto out;
	}
	rc = recover(&b); /* an interrupted upgrade is undone the same way */
	if (rc)
		goto out;
	snap = snapshot_path(b.c, &b.store, 0);
	if (!path_exists(snap)) {
		log_error("no snapshot to roll back to: '%s' does not exist", snap);
		rc = EXIT_DATA;
		goto out;
	}
	if (b.store.ops->snapshot_usable &&
	    !b.store.ops->snapshot_usable(&b.store, snap, why, sizeof(why))) {
		log_error("cannot roll back: snapshot '%s' is not usable (%s); nothing "
			  "was changed", snap, why);
		rc = EXIT_DATA;
		goto out;
	}
	snprintf(j.snapshot, sizeof(j.snapshot), "%s", snap);
	j.phase = PHASE_MIGRATING;
	rc = restore(&b, &j);
	if (rc == 0)
		log_info("database %s restored from %s%s", b.store.url_redacted, snap,
			 path_exists(snap) ? " (the snapshot is kept; `ferry cleanup` "
			 "removes it)" : "");
out:
	free(snap);
	boot_close(&b);
	return rc;
}

int upgrade_cleanup(const struct config *c)
{
	static const char *const leftovers[] = { ".ferry-new", ".ferry-restore" };
	struct boot b;
	int rc = boot_open(&b, c, false), n;

	if (rc)
		goto out;
	rc = take_quiet_lock(&b);
	if (rc)
		goto out;
	n = snapshot_remove_all(b.c, &b.store);
	if (b.store.ops->cleanup)
		b.store.ops->cleanup(&b.store);
	for (size_t i = 0; i < 2; i++) {
		char *p = xasprintf("%s%s", b.store.path, leftovers[i]);
		if (unlink(p) == 0)
			log_info("removed leftover %s", p);
		free(p);
	}
	log_info("cleanup: %d snapshot%s removed", n, n == 1 ? "" : "s");
out:
	boot_close(&b);
	return rc;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

int upgrade_status(const struct config *c, bool json)
{
	struct boot b;
	struct journal j;
	struct stat st;
	char *snap = NULL, size[32];
	bool have_snap;
	int rc = boot_open(&b, c, true);

	if (rc)
		goto out;
	rc = journal_read(&b.state, &j);
	if (rc < 0) {
		rc = journal_status(rc);
		goto out;
	}
	rc = read_plan(&b);
	if (rc)
		goto out;
	snap = snapshot_path(b.c, &b.store, 0);
	have_snap = stat(snap, &st) == 0;
	if (json) {
		printf("{\"database\":");
		json_str(b.store.url_redacted);
		printf(",\"exists\":%s,\"database_version\":%lld,\"image_version\":%lld,"
		       "\"plan\":\"%s\",\"pending\":[", b.db_exists ? "true" : "false",
		       b.plan.db_version, b.plan.image_version,
		       (const char *[]){ "current", "create", "upgrade", "refuse" }[b.plan.kind]);
		for (size_t i = 0; i < b.plan.n_pending; i++) {
			printf(i ? "," : "");
			json_str(b.plan.pending[i]->name);
		}
		printf("],\"unknown\":[");
		for (size_t i = 0, k = 0; i < b.ledger.n; i++)
			if (!migrations_find(&b.set, b.ledger.rows[i].version)) {
				printf(k++ ? "," : "");
				json_str(b.ledger.rows[i].name);
			}
		printf("],\"dirty\":[");
		for (size_t i = 0, k = 0; i < b.ledger.n; i++)
			if (b.ledger.rows[i].dirty) {
				printf(k++ ? "," : "");
				json_str(b.ledger.rows[i].name);
			}
		printf("],\"refusal\":");
		if (b.plan.kind == PLAN_REFUSE)
			json_str(b.plan.why);
		else
			printf("null");
		printf(",\"snapshot\":");
		if (have_snap) {
			printf("{\"path\":");
			json_str(snap);
			printf(",\"bytes\":%lld,\"age_seconds\":%lld}", (long long)st.st_size,
			       (long long)(time(NULL) - st.st_mtime));
		} else {
			printf("null");
		}
		printf(",\"journal\":");
		if (j.phase == PHASE_NONE)
			printf("\"none\"");
		else
			printf("{\"phase\":\"%s\",\"from\":%lld,\"to\":%lld}",
			       phase_name(j.phase), j.from, j.to);
		printf("}\n");
		goto out;
	}
	printf("database: %s%s\n", b.store.url_redacted,
	       b.db_exists ? "" : " (does not exist yet)");
	printf("database version: %lld\n", b.plan.db_version);
	printf("image version: %lld (%s, %s format)\n", b.plan.image_version, b.set.dir,
	       b.set.format);
	printf("pending: %zu", b.plan.n_pending);
	for (size_t i = 0; i < b.plan.n_pending; i++)
		printf("%s%s", i ? ", " : " (", b.plan.pending[i]->name);
	printf("%s\n", b.plan.n_pending ? ")" : "");
	printf("unknown: %zu\n", b.plan.n_unknown);
	printf("dirty: %zu\n", b.plan.n_dirty);
	if (b.plan.kind == PLAN_REFUSE)
		printf("refusal: %s\n", b.plan.why);
	if (have_snap)
		printf("snapshot: %s (%s, %lld s old)\n", snap,
		       human_size((unsigned long long)st.st_size, size, sizeof(size)),
		       (long long)(time(NULL) - st.st_mtime));
	else
		printf("snapshot: none\n");
	if (j.phase == PHASE_NONE)
		printf("journal: none\n");
	else
		printf("journal: %s (%s interrupted; the next ferry migrate or run "
		       "finishes it)\n", phase_name(j.phase),
		       j.from == j.to ? "a rollback was" : "an upgrade was");
out:
	free(snap);
	boot_close(&b);
	return rc;
}

void upgrade_print_versions(const struct config *c)
{
	struct boot b;
	struct stat st;

	if (!c->database_url || stat(c->migrations_dir, &st) < 0) {
		if (stat(c->migrations_dir, &st) == 0) {
			struct migration_set set;

			if (migrations_load(&set, c->migrations_dir) == 0)
				printf("image schema version: %lld\n", migrations_latest(&set));
			migrations_release(&set);
		}
		return;
	}
	if (boot_open(&b, c, true) == 0) {
		printf("image schema version: %lld\n", b.c->target_version ?
		       b.c->target_version : migrations_latest(&b.set));
		if (b.db_exists && read_plan(&b) == 0)
			printf("database schema version: %lld\n", b.plan.db_version);
		else if (!b.db_exists)
			printf("database schema version: none (not created yet)\n");
	}
	boot_close(&b);
}
