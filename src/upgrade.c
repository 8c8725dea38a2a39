/*
 * upgrade: the boot sequence of DESIGN.md, top to bottom in
 * upgrade_boot(): fast path, lock, recover, plan, then the first strategy
 * of the table that fits the plan. Every failure after the first write
 * ends in a restore from the snapshot; the journal (its phases and what
 * recovery does in each are listed in journal.h) makes that true across
 * crashes.
 */
#include "upgrade.h"
#include "appmode.h"
#include "commands.h"
#include "exits.h"
#include "failures.h"
#include "log.h"
#include "rebuild.h"
#include "session.h"
#include "snapshot.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The log fields of an upgrade, from its plan or its journal */
#define EV_PLAN(e, p)                                                                    \
	.event = (e), .from = version_str(&(p)->db_version),                             \
	.to = version_str(&(p)->image_version)
#define EV_JOURNAL(e, j)                                                                 \
	.event = (e), .from = version_str(&(j)->from), .to = version_str(&(j)->to),      \
	.snapshot = (j)->snapshot

/* "an upgrade" or "a downgrade" was interrupted; its failure's event */
static const char *work(const struct journal *j)
{
	return j->kind == KIND_DOWNGRADE ? "a downgrade" : "an upgrade";
}

static const char *failed_event(const struct journal *j)
{
	return j->kind == KIND_DOWNGRADE ? "downgrade_failed" : "upgrade_failed";
}

/* Puts the snapshot back, journalled so a crash midway is finished later. */
static int restore(struct session *b, struct journal *j)
{
	struct store *s = &b->store;
	char why[512];

	/* the backend may restore through its open connection and its lock */
	if (s->ops->snapshot_usable &&
	    !s->ops->snapshot_usable(s, j->snapshot, why, sizeof(why))) {
		log_error(
			"cannot restore from snapshot '%s': %s; the database %s was left "
			"as it is",
			j->snapshot, why, s->url_redacted);
		return EXIT_RESTORE_FAILED;
	}
	if (journal_write(&b->state, j, PHASE_RESTORING) < 0)
		return EXIT_RESTORE_FAILED;
	if (s->ops->restore(s, j->snapshot) < 0) {
		char by_hand[1024] = "restore it by hand with every process that uses it "
				     "stopped";

		if (s->ops->restore_by_hand)
			s->ops->restore_by_hand(s, j->snapshot, by_hand, sizeof(by_hand));
		log_error(
			"restoring %s from '%s' failed: the database is not at its old "
			"state; the snapshot and the journal are kept, so the next start "
			"of ferry retries; or %s",
			s->url_redacted, j->snapshot, by_hand);
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

static enum standing standing(struct session *b, const struct journal *j)
{
	enum standing st = BETWEEN;
	struct ledger l;
	struct version top;
	bool dirty = false;

	if (ledger_read(&b->store, &l) < 0)
		return BETWEEN;
	top = ledger_top(&l);
	for (size_t i = 0; i < l.n; i++)
		dirty |= l.rows[i].dirty;
	if (!dirty && version_cmp(&top, &j->from) == 0)
		st = AT_FROM;
	else if (!dirty && version_cmp(&top, &j->to) == 0)
		st = AT_TO;
	ledger_release(&l);
	return st;
}

static int forget(struct session *b)
{
	return journal_clear(&b->state) < 0 ? EXIT_CANTCREAT : 0;
}

/* snapshotting: the partial snapshot, under its temp name, or a whole one
 * that had not moved to its place yet ([snapshot] keep > 1) */
static int resolve_snapshotting(struct session *b, const struct journal *j)
{
	snapshot_discard_partial(&b->store, j->snapshot);
	log_info("%s from %s to %s was interrupted while writing its "
		 "snapshot; the database was not touched: discarded the partial "
		 "snapshot",
		 work(j), version_str(&j->from), version_str(&j->to));
	return forget(b);
}

/* migrating, verifying, done, applied: what the ledger says decides */
static int resolve_changed(struct session *b, struct journal *j)
{
	const char *from = version_str(&j->from), *to = version_str(&j->to);

	/* a restore would also undo what others wrote since the crash */
	switch (standing(b, j)) {
	case AT_FROM:
		log_info("%s from %s to %s was interrupted (phase %s) before "
			 "it committed anything: the database is still at version %s, "
			 "nothing to undo",
			 work(j), from, to, phase_name(j->phase), from);
		return forget(b);
	case AT_TO:
		if (j->phase == PHASE_DONE) {
			log_info("%s from %s to %s was interrupted after it was "
				 "verified and committed: the database is at version %s",
				 work(j), from, to, to);
			return forget(b);
		}
		break;
	case BETWEEN:
		break;
	}
	return -1; /* restore */
}

/* The one switch over the phases: what a boot does with a journal. */
static int resolve(struct session *b, struct journal *j)
{
	bool app = j->kind == KIND_APP;
	const char *from = app ? j->app_from : version_str(&j->from),
		   *to = app ? j->app_to : version_str(&j->to);
	int rc = -1;

	switch (j->phase) {
	case PHASE_NONE:
	case PHASE_COUNT:
		return 0;
	case PHASE_SNAPSHOTTING:
		return resolve_snapshotting(b, j);
	case PHASE_SNAPSHOTTED:
		log_info("%s from %s to %s was interrupted before it changed "
			 "anything (phase %s): nothing to undo",
			 work(j), from, to, phase_name(j->phase));
		return forget(b);
	case PHASE_MIGRATING:
	case PHASE_VERIFYING:
	case PHASE_DONE:
	case PHASE_APPLIED:
		rc = j->kind == KIND_APP ? app_resolve(b, j) : resolve_changed(b, j);
		break;
	case PHASE_RESTORING:
		break;
	}
	if (rc >= 0)
		return rc;
	log_info("%s from %s to %s was interrupted (phase %s): restoring the "
		 "database from %s",
		 work(j), from, to, phase_name(j->phase), j->snapshot);
	rc = restore(b, j);
	if (rc == 0)
		log_event(LOG_INFO,
			  LOG_FIELDS(.event = "database_restored", .to = from,
				     .snapshot = j->snapshot),
			  "database restored from %s: back at version %s", j->snapshot,
			  from);
	return rc;
}

int upgrade_recover(struct session *b)
{
	struct journal j;
	int rc;

	rc = journal_read(&b->state, &j);
	if (rc < 0)
		return journal_status(&b->state, rc);
	if (j.phase == PHASE_NONE)
		return 0;
	rc = resolve(b, &j);
	/* the crashed upgrade may have left others kept out; they stay out
	 * while a restore is still to be done */
	if (rc == 0 && b->store.ops->unhold)
		b->store.ops->unhold(&b->store);
	return rc;
}

/* Applies the plan's migrations in order; *failed names the one that failed. */
static int apply_pending(struct store *s, const struct plan *p,
			 const struct migration **failed)
{
	for (size_t i = 0; i < p->n_pending; i++) {
		const struct migration *m = p->pending[i];
		char point[96];
		long long ms = 0;

		if (s->ops->apply(s, m, &ms) < 0) {
			*failed = m;
			return -1;
		}
		log_event(LOG_INFO,
			  LOG_FIELDS(.event = "migration_applied", .migration = m->name,
				     .duration_ms = LOG_NUM(ms)),
			  "applied %s (%lld ms)", m->name, ms);
		snprintf(point, sizeof(point), "migration:%s:after-commit",
			 version_str(&m->version));
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

int upgrade_check_pending(struct session *b)
{
	struct store *s = &b->store;

	for (size_t i = 0; s->ops->check_migration && i < b->plan.n_pending; i++)
		if (s->ops->check_migration(s, b->plan.pending[i]) < 0)
			return s->status ? s->status : EXIT_DATA;
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

/* ------------------------------------------------------------------ */
/* Strategy: create, a first boot builds the database under a temp name */

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

static bool create_fits(const struct session *b)
{
	return b->plan.kind == PLAN_CREATE;
}

static int create(struct session *b)
{
	struct create_args a = { .plan = &b->plan };
	char why[1200];

	log_info("no database yet: creating %s at version %s (%zu migrations)",
		 b->store.path, version_str(&b->plan.image_version), b->plan.n_pending);
	if (b->store.ops->create(&b->store, create_fn, &a) < 0) {
		if (b->store.err[0]) {
			describe_failure(why, sizeof(why), &b->store, a.failed);
			log_error("%s — no database was created", why);
		}
		return EXIT_UPGRADE_FAILED;
	}
	log_event(LOG_INFO,
		  LOG_FIELDS(.event = "database_created",
			     .to = version_str(&b->plan.image_version)),
		  "database created at version %s", version_str(&b->plan.image_version));
	return 0;
}

/* ------------------------------------------------------------------ */
/* Strategy: one transaction, transactional DDL that undoes itself */

/*
 * After an upgrade that needed no snapshot, a snapshot of an older version
 * predates more than this upgrade: restoring it would silently undo the
 * upgrades before too. It goes.
 */
static void retire_snapshots(struct session *b)
{
	char *snap = snapshot_path(b->c, &b->store, 0);
	struct version v;

	/* one taken at the version this upgrade started from stays */
	if (path_exists(snap) && (!b->store.ops->snapshot_version ||
				  !b->store.ops->snapshot_version(&b->store, snap, &v) ||
				  version_cmp(&v, &b->plan.db_version) != 0)) {
		log_info("removing the older snapshot %s: it predates this upgrade, and "
			 "restoring it would undo this upgrade as well",
			 snap);
		snapshot_remove_all(b->c, &b->store);
		if (b->store.ops->cleanup)
			b->store.ops->cleanup(&b->store);
	}
	free(snap);
}

static bool one_transaction_fits(const struct session *b)
{
	/* with a health gate, a committed transaction must still be undone
	 * later: that takes a snapshot */
	return b->plan.kind == PLAN_UPGRADE && b->store.ops->apply_all && !b->gate &&
	       !needs_snapshot(&b->store, &b->plan);
}

static int one_transaction(struct session *b)
{
	const struct plan *p = &b->plan;
	struct store *s = &b->store;
	const struct migration *failed = NULL;
	double t0 = now_seconds();
	char why[1200];
	int brc;

	/* no snapshot, but the archive [backup] before_upgrade asks for */
	if ((brc = backup_before_upgrade(b)))
		return brc;
	log_event(LOG_INFO, LOG_FIELDS(EV_PLAN("upgrade_started", p)),
		  "schema version mismatch: database has %s, image expects %s "
		  "(%zu pending) — upgrading in one transaction (no snapshot needed: "
		  "a failure rolls everything back)",
		  version_str(&p->db_version), version_str(&p->image_version),
		  p->n_pending);
	if (s->ops->apply_all(s, p->pending, p->n_pending, &failed) < 0) {
		int rc = s->status ? s->status : EXIT_UPGRADE_FAILED;

		describe_failure(why, sizeof(why), s, failed);
		log_event(LOG_ERROR,
			  LOG_FIELDS(EV_PLAN("upgrade_failed", p), .exit = LOG_NUM(rc)),
			  "%s — rolled back, database still at version %s", why,
			  version_str(&p->db_version));
		if (rc == EXIT_UPGRADE_FAILED && !s->transient)
			failure_record(&b->state, p, why, NULL, NULL);
		return rc;
	}
	failure_clear(&b->state);
	log_event(LOG_INFO,
		  LOG_FIELDS(EV_PLAN("upgrade_done", p),
			     .duration_ms = LOG_NUM((now_seconds() - t0) * 1000)),
		  "database upgraded from %s to %s in %.2f s",
		  version_str(&p->db_version), version_str(&p->image_version),
		  now_seconds() - t0);
	retire_snapshots(b);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Strategy: in place, with a snapshot to undo what commits on its own */

/* Lets others write again and forgets the journal: nothing was changed. */
static void let_go(struct session *b, bool settle)
{
	struct store *s = &b->store;

	if (settle && s->ops->settle)
		s->ops->settle(s, false);
	if (s->ops->unhold)
		s->ops->unhold(s);
	journal_clear(&b->state);
}

/*
 * A failed upgrade: the held work is rolled back; the snapshot goes back
 * only if something was committed, since a restore needs room and time and
 * would be the one step that can fail. 74 only when the database is not at
 * its old state.
 */
static int undo(struct session *b, struct journal *j, const char *why,
		bool may_have_committed)
{
	struct store *s = &b->store;
	int rc;

	if (s->ops->settle)
		s->ops->settle(s, false);
	/* without a step that commits on its own nothing was committed: no
	 * need to read the ledger (nor a reason to restore if that fails) */
	if (!may_have_committed || standing(b, j) == AT_FROM) {
		log_event(
			LOG_ERROR,
			LOG_FIELDS(EV_JOURNAL(failed_event(j), j),
				   .exit = LOG_NUM(s->status == EXIT_TEMPFAIL
							   ? EXIT_TEMPFAIL
							   : EXIT_UPGRADE_FAILED)),
			"%s — rolled back: nothing was committed, the database is still "
			"at version %s (snapshot kept: %s)",
			why, version_str(&j->from), j->snapshot);
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
		log_event(LOG_ERROR,
			  LOG_FIELDS(EV_JOURNAL(failed_event(j), j), .exit = LOG_NUM(rc)),
			  "%s — and the restore failed too", why);
	else
		log_event(LOG_ERROR,
			  LOG_FIELDS(EV_JOURNAL(failed_event(j), j),
				     .exit = LOG_NUM(EXIT_UPGRADE_FAILED)),
			  "%s — database restored from %s, still at version %s", why,
			  j->snapshot, version_str(&j->from));
	return rc ? rc : EXIT_UPGRADE_FAILED;
}

/* snapshotting -> snapshotted: others kept out from now to the commit */
static int take_snapshot(struct session *b, struct journal *j, bool exclusive)
{
	struct store *s = &b->store;
	char *snap = snapshot_path(b->c, s, 0);
	int rc;

	snprintf(j->snapshot, sizeof(j->snapshot), "%s", snap);
	free(snap);
	if ((rc = backup_before_upgrade(b)))
		return rc;
	if (journal_write(&b->state, j, PHASE_SNAPSHOTTING) < 0)
		return EXIT_CANTCREAT;
	if (s->ops->hold && s->ops->hold(s, exclusive) < 0) {
		let_go(b, false);
		return s->status ? s->status : EXIT_CANTCREAT;
	}
	/* a restore follows a failure only when something was committed */
	rc = snapshot_take(b->c, s, &b->plan.db_version, exclusive);
	if (rc) {
		let_go(b, true);
		return rc;
	}
	if (journal_write(&b->state, j, PHASE_SNAPSHOTTED) < 0) {
		let_go(b, true);
		return EXIT_CANTCREAT;
	}
	return 0;
}

/* migrating -> verifying -> done -> committed; -1 with s->err on failure */
static int migrate_and_commit(struct session *b, struct journal *j,
			      const struct migration **failed)
{
	struct store *s = &b->store;

	if (apply_pending(s, &b->plan, failed) < 0)
		return -1;
	if (journal_write(&b->state, j, PHASE_VERIFYING) < 0)
		goto no_journal;
	if (s->ops->verify(s) < 0)
		return -1;
	/* verified: a crash from here on keeps whatever the commit made */
	/* with a health gate a crash after the commit still undoes it */
	if (journal_write(&b->state, j, b->gate ? PHASE_APPLIED : PHASE_DONE) < 0)
		goto no_journal;
	if (s->ops->settle && s->ops->settle(s, true) < 0)
		return -1;
	crash_point("upgrade:committed");
	return 0;
no_journal:
	snprintf(s->err, sizeof(s->err), "cannot write the journal");
	return -1;
}

/*
 * The health gate's window: the upgrade is committed but not accepted
 * (phase applied); the lock stays taken, so no replica resolves the
 * journal meanwhile, and no connection of ferry's stays on the database.
 * upgrade_accept or upgrade_reject ends it.
 */
static int await_health(struct session *b, struct journal *j, double t0)
{
	struct store *s = &b->store;

	/* the journal has been at applied since before the commit */
	if (s->ops->disconnect)
		s->ops->disconnect(s);
	else
		s->ops->close(s);
	b->gated = true;
	b->gated_journal = *j;
	log_event(LOG_INFO,
		  LOG_FIELDS(EV_JOURNAL("upgrade_applied", j),
			     .duration_ms = LOG_NUM((now_seconds() - t0) * 1000)),
		  "database upgraded from %s to %s in %.2f s (snapshot kept: %s); the "
		  "upgrade is kept once the server is healthy ([health])",
		  version_str(&j->from), version_str(&j->to), now_seconds() - t0,
		  j->snapshot);
	return 0;
}

int upgrade_accept(struct session *b)
{
	if (b->gated_journal.kind == KIND_APP)
		return app_accept(b);
	if (journal_clear(&b->state) < 0)
		return EXIT_CANTCREAT;
	failure_clear(&b->state);
	b->gated = false;
	/* the server runs on without ferry's lock or sessions: replicas and
	 * commands (snapshot, cleanup) may take the lock again */
	b->store.ops->close(&b->store);
	state_unlock(&b->state);
	return 0;
}

int upgrade_reject(struct session *b, const char *why, const char *probe)
{
	struct journal *j = &b->gated_journal;
	int rc;

	if (j->kind == KIND_APP)
		return app_reject(b, why, probe);
	b->gated = false;
	failure_record(&b->state, &b->plan, why, probe, NULL);
	rc = restore(b, j);
	if (rc == 0 && b->store.ops->unhold)
		b->store.ops->unhold(&b->store);
	if (rc) {
		log_event(
			LOG_ERROR,
			LOG_FIELDS(EV_JOURNAL("upgrade_rejected", j),
				   .exit = LOG_NUM(rc)),
			"the new release was not healthy (%s) — and the restore failed too",
			why);
		return rc;
	}
	log_event(
		LOG_ERROR,
		LOG_FIELDS(EV_JOURNAL("upgrade_rejected", j),
			   .exit = LOG_NUM(EXIT_UPGRADE_FAILED)),
		"the new release was not healthy (%s%s%s): the server was stopped and "
		"the database restored from %s, back at version %s (what the new "
		"release wrote is undone with it). Pin the previous image tag; this "
		"upgrade is not tried again until the image ships other migrations, "
		"FERRY_RETRY_FAILED_UPGRADE=1 is set or `ferry cleanup --failures` runs",
		why, probe && *probe ? "; last probe: " : "", probe ? probe : "",
		j->snapshot, version_str(&j->from));
	return EXIT_UPGRADE_FAILED;
}

int upgrade_undo_unverified(struct session *b)
{
	struct journal *j = &b->gated_journal;
	int rc;

	if (j->kind == KIND_APP)
		return app_undo_unverified(b);
	b->gated = false;
	rc = restore(b, j);
	if (rc == 0 && b->store.ops->unhold)
		b->store.ops->unhold(&b->store);
	if (rc == 0)
		log_warn(
			"the server was stopped before it was found healthy: the upgrade "
			"is undone (restored from %s, back at version %s); the next boot "
			"tries it again",
			j->snapshot, version_str(&j->from));
	return rc;
}

static bool in_place_fits(const struct session *b)
{
	return b->plan.kind == PLAN_UPGRADE;
}

static int in_place(struct session *b)
{
	const struct plan *p = &b->plan;
	struct journal j = { .kind = KIND_UPGRADE,
			     .from = p->db_version,
			     .to = p->image_version };
	struct store *s = &b->store;
	const struct migration *failed = NULL;
	bool exclusive = needs_snapshot(s, p);
	double t0 = now_seconds();
	char why[1200];
	int rc;

	log_event(LOG_INFO, LOG_FIELDS(EV_PLAN("upgrade_started", p)),
		  "schema version mismatch: database has %s, image expects %s "
		  "(%zu pending) — upgrading",
		  version_str(&p->db_version), version_str(&p->image_version),
		  p->n_pending);
	if (s->ops->check(s) < 0) {
		log_error("refusing to upgrade a damaged database: nothing was changed; "
			  "restore it from a backup");
		return EXIT_DATA;
	}
	rc = take_snapshot(b, &j, exclusive);
	if (rc)
		return rc;
	if (journal_write(&b->state, &j, PHASE_MIGRATING) < 0) {
		let_go(b, true);
		return EXIT_CANTCREAT;
	}
	if (migrate_and_commit(b, &j, &failed) < 0) {
		describe_failure(why, sizeof(why), s, failed);
		rc = undo(b, &j, why, exclusive);
		/* a release that failed, not a busy database: not tried again */
		if ((rc == EXIT_UPGRADE_FAILED || rc == EXIT_RESTORE_FAILED) &&
		    !s->transient)
			failure_record(&b->state, p, why, NULL, NULL);
		return rc;
	}
	if (s->ops->unhold)
		s->ops->unhold(s);
	if (b->gate)
		return await_health(b, &j, t0);
	s->ops->close(s);
	failure_clear(&b->state);
	if (journal_clear(&b->state) < 0) {
		log_error("the upgrade succeeded but its journal cannot be cleared: the "
			  "next boot will finish it; not starting");
		return EXIT_CANTCREAT;
	}
	log_event(LOG_INFO,
		  LOG_FIELDS(EV_PLAN("upgrade_done", p), .snapshot = j.snapshot,
			     .duration_ms = LOG_NUM((now_seconds() - t0) * 1000)),
		  "database upgraded from %s to %s in %.2f s (snapshot kept: %s)",
		  version_str(&p->db_version), version_str(&p->image_version),
		  now_seconds() - t0, j.snapshot);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Strategy: rebuild, a fresh database from schema.sql (rebuild.h) */

static bool rebuild_fits(const struct session *b)
{
	/* version 0 (an empty database) takes schema.sql as a migration */
	return b->plan.kind == PLAN_UPGRADE && b->set.rebuild &&
	       !version_is_zero(&b->plan.db_version);
}

/* The old database is untouched until the store's swap, one step. */
static int rebuild(struct session *b)
{
	const struct plan *p = &b->plan;
	struct journal j = { .kind = KIND_UPGRADE,
			     .from = p->db_version,
			     .to = p->image_version };
	struct store *s = &b->store;
	struct rebuild_job job;
	double t0 = now_seconds();
	char why[1200];
	int rc;

	rebuild_job_init(&job, &b->set, &j.from);
	rc = s->ops->check(s) < 0 ? EXIT_DATA : take_snapshot(b, &j, true);
	if (rc == 0 && journal_write(&b->state, &j, PHASE_MIGRATING) < 0)
		rc = -1;
	else if (rc == 0 && s->ops->rebuild_build(s, &job) < 0) {
		snprintf(why, sizeof(why), "the rebuild failed: %s", s->err);
		rc = undo(b, &j, why, false);
		if (rc == EXIT_UPGRADE_FAILED && !s->transient)
			failure_record(&b->state, p, why, NULL, NULL);
	} else if (rc == 0 && (journal_write(&b->state, &j, PHASE_VERIFYING) < 0 ||
			       journal_write(&b->state, &j,
					     b->gate ? PHASE_APPLIED : PHASE_DONE) < 0))
		rc = -1;
	else if (rc == 0 && s->ops->rebuild_swap(s) < 0)
		rc = EXIT_UPGRADE_FAILED; /* the next boot finds where it stands */
	else if (rc == 0) {
		crash_point("rebuild:swapped");
		if (s->ops->unhold)
			s->ops->unhold(s);
		s->ops->close(s);
		if (b->gate)
			rc = await_health(b, &j, t0);
		else if (failure_clear(&b->state), journal_clear(&b->state) < 0)
			rc = EXIT_CANTCREAT;
		else
			log_info("database rebuilt from %s to %s in %.2f s",
				 version_str(&j.from), version_str(&j.to),
				 now_seconds() - t0);
	}
	if (rc < 0) { /* the journal cannot be written: nothing was changed */
		s->ops->rebuild_discard(s);
		let_go(b, true);
		rc = EXIT_CANTCREAT;
	}
	rebuild_job_release(&job);
	return rc;
}

/*
 * The ways to bring a database to the image's version, first fit wins.
 */
static const struct strategy {
	const char *name;
	bool (*fits)(const struct session *b);
	int (*run)(struct session *b);
} strategies[] = {
	{ "app", app_fits, app_upgrade },
	{ "create", create_fits, create },
	{ "rebuild", rebuild_fits, rebuild },
	{ "one transaction", one_transaction_fits, one_transaction },
	{ "in place", in_place_fits, in_place },
};

/* What every strategy checks before its first write. */
static int preflight(struct session *b, bool for_run)
{
	const struct plan *p = &b->plan;
	struct store *s = &b->store;
	int rc;

	if (for_run && p->kind == PLAN_UPGRADE && !b->c->auto_upgrade &&
	    p->app_identity) {
		log_error("the app identity changed (%s recorded, the image is %s): run "
			  "`ferry migrate`, then start again ([migrations] auto_upgrade "
			  "= false)",
			  b->app.recorded[0] ? b->app.recorded : "none", p->app_identity);
		return EXIT_TEMPFAIL;
	}
	if (for_run && p->kind == PLAN_UPGRADE && !b->c->auto_upgrade) {
		log_error(
			"%zu migration%s pending (database at %s, image at %s): run "
			"`ferry migrate`, then start again ([migrations] auto_upgrade = "
			"false)",
			p->n_pending, p->n_pending == 1 ? "" : "s",
			version_str(&p->db_version), version_str(&p->image_version));
		return EXIT_TEMPFAIL;
	}
	rc = upgrade_check_pending(b);
	if (rc)
		return rc;
	if (p->kind == PLAN_UPGRADE && s->ops->check_privileges &&
	    s->ops->check_privileges(s) < 0)
		return s->status ? s->status : EXIT_NOPERM;
	return 0;
}

/*
 * The same upgrade failed max_attempts times already (a migration or the
 * health gate): the database is left alone instead of being snapshotted,
 * migrated and restored again at every restart.
 */
static int crash_loop_guard(struct session *b)
{
	const char *retry = getenv("FERRY_RETRY_FAILED_UPGRADE");
	struct failure f;
	char what[APP_IDENTITY_MAX + 128], at[APP_IDENTITY_MAX + 64];

	if (failure_read(&b->state, &f) != 1 || !failure_same(&f, &b->plan))
		return 0;
	failure_what(&f, what, sizeof(what));
	if (f.identity[0])
		snprintf(at, sizeof(at), "at app identity '%s'",
			 b->app.recorded[0] ? b->app.recorded : "(none recorded)");
	else
		snprintf(at, sizeof(at), "at version %s", version_str(&f.from));
	if (retry && !strcmp(retry, "1")) {
		log_info("the upgrade %s failed before (%s); trying it again "
			 "(FERRY_RETRY_FAILED_UPGRADE=1)",
			 what, f.reason);
		return 0;
	}
	if (f.attempts < b->c->health_max_attempts)
		return 0;
	log_error("the upgrade %s failed %lld time%s already (last at %s: %s): not "
		  "trying it again, the database is untouched %s. Pin the previous "
		  "image tag, or retry with FERRY_RETRY_FAILED_UPGRADE=1 or `ferry "
		  "cleanup --failures`",
		  what, f.attempts, f.attempts == 1 ? "" : "s", f.time, f.reason, at);
	return EXIT_TEMPFAIL;
}

static void log_current(const struct session *b)
{
	if (b->plan.app_identity)
		app_log_current(b);
	else
		log_info("schema up to date: database and image at version %s",
			 version_str(&b->plan.db_version));
}

/* The plan made under the lock, carried out. */
static int carry_out(struct session *b, bool for_run)
{
	int rc;

	switch (b->plan.kind) {
	case PLAN_CURRENT:
		log_current(b);
		return 0;
	case PLAN_REFUSE:
		log_error("%s (nothing was changed)", b->plan.why);
		return EXIT_DATA;
	case PLAN_CREATE:
	case PLAN_UPGRADE:
		break;
	}
	rc = preflight(b, for_run);
	if (rc == 0 && (b->plan.kind == PLAN_UPGRADE || b->plan.app_identity))
		rc = crash_loop_guard(b);
	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++)
		if (strategies[i].fits(b))
			return strategies[i].run(b);
	return 0;
}

int upgrade_boot(struct session *b, bool for_run)
{
	struct journal j;
	int rc;

	for (int round = 1;; round++) {
		/* Fast path, no lock and no write: nothing to do on most boots. */
		if (round > 1)
			b->db_exists = b->store.ops->exists(&b->store) == 1;
		rc = journal_read(&b->state, &j);
		if (rc < 0)
			return journal_status(&b->state, rc);
		if (j.phase == PHASE_NONE) {
			rc = session_read_plan(b);
			if (rc)
				return rc;
			if (b->plan.kind == PLAN_CURRENT) {
				log_current(b);
				return 0;
			}
		}
		/* a replica that waits holds no session on the database itself:
		 * that would keep a template copy or a restore from happening */
		b->store.ops->close(&b->store);
		b->store.lock_peek = round < 3;
		rc = session_lock(b, b->c->lock_timeout_seconds);
		b->store.lock_peek = false;
		if (rc)
			return rc;
		/* Another ferry held the lock: it most likely did the work. Look
		 * again without the lock, so that the replicas that waited all
		 * leave at once, not one after another (twice at most). */
		if (!b->state.lock_waited || round == 3)
			break;
		state_unlock(&b->state);
		b->store.ops->close(&b->store);
	}
	rc = upgrade_recover(b);
	if (rc)
		return rc;
	/* re-read: another replica may have done the work while we waited */
	b->db_exists = b->store.ops->exists(&b->store) == 1;
	rc = session_read_plan(b);
	if (rc)
		return rc;
	return carry_out(b, for_run);
}

int upgrade_restore(struct session *b, struct journal *j)
{
	return restore(b, j);
}

int upgrade_rollback(struct session *b, const char *path)
{
	struct journal j = { .kind = KIND_ROLLBACK };

	snprintf(j.snapshot, sizeof(j.snapshot), "%s", path);
	return restore(b, &j);
}

int upgrade_take_snapshot(struct session *b, struct journal *j, bool exclusive)
{
	return take_snapshot(b, j, exclusive);
}

int upgrade_undo(struct session *b, struct journal *j, const char *why,
		 bool may_have_committed)
{
	return undo(b, j, why, may_have_committed);
}
