/*
 * downgrade: the checks that refuse before anything is written, then the
 * upgrade's own snapshot, journal phases and undo around the down steps.
 * A down step runs through the store exactly as a migration does (a
 * struct migration whose SQL is the down part); only the recorder the
 * store calls for its ledger row is swapped for one that forgets it.
 */
#include "downgrade.h"
#include "exits.h"
#include "log.h"
#include "session.h"
#include "upgrade.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The migrations to undo, newest first, as the store will run them. */
struct steps {
	struct migration *items; /* copies of the set's, sql = the down part */
	size_t n;
	bool outside; /* one runs outside a transaction: the hold is exclusive */
};

static void steps_release(struct steps *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->items[i].path);
	free(st->items);
	memset(st, 0, sizeof(*st));
}

/*
 * The recorder the store calls while a down step runs: "applied" becomes
 * the ledger shape's forget, and "dirty" (a down part outside a
 * transaction has started) the shape's dirty row, which the next boot
 * sees after a crash, as after an upgrade's.
 */
struct down_recorder {
	struct store_recorder r; /* first: s->recorder points here */
	const struct store_recorder *shape;
};

static const struct store_recorder *shape_of(const struct store *s)
{
	return ((const struct down_recorder *)(const void *)s->recorder)->shape;
}

static int down_prepare(struct store *s)
{
	return shape_of(s)->prepare(s);
}

static int down_record(struct store *s, const struct migration *m, long long ms,
		       bool dirty)
{
	if (dirty)
		return shape_of(s)->record(s, m, ms, true);
	return shape_of(s)->forget(s, &m->version);
}

static int down_progress(struct store *s, const struct migration *m, size_t done)
{
	const struct store_recorder *shape = shape_of(s);

	return shape->progress ? shape->progress(s, m, done) : 0;
}

/* "1, 2, 4" (the applied versions), cut short when long */
static void applied_list(const struct ledger *l, char *buf, size_t size)
{
	size_t len = 0;

	snprintf(buf, size, "none");
	for (size_t i = 0; i < l->n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "",
					version_str(&l->rows[i].version));
}

static int refuse_target(struct session *b, const struct version *to)
{
	const struct version *top = &b->plan.db_version;
	char applied[256];

	if (version_cmp(to, top) >= 0) {
		log_error("cannot downgrade to %s: the database is at version %s, and "
			  "--to takes a version below it (`ferry migrate` goes up); "
			  "nothing was changed",
			  version_str(to), version_str(top));
		return EXIT_DATA;
	}
	if (!version_is_zero(to) && !ledger_find(&b->ledger, to)) {
		applied_list(&b->ledger, applied, sizeof(applied));
		log_error("cannot downgrade to %s: version %s was never applied to this "
			  "database (applied: %s); --to takes one of those, or 0 to undo "
			  "every migration; nothing was changed",
			  version_str(to), version_str(to), applied);
		return EXIT_DATA;
	}
	return 0;
}

/* The down steps from the ledger's newest row to the one above `to`. */
static int make_steps(struct session *b, const struct version *to, struct steps *st)
{
	const struct ledger *l = &b->ledger;

	st->items = xcalloc(l->n + 1, sizeof(*st->items));
	for (size_t i = l->n; i-- > 0;) {
		const struct ledger_row *r = &l->rows[i];
		const struct migration *m = migrations_find(&b->set, &r->version);
		struct migration *d;

		if (version_cmp(&r->version, to) <= 0)
			break;
		/* the plan refused a row the image does not ship */
		if (!m || !m->down_sql) {
			log_error(
				"cannot downgrade to %s: migration %s (version %s) has "
				"no down part in the image's migrations (%s format), so "
				"it cannot be undone; nothing was changed",
				version_str(to), m ? m->name : r->name,
				version_str(&r->version), b->set.format);
			return EXIT_DATA;
		}
		d = &st->items[st->n++];
		*d = *m;
		d->sql = m->down_sql;
		d->no_transaction = m->down_no_transaction;
		d->path = xasprintf("%s (its down part)", m->path);
		st->outside |= store_outside_transaction(&b->store, d);
	}
	return 0;
}

/* Everything that refuses before the first write: 0 or the exit status. */
static int prepare(struct session *b, const struct version *to, struct steps *st)
{
	struct store *s = &b->store;
	int rc;

	if (!b->db_exists) {
		log_error("cannot downgrade %s: there is no database yet",
			  s->url_redacted);
		return EXIT_DATA;
	}
	if ((rc = session_read_plan(b)))
		return rc;
	if (b->plan.kind == PLAN_REFUSE) {
		log_error("cannot downgrade: %s (nothing was changed)", b->plan.why);
		return EXIT_DATA;
	}
	if ((rc = refuse_target(b, to)) || (rc = make_steps(b, to, st)))
		return rc;
	if (!s->recorder->forget) {
		log_error("cannot downgrade: ferry cannot remove rows from the ledger "
			  "%s yet; nothing was changed",
			  s->recorder->table);
		return EXIT_DATA;
	}
	for (size_t i = 0; s->ops->check_migration && i < st->n; i++)
		if (s->ops->check_migration(s, &st->items[i]) < 0)
			return s->status ? s->status : EXIT_DATA;
	if (s->ops->check(s) < 0) {
		log_error("refusing to downgrade a damaged database: nothing was "
			  "changed; restore it from a backup");
		return EXIT_DATA;
	}
	return 0;
}

/* The down steps in order; *failed names the one that failed. */
static int run_steps(struct store *s, const struct steps *st,
		     const struct migration **failed)
{
	struct down_recorder rec = {
		.r = { .table = s->recorder->table,
		       .prepare = down_prepare,
		       .record = down_record,
		       .progress = down_progress },
		.shape = s->recorder,
	};
	int rc = 0;

	s->recorder = &rec.r;
	for (size_t i = 0; i < st->n; i++) {
		const struct migration *m = &st->items[i];
		char point[96];
		long long ms = 0;

		if (s->ops->apply(s, m, &ms) < 0) {
			*failed = m;
			rc = -1;
			break;
		}
		log_event(LOG_INFO,
			  LOG_FIELDS(.event = "migration_reverted", .migration = m->name,
				     .duration_ms = LOG_NUM(ms)),
			  "reverted %s (%lld ms)", m->name, ms);
		snprintf(point, sizeof(point), "downgrade:%s:after-commit",
			 version_str(&m->version));
		crash_point(point);
	}
	s->recorder = rec.shape;
	return rc;
}

/* migrating -> verifying -> done -> committed; -1 with why on failure */
static int revert_and_commit(struct session *b, struct journal *j, const struct steps *st,
			     char *why, size_t size)
{
	struct store *s = &b->store;
	const struct migration *failed = NULL;

	if (run_steps(s, st, &failed) < 0) {
		snprintf(why, size, "the down part of migration %s failed: %s",
			 failed->name, s->err);
		return -1;
	}
	if (journal_write(&b->state, j, PHASE_VERIFYING) < 0)
		goto no_journal;
	if (s->ops->verify(s) < 0) {
		snprintf(why, size, "verification after the downgrade failed: %s",
			 s->err);
		return -1;
	}
	if (journal_write(&b->state, j, PHASE_DONE) < 0)
		goto no_journal;
	if (s->ops->settle && s->ops->settle(s, true) < 0) {
		snprintf(why, size, "%s", s->err);
		return -1;
	}
	crash_point("downgrade:committed");
	return 0;
no_journal:
	snprintf(why, size, "cannot write the journal");
	return -1;
}

static int downgrade(struct session *b, const struct version *to, const struct steps *st)
{
	struct store *s = &b->store;
	struct journal j = { .kind = KIND_DOWNGRADE,
			     .from = b->plan.db_version,
			     .to = *to };
	/* a store without settle commits each step as it goes */
	bool may_have_committed = st->outside || !s->ops->settle;
	double t0 = now_seconds();
	char why[1200];
	int rc;

	log_event(LOG_INFO,
		  LOG_FIELDS(.event = "downgrade_started", .from = version_str(&j.from),
			     .to = version_str(to)),
		  "downgrading the database from %s to %s: undoing %zu migration%s, "
		  "newest first",
		  version_str(&j.from), version_str(to), st->n, st->n == 1 ? "" : "s");
	if ((rc = upgrade_take_snapshot(b, &j, st->outside)))
		return rc;
	if (journal_write(&b->state, &j, PHASE_MIGRATING) < 0) {
		rc = upgrade_undo(b, &j, "cannot write the journal", false);
		return rc == EXIT_UPGRADE_FAILED ? EXIT_CANTCREAT : rc;
	}
	if (revert_and_commit(b, &j, st, why, sizeof(why)) < 0)
		return upgrade_undo(b, &j, why, may_have_committed);
	if (s->ops->unhold)
		s->ops->unhold(s);
	s->ops->close(s);
	if (journal_clear(&b->state) < 0) {
		log_error("the downgrade succeeded but its journal cannot be cleared: "
			  "the next ferry migrate or run resolves it");
		return EXIT_CANTCREAT;
	}
	log_event(LOG_INFO,
		  LOG_FIELDS(.event = "downgrade_done", .from = version_str(&j.from),
			     .to = version_str(to), .snapshot = j.snapshot,
			     .duration_ms = LOG_NUM((now_seconds() - t0) * 1000)),
		  "database downgraded from %s to %s in %.2f s (snapshot kept: %s); "
		  "start the image that ships version %s now",
		  version_str(&j.from), version_str(to), now_seconds() - t0, j.snapshot,
		  version_str(to));
	return 0;
}

/* --dry-run: what would be undone; the journal is only read */
static int print_plan(struct session *b, const struct version *to, struct steps *st)
{
	struct journal j;
	int rc = journal_read(&b->state, &j);

	if (rc < 0)
		return journal_status(rc);
	if (j.phase != PHASE_NONE)
		printf("journal: an interrupted %s (phase %s) will be resolved first\n",
		       kind_name(j.kind), phase_name(j.phase));
	rc = prepare(b, to, st);
	if (rc)
		return rc;
	printf("database: %s at version %s\n", b->store.url_redacted,
	       version_str(&b->plan.db_version));
	printf("plan: snapshot, then undo %zu migration%s down to version %s, newest "
	       "first:\n",
	       st->n, st->n == 1 ? "" : "s", version_str(to));
	for (size_t i = 0; i < st->n; i++)
		printf("  %s%s\n", st->items[i].name,
		       store_outside_transaction(&b->store, &st->items[i])
			       ? " (no transaction)"
			       : "");
	return 0;
}

int downgrade_run(struct session *b, const struct version *to, bool dry_run)
{
	struct steps st = { 0 };
	int rc;

	if (dry_run) {
		rc = print_plan(b, to, &st);
		steps_release(&st);
		return rc;
	}
	/* an interrupted upgrade or downgrade is resolved as a boot would */
	rc = upgrade_recover(b);
	if (rc == 0)
		rc = prepare(b, to, &st);
	if (rc == 0)
		rc = downgrade(b, to, &st);
	steps_release(&st);
	return rc;
}
