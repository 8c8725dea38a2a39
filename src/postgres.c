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
#include "exits.h"
#include "journal.h"
#include "log.h"
#include "migrations.h"
#include "store.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zstd.h>

#define LEDGER_DDL                                                          \
	"CREATE TABLE IF NOT EXISTS ferry_migrations ("                     \
	"version bigint PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL, " \
	"applied_at timestamptz NOT NULL DEFAULT now(), "                   \
	"duration_ms bigint NOT NULL DEFAULT 0, "                           \
	"dirty boolean NOT NULL DEFAULT false, "                            \
	"statements_done integer NOT NULL DEFAULT 0)"
#define JOURNAL_TABLE "ferry_journal"

struct pg {
	bool locked;
	long long lock_key;
	char dbname[256];
};

static PGconn *conn(struct store *s)
{
	return s->db;
}

static struct pg *priv(struct store *s)
{
	if (!s->priv)
		s->priv = xcalloc(1, sizeof(struct pg));
	return s->priv;
}

/* ------------------------------------------------------------------ */
/* Splitting scripts into statements (hand-written: libpq has no lexer). */

static bool ident_start(char c)
{
	return isalpha((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

static bool ident_char(char c)
{
	return ident_start(c) || isdigit((unsigned char)c) || c == '$';
}

/* At a '$': the length of a dollar-quote tag ("$$", "$fn$"), or 0. */
static size_t dollar_tag(const char *p)
{
	const char *q = p + 1;

	if (*q == '$')
		return 2;
	if (!ident_start(*q))
		return 0; /* $1 is a parameter */
	while (ident_start(*q) || isdigit((unsigned char)*q))
		q++;
	return *q == '$' ? (size_t)(q + 1 - p) : 0;
}

size_t pg_split(const char *sql, struct sql_statement **out)
{
	const char *p = sql, *content = NULL;
	int line = 1, content_line = 1, atomic = 0, cases = 0;
	char prev[16] = "";
	size_t n = 0, cap = 8;

	*out = xmalloc(cap * sizeof(**out));
#define EMIT(end)                                                              \
	do {                                                                   \
		if (content) {                                                 \
			if (n == cap)                                          \
				*out = xrealloc(*out, (cap *= 2) * sizeof(**out)); \
			(*out)[n].start = content;                             \
			(*out)[n].len = (size_t)((end) - content);             \
			(*out)[n].line = content_line;                         \
			n++;                                                   \
			content = NULL;                                        \
		}                                                              \
	} while (0)
	while (*p) {
		char c = *p;

		if (c == '\n') {
			line++;
			p++;
			continue;
		}
		if (isspace((unsigned char)c)) {
			p++;
			continue;
		}
		if (c == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				p++;
			continue;
		}
		if (c == '/' && p[1] == '*') {
			int depth = 0;

			do {
				if (*p == '/' && p[1] == '*') {
					depth++;
					p += 2;
				} else if (*p == '*' && p[1] == '/') {
					depth--;
					p += 2;
				} else {
					line += *p == '\n';
					p++;
				}
			} while (*p && depth > 0);
			continue;
		}
		if (!content) {
			content = p;
			content_line = line;
		}
		if (c == ';' && !atomic) {
			EMIT(p);
			prev[0] = '\0';
			p++;
			continue;
		}
		if (c == '\'') {
			bool esc = p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
				   (p - 1 == sql || !ident_char(p[-2]));

			for (p++; *p; p++) {
				line += *p == '\n';
				if (esc && *p == '\\' && p[1]) {
					p++;
					line += *p == '\n';
				} else if (*p == '\'') {
					if (p[1] != '\'')
						break;
					p++;
				}
			}
			if (*p)
				p++;
			prev[0] = '\0';
			continue;
		}
		if (c == '"') {
			for (p++; *p; p++) {
				line += *p == '\n';
				if (*p == '"') {
					if (p[1] != '"')
						break;
					p++;
				}
			}
			if (*p)
				p++;
			prev[0] = '\0';
			continue;
		}
		if (c == '$' && (p == sql || !ident_char(p[-1]))) {
			size_t tl = dollar_tag(p);

			if (tl) {
				const char *tag = p;

				for (p += tl; *p && strncmp(p, tag, tl); p++)
					line += *p == '\n';
				if (*p)
					p += tl;
				prev[0] = '\0';
				continue;
			}
		}
		if (ident_start(c)) {
			const char *w = p;
			size_t wl;

			while (ident_char(*p))
				p++;
			wl = (size_t)(p - w);
			/* SQL-standard function bodies hold semicolons */
			if (wl == 6 && !strncasecmp(w, "ATOMIC", 6) && !strcasecmp(prev, "BEGIN"))
				atomic++;
			else if (atomic && wl == 4 && !strncasecmp(w, "CASE", 4))
				cases++;
			else if (atomic && wl == 3 && !strncasecmp(w, "END", 3)) {
				if (cases)
					cases--;
				else
					atomic--;
			}
			snprintf(prev, sizeof(prev), "%.*s", (int)(wl < 15 ? wl : 15), w);
			continue;
		}
		prev[0] = '\0';
		p++;
	}
	EMIT(p);
#undef EMIT
	return n;
}

bool pg_needs_autocommit(const char *stmt, size_t len)
{
	char w[6][16] = { "" };
	const char *p = stmt, *end = stmt + len;
	int n = 0;

	while (p < end && n < 6) {
		if (isspace((unsigned char)*p)) {
			p++;
		} else if (*p == '-' && p + 1 < end && p[1] == '-') {
			while (p < end && *p != '\n')
				p++;
		} else if (*p == '/' && p + 1 < end && p[1] == '*') {
			const char *close = strstr(p + 2, "*/");
			p = close && close < end ? close + 2 : end;
		} else if (*p == '(') { /* REINDEX (VERBOSE) ... */
			while (p < end && *p != ')')
				p++;
			p++;
		} else if (ident_start(*p)) {
			size_t k = 0;

			while (p < end && ident_char(*p)) {
				if (k < sizeof(w[0]) - 1)
					w[n][k++] = (char)toupper((unsigned char)*p);
				p++;
			}
			w[n++][k] = '\0';
		} else {
			break;
		}
	}
#define IS(i, s) (!strcmp(w[i], s))
	if (IS(0, "VACUUM") || (IS(0, "ALTER") && IS(1, "SYSTEM")))
		return true;
	if ((IS(0, "CREATE") || IS(0, "DROP")) &&
	    (IS(1, "DATABASE") || IS(1, "TABLESPACE")))
		return true;
	if (IS(0, "CREATE") && ((IS(1, "INDEX") && IS(2, "CONCURRENTLY")) ||
				(IS(1, "UNIQUE") && IS(2, "INDEX") && IS(3, "CONCURRENTLY"))))
		return true;
	if (IS(0, "DROP") && IS(1, "INDEX") && IS(2, "CONCURRENTLY"))
		return true;
	if (IS(0, "REINDEX"))
		for (int i = 1; i < n; i++)
			if (IS(i, "CONCURRENTLY"))
				return true;
#undef IS
	return false;
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

static void on_notice(void *arg, const char *msg)
{
	char line[512];

	(void)arg;
	log_debug("postgres: %s", one_line(msg, line, sizeof(line)));
}

/* Errors no waiting will cure: wrong password, no such database or role. */
static bool permanent(PGconn *c)
{
	const char *m = PQerrorMessage(c);

	return PQconnectionNeedsPassword(c) || strstr(m, "authentication failed") ||
	       (strstr(m, "database \"") && strstr(m, "does not exist")) ||
	       (strstr(m, "role \"") && strstr(m, "does not exist"));
}

static int pg_connect(struct store *s)
{
	static const char *const keys[] = { "connect_timeout", "dbname",
					     "fallback_application_name", NULL };
	const char *values[] = { "10", s->url, "ferry", NULL };
	double deadline = now_seconds() + (double)s->wait_seconds, next_log = 0;
	double delay = 0.2;
	char msg[1024];

	for (;;) {
		PGconn *c = PQconnectdbParams(keys, values, 1);

		if (!c) {
			s->status = EXIT_OSERR;
			return error("out of memory connecting to the database");
		}
		if (PQstatus(c) == CONNECTION_OK) {
			PQsetNoticeProcessor(c, on_notice, NULL);
			s->db = c;
			if (next_log > 0)
				log_info("database %s is up", s->url_redacted);
			return 0;
		}
		one_line(PQerrorMessage(c), msg, sizeof(msg));
		if (permanent(c)) {
			PQfinish(c);
			s->status = EXIT_CONFIG;
			return error("cannot connect to %s: %s", s->url_redacted, msg);
		}
		PQfinish(c);
		if (now_seconds() + delay > deadline || stop_requested()) {
			s->status = EXIT_UNAVAILABLE;
			return error("database %s unreachable after %lld s ([database] "
				     "wait_seconds): %s", s->url_redacted, s->wait_seconds, msg);
		}
		if (now_seconds() >= next_log) {
			log_info("database %s not reachable yet (%s): waiting up to %lld s",
				 s->url_redacted, msg, s->wait_seconds);
			next_log = now_seconds() + 10;
		}
		usleep((useconds_t)(delay * 1e6));
		delay = delay * 2 > 2 ? 2 : delay * 2;
	}
}

/* Runs a command; on failure fills s->err (and sqlstate) and returns -1. */
static int run(struct store *s, const char *sql, char sqlstate[6])
{
	PGresult *r = PQexec(conn(s), sql);
	ExecStatusType st = PQresultStatus(r);
	char msg[900];

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		PQclear(r);
		return 0;
	}
	snprintf(s->err, sizeof(s->err), "%s",
		 one_line(PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) :
			  PQerrorMessage(conn(s)), msg, sizeof(msg)));
	if (sqlstate) {
		const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		snprintf(sqlstate, 6, "%s", code ? code : "");
	}
	PQclear(r);
	return -1;
}

/* A query with text parameters; the result, or NULL with s->err set. */
static PGresult *query(struct store *s, const char *sql, int n, const char *const *params)
{
	PGresult *r = PQexecParams(conn(s), sql, n, NULL, params, NULL, NULL, 0);
	char msg[900];

	if (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK)
		return r;
	snprintf(s->err, sizeof(s->err), "%s",
		 one_line(PQresultErrorMessage(r), msg, sizeof(msg)));
	PQclear(r);
	return NULL;
}

static void rollback(struct store *s)
{
	if (PQtransactionStatus(conn(s)) != PQTRANS_IDLE) {
		PGresult *r = PQexec(conn(s), "ROLLBACK");
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
	snprintf(priv(s)->dbname, sizeof(priv(s)->dbname), "%s", PQdb(conn(s)));
	priv(s)->lock_key = lock_key(priv(s)->dbname);
	free(s->path);
	s->path = xasprintf("%s/%s", dir, priv(s)->dbname);
	return 1;
}

static int pg_open(struct store *s)
{
	if (s->db)
		return 0;
	if (pg_connect(s) < 0)
		return -1;
	return 0;
}

static void pg_close(struct store *s)
{
	/* the session holds the migrator lock: it ends with the store */
	if (!s->db || (s->priv && priv(s)->locked))
		return;
	PQfinish(conn(s));
	s->db = NULL;
}

/* ------------------------------------------------------------------ */
/* Ledger, lock, journal, privileges */

static int pg_read_ledger(struct store *s, struct ledger *l)
{
	PGresult *r;

	memset(l, 0, sizeof(*l));
	r = query(s, "SELECT c.relname, n.nspname = current_schema() "
		     "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
		     "WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' "
		     "AND n.nspname NOT LIKE 'pg\\_%'", 0, NULL);
	if (!r)
		goto fail;
	for (int i = 0; i < PQntuples(r); i++) {
		const char *name = PQgetvalue(r, i, 0);
		bool here = PQgetvalue(r, i, 1)[0] == 't';

		if (here && !strcmp(name, "ferry_migrations"))
			l->exists = true;
		else if (!(here && !strcmp(name, JOURNAL_TABLE)))
			l->has_user_tables = true;
	}
	PQclear(r);
	if (!l->exists)
		return 0;
	r = query(s, "SELECT version, name, sha256, "
		     "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
		     "duration_ms, dirty FROM ferry_migrations ORDER BY version", 0, NULL);
	if (!r)
		goto fail;
	l->n = (size_t)PQntuples(r);
	l->rows = xcalloc(l->n, sizeof(*l->rows));
	for (size_t i = 0; i < l->n; i++) {
		struct ledger_row *row = &l->rows[i];

		parse_ll(PQgetvalue(r, (int)i, 0), -999999999999999999LL,
			 999999999999999999LL, &row->version);
		row->name = xstrdup(PQgetvalue(r, (int)i, 1));
		snprintf(row->sha256, sizeof(row->sha256), "%s", PQgetvalue(r, (int)i, 2));
		snprintf(row->applied_at, sizeof(row->applied_at), "%s",
			 PQgetvalue(r, (int)i, 3));
		parse_ll(PQgetvalue(r, (int)i, 4), 0, 999999999999999999LL, &row->duration_ms);
		row->dirty = PQgetvalue(r, (int)i, 5)[0] == 't';
	}
	PQclear(r);
	return 0;
fail:
	error("cannot read the ledger of %s: %s", s->url_redacted, s->err);
	ledger_release(l);
	return -1;
}

/* Who holds the lock: "pid 123, application_name 'ferry'" */
static void lock_holder(struct store *s, char *buf, size_t size)
{
	unsigned long long key = (unsigned long long)priv(s)->lock_key;
	char hi[24], lo[24];
	const char *params[] = { hi, lo };
	PGresult *r;

	snprintf(hi, sizeof(hi), "%llu", key >> 32);
	snprintf(lo, sizeof(lo), "%llu", key & 0xffffffffULL);
	snprintf(buf, size, "unknown pid");
	r = query(s, "SELECT l.pid, coalesce(a.application_name, '') FROM pg_locks l "
		     "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
		     "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
		     "AND l.classid = $1::oid AND l.objid = $2::oid "
		     "AND l.database = (SELECT oid FROM pg_database "
		     "WHERE datname = current_database())", 2, params);
	if (r && PQntuples(r) > 0)
		snprintf(buf, size, "pid %s, application_name '%s'", PQgetvalue(r, 0, 0),
			 PQgetvalue(r, 0, 1));
	PQclear(r);
}

static int pg_lock(struct store *s, long long timeout)
{
	double deadline = now_seconds() + (double)timeout, next_log = 0;
	char key[24], holder[256];
	const char *params[] = { key };
	bool waited = false;
	PGresult *r;

	if (pg_open(s) < 0)
		return -1;
	snprintf(key, sizeof(key), "%lld", priv(s)->lock_key);
	for (;;) {
		/* autocommit, one statement: the poll holds no snapshot */
		r = query(s, "SELECT pg_try_advisory_lock($1::bigint)", 1, params);
		if (!r)
			return error("cannot take the migration lock: %s", s->err);
		if (PQgetvalue(r, 0, 0)[0] == 't') {
			PQclear(r);
			break;
		}
		PQclear(r);
		if (now_seconds() >= deadline || stop_requested()) {
			lock_holder(s, holder, sizeof(holder));
			log_error("gave up waiting for the migration lock of database '%s' "
				  "after %lld s ([migrations] lock_timeout_seconds): another "
				  "ferry (%s) is still migrating; try again later",
				  priv(s)->dbname, timeout, holder);
			return 1;
		}
		if (now_seconds() >= next_log) {
			lock_holder(s, holder, sizeof(holder));
			log_info("waiting for another ferry (%s) that holds the migration "
				 "lock of database '%s' (up to %lld s)", holder,
				 priv(s)->dbname, timeout);
			next_log = now_seconds() + 10;
		}
		waited = true;
		usleep(100000);
	}
	priv(s)->locked = true;
	/* A transaction-pooling proxy hands each statement to some server
	 * session: the lock would not be ours for long. */
	r = query(s, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
		     "AND granted AND pid = pg_backend_pid()", 0, NULL);
	if (!r || !strcmp(PQgetvalue(r, 0, 0), "0")) {
		PQclear(r);
		s->status = EXIT_CONFIG;
		return error("the migration lock is not held by this connection's "
			     "session: is %s a transaction-pooling proxy (PgBouncer "
			     "pool_mode=transaction)? Connect ferry to PostgreSQL directly",
			     s->url_redacted);
	}
	PQclear(r);
	if (waited)
		log_info("got the migration lock");
	return 0;
}

static void pg_unlock(struct store *s)
{
	char key[24];
	const char *params[] = { key };
	PGresult *r;

	if (!s->db || !priv(s)->locked)
		return;
	snprintf(key, sizeof(key), "%lld", priv(s)->lock_key);
	rollback(s);
	r = query(s, "SELECT pg_advisory_unlock($1::bigint)", 1, params);
	PQclear(r);
	priv(s)->locked = false;
}

static int pg_journal_load(struct store *s, char *buf, size_t size)
{
	PGresult *r;

	buf[0] = '\0';
	r = query(s, "SELECT to_regclass('" JOURNAL_TABLE "') IS NOT NULL", 0, NULL);
	if (!r)
		return error("cannot read the journal: %s", s->err);
	if (PQgetvalue(r, 0, 0)[0] != 't') {
		PQclear(r);
		return 0;
	}
	PQclear(r);
	r = query(s, "SELECT body FROM " JOURNAL_TABLE " WHERE id = 1", 0, NULL);
	if (!r)
		return error("cannot read the journal: %s", s->err);
	if (PQntuples(r) > 0)
		snprintf(buf, size, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

static int pg_journal_save(struct store *s, const char *text)
{
	const char *params[] = { text };
	PGresult *r;

	if (!text) {
		r = query(s, "DELETE FROM " JOURNAL_TABLE, 0, NULL);
		if (!r && strstr(s->err, "does not exist"))
			return 0;
	} else {
		if (run(s, "CREATE TABLE IF NOT EXISTS " JOURNAL_TABLE " (id integer "
			   "PRIMARY KEY CHECK (id = 1), body text NOT NULL)", NULL) < 0)
			return error("cannot write the journal: %s", s->err);
		r = query(s, "INSERT INTO " JOURNAL_TABLE " (id, body) VALUES (1, $1) "
			     "ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body", 1, params);
	}
	if (!r)
		return error("cannot write the journal: %s", s->err);
	PQclear(r);
	return 0;
}

static int pg_check_privileges(struct store *s)
{
	PGresult *r = query(s, "SELECT current_schema(), current_user, "
			       "coalesce(has_schema_privilege(current_schema(), 'CREATE'), false), "
			       "to_regclass('ferry_migrations') IS NULL OR "
			       "has_table_privilege('ferry_migrations', 'INSERT, UPDATE, DELETE')",
			       0, NULL);
	int rc = 0;

	if (!r) {
		s->status = EXIT_NOPERM;
		return error("cannot check the role's privileges: %s", s->err);
	}
	if (PQgetisnull(r, 0, 0)) {
		s->status = EXIT_CONFIG;
		rc = error("no schema to migrate: the search_path of role '%s' names no "
			   "existing schema", PQgetvalue(r, 0, 1));
	} else if (PQgetvalue(r, 0, 2)[0] != 't') {
		s->status = EXIT_NOPERM;
		rc = error("role '%s' lacks CREATE on schema '%s', which migrations need: "
			   "GRANT CREATE ON SCHEMA %s TO %s (nothing was changed)",
			   PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 0),
			   PQgetvalue(r, 0, 1));
	} else if (PQgetvalue(r, 0, 3)[0] != 't') {
		s->status = EXIT_NOPERM;
		rc = error("role '%s' cannot write the ledger: GRANT INSERT, UPDATE, "
			   "DELETE ON ferry_migrations TO %s (nothing was changed)",
			   PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	return rc;
}

static int pg_check(struct store *s)
{
	(void)s;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Migrations */

/* "near line N: message" for a statement of a script that failed */
static void statement_error(struct store *s, const struct sql_statement *st,
			    PGresult *r)
{
	const char *pos = r ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;
	const char *prim = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	int line = st->line;
	char msg[700];
	long long chars;

	if (pos && parse_ll(pos, 1, 1 << 30, &chars)) {
		/* the position counts characters, not bytes */
		for (const char *p = st->start; p < st->start + st->len && chars > 1; p++) {
			if (((unsigned char)*p & 0xC0) != 0x80)
				chars--;
			line += *p == '\n';
		}
	}
	snprintf(s->err, sizeof(s->err), "near line %d: %s", line,
		 prim ? prim : one_line(PQerrorMessage(conn(s)), msg, sizeof(msg)));
}

/* Runs one statement; 0, or -1 with s->err and sqlstate set. */
static int run_statement(struct store *s, const struct sql_statement *st, char sqlstate[6])
{
	char *sql = xasprintf("%.*s", (int)st->len, st->start);
	PGresult *r = PQexec(conn(s), sql);
	ExecStatusType status = PQresultStatus(r);
	int rc = 0;

	free(sql);
	sqlstate[0] = '\0';
	if (status == PGRES_COPY_IN) { /* COPY FROM STDIN has no data here */
		PQputCopyEnd(conn(s), "ferry runs no COPY FROM STDIN");
		PQclear(r);
		r = PQgetResult(conn(s));
		status = PQresultStatus(r);
	}
	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK &&
	    status != PGRES_EMPTY_QUERY) {
		const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		snprintf(sqlstate, 6, "%s", code ? code : "");
		statement_error(s, st, r);
		rc = -1;
	}
	PQclear(r);
	while ((r = PQgetResult(conn(s))))
		PQclear(r);
	return rc;
}

static int run_script(struct store *s, const struct migration *m, char sqlstate[6])
{
	struct sql_statement *st;
	size_t n = pg_split(m->sql, &st);
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++)
		rc = run_statement(s, &st[i], sqlstate);
	free(st);
	return rc;
}

static int ledger_insert(struct store *s, const struct migration *m, long long ms,
			 bool dirty)
{
	char version[24], dur[24];
	const char *params[] = { version, m->name, m->sha256, dur, dirty ? "t" : "f" };
	PGresult *r;

	snprintf(version, sizeof(version), "%lld", m->version);
	snprintf(dur, sizeof(dur), "%lld", ms);
	r = query(s, "INSERT INTO ferry_migrations (version, name, sha256, duration_ms, "
		     "dirty) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (version) DO UPDATE "
		     "SET name = EXCLUDED.name, sha256 = EXCLUDED.sha256, "
		     "duration_ms = EXCLUDED.duration_ms, dirty = EXCLUDED.dirty, "
		     "applied_at = now()", 5, params);
	if (!r)
		return -1;
	PQclear(r);
	return 0;
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
	char sqlstate[6] = "", set[64], point[64];

	for (int attempt = 1;; attempt++) {
		double t0 = now_seconds();
		size_t i = 0;

		snprintf(set, sizeof(set), "SET LOCAL lock_timeout = '%llds'",
			 s->statement_lock_timeout);
		if (run(s, "BEGIN", sqlstate) < 0 || run(s, set, sqlstate) < 0 ||
		    run(s, LEDGER_DDL, sqlstate) < 0)
			goto fail;
		for (; i < n; i++) {
			double t1 = now_seconds();

			if (run_script(s, m[i], sqlstate) < 0 ||
			    ledger_insert(s, m[i], (long long)((now_seconds() - t1) * 1000),
					  false) < 0)
				goto fail;
			snprintf(point, sizeof(point), "migration:%lld:before-commit",
				 m[i]->version);
			crash_point(point);
		}
		if (run(s, "COMMIT", sqlstate) < 0)
			goto fail;
		if (ms)
			*ms = (long long)((now_seconds() - t0) * 1000);
		return 0;
fail:
		rollback(s);
		*failed = i < n ? m[i] : m[n - 1];
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
	char point[64];

	if (apply_in_transaction(s, m, n, failed, NULL) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		log_info("applied %s", m[i]->name);
		snprintf(point, sizeof(point), "migration:%lld:after-commit", m[i]->version);
		crash_point(point);
	}
	return 0;
}

/* Names of the invalid indexes of the schema, one per line. */
static char *invalid_indexes(struct store *s)
{
	PGresult *r = query(s, "SELECT string_agg(format('%I.%I', n.nspname, c.relname), "
			       "E'\\n') FROM pg_index i JOIN pg_class c ON c.oid = "
			       "i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
			       "WHERE NOT i.indisvalid", 0, NULL);
	char *list = xstrdup(r && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "");

	PQclear(r);
	return list;
}

/* Drops indexes a failed concurrent build left INVALID (not older ones). */
static void drop_new_invalid(struct store *s, const char *before)
{
	char *now = invalid_indexes(s), *line, *save = NULL, saved_err[sizeof(s->err)];

	memcpy(saved_err, s->err, sizeof(saved_err));
	for (line = strtok_r(now, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *sql;

		if (strstr(before, line))
			continue;
		sql = xasprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", line);
		if (run(s, sql, NULL) == 0)
			log_info("dropped index %s, left INVALID by the failed build", line);
		else
			log_warn("index %s is INVALID after the failed build and could not "
				 "be dropped: %s", line, s->err);
		free(sql);
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
	struct sql_statement *st;
	size_t n = pg_split(m->sql, &st);
	double t0 = now_seconds();
	char sqlstate[6], version[24], done[24], point[80];
	const char *params[] = { done, version };
	int rc = -1;

	snprintf(version, sizeof(version), "%lld", m->version);
	if (run(s, LEDGER_DDL, sqlstate) < 0 || ledger_insert(s, m, 0, true) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char *before = invalid_indexes(s);
		PGresult *r;

		if (run_statement(s, &st[i], sqlstate) < 0) {
			drop_new_invalid(s, before);
			free(before);
			goto out;
		}
		free(before);
		snprintf(done, sizeof(done), "%zu", i + 1);
		r = query(s, "UPDATE ferry_migrations SET statements_done = $1 "
			     "WHERE version = $2", 2, params);
		if (!r)
			goto out;
		PQclear(r);
		snprintf(point, sizeof(point), "pg:statement:%lld:%zu", m->version, i + 1);
		crash_point(point);
	}
	*ms = (long long)((now_seconds() - t0) * 1000);
	snprintf(done, sizeof(done), "%lld", *ms);
	{
		PGresult *r = query(s, "UPDATE ferry_migrations SET dirty = false, "
				       "duration_ms = $1 WHERE version = $2", 2, params);
		if (!r)
			goto out;
		PQclear(r);
	}
	rc = 0;
out:
	free(st);
	return rc;
}

static int pg_apply(struct store *s, const struct migration *m, long long *ms)
{
	const struct migration *failed = NULL;

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
	PGresult *r = query(s, "SELECT coalesce(sum(pg_table_size(c.oid)), 0) FROM pg_class c "
			       "WHERE c.relnamespace = current_schema()::regnamespace "
			       "AND c.relkind = 'r'", 0, NULL);
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

/* ------------------------------------------------------------------ */
/*
 * The logical snapshot: the schema ferry migrates (current_schema()) as
 * DDL made by the server's own pg_get_*def functions, and its data as
 * COPY text, in one zstd stream. Restoring drops the schema's objects and
 * replays the file in ONE transaction, so a crash midway changes nothing.
 * Object kinds it cannot rebuild are refused up front, before any write.
 *
 * File: "FERRY-PG-SNAPSHOT 1\n", records "S <len>\n<sql>\n" and
 * "C <len>\n<copy statement>\n<rows>\\.\n", then "E\n".
 */

#define IN_SCHEMA(ns) ns " = current_schema()"
#define NOT_EXT(oid)                                                        \
	"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.objid = " oid            \
	" AND e.deptype = 'e')"

static const char unsupported_sql[] =
	"SELECT kind || ' ' || name FROM ("
	" SELECT CASE c.relkind WHEN 'm' THEN 'materialized view' WHEN 'p' THEN "
	"  'partitioned table' WHEN 'f' THEN 'foreign table' ELSE 'composite type' END "
	"  AS kind, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = "
	"  c.relnamespace WHERE " IN_SCHEMA("n.nspname") " AND c.relkind IN "
	"  ('m', 'p', 'f', 'c') AND " NOT_EXT("c.oid")
	" UNION ALL SELECT 'domain or range type', t.typname FROM pg_type t JOIN "
	"  pg_namespace n ON n.oid = t.typnamespace WHERE " IN_SCHEMA("n.nspname")
	"  " "AND t.typtype IN ('d', 'r', 'm') AND " NOT_EXT("t.oid")
	" UNION ALL SELECT 'aggregate', p.proname FROM pg_proc p JOIN pg_namespace n "
	"  ON n.oid = p.pronamespace WHERE " IN_SCHEMA("n.nspname") " AND p.prokind IN "
	"  ('a', 'w') AND " NOT_EXT("p.oid")
	" UNION ALL SELECT 'inherited table', c.relname FROM pg_inherits i JOIN pg_class "
	"  c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	IN_SCHEMA("n.nspname")
	" UNION ALL SELECT 'row security policy', p.polname FROM pg_policy p JOIN "
	"  pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = "
	"  c.relnamespace WHERE " IN_SCHEMA("n.nspname")
	" UNION ALL SELECT 'rule', r.rulename FROM pg_rewrite r JOIN pg_class c ON "
	"  c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	IN_SCHEMA("n.nspname") " AND r.rulename <> '_RETURN'"
	") x";

#define TABLES_WHERE                                                        \
	IN_SCHEMA("n.nspname") " AND c.relkind = 'r' AND c.relname <> '"        \
	JOURNAL_TABLE "' AND " NOT_EXT("c.oid")

/* Queries whose rows are the statements that rebuild the schema, in order.
 * A NULL marks where the data goes. */
static const char *const ddl_before[] = {
	/* enum types */
	"SELECT format('CREATE TYPE %I.%I AS ENUM (%s)', n.nspname, t.typname, "
	"(SELECT coalesce(string_agg(quote_literal(e.enumlabel), ', ' ORDER BY "
	"e.enumsortorder), '') FROM pg_enum e WHERE e.enumtypid = t.oid)) FROM pg_type t "
	"JOIN pg_namespace n ON n.oid = t.typnamespace WHERE " IN_SCHEMA("n.nspname")
	" AND t.typtype = 'e' AND " NOT_EXT("t.oid") " ORDER BY t.oid",
	/* free-standing and serial sequences (identity ones come with tables) */
	"SELECT format('CREATE SEQUENCE %I.%I AS %s INCREMENT BY %s MINVALUE %s "
	"MAXVALUE %s START WITH %s CACHE %s%s', s.schemaname, s.sequencename, "
	"s.data_type, s.increment_by, s.min_value, s.max_value, s.start_value, "
	"s.cache_size, CASE WHEN s.cycle THEN ' CYCLE' ELSE '' END) FROM pg_sequences s "
	"JOIN pg_class c ON c.relname = s.sequencename AND c.relnamespace = "
	"current_schema()::regnamespace WHERE s.schemaname = current_schema() AND NOT "
	"EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND "
	"d.objid = c.oid AND d.deptype IN ('i', 'e')) ORDER BY c.oid",
	/* tables: columns, identity, generated columns, NOT NULL; no defaults
	 * yet, they may call functions created below */
	"SELECT format('CREATE %sTABLE %I.%I (%s)', CASE c.relpersistence WHEN 'u' "
	"THEN 'UNLOGGED ' ELSE '' END, n.nspname, c.relname, coalesce((SELECT "
	"string_agg(format('%I %s%s%s%s', a.attname, format_type(a.atttypid, "
	"a.atttypmod), CASE WHEN a.attcollation <> 0 AND a.attcollation <> "
	"ty.typcollation THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE "
	"'' END, CASE WHEN a.attidentity = 'a' THEN ' GENERATED ALWAYS AS IDENTITY' "
	"WHEN a.attidentity = 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' WHEN "
	"a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(ad.adbin, "
	"ad.adrelid) || ') STORED' ELSE '' END, CASE WHEN a.attnotnull THEN ' NOT "
	"NULL' ELSE '' END), ', ' ORDER BY a.attnum) FROM pg_attribute a JOIN pg_type "
	"ty ON ty.oid = a.atttypid LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid "
	"AND ad.adnum = a.attnum WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT "
	"a.attisdropped), '')) FROM pg_class c JOIN pg_namespace n ON n.oid = "
	"c.relnamespace WHERE " TABLES_WHERE " ORDER BY c.oid",
	/* functions and procedures */
	"SELECT pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid "
	"= p.pronamespace WHERE " IN_SCHEMA("n.nspname") " AND p.prokind IN ('f', "
	"'p') AND " NOT_EXT("p.oid") " ORDER BY p.oid",
	/* column defaults */
	"SELECT format('ALTER TABLE %I.%I ALTER COLUMN %I SET DEFAULT %s', n.nspname, "
	"c.relname, a.attname, pg_get_expr(ad.adbin, ad.adrelid)) FROM pg_attrdef ad "
	"JOIN pg_class c ON c.oid = ad.adrelid JOIN pg_namespace n ON n.oid = "
	"c.relnamespace JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = "
	"ad.adnum WHERE " TABLES_WHERE " AND a.attgenerated = '' ORDER BY c.oid, "
	"a.attnum",
	/* views, in creation order */
	"SELECT format('CREATE VIEW %I.%I AS %s', n.nspname, c.relname, "
	"pg_get_viewdef(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = "
	"c.relnamespace WHERE " IN_SCHEMA("n.nspname") " AND c.relkind = 'v' AND "
	NOT_EXT("c.oid") " ORDER BY c.oid",
	NULL,
};

static const char *const ddl_after[] = {
	/* constraints after the data; foreign keys last */
	"SELECT format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', n.nspname, c.relname, "
	"k.conname, pg_get_constraintdef(k.oid)) FROM pg_constraint k JOIN pg_class c "
	"ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	TABLES_WHERE " AND k.contype IN ('p', 'u', 'x', 'c', 'f') AND k.conislocal "
	"ORDER BY k.contype = 'f', k.oid",
	/* indexes that no constraint made; an INVALID one is not rebuilt */
	"SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid "
	"= i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	TABLES_WHERE " AND i.indisvalid AND NOT EXISTS (SELECT 1 FROM pg_constraint k "
	"WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x')) ORDER BY "
	"i.indexrelid",
	/* triggers, once the data is in */
	"SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = "
	"t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	IN_SCHEMA("n.nspname") " AND NOT t.tgisinternal AND " NOT_EXT("c.oid")
	" ORDER BY t.oid",
	/* serial sequences belong to their column again */
	"SELECT format('ALTER SEQUENCE %I.%I OWNED BY %I.%I.%I', sn.nspname, s.relname, "
	"tn.nspname, t.relname, a.attname) FROM pg_depend d JOIN pg_class s ON s.oid = "
	"d.objid AND s.relkind = 'S' JOIN pg_namespace sn ON sn.oid = s.relnamespace "
	"JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = "
	"t.relnamespace JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = "
	"d.refobjsubid WHERE d.classid = 'pg_class'::regclass AND d.refclassid = "
	"'pg_class'::regclass AND d.deptype = 'a' AND sn.nspname = current_schema()",
	/* every sequence where it was */
	"SELECT CASE WHEN t.relname IS NULL OR d.deptype = 'a' THEN "
	"format('SELECT setval(%L, %s, %s)', format('%I.%I', s.schemaname, "
	"s.sequencename), coalesce(s.last_value, s.start_value), (s.last_value IS NOT "
	"NULL)::text) ELSE format('SELECT setval(pg_get_serial_sequence(%L, %L), %s, %s)', "
	"format('%I.%I', tn.nspname, t.relname), a.attname, coalesce(s.last_value, "
	"s.start_value), (s.last_value IS NOT NULL)::text) END FROM pg_sequences s JOIN "
	"pg_class sc ON sc.relname = s.sequencename AND sc.relnamespace = "
	"current_schema()::regnamespace LEFT JOIN pg_depend d ON d.classid = "
	"'pg_class'::regclass AND d.objid = sc.oid AND d.refclassid = "
	"'pg_class'::regclass AND d.deptype IN ('a', 'i') LEFT JOIN pg_class t ON t.oid "
	"= d.refobjid LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace LEFT JOIN "
	"pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid WHERE "
	"s.schemaname = current_schema() AND " NOT_EXT("sc.oid"),
	NULL,
};

static const char copy_sql[] =
	"SELECT format('COPY %I.%I (%s) FROM STDIN', n.nspname, c.relname, "
	"string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)), format('COPY "
	"%I.%I (%s) TO STDOUT', n.nspname, c.relname, string_agg(quote_ident(a.attname), "
	"', ' ORDER BY a.attnum)) FROM pg_class c JOIN pg_namespace n ON n.oid = "
	"c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND "
	"NOT a.attisdropped AND a.attgenerated = '' WHERE " TABLES_WHERE
	" GROUP BY n.nspname, c.relname, c.oid ORDER BY c.oid";

/* What a restore removes first: everything the snapshot may rebuild. */
static const char drop_sql[] =
	"SELECT stmt FROM ("
	" SELECT 1 AS o, c.oid, format('DROP %s IF EXISTS %I.%I CASCADE', CASE "
	"  c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' "
	"  THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, n.nspname, "
	"  c.relname) AS stmt FROM pg_class c JOIN pg_namespace n ON n.oid = "
	"  c.relnamespace WHERE " IN_SCHEMA("n.nspname") " AND c.relkind IN ('v', 'm', "
	"  'r', 'p', 'f', 'S') AND c.relname <> '" JOURNAL_TABLE "' AND "
	NOT_EXT("c.oid")
	" UNION ALL SELECT 2, p.oid, format('DROP ROUTINE IF EXISTS %s CASCADE', "
	"  p.oid::regprocedure) FROM pg_proc p JOIN pg_namespace n ON n.oid = "
	"  p.pronamespace WHERE " IN_SCHEMA("n.nspname") " AND p.prokind IN ('f', 'p') "
	"  AND " NOT_EXT("p.oid")
	" UNION ALL SELECT 3, t.oid, format('DROP TYPE IF EXISTS %I.%I CASCADE', "
	"  n.nspname, t.typname) FROM pg_type t JOIN pg_namespace n ON n.oid = "
	"  t.typnamespace LEFT JOIN pg_class c ON c.oid = t.typrelid WHERE "
	IN_SCHEMA("n.nspname") " AND (t.typtype IN ('e', 'd', 'r') OR c.relkind = "
	"  'c') AND " NOT_EXT("t.oid")
	") x ORDER BY o, oid";

struct zout {
	int fd;
	ZSTD_CCtx *cctx;
	char *buf;
	size_t cap;
};

static int zout_write(struct zout *z, const void *data, size_t len, ZSTD_EndDirective end)
{
	ZSTD_inBuffer in = { data, len, 0 };
	size_t left;

	do {
		ZSTD_outBuffer out = { z->buf, z->cap, 0 };

		left = ZSTD_compressStream2(z->cctx, &out, &in, end);
		if (ZSTD_isError(left)) {
			errno = EIO;
			return -1;
		}
		if (write_all(z->fd, z->buf, out.pos) < 0)
			return -1;
	} while (end == ZSTD_e_end ? left != 0 : in.pos < in.size);
	return 0;
}

static int zout_record(struct zout *z, char kind, const char *text)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "%c %zu\n", kind, strlen(text));

	if (zout_write(z, head, (size_t)n, ZSTD_e_continue) < 0 ||
	    zout_write(z, text, strlen(text), ZSTD_e_continue) < 0 ||
	    zout_write(z, "\n", 1, ZSTD_e_continue) < 0)
		return -1;
	return 0;
}

/* Writes one record per row of each query. */
static int dump_ddl(struct store *s, struct zout *z, const char *const *queries)
{
	for (; *queries; queries++) {
		PGresult *r = query(s, *queries, 0, NULL);

		if (!r)
			return error("snapshot: reading the schema failed: %s", s->err);
		for (int i = 0; i < PQntuples(r); i++)
			if (zout_record(z, 'S', PQgetvalue(r, i, 0)) < 0) {
				PQclear(r);
				return error("snapshot: %s", strerror(errno));
			}
		PQclear(r);
	}
	return 0;
}

static int dump_data(struct store *s, struct zout *z, unsigned long long *rows)
{
	PGresult *tables = query(s, copy_sql, 0, NULL);
	int rc = 0;

	if (!tables)
		return error("snapshot: listing tables failed: %s", s->err);
	for (int i = 0; i < PQntuples(tables) && rc == 0; i++) {
		PGresult *r;
		char *line;
		int len;

		if (zout_record(z, 'C', PQgetvalue(tables, i, 0)) < 0) {
			rc = error("snapshot: %s", strerror(errno));
			break;
		}
		r = PQexec(conn(s), PQgetvalue(tables, i, 1));
		if (PQresultStatus(r) != PGRES_COPY_OUT) {
			rc = error("snapshot: %s: %s", PQgetvalue(tables, i, 1),
				   PQresultErrorMessage(r));
			PQclear(r);
			break;
		}
		PQclear(r);
		while ((len = PQgetCopyData(conn(s), &line, 0)) > 0) {
			if (rc == 0 && zout_write(z, line, (size_t)len, ZSTD_e_continue) < 0)
				rc = error("snapshot: %s", strerror(errno));
			(*rows)++;
			PQfreemem(line);
		}
		while ((r = PQgetResult(conn(s)))) {
			if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0)
				rc = error("snapshot: %s", PQresultErrorMessage(r));
			PQclear(r);
		}
		if (rc == 0 && zout_write(z, "\\.\n", 3, ZSTD_e_continue) < 0)
			rc = error("snapshot: %s", strerror(errno));
		crash_point("snapshot:mid");
	}
	PQclear(tables);
	return rc;
}

static int pg_snapshot(struct store *s, const char *path, const char **how)
{
	static const char header[] = "FERRY-PG-SNAPSHOT 1\n";
	char *tmp = xasprintf("%s.tmp", path), ignored[6];
	struct zout z = { .fd = -1 };
	unsigned long long rows = 0;
	PGresult *r;
	int rc = -1;

	*how = "logical: DDL + COPY, zstd";
	r = query(s, unsupported_sql, 0, NULL);
	if (!r || PQntuples(r) > 0) {
		if (r)
			error("the logical snapshot cannot rebuild %s (and %d more "
			      "object%s): no snapshot, no upgrade", PQgetvalue(r, 0, 0),
			      PQntuples(r) - 1, PQntuples(r) == 2 ? "" : "s");
		else
			error("snapshot: %s", s->err);
		PQclear(r);
		goto out;
	}
	PQclear(r);
	unlink(tmp);
	z.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (z.fd < 0) {
		error("cannot write snapshot '%s': %s", tmp, strerror(errno));
		goto out;
	}
	z.cctx = ZSTD_createCCtx();
	z.cap = ZSTD_CStreamOutSize();
	z.buf = xmalloc(z.cap);
	ZSTD_CCtx_setParameter(z.cctx, ZSTD_c_compressionLevel, 3);
	/* one consistent view; ACCESS SHARE keeps DDL out while we read */
	if (run(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", ignored) < 0) {
		error("snapshot: %s", s->err);
		goto out_unlink;
	}
	r = query(s, "SELECT format('LOCK TABLE %s IN ACCESS SHARE MODE', "
		     "string_agg(format('%I.%I', n.nspname, c.relname), ', ')) FROM "
		     "pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
		     TABLES_WHERE " HAVING count(*) > 0", 0, NULL);
	if (!r || (PQntuples(r) > 0 && run(s, PQgetvalue(r, 0, 0), ignored) < 0)) {
		error("snapshot: %s", s->err);
		PQclear(r);
		goto out_txn;
	}
	PQclear(r);
	if (zout_write(&z, header, sizeof(header) - 1, ZSTD_e_continue) < 0 ||
	    dump_ddl(s, &z, ddl_before) < 0 || dump_data(s, &z, &rows) < 0 ||
	    dump_ddl(s, &z, ddl_after) < 0)
		goto out_txn;
	if (zout_write(&z, "E\n", 2, ZSTD_e_end) < 0 || fsync(z.fd) < 0) {
		error("cannot write snapshot '%s': %s", tmp, strerror(errno));
		goto out_txn;
	}
	rc = 0;
out_txn:
	rollback(s);
out_unlink:
	if (z.fd >= 0 && close(z.fd) < 0 && rc == 0)
		rc = error("cannot write snapshot '%s': %s", tmp, strerror(errno));
	z.fd = -1;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = error("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
	if (rc == 0)
		rc = fsync_dir_of(path);
	if (rc < 0)
		unlink(tmp);
	else
		log_debug("snapshot: %llu rows", rows);
out:
	if (z.fd >= 0)
		close(z.fd);
	ZSTD_freeCCtx(z.cctx);
	free(z.buf);
	free(tmp);
	return rc;
}

struct zin {
	int fd;
	ZSTD_DCtx *dctx;
	char *ibuf;
	size_t icap;
	ZSTD_inBuffer in;
	char *obuf;
	size_t ocap, opos, olen;
};

/* Refills the decompressed buffer; 0 at the end of the file, -1 error. */
static int zin_fill(struct zin *z)
{
	for (;;) {
		ZSTD_outBuffer out = { z->obuf, z->ocap, 0 };
		size_t rc;

		if (z->in.pos == z->in.size) {
			ssize_t n = read(z->fd, z->ibuf, z->icap);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -1;
			if (n == 0)
				return 0;
			z->in.src = z->ibuf;
			z->in.size = (size_t)n;
			z->in.pos = 0;
		}
		rc = ZSTD_decompressStream(z->dctx, &out, &z->in);
		if (ZSTD_isError(rc)) {
			errno = EILSEQ;
			return -1;
		}
		if (out.pos > 0) {
			z->opos = 0;
			z->olen = out.pos;
			return 1;
		}
	}
}

/* Reads up to and including '\n' into *line; its length, 0 at the end. */
static ssize_t zin_line(struct zin *z, char **line, size_t *cap)
{
	size_t n = 0;

	for (;;) {
		char *nl;
		size_t take;

		if (z->opos == z->olen) {
			int f = zin_fill(z);

			if (f < 0)
				return -1;
			if (f == 0)
				break;
		}
		nl = memchr(z->obuf + z->opos, '\n', z->olen - z->opos);
		take = nl ? (size_t)(nl - (z->obuf + z->opos)) + 1 : z->olen - z->opos;
		if (n + take + 1 > *cap) {
			*cap = (n + take + 1) * 2;
			*line = xrealloc(*line, *cap);
		}
		memcpy(*line + n, z->obuf + z->opos, take);
		n += take;
		z->opos += take;
		if (nl)
			break;
	}
	if (*line)
		(*line)[n] = '\0';
	return (ssize_t)n;
}

/* Reads exactly len bytes and the newline after them into a new string. */
static char *zin_text(struct zin *z, size_t len)
{
	char *text = xmalloc(len + 2);
	size_t n = 0;

	while (n < len + 1) {
		size_t take;

		if (z->opos == z->olen && zin_fill(z) <= 0) {
			free(text);
			return NULL;
		}
		take = z->olen - z->opos < len + 1 - n ? z->olen - z->opos : len + 1 - n;
		memcpy(text + n, z->obuf + z->opos, take);
		n += take;
		z->opos += take;
	}
	text[len] = '\0';
	return text;
}

static int exec_sql(struct store *s, const char *sql)
{
	char ignored[6];

	if (run(s, sql, ignored) < 0)
		return error("restore: %s: %.200s", s->err, sql);
	return 0;
}

static int restore_copy(struct store *s, struct zin *z, const char *stmt,
			char **line, size_t *cap)
{
	PGresult *r = PQexec(conn(s), stmt);
	ssize_t n;
	int rc = 0;

	if (PQresultStatus(r) != PGRES_COPY_IN) {
		error("restore: %s: %s", stmt, PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	PQclear(r);
	while ((n = zin_line(z, line, cap)) > 0) {
		if (!strcmp(*line, "\\.\n"))
			break;
		if (PQputCopyData(conn(s), *line, (int)n) != 1) {
			rc = error("restore: %s", PQerrorMessage(conn(s)));
			break;
		}
	}
	if (n <= 0 && rc == 0)
		rc = error("restore: the snapshot ends in the middle of its data");
	PQputCopyEnd(conn(s), rc ? "ferry: bad snapshot" : NULL);
	while ((r = PQgetResult(conn(s)))) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0)
			rc = error("restore: %s: %s", stmt, PQresultErrorMessage(r));
		PQclear(r);
	}
	return rc;
}

static int replay(struct store *s, struct zin *z)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = -1;

	n = zin_line(z, &line, &cap);
	if (n <= 0 || strcmp(line, "FERRY-PG-SNAPSHOT 1\n")) {
		error("restore: not a ferry PostgreSQL snapshot");
		goto out;
	}
	while ((n = zin_line(z, &line, &cap)) > 0) {
		long long len;
		char *text;

		if (!strcmp(line, "E\n")) {
			rc = 0;
			break;
		}
		line[strcspn(line, "\n")] = '\0';
		if ((line[0] != 'S' && line[0] != 'C') || line[1] != ' ' ||
		    !parse_ll(line + 2, 0, 1 << 30, &len) || !(text = zin_text(z, (size_t)len))) {
			error("restore: the snapshot is damaged");
			goto out;
		}
		if (line[0] == 'S' ? exec_sql(s, text) < 0 :
				     restore_copy(s, z, text, &line, &cap) < 0) {
			free(text);
			goto out;
		}
		free(text);
	}
	if (rc < 0)
		error("restore: the snapshot is incomplete (no end record)");
out:
	free(line);
	return rc;
}

static int pg_restore(struct store *s, const char *path)
{
	struct zin z = { .fd = -1 };
	PGresult *drops = NULL;
	int rc = -1;

	if (pg_open(s) < 0)
		return -1;
	z.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (z.fd < 0)
		return error("cannot read snapshot '%s': %s", path, strerror(errno));
	z.dctx = ZSTD_createDCtx();
	z.icap = ZSTD_DStreamInSize();
	z.ibuf = xmalloc(z.icap);
	z.ocap = ZSTD_DStreamOutSize();
	z.obuf = xmalloc(z.ocap);
	/* one transaction: a crash or an error in here changes nothing */
	if (exec_sql(s, "BEGIN") < 0 || exec_sql(s, "SET LOCAL check_function_bodies = off") < 0)
		goto out;
	drops = query(s, drop_sql, 0, NULL);
	if (!drops) {
		error("restore: %s", s->err);
		goto out;
	}
	for (int i = 0; i < PQntuples(drops); i++)
		if (exec_sql(s, PQgetvalue(drops, i, 0)) < 0)
			goto out;
	crash_point("restore:mid");
	if (replay(s, &z) < 0)
		goto out;
	crash_point("restore:before-rename");
	if (exec_sql(s, "COMMIT") < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		rollback(s);
	PQclear(drops);
	close(z.fd);
	ZSTD_freeDCtx(z.dctx);
	free(z.ibuf);
	free(z.obuf);
	return rc;
}

const struct store_ops postgres_ops = {
	.engine = "postgresql",
	.exists = pg_exists,
	.open = pg_open,
	.close = pg_close,
	.read_ledger = pg_read_ledger,
	.check = pg_check,
	.apply = pg_apply,
	.apply_all = pg_apply_all,
	.outside_transaction = pg_outside_transaction,
	.verify = pg_verify,
	.check_privileges = pg_check_privileges,
	.snapshot = pg_snapshot,
	.restore = pg_restore,
	.size = pg_size,
	.location = pg_location,
	.lock = pg_lock,
	.unlock = pg_unlock,
	.journal_load = pg_journal_load,
	.journal_save = pg_journal_save,
};
