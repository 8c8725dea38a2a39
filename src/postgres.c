/*
 * postgres: the PostgreSQL backend over libpq. PostgreSQL's own machinery
 * does the heavy lifting: transactional DDL (a run of migrations commits
 * together or not at all, so no snapshot is needed for it), a session-level
 * advisory lock for the one-migrator rule (polled, never blocking: a
 * replica blocked in pg_advisory_lock holds a snapshot that deadlocks a
 * CREATE INDEX CONCURRENTLY), the journal in a table that a restore leaves
 * alone, and COPY for the logical snapshot.
 */
#include "postgres.h"
#include "pgurl.h"
#include "exits.h"
#include "log.h"
#include "migrations.h"
#include "store.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

PGconn *pg_conn(struct store *s)
{
	return s->db;
}

struct pg *pg_priv(struct store *s)
{
	if (!s->priv)
		s->priv = xcalloc(1, sizeof(struct pg));
	return s->priv;
}

/* ------------------------------------------------------------------ */
/* Connection */

/* libpq's message on one line, without its trailing newline */
static const char *one_line(const char *msg, char *buf, size_t size)
{
	size_t n = 0;

	for (; *msg && n + 1 < size; msg++) {
		char c = *msg == '\n' || *msg == '\t' ? ' ' : *msg;

		if (c == ' ' && (n == 0 || buf[n - 1] == ' '))
			continue;
		buf[n++] = c;
	}
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
	return buf;
}

void pg_on_notice(void *arg, const char *msg)
{
	char line[512];

	(void)arg;
	log_debug("postgres: %s", one_line(msg, line, sizeof(line)));
}

/* Errors no waiting will cure: wrong password, no such database or role,
 * no right to connect (REVOKE CONNECT, NOLOGIN, pg_hba.conf). */
static bool permanent(PGconn *c)
{
	const char *m = PQerrorMessage(c);

	return PQconnectionNeedsPassword(c) || strstr(m, "authentication failed") ||
	       strstr(m, "invalid integer value") ||
	       strstr(m, "invalid connection option") || strstr(m, "invalid value for") ||
	       strstr(m, "invalid ") == m ||
	       (strstr(m, "database \"") && strstr(m, "does not exist")) ||
	       (strstr(m, "role \"") && strstr(m, "does not exist")) ||
	       strstr(m, "permission denied for database") ||
	       strstr(m, "is not permitted to log in") ||
	       strstr(m, "no pg_hba.conf entry");
}

/*
 * The ledger row of a migration that ran could not be written: say so,
 * for the error is the ledger's, not the migration's SQL (a migration
 * that empties search_path, as pg_dump's output does, hides the ledger).
 */
void pg_record_failed(struct store *s)
{
	char why[sizeof(s->err)];

	snprintf(why, sizeof(why), "%s", s->err);
	snprintf(s->err, sizeof(s->err),
		 "it ran, but its row in the ledger (%s) could not be written: %.700s%s",
		 s->recorder->table, why,
		 strstr(why, "does not exist") ? " (did it change search_path? the "
						 "ledger is found through it)"
					       : "");
}

/*
 * The session that migrates holds a second advisory lock, the migrator's
 * mark, for as long as it lives: a ferry killed mid-statement leaves that
 * session running until its statement ends, and the mark tells the next
 * ferry which one it is (its application_name is the operator's).
 */
void pg_mark_params(struct store *s, char hi[24], char lo[24], int which)
{
	unsigned long long key =
		(unsigned long long)pg_priv(s)->lock_key ^ (unsigned)which;

	snprintf(hi, 24, "%llu", key >> 32);
	snprintf(lo, 24, "%llu", key & 0xffffffffULL);
}

/*
 * Each session of ours may write while the database is held from others
 * (pg_hold); the one that migrates takes the mark.
 */
void pg_session_setup(struct store *s)
{
	char key[24];
	const char *params[] = { key };

	PQclear(PQexec(pg_conn(s), "SET default_transaction_read_only = off"));
	if (!s->priv || !pg_priv(s)->locked)
		return;
	snprintf(key, sizeof(key), "%lld", pg_priv(s)->lock_key ^ 1);
	PQclear(PQexecParams(pg_conn(s), "SELECT pg_try_advisory_lock($1::bigint)", 1,
			     NULL, params, NULL, NULL, 0));
}

/*
 * What a refused connection says of a server that will take it later, for
 * the wait's log line; NULL when the server is just not reachable yet.
 * libpq gives a failed connection no SQLSTATE, so the server's words
 * (53300 too_many_connections, 57P03 cannot_connect_now) are matched.
 */
static const char *busy_reason(const char *msg)
{
	if (strstr(msg, "too many clients") || strstr(msg, "remaining connection slots"))
		return "the server has no free connection slots (too many clients)";
	if (strstr(msg, "is starting up") || strstr(msg, "not yet accepting connections"))
		return "the server is starting up";
	if (strstr(msg, "is shutting down"))
		return "the server is shutting down";
	if (strstr(msg, "in recovery mode"))
		return "the server is recovering";
	return NULL;
}

/*
 * A new connection to the store's server, to database dbname (NULL: the
 * URL's), named what in the log. A server that is down, starting or has
 * no free slot is waited for up to [database] wait_seconds, with backoff
 * and jitter so that many replicas do not retry in step, saying why every
 * few seconds. NULL with why (one line) and *status: 78 when waiting
 * cannot help (password, no such database or role), 69 when the time ran
 * out.
 */
PGconn *pg_connect_wait(struct store *s, const char *dbname, const char *what, char *why,
			size_t size, int *status)
{
	static const char *const keys[] = { "connect_timeout", "dbname",
					    "fallback_application_name", "dbname", NULL };
	const char *values[] = { "10", s->url, "ferry", dbname, NULL };
	double start = now_seconds(), next_log = 0, delay = 0.1;
	double deadline = start + (double)s->wait_seconds;
	const char *busy;
	char msg[1024];

	for (;;) {
		PGconn *c = PQconnectdbParams(keys, values, 1);

		if (!c) {
			*status = EXIT_OSERR;
			snprintf(why, size, "out of memory connecting to %s", what);
			return NULL;
		}
		if (PQstatus(c) == CONNECTION_OK) {
			PQsetNoticeProcessor(c, pg_on_notice, NULL);
			if (next_log > 0)
				log_info("%s: connected after %.1f s", what,
					 now_seconds() - start);
			return c;
		}
		one_line(PQerrorMessage(c), msg, sizeof(msg));
		if (permanent(c)) {
			PQfinish(c);
			*status = EXIT_CONFIG;
			snprintf(why, size, "cannot connect to %s: %s", what, msg);
			return NULL;
		}
		PQfinish(c);
		busy = busy_reason(msg);
		if (now_seconds() + delay > deadline || stop_requested()) {
			*status = EXIT_UNAVAILABLE;
			if (busy)
				snprintf(why, size,
					 "%s: %s for %lld s ([database] wait_seconds; "
					 "or raise the server's max_connections): %s",
					 what, busy, s->wait_seconds, msg);
			else
				snprintf(why, size,
					 "%s unreachable after %lld s ([database] "
					 "wait_seconds): %s",
					 what, s->wait_seconds, msg);
			return NULL;
		}
		if (now_seconds() >= next_log) {
			long long left = (long long)(deadline - now_seconds() + 0.5);

			if (busy)
				log_info("%s: %s: waiting, %lld s left", what, busy,
					 left);
			else
				log_info(
					"%s not reachable yet (%s): waiting, %lld s left",
					what, msg, left);
			next_log = now_seconds() + 5;
		}
		usleep((useconds_t)(jitter(delay) * 1e6));
		delay = delay * 2 > 1 ? 1 : delay * 2;
	}
}

static int pg_connect(struct store *s)
{
	char *what = xasprintf("database %s", s->url_redacted), why[1400];
	int status = 0;
	PGconn *c = pg_connect_wait(s, NULL, what, why, sizeof(why), &status);

	free(what);
	if (!c)
		return store_fail(s, status, "%s", why);
	s->db = c;
	pg_session_setup(s);
	return 0;
}

int pg_run(struct store *s, PGconn *c, const char *sql, char sqlstate[6])
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	char msg[900];

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		PQclear(r);
		return 0;
	}
	snprintf(s->err, sizeof(s->err), "%s",
		 one_line(PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r)
						     : PQerrorMessage(c),
			  msg, sizeof(msg)));
	if (sqlstate) {
		const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		snprintf(sqlstate, 6, "%s", code ? code : "");
	}
	PQclear(r);
	return -1;
}

PGresult *pg_query(struct store *s, PGconn *c, const char *sql, int n,
		   const char *const *params)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	char msg[900];

	if (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK)
		return r;
	snprintf(s->err, sizeof(s->err), "%s",
		 one_line(PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r)
						     : PQerrorMessage(c),
			  msg, sizeof(msg)));
	log_debug("query failed (%s): %s", PQresStatus(PQresultStatus(r)), s->err);
	PQclear(r);
	return NULL;
}

void pg_rollback(PGconn *c)
{
	if (c && PQtransactionStatus(c) != PQTRANS_IDLE) {
		PGresult *r = PQexec(c, "ROLLBACK");
		PQclear(r);
	}
}

/* FNV-1a: a stable 64-bit advisory lock key from a name (documented). */
static long long lock_key(const char *dbname)
{
	unsigned long long h = 0xcbf29ce484222325ULL;
	char name[512];

	snprintf(name, sizeof(name), "ferry:%s:ferry_migrations", dbname);
	for (const char *p = name; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 0x100000001b3ULL;
	}
	return (long long)h;
}

static int pg_exists(struct store *s)
{
	const char *dir = s->snapshot_dir ? s->snapshot_dir : "/var/lib/ferry";

	if (!s->db && pg_connect(s) < 0)
		return -1;
	snprintf(pg_priv(s)->dbname, sizeof(pg_priv(s)->dbname), "%s", PQdb(pg_conn(s)));
	pg_priv(s)->lock_key = lock_key(pg_priv(s)->dbname);
	free(s->path);
	s->path = xasprintf("%s/%s", dir, pg_priv(s)->dbname);
	return 1;
}

int pg_open(struct store *s)
{
	if (s->db)
		return 0;
	if (pg_connect(s) < 0)
		return -1;
	return 0;
}

/*
 * The maintenance database ("postgres"): the lock is taken there when it
 * can be, so that neither ferry nor the replicas waiting for it are
 * connected to the database itself, which a template copy and a rename
 * need. NULL when that database cannot be reached (pg_hba, no CONNECT).
 */
int pg_maint_connect(struct store *s)
{
	char *what, why[1400];
	int status = 0;
	PGconn *c;

	if (!s->maintenance_db || pg_priv(s)->maint)
		return 0;
	what = xasprintf("the maintenance database '%s'", s->maintenance_db);
	c = pg_connect_wait(s, s->maintenance_db, what, why, sizeof(why), &status);
	free(what);
	if (c) {
		pg_priv(s)->maint = c;
		return 0;
	}
	if (status != EXIT_CONFIG) /* the server, not this database: said as such */
		return store_fail(s, status, "%s", why);
	/* Never fall back silently: replicas must all lock in the same place. */
	return store_fail(
		s, EXIT_UNAVAILABLE,
		"%s, where the migration lock is taken: allow it, or set [database] "
		"maintenance_db to another database, or to nothing to lock in the "
		"database itself (snapshots are then always logical)",
		why);
}

void pg_disconnect(struct store *s)
{
	if (s->db && !(pg_priv(s)->locked && !pg_priv(s)->maint)) {
		PQfinish(pg_conn(s));
		s->db = NULL;
	}
}

static void pg_close(struct store *s)
{
	/* a session holding the migrator lock ends with the lock */
	if (s->priv && pg_priv(s)->locked) {
		pg_disconnect(s);
		return;
	}
	if (s->db)
		PQfinish(pg_conn(s));
	s->db = NULL;
	if (s->priv && pg_priv(s)->maint) {
		PQfinish(pg_priv(s)->maint);
		pg_priv(s)->maint = NULL;
	}
}

/* The connection that holds (or takes) the migrator lock. */
PGconn *pg_lock_conn(struct store *s)
{
	return pg_priv(s)->maint ? pg_priv(s)->maint : pg_conn(s);
}

/* ------------------------------------------------------------------ */
/* The SQL surface for the ledger */

static int pg_sql_query(struct store *s, const char *sql, int n,
			const char *const *params, store_row_fn row, void *arg)
{
	const char *values[16];
	PGresult *r;
	int ncols, rc = 0;

	if (pg_open(s) < 0)
		return -1;
	if (pg_priv(s)->piping) { /* rows cannot be read before the sync */
		snprintf(s->err, sizeof(s->err), "a ledger query inside a pipeline");
		return -1;
	}
	r = pg_query(s, pg_conn(s), sql, n, params);
	if (!r)
		return -1;
	ncols = PQnfields(r) < 16 ? PQnfields(r) : 16;
	for (int i = 0; row && rc == 0 && i < PQntuples(r); i++) {
		for (int c = 0; c < ncols; c++)
			values[c] = PQgetisnull(r, i, c) ? NULL : PQgetvalue(r, i, c);
		if (row(arg, ncols, values) != 0) {
			snprintf(s->err, sizeof(s->err), "unexpected result of: %.200s",
				 sql);
			rc = -1;
		}
	}
	PQclear(r);
	return rc;
}

static int pg_sql_exec(struct store *s, const char *sql, int n, const char *const *params)
{
	if (pg_priv(s)->piping)
		return pg_pipe_send(s, sql, n, params);
	return pg_sql_query(s, sql, n, params, NULL, NULL);
}

struct table_walk {
	store_table_fn fn;
	void *arg;
};

/* every table but the backend's own journal */
static int see_table(void *arg, int ncols, const char *const *v)
{
	struct table_walk *w = arg;
	bool here = ncols > 1 && v[1] && v[1][0] == 't';

	if (ncols < 2 || !v[0] || (here && !strcmp(v[0], JOURNAL_TABLE)))
		return 0;
	return w->fn(w->arg, v[0], here);
}

static int pg_list_tables(struct store *s, store_table_fn fn, void *arg)
{
	struct table_walk w = { fn, arg };

	return pg_sql_query(
		s,
		"SELECT c.relname, n.nspname = current_schema() "
		"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
		"WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' "
		"AND n.nspname NOT LIKE 'pg\\_%'",
		0, NULL, see_table, &w);
}

static int pg_check(struct store *s)
{
	(void)s;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Migrations */

/* "near line N: message" for a statement of a script that failed */
void pg_statement_error(struct store *s, const struct sql_statement *st, PGresult *r)
{
	const char *pos = r ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;
	const char *prim = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	int line = st->line;
	char msg[700];
	long long chars;

	if (pos && parse_ll(pos, 1, 1 << 30, &chars)) {
		/* the position counts characters, not bytes */
		for (const char *p = st->start; p < st->start + st->len && chars > 1;
		     p++) {
			if (((unsigned char)*p & 0xC0) != 0x80)
				chars--;
			line += *p == '\n';
		}
	}
	snprintf(s->err, sizeof(s->err), "near line %d: %s", line,
		 prim ? prim : one_line(PQerrorMessage(pg_conn(s)), msg, sizeof(msg)));
}

/* Runs one statement; 0, or -1 with s->err and sqlstate set. */
static int run_statement(struct store *s, const struct sql_statement *st,
			 char sqlstate[6])
{
	char *sql = xasprintf("%.*s", (int)st->len, st->start);
	PGresult *r = PQexec(pg_conn(s), sql);
	ExecStatusType status = PQresultStatus(r);
	int rc = 0;

	free(sql);
	sqlstate[0] = '\0';
	if (status == PGRES_COPY_IN) { /* COPY FROM STDIN has no data here */
		PQputCopyEnd(pg_conn(s), "ferry runs no COPY FROM STDIN");
		PQclear(r);
		r = PQgetResult(pg_conn(s));
		status = PQresultStatus(r);
	}
	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK &&
	    status != PGRES_EMPTY_QUERY) {
		const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		snprintf(sqlstate, 6, "%s", code ? code : "");
		pg_statement_error(s, st, r);
		rc = -1;
	}
	PQclear(r);
	while ((r = PQgetResult(pg_conn(s))))
		PQclear(r);
	return rc;
}

static int run_script(struct store *s, const struct migration *m, char sqlstate[6])
{
	struct sql_statement *st;
	size_t n = pg_split(m->sql, &st);
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = run_statement(s, &st[i], sqlstate);
		if (rc == 0 && PQtransactionStatus(pg_conn(s)) != PQTRANS_INTRANS) {
			snprintf(s->err, sizeof(s->err),
				 "near line %d: the statement ended "
				 "ferry's transaction",
				 st[i].line);
			rc = -1;
		}
	}
	free(st);
	return rc;
}

/* lock timeouts, deadlocks, cancels, a full disk, lost connections: not the
 * migration's own fault, so not held against the release */
static bool transient_state(const char *sqlstate)
{
	return !strcmp(sqlstate, "55P03") || !strcmp(sqlstate, "57014") ||
	       !strcmp(sqlstate, "40001") || !strcmp(sqlstate, "40P01") ||
	       !strncmp(sqlstate, "53", 2) || !strncmp(sqlstate, "08", 2) ||
	       !strncmp(sqlstate, "57P", 3);
}

static bool lock_timed_out(const char *sqlstate)
{
	return !strcmp(sqlstate, "55P03"); /* lock_not_available */
}

/*
 * Transactional migrations in one transaction: BEGIN, a lock_timeout so an
 * ALTER queued behind a long reader fails fast instead of stalling every
 * query of the live app, each script and its ledger row, COMMIT. A lock
 * timeout is retried a few times with a growing pause.
 */
static int apply_in_transaction(struct store *s, const struct migration *const *m,
				size_t n, const struct migration **failed, long long *ms)
{
	char sqlstate[6] = "", set[64], point[96];

	for (int attempt = 1;; attempt++) {
		double t0 = now_seconds();
		size_t i = 0;

		snprintf(set, sizeof(set), "SET LOCAL lock_timeout = '%llds'",
			 s->statement_lock_timeout);
		if (pg_run(s, pg_conn(s), "BEGIN", sqlstate) < 0 ||
		    pg_run(s, pg_conn(s), set, sqlstate) < 0 ||
		    s->recorder->prepare(s) < 0)
			goto fail;
		if (pg_pipe_fits(m, n)) {
			if (pg_pipe_apply(s, m, n, &i, sqlstate) < 0)
				goto fail;
			i = n;
		}
		for (; i < n; i++) {
			double t1 = now_seconds();

			if (run_script(s, m[i], sqlstate) < 0)
				goto fail;
			if (s->recorder->record(s, m[i],
						(long long)((now_seconds() - t1) * 1000),
						false) < 0) {
				pg_record_failed(s);
				goto fail;
			}
			snprintf(point, sizeof(point), "migration:%s:before-commit",
				 version_str(&m[i]->version));
			crash_point(point);
		}
		if (pg_run(s, pg_conn(s), "COMMIT", sqlstate) < 0)
			goto fail;
		if (ms)
			*ms = (long long)((now_seconds() - t0) * 1000);
		return 0;
	fail:
		pg_rollback(pg_conn(s));
		*failed = i < n ? m[i] : m[n - 1];
		s->transient = transient_state(sqlstate);
		if (!lock_timed_out(sqlstate) || attempt == 3)
			return -1;
		log_warn("migration %s waited more than %lld s for a lock "
			 "([migrations] statement_lock_timeout): retrying (%d of 3)",
			 (*failed)->name, s->statement_lock_timeout, attempt + 1);
		sleep((unsigned)attempt);
	}
}

static int pg_apply_all(struct store *s, const struct migration *const *m, size_t n,
			const struct migration **failed)
{
	char point[96];

	if (pg_open(s) < 0)
		return -1;
	if (apply_in_transaction(s, m, n, failed, NULL) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		log_info("applied %s", m[i]->name);
		snprintf(point, sizeof(point), "migration:%s:after-commit",
			 version_str(&m[i]->version));
		crash_point(point);
	}
	return 0;
}

/* Names of the invalid indexes of the schema, one per line. */
static char *invalid_indexes(struct store *s)
{
	PGresult *r =
		pg_query(s, pg_conn(s),
			 "SELECT string_agg(format('%I.%I', n.nspname, c.relname), "
			 "E'\\n') FROM pg_index i JOIN pg_class c ON c.oid = "
			 "i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
			 "WHERE NOT i.indisvalid",
			 0, NULL);
	char *list = xstrdup(r && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "");

	PQclear(r);
	return list;
}

/* Drops indexes a failed concurrent build left INVALID (not older ones). */
static void drop_new_invalid(struct store *s, const char *before)
{
	char *now = invalid_indexes(s), *end = now + strlen(now),
	     saved_err[sizeof(s->err)];

	memcpy(saved_err, s->err, sizeof(saved_err));
	for (char *line = now; line < end;) {
		size_t len = strcspn(line, "\n");
		char *sql;

		line[len] = '\0';
		if (!strstr(before, line)) {
			sql = xasprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", line);
			if (pg_run(s, pg_conn(s), sql, NULL) == 0)
				log_info(
					"dropped index %s, left INVALID by the failed build",
					line);
			else
				log_warn(
					"index %s is INVALID after the failed build and could "
					"not be dropped: %s",
					line, s->err);
			free(sql);
		}
		line += len + 1;
	}
	memcpy(s->err, saved_err, sizeof(saved_err));
	free(now);
}

/*
 * Outside a transaction (CREATE INDEX CONCURRENTLY and friends): the
 * ledger row is dirty first, and each statement's completion is recorded,
 * so a failure or a crash is known down to the statement.
 */
static int apply_outside(struct store *s, const struct migration *m, long long *ms)
{
	const struct store_recorder *rec = s->recorder;
	struct sql_statement *st;
	size_t n = pg_split(m->sql, &st);
	double t0 = now_seconds();
	char sqlstate[6], point[96];
	int rc = -1;

	if (rec->prepare(s) < 0 || rec->record(s, m, 0, true) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char *before = invalid_indexes(s);

		if (run_statement(s, &st[i], sqlstate) < 0) {
			s->transient = transient_state(sqlstate);
			drop_new_invalid(s, before);
			free(before);
			goto out;
		}
		free(before);
		if (rec->progress && rec->progress(s, m, i + 1) < 0)
			goto out;
		snprintf(point, sizeof(point), "pg:statement:%s:%zu",
			 version_str(&m->version), i + 1);
		crash_point(point);
	}
	*ms = (long long)((now_seconds() - t0) * 1000);
	if (rec->record(s, m, *ms, false) < 0)
		goto out;
	rc = 0;
out:
	free(st);
	return rc;
}

static int pg_apply(struct store *s, const struct migration *m, long long *ms)
{
	const struct migration *failed = NULL;

	if (pg_open(s) < 0)
		return -1;
	if (store_outside_transaction(s, m))
		return apply_outside(s, m, ms);
	return apply_in_transaction(s, &m, 1, &failed, ms);
}

static int pg_verify(struct store *s)
{
	char *bad = invalid_indexes(s);

	if (bad[0])
		log_warn("invalid indexes after the upgrade: %s", bad);
	free(bad);
	return 0;
}

static int pg_size(struct store *s, unsigned long long *bytes)
{
	PGresult *r =
		pg_open(s) < 0
			? NULL
			: pg_query(
				  s, pg_conn(s),
				  "SELECT coalesce(sum(pg_table_size(c.oid)), 0) FROM pg_class c "
				  "WHERE c.relnamespace = current_schema()::regnamespace "
				  "AND c.relkind = 'r'",
				  0, NULL);
	long long v = 0;

	if (!r)
		return error("cannot size the database: %s", s->err);
	parse_ll(PQgetvalue(r, 0, 0), 0, 1LL << 62, &v);
	PQclear(r);
	/* text COPY compresses well; a third is a safe estimate */
	*bytes = (unsigned long long)v / 3;
	return 0;
}

static const char *pg_location(struct store *s)
{
	return s->path;
}

/*
 * BEGIN or COMMIT inside a transactional migration would end ferry's own
 * transaction: what follows would run in autocommit, beyond any rollback.
 */
static int pg_check_migration(struct store *s, const struct migration *m)
{
	struct sql_statement *st;
	char why[512];
	size_t n;
	int rc = 0;

	/* what an unclosed comment or literal swallows would never run */
	if (pg_split_check(m->sql, why, sizeof(why)) < 0) {
		return store_fail(
			s, EXIT_DATA,
			"migration '%s' %s: the rest of the file would never run "
			"(nothing was changed)",
			m->path, why);
	}
	if (store_outside_transaction(s, m))
		return 0;
	n = pg_split(m->sql, &st);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *kw = pg_transaction_control(st[i].start, st[i].len);

		if (kw) {
			rc = store_fail(
				s, EXIT_DATA,
				"migration '%s' line %d: %s inside a migration; ferry runs "
				"each migration in a transaction of its own: remove it, or "
				"make the file's first line -- ferry:no-transaction "
				"(nothing was changed)",
				m->path, st[i].line, kw);
		}
	}
	free(st);
	return rc;
}

static bool pg_outside_transaction(const struct migration *m)
{
	struct sql_statement *st;
	size_t n = pg_split(m->sql, &st);
	bool yes = false;

	for (size_t i = 0; i < n && !yes; i++)
		yes = pg_needs_autocommit(st[i].start, st[i].len);
	free(st);
	return yes;
}

const struct store_ops postgres_ops = {
	.engine = "postgresql",
	.claims = pg_claims,
	.init = pg_init,
	.exists = pg_exists,
	.open = pg_open,
	.close = pg_close,
	.disconnect = pg_disconnect,
	.dialect = SQL_POSTGRES,
	.sql_exec = pg_sql_exec,
	.sql_query = pg_sql_query,
	.list_tables = pg_list_tables,
	.check = pg_check,
	.apply = pg_apply,
	.apply_all = pg_apply_all,
	.outside_transaction = pg_outside_transaction,
	.verify = pg_verify,
	.check_privileges = pg_check_privileges,
	.privileges = pg_privileges,
	.check_migration = pg_check_migration,
	.snapshot_usable = pg_snapshot_usable,
	.snapshot_version = pg_snapshot_version,
	.snapshot = pg_snapshot,
	.restore = pg_restore,
	.cleanup = pg_cleanup,
	.archive_dump = pg_archive_dump,
	.archive_name = pg_archive_name,
	.archive_load = pg_archive_load,
	.archive_swap = pg_archive_swap,
	.archive_drop = pg_archive_drop,
	.rebuild_build = pg_rebuild_build,
	.rebuild_swap = pg_rebuild_swap,
	.rebuild_discard = pg_rebuild_discard,
	.size = pg_size,
	.location = pg_location,
	.lock = pg_lock,
	.unlock = pg_unlock,
	.journal_load = pg_journal_load,
	.journal_save = pg_journal_save,
	.hold = pg_hold,
	.unhold = pg_unhold,
	.open_read_only = pg_open_read_only,
	.lock_holder = pg_lock_holder,
	.snapshot_open = pg_snapshot_open,
	.snapshot_verify = pg_snapshot_verify,
	.scratch_open = pg_scratch_open,
	.scratch_drop = pg_scratch_drop,
	.describe_schema = pg_describe_schema,
	.run_checks = pg_run_checks,
};
