/*
 * pgrebuild: rebuild mode on PostgreSQL, inside the one database. The
 * app's schema (the connection's current schema, public by default) is
 * copied to ferry_staging, where the transforms run; schema.sql runs with
 * search_path = ferry_new (so it must not qualify its names), the common
 * tables and columns are copied across in foreign-key order with the
 * schema's own triggers off, and one transaction of renames swaps
 * ferry_new in. The app's schema is only read until that commit.
 */
#include "postgres.h"
#include "exits.h"
#include "log.h"
#include "migrations.h"
#include "rebuild.h"
#include "util.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* s->err as "what: the server's words" */
static int fail(struct store *s, const char *what)
{
	char why[sizeof(s->err)];

	snprintf(why, sizeof(why), "%s", s->err);
	snprintf(s->err, sizeof(s->err), "%.400s: %.600s", what, why);
	return -1;
}

static int run(struct store *s, const char *sql)
{
	return pg_run(s, pg_conn(s), sql, NULL);
}

/* Runs every statement the query's first column holds, in order. */
static int run_generated(struct store *s, const char *query, int n,
			 const char *const *params)
{
	PGresult *r = pg_query(s, pg_conn(s), query, n, params);
	int rc = 0;

	if (!r)
		return -1;
	for (int i = 0; rc == 0 && i < PQntuples(r); i++)
		rc = run(s, PQgetvalue(r, i, 0));
	PQclear(r);
	return rc;
}

static int drop_scratch(struct store *s)
{
	return run(s, "RESET search_path; DROP SCHEMA IF EXISTS ferry_staging CASCADE; "
		      "DROP SCHEMA IF EXISTS ferry_new CASCADE; DROP SCHEMA IF EXISTS "
		      "ferry_old CASCADE");
}

void pg_rebuild_discard(struct store *s)
{
	if (pg_conn(s) && drop_scratch(s) < 0)
		log_warn("cannot drop ferry's rebuild schemas: %s", s->err);
}

/* The app's tables, data only, into ferry_staging. */
static int stage(struct store *s)
{
	const char *params[] = { s->recorder->table, JOURNAL_TABLE };

	if (run(s, "CREATE SCHEMA ferry_staging") < 0 ||
	    run_generated(s,
			  "SELECT format('CREATE TABLE ferry_staging.%I AS TABLE %I.%I', "
			  "c.relname, current_schema(), c.relname) FROM pg_class c "
			  "WHERE c.relnamespace = current_schema()::regnamespace AND "
			  "c.relkind IN ('r', 'p') AND NOT c.relispartition AND "
			  "c.relname NOT IN ($1, $2) ORDER BY c.relname",
			  2, params) < 0)
		return fail(s, "staging copy of the old data");
	crash_point("rebuild:staged");
	return 0;
}

static int run_transforms(struct store *s, const struct rebuild_job *job)
{
	char what[1200];

	if (run(s, "SET search_path = ferry_staging") < 0)
		return fail(s, "staging copy");
	for (size_t i = 0; i < job->n_steps; i++) {
		const struct transform *t = job->steps[i];
		double t0 = now_seconds();

		if (run(s, t->sql) < 0) {
			snprintf(what, sizeof(what), "transform '%s' failed", t->path);
			return fail(s, what);
		}
		log_info("rebuild: transform %s-%s ran on the staging copy (%.0f ms)",
			 version_str(&t->from), version_str(&t->to),
			 (now_seconds() - t0) * 1000);
		crash_point("rebuild:transformed");
	}
	return 0;
}

/* ferry_new's tables, the referenced ones before those that refer to them */
static const char tables_sql[] =
	"WITH RECURSIVE t AS (SELECT oid, relname FROM pg_class WHERE relnamespace = "
	"'ferry_new'::regnamespace AND relkind IN ('r', 'p') AND NOT relispartition "
	"AND relname <> $1), e AS (SELECT conrelid AS child, confrelid AS parent FROM "
	"pg_constraint WHERE contype = 'f' AND connamespace = 'ferry_new'::regnamespace "
	"AND conrelid <> confrelid), d(oid, depth) AS (SELECT oid, 0 FROM t UNION ALL "
	"SELECT e.child, d.depth + 1 FROM d JOIN e ON e.parent = d.oid WHERE d.depth < "
	"64) SELECT t.relname, to_regclass(format('ferry_staging.%I', t.relname)) IS "
	"NOT NULL FROM t JOIN d USING (oid) GROUP BY t.relname ORDER BY max(d.depth), "
	"t.relname";

/* the INSERT of one table's common columns, NULL for none in common */
static const char copy_sql[] =
	"SELECT format('INSERT INTO ferry_new.%I (%s) OVERRIDING SYSTEM VALUE SELECT %s "
	"FROM ferry_staging.%I', $1::text, string_agg(quote_ident(n.attname), ', ' "
	"ORDER BY n.attnum), string_agg(quote_ident(n.attname), ', ' ORDER BY "
	"n.attnum), $1::text) FROM pg_attribute n JOIN pg_attribute o ON o.attname = "
	"n.attname AND o.attrelid = format('ferry_staging.%I', $1::text)::regclass AND "
	"o.attnum > 0 AND NOT o.attisdropped WHERE n.attrelid = "
	"format('ferry_new.%I', $1::text)::regclass AND n.attnum > 0 AND NOT "
	"n.attisdropped AND n.attgenerated = '' HAVING count(*) > 0";

static int copy_table(struct store *s, const char *table)
{
	const char *params[] = { table };
	PGresult *ins, *r = pg_query(s, pg_conn(s), copy_sql, 1, params);
	char what[600];
	int rc = -1;

	snprintf(what, sizeof(what), "table '%s'", table);
	if (!r)
		return fail(s, what);
	if (PQntuples(r) == 0) {
		log_info("rebuild: %s 0 rows (no column in common with the old table)",
			 table);
		rc = 0;
	} else if ((ins = pg_query(s, pg_conn(s), PQgetvalue(r, 0, 0), 0, NULL))) {
		log_info("rebuild: %s %s rows", table, PQcmdTuples(ins));
		PQclear(ins);
		rc = 0;
	} else
		fail(s, what);
	PQclear(r);
	return rc;
}

/* Every table of the new schema that the old data has; the schema's own
 * triggers off meanwhile, foreign keys checked as rows arrive. */
static int copy_all(struct store *s)
{
	const char *params[] = { s->recorder->table };
	PGresult *r = pg_query(s, pg_conn(s), tables_sql, 1, params);
	int rc = 0;

	if (!r)
		return fail(s, "listing the new tables");
	for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
		const char *t = PQgetvalue(r, i, 0), *p[] = { t };

		if (strcmp(PQgetvalue(r, i, 1), "t")) {
			log_info("rebuild: %s is new: starts empty", t);
			continue;
		}
		rc = run_generated(s,
				   "SELECT format('ALTER TABLE ferry_new.%I DISABLE "
				   "TRIGGER USER', $1::text)",
				   1, p);
		if (rc == 0)
			rc = copy_table(s, t);
		if (rc == 0 && run_generated(s,
					     "SELECT format('ALTER TABLE ferry_new.%I "
					     "ENABLE TRIGGER USER', $1::text)",
					     1, p) < 0)
			rc = fail(s, "triggers");
	}
	PQclear(r);
	return rc;
}

/* Sequences owned by a column go on after its highest value. */
static int copy_sequences(struct store *s)
{
	if (run_generated(
		    s,
		    "SELECT format('SELECT setval(%L, coalesce((SELECT max(%I) FROM "
		    "ferry_new.%I), 0) + 1, false)', format('ferry_new.%I', "
		    "q.relname), a.attname, c.relname) FROM pg_depend d JOIN pg_class "
		    "q ON q.oid = d.objid AND q.relkind = 'S' JOIN pg_class c ON "
		    "c.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = c.oid "
		    "AND a.attnum = d.refobjsubid WHERE d.deptype IN ('a', 'i') AND "
		    "c.relnamespace = 'ferry_new'::regnamespace",
		    0, NULL) < 0)
		return fail(s, "sequences");
	return 0;
}

/* The old tables schema.sql no longer has, for the log. */
static int log_dropped(struct store *s)
{
	const char *params[] = { s->recorder->table, JOURNAL_TABLE };
	PGresult *r = pg_query(s, pg_conn(s),
			       "SELECT relname FROM pg_class WHERE relnamespace = "
			       "'ferry_staging'::regnamespace AND relkind IN ('r', 'p') "
			       "AND to_regclass(format('ferry_new.%I', relname)) IS NULL "
			       "AND relname NOT IN ($1, $2) ORDER BY relname",
			       2, params);

	if (!r)
		return fail(s, "listing the old tables");
	for (int i = 0; i < PQntuples(r); i++)
		log_info("rebuild: %s is not in schema.sql: not copied",
			 PQgetvalue(r, i, 0));
	PQclear(r);
	return 0;
}

/* schema.sql in ferry_new, the old data copied in, the ledger afresh */
static int build_fresh(struct store *s, const struct rebuild_job *job)
{
	double t0 = now_seconds();
	char what[1200];

	if (run(s, "CREATE SCHEMA ferry_new; SET search_path = ferry_new") < 0)
		return fail(s, "schema ferry_new");
	if (run(s, job->schema->sql) < 0) {
		snprintf(what, sizeof(what), "'%s' failed", job->schema->path);
		return fail(s, what);
	}
	if (copy_all(s) < 0 || log_dropped(s) < 0 || copy_sequences(s) < 0)
		return -1;
	crash_point("rebuild:copied");
	if (s->recorder->prepare(s) < 0 ||
	    s->recorder->record(s, job->schema, (long long)((now_seconds() - t0) * 1000),
				false) < 0)
		return fail(s, "ledger");
	return run(s, "RESET search_path") < 0 ? fail(s, "search_path") : 0;
}

int pg_rebuild_build(struct store *s, const struct rebuild_job *job)
{
	char keep[sizeof(s->err)];

	s->err[0] = '\0';
	if (pg_open(s) < 0) {
		snprintf(s->err, sizeof(s->err), "cannot connect to %s", s->url_redacted);
		return -1;
	}
	if (drop_scratch(s) == 0 && stage(s) == 0 && run_transforms(s, job) == 0 &&
	    run(s, "RESET search_path") == 0 && build_fresh(s, job) == 0)
		return 0;
	snprintf(keep, sizeof(keep), "%s", s->err);
	pg_rollback(pg_conn(s));
	pg_rebuild_discard(s);
	snprintf(s->err, sizeof(s->err), "%s", keep);
	return -1;
}

/* ferry_new gets the owner and the grants of the app's schema (best effort:
 * a role that cannot give them leaves the schema its own). */
static void like_old(struct store *s, const char *const *app)
{
	if (run_generated(
		    s,
		    "SELECT format('ALTER SCHEMA ferry_new OWNER TO %I', "
		    "pg_get_userbyid(nspowner)) FROM pg_namespace WHERE nspname = $1 "
		    "UNION ALL SELECT format('GRANT %s ON SCHEMA ferry_new TO %s', "
		    "a.privilege_type, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE "
		    "quote_ident(pg_get_userbyid(a.grantee)) END) FROM pg_namespace n, "
		    "aclexplode(n.nspacl) a WHERE n.nspname = $1",
		    1, app) < 0)
		log_warn("the rebuilt schema keeps ferry's role as its owner: %s",
			 s->err);
}

/*
 * One transaction of renames: the app's schema becomes ferry_old, ferry_new
 * takes its name, and the journal table moves to the new one first; the
 * old schema and the staging one are dropped in the same transaction.
 */
int pg_rebuild_swap(struct store *s)
{
	PGresult *r = pg_query(s, pg_conn(s), "SELECT current_schema()", 0, NULL);
	char app[256];
	const char *p[] = { app };

	if (!r || PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		PQclear(r);
		return store_fail(s, EXIT_UNAVAILABLE, "rebuild: no current schema: %s",
				  s->err);
	}
	snprintf(app, sizeof(app), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	like_old(s, p);
	if (run(s, "BEGIN") < 0 ||
	    run_generated(
		    s,
		    "SELECT q FROM (SELECT 1 AS o, format('ALTER TABLE %I.%I SET "
		    "SCHEMA ferry_new', $1::text, '" JOURNAL_TABLE "') AS q WHERE "
		    "to_regclass(format('%I.%I', $1::text, '" JOURNAL_TABLE "')) IS "
		    "NOT NULL UNION ALL SELECT 2, format('ALTER SCHEMA %I RENAME TO "
		    "ferry_old', $1::text) UNION ALL SELECT 3, format('ALTER SCHEMA "
		    "ferry_new RENAME TO %I', $1::text)) x ORDER BY o",
		    1, p) < 0)
		goto fail;
	/* dropped in the same transaction: no crash leaves them behind */
	if (run(s, "DROP SCHEMA ferry_old CASCADE; DROP SCHEMA ferry_staging CASCADE") <
	    0)
		goto fail;
	crash_point("rebuild:before-commit");
	if (run(s, "COMMIT") < 0)
		goto fail;
	return 0;
fail:
	pg_rollback(pg_conn(s));
	return error("cannot swap the rebuilt schema in: %s", s->err);
}
