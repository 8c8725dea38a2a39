/*
 * pgcheck: what `ferry doctor` asks of PostgreSQL, and the privilege check
 * an upgrade makes first. Doctor's connection is read-only (every
 * transaction of the session: default_transaction_read_only), the
 * application's checks run in a read-only transaction that is rolled
 * back, and the one thing created, the scratch database the migrations
 * are replayed on (<db>_ferry_doctor_<pid>), is made on a connection of
 * its own and dropped after.
 */
#include "exits.h"
#include "log.h"
#include "postgres.h"
#include "store.h"
#include "util.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A new connection like the store's, to database dbname (NULL: the
 * store's own), waiting for a busy server like every other; NULL with why. */
PGconn *pg_connect_db(struct store *s, const char *dbname, char *why, size_t size)
{
	char *what = xasprintf("database '%s'", dbname ? dbname : pg_priv(s)->dbname);
	int status = 0;
	PGconn *c = pg_connect_wait(s, dbname, what, why, size, &status);

	free(what);
	return c;
}

int pg_open_read_only(struct store *s)
{
	if (pg_open(s) < 0)
		return -1;
	if (pg_run(s, pg_conn(s), "SET default_transaction_read_only = on", NULL) < 0)
		return store_fail(s, EXIT_UNAVAILABLE, "cannot read %s: %s",
				  s->url_redacted, s->err);
	return 0;
}

int pg_privileges(struct store *s, char *why, size_t size)
{
	const char *params[] = { s->recorder->table };
	PGresult *r =
		pg_open(s) < 0
			? NULL
			: pg_query(
				  s, pg_conn(s),
				  "SELECT current_schema(), "
				  "current_user, coalesce(has_schema_privilege(current_schema(), "
				  "'CREATE'), false), to_regclass($1) IS NULL OR "
				  "has_table_privilege($1, 'INSERT, UPDATE, DELETE')",
				  1, params);
	int rc = 0;

	if (!r) {
		snprintf(why, size, "cannot check the role's privileges: %s", s->err);
		return EXIT_NOPERM;
	}
	if (PQgetisnull(r, 0, 0)) {
		snprintf(why, size,
			 "no schema to migrate: the search_path of role '%s' names no "
			 "existing schema",
			 PQgetvalue(r, 0, 1));
		rc = EXIT_CONFIG;
	} else if (PQgetvalue(r, 0, 2)[0] != 't') {
		snprintf(why, size,
			 "role '%s' lacks CREATE on schema '%s', which migrations need: "
			 "GRANT CREATE ON SCHEMA %s TO %s (nothing was changed)",
			 PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 0),
			 PQgetvalue(r, 0, 1));
		rc = EXIT_NOPERM;
	} else if (PQgetvalue(r, 0, 3)[0] != 't') {
		snprintf(why, size,
			 "role '%s' cannot write the ledger: GRANT INSERT, UPDATE, "
			 "DELETE ON %s TO %s (nothing was changed)",
			 PQgetvalue(r, 0, 1), s->recorder->table, PQgetvalue(r, 0, 1));
		rc = EXIT_NOPERM;
	} else {
		snprintf(why, size, "role '%s' may create in schema '%s' and write %s",
			 PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 0), s->recorder->table);
	}
	PQclear(r);
	return rc;
}

int pg_check_privileges(struct store *s)
{
	char why[1024];
	int rc = pg_privileges(s, why, sizeof(why));

	return rc ? store_fail(s, rc, "%s", why) : 0;
}

/* "<db>_ferry_doctor_<pid>", or without the name when that is too long */
static void scratch_name(struct store *s, char *name, size_t size)
{
	const char *db = pg_priv(s)->dbname;

	if (strlen(db) + 24 <= 63)
		snprintf(name, size, "%.39s_ferry_doctor_%d", db, (int)getpid());
	else
		snprintf(name, size, "ferry_doctor_%d", (int)getpid());
}

/* CREATE or DROP DATABASE name on c; -1 with s->err */
static int database_ddl(struct store *s, PGconn *c, const char *verb, const char *name)
{
	char *id = PQescapeIdentifier(c, name, strlen(name));
	char *sql = xasprintf("%s %s", verb, id ? id : "\"?\"");
	int rc = pg_run(s, c, sql, NULL);

	PQfreemem(id);
	free(sql);
	return rc;
}

/*
 * The scratch databases of doctors that were stopped before they dropped
 * theirs (kill -9 mid drift check): every <db>_ferry_doctor_<pid> that no
 * session uses. For ferry cleanup.
 */
void pg_drop_doctor_leftovers(struct store *s)
{
	const char *db = pg_priv(s)->dbname;
	char prefix[64];
	const char *params[] = { prefix };
	PGconn *c = pg_priv(s)->maint ? pg_priv(s)->maint : pg_conn(s);
	PGresult *r;

	if (!c)
		return;
	if (strlen(db) + 24 <= 63)
		snprintf(prefix, sizeof(prefix), "%.39s_ferry_doctor_", db);
	else
		snprintf(prefix, sizeof(prefix), "ferry_doctor_");
	r = pg_query(s, c,
		     "SELECT datname FROM pg_database d WHERE left(datname, "
		     "length($1)) = $1 AND substr(datname, length($1) + 1) ~ '^[0-9]+$' "
		     "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = "
		     "d.datname)",
		     1, params);
	for (int i = 0; r && i < PQntuples(r); i++) {
		const char *name = PQgetvalue(r, i, 0);

		if (database_ddl(s, c, "DROP DATABASE IF EXISTS", name) == 0)
			log_info("removed %s, the scratch database of a doctor that was "
				 "stopped",
				 name);
		else
			log_warn("cannot drop %s: %s", name, s->err);
	}
	PQclear(r);
}

int pg_scratch_open(struct store *s, struct store *out, char *why, size_t size)
{
	char name[64];
	PGconn *admin, *c;

	memset(out, 0, sizeof(*out));
	scratch_name(s, name, sizeof(name));
	/* doctor's own connection is read-only: CREATE DATABASE needs another */
	admin = pg_connect_db(s, NULL, why, size);
	if (!admin)
		return -1;
	if (database_ddl(s, admin, "CREATE DATABASE", name) < 0) {
		snprintf(why, size, "cannot create a scratch database: %s", s->err);
		PQfinish(admin);
		return -1;
	}
	c = pg_connect_db(s, name, why, size);
	if (!c) {
		database_ddl(s, admin, "DROP DATABASE IF EXISTS", name);
		PQfinish(admin);
		return -1;
	}
	out->ops = s->ops;
	out->url = xstrdup(s->url);
	out->url_redacted = xasprintf("the scratch database %s", name);
	out->path = xstrdup(s->path);
	out->statement_lock_timeout = s->statement_lock_timeout;
	out->db = c;
	pg_priv(out)->maint = admin;
	snprintf(pg_priv(out)->dbname, sizeof(pg_priv(out)->dbname), "%s", name);
	return 0;
}

void pg_scratch_drop(struct store *s, struct store *scratch)
{
	PGconn *admin = pg_priv(scratch)->maint;

	PQfinish(pg_conn(scratch));
	scratch->db = NULL;
	if (admin && database_ddl(s, admin, "DROP DATABASE IF EXISTS",
				  pg_priv(scratch)->dbname) < 0)
		log_warn("cannot drop the scratch database %s: %s (drop it by hand)",
			 pg_priv(scratch)->dbname, s->err);
	store_release(scratch);
}

/* clang-format off */
/* Tables, columns, indexes, constraints and views of the current schema,
 * the schema's name taken out of the definitions (another database may
 * build them in another schema); not the journal, not extensions' own. */
static const char schema_sql[] =
	"WITH ns AS (SELECT oid, quote_ident(nspname) || '.' AS q FROM pg_namespace "
	" WHERE nspname = current_schema()), "
	"rel AS (SELECT c.oid, c.relname FROM pg_class c, ns WHERE c.relnamespace = "
	" ns.oid AND c.relkind IN ('r', 'p') AND c.relname <> '" JOURNAL_TABLE "' "
	" AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.objid = c.oid "
	" AND e.deptype = 'e')) "
	"SELECT relname, 'table ' || relname, '' FROM rel "
	"UNION ALL SELECT r.relname, 'table ' || r.relname || ': column ' || a.attname, "
	" format_type(a.atttypid, a.atttypmod) "
	" || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END "
	" || CASE a.attidentity WHEN 'a' THEN ' generated always as identity' "
	"  WHEN 'd' THEN ' generated by default as identity' ELSE '' END "
	" || CASE WHEN a.attgenerated = 's' THEN ' generated always as (' "
	"  || pg_get_expr(d.adbin, d.adrelid) || ') stored' WHEN d.adbin IS NOT NULL "
	"  THEN ' default ' || pg_get_expr(d.adbin, d.adrelid) ELSE '' END "
	" FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid LEFT JOIN pg_attrdef d "
	" ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
	" WHERE a.attnum > 0 AND NOT a.attisdropped "
	"UNION ALL SELECT r.relname, 'index ' || i.relname, "
	" replace(pg_get_indexdef(i.oid), ns.q, '') FROM ns, rel r "
	" JOIN pg_index x ON x.indrelid = r.oid JOIN pg_class i ON i.oid = x.indexrelid "
	"UNION ALL SELECT r.relname, 'table ' || r.relname || ': constraint ' || "
	" k.conname, replace(pg_get_constraintdef(k.oid), ns.q, '') FROM ns, rel r "
	" JOIN pg_constraint k ON k.conrelid = r.oid "
	"UNION ALL SELECT c.relname, 'view ' || c.relname, "
	" replace(pg_get_viewdef(c.oid), ns.q, '') FROM pg_class c, ns "
	" WHERE c.relnamespace = ns.oid AND c.relkind IN ('v', 'm')";
/* clang-format on */

int pg_describe_schema(struct store *s, store_row_fn row, void *arg)
{
	return s->ops->sql_query(s, schema_sql, 0, NULL, row, arg);
}

/* Each statement of the script, its rows to row(); -1 with s->err. */
static int run_each(struct store *s, const struct sql_statement *st, size_t n,
		    store_row_fn row, void *arg)
{
	const char *values[16];
	char err[sizeof(s->err)];

	for (size_t i = 0; i < n; i++) {
		const char *kw = pg_transaction_control(st[i].start, st[i].len);
		char *sql = xasprintf("%.*s", (int)st[i].len, st[i].start);
		PGresult *r = kw ? NULL : pg_query(s, pg_conn(s), sql, 0, NULL);
		int ncols = r ? (PQnfields(r) < 16 ? PQnfields(r) : 16) : 0;

		free(sql);
		if (!r) {
			memcpy(err, s->err, sizeof(err));
			snprintf(s->err, sizeof(s->err), "line %d: %.900s", st[i].line,
				 kw ? "a check must not control its transaction" : err);
			return -1;
		}
		for (int t = 0; t < PQntuples(r); t++) {
			for (int c = 0; c < ncols; c++)
				values[c] =
					PQgetisnull(r, t, c) ? NULL : PQgetvalue(r, t, c);
			if (row(arg, ncols, values) != 0)
				break;
		}
		PQclear(r);
	}
	return 0;
}

/*
 * A read-only transaction whose first snapshot is taken before the
 * script runs (so no SET TRANSACTION READ WRITE can undo it), rolled back
 * at the end whatever the script did.
 */
int pg_run_checks(struct store *s, const char *sql, store_row_fn row, void *arg)
{
	struct sql_statement *st = NULL;
	char why[512];
	size_t n;
	int rc = -1;

	if (pg_open(s) < 0)
		return -1;
	if (pg_split_check(sql, why, sizeof(why)) < 0) {
		snprintf(s->err, sizeof(s->err), "%s", why);
		return -1;
	}
	n = pg_split(sql, &st);
	if (pg_run(s, pg_conn(s), "BEGIN TRANSACTION READ ONLY", NULL) == 0 &&
	    pg_run(s, pg_conn(s), "SET LOCAL lock_timeout = '10s'", NULL) == 0 &&
	    pg_run(s, pg_conn(s), "SELECT 1", NULL) == 0)
		rc = run_each(s, st, n, row, arg);
	pg_rollback(pg_conn(s));
	free(st);
	return rc;
}
