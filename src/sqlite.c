/*
 * sqlite: the SQLite backend: the connection, the upgrade's hold, the
 * ledger, migrations and the ops table (snapshots, restores and new
 * databases are in sqsnapshot.c). An upgrade holds one BEGIN IMMEDIATE write
 * transaction from its snapshot to the end of its verification (hold and
 * release), so no other process commits in between: each migration runs
 * with its ledger row in a savepoint of it, with foreign keys off (so a
 * table rebuild cannot cascade-delete) and a foreign_key_check; a failure
 * rolls the whole upgrade back. A migration that must run outside a
 * transaction commits what came before and needs locking_mode EXCLUSIVE,
 * which keeps the lock across commits.
 */
#include "exits.h"
#include "migrations.h"
#include "log.h"
#include "sqlite.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct sq *sq_priv(struct store *s)
{
	if (!s->priv) {
		struct sq *p = xcalloc(1, sizeof(*p));

		p->live_fd = -1;
		p->shm_fd = -1;
		s->priv = p;
	}
	return s->priv;
}

/* Runs SQL without result rows; fills msg with the error. */
int sq_exec(struct store *s, const char *sql, char *msg, size_t size)
{
	char *err = NULL;

	if (sqlite3_exec(handle(s), sql, NULL, NULL, &err) != SQLITE_OK) {
		snprintf(msg, size, "%s", err ? err : sqlite3_errmsg(handle(s)));
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

/*
 * The database's real path, symbolic links resolved: with /app/data/app.db
 * -> /data/app.db the snapshot, the state dir, the sidecars and a restore
 * must all be beside the volume's file, and no rename may ever replace
 * the link. A link to nothing is refused: what it should create is a
 * guess. -1 logged (status 78).
 */
static int resolve_path(struct store *s)
{
	char *real = realpath(s->path, NULL), *dir, *rdir;
	struct stat lst;

	if (real) {
		if (strcmp(real, s->path))
			log_debug("database '%s' is '%s'", s->path, real);
		free(s->path);
		s->path = real;
		return 0;
	}
	if (errno != ENOENT)
		return error_errno("database '%s'", s->path);
	if (lstat(s->path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
		return store_fail(
			s, EXIT_CONFIG,
			"database '%s' is a symbolic link to a file that does not "
			"exist: point it at the database on the volume, or name the "
			"real path in DATABASE_URL",
			s->path);
	}
	dir = dir_of(s->path);
	rdir = realpath(dir, NULL);
	if (!rdir) {
		store_fail(s, EXIT_CONFIG, "database '%s': directory '%s' does not exist",
			   s->path, dir);
		free(dir);
		return -1;
	}
	real = xasprintf("%s/%s", rdir, base_of(s->path));
	free(s->path);
	s->path = real;
	free(rdir);
	free(dir);
	return 0;
}

static int sq_exists(struct store *s)
{
	struct stat st;

	if (resolve_path(s) < 0)
		return -1;
	/* an empty file (touch app.db) is an empty database to SQLite: none
	 * yet, created as a new one is (built aside, renamed over it) */
	if (stat(s->path, &st) == 0)
		return !S_ISREG(st.st_mode) || st.st_size > 0;
	if (errno == ENOENT)
		return 0;
	return error_errno("database '%s'", s->path);
}

int sq_open_handle(struct store *s, const char *path, int flags)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		error("cannot open database '%s': %s", path,
		      db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, (int)s->busy_ms);
	sqlite3_extended_result_codes(db, 1);
	s->db = db;
	return 0;
}

void sq_close(struct store *s)
{
	if (s->db && sqlite3_close(handle(s)) != SQLITE_OK)
		log_warn("closing '%s': %s", s->path, sqlite3_errmsg(handle(s)));
	s->db = NULL;
	if (s->priv) {
		struct sq *p = sq_priv(s);

		if (p->live_fd >= 0)
			close(p->live_fd);
		if (p->shm_fd >= 0)
			close(p->shm_fd);
		p->live_fd = p->shm_fd = -1;
		p->held = p->exclusive = false;
		sq_written_reset(p, false);
	}
}

static int sq_open(struct store *s)
{
	char msg[512];

	if (sq_open_handle(s, s->path, SQLITE_OPEN_READWRITE) < 0)
		return -1;
	/* reading the ledger must not write: no checkpoint when we close */
	sqlite3_db_config(handle(s), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	/* the first read finds a file that is not a database */
	if (sq_exec(s, "SELECT count(*) FROM sqlite_master", msg, sizeof(msg)) < 0) {
		error("database '%s' cannot be read: %s", s->path, msg);
		sq_close(s);
		return -1;
	}
	return 0;
}

/* Binds text parameters to $1..$n, whatever order they appear in. */
static int bind_params(sqlite3_stmt *st, int n, const char *const *params)
{
	for (int i = 0; i < n; i++) {
		char name[16];
		int at;

		snprintf(name, sizeof(name), "$%d", i + 1);
		at = sqlite3_bind_parameter_index(st, name);
		if (at > 0 &&
		    sqlite3_bind_text(st, at, params[i], -1, SQLITE_STATIC) != SQLITE_OK)
			return -1;
	}
	return 0;
}

int sq_step_rows(struct store *s, sqlite3_stmt *st, store_row_fn row, void *arg)
{
	const char *values[16];
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int ncols = sqlite3_column_count(st);

		if (ncols > 16)
			ncols = 16;
		for (int i = 0; i < ncols; i++)
			values[i] = (const char *)sqlite3_column_text(st, i);
		if (row && row(arg, ncols, values) != 0)
			return 1;
	}
	if (rc == SQLITE_DONE)
		return 0;
	snprintf(s->err, sizeof(s->err), "%s", sqlite3_errmsg(handle(s)));
	return -1;
}

static int sq_sql_query(struct store *s, const char *sql, int n,
			const char *const *params, store_row_fn row, void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(handle(s), sql, -1, &st, NULL) != SQLITE_OK ||
	    bind_params(st, n, params) < 0)
		goto fail;
	rc = sq_step_rows(s, st, row, arg);
	sqlite3_finalize(st);
	if (rc > 0)
		snprintf(s->err, sizeof(s->err), "unexpected result of: %.200s", sql);
	return rc == 0 ? 0 : -1;
fail:
	snprintf(s->err, sizeof(s->err), "%s", sqlite3_errmsg(handle(s)));
	sqlite3_finalize(st);
	return -1;
}

static int sq_sql_exec(struct store *s, const char *sql, int n, const char *const *params)
{
	return sq_sql_query(s, sql, n, params, NULL, NULL);
}

struct table_walk {
	store_table_fn fn;
	void *arg;
};

static int see_table(void *arg, int ncols, const char *const *v)
{
	struct table_walk *w = arg;

	return ncols > 0 && v[0] ? w->fn(w->arg, v[0], true) : 0;
}

static int sq_list_tables(struct store *s, store_table_fn fn, void *arg)
{
	struct table_walk w = { fn, arg };

	return sq_sql_query(s,
			    "SELECT name FROM sqlite_master WHERE type = 'table' "
			    "AND name NOT LIKE 'sqlite_%'",
			    0, NULL, see_table, &w);
}

/* First row of a PRAGMA check must be "ok"; else msg gets what it said. */
int sq_pragma_ok(struct store *s, const char *sql, char *msg, size_t size)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(handle(s), sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(msg, size, "%s", sqlite3_errmsg(handle(s)));
		return -1;
	}
	switch (sqlite3_step(st)) {
	case SQLITE_ROW: {
		const char *t = (const char *)sqlite3_column_text(st, 0);

		if (t && !strcmp(t, "ok"))
			rc = 0;
		else
			snprintf(msg, size, "%s", t ? t : "?");
		break;
	}
	case SQLITE_DONE:
		rc = 0;
		break;
	default:
		snprintf(msg, size, "%s", sqlite3_errmsg(handle(s)));
	}
	sqlite3_finalize(st);
	return rc;
}

static int sq_check(struct store *s)
{
	char msg[512];

	if (sq_pragma_ok(s, "PRAGMA quick_check", msg, sizeof(msg)) < 0)
		return error("database '%s' is corrupt: %s", s->path, msg);
	return 0;
}

/* Any row of foreign_key_check is a violation. */
static int fk_check(struct store *s, char *msg, size_t size)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(handle(s), "PRAGMA foreign_key_check", -1, &st, NULL) !=
	    SQLITE_OK) {
		snprintf(msg, size, "%s", sqlite3_errmsg(handle(s)));
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(msg, size,
			 "foreign key violation: a row of table '%s' references "
			 "a missing row of '%s'",
			 (const char *)sqlite3_column_text(st, 0),
			 (const char *)sqlite3_column_text(st, 2));
	else if (rc != SQLITE_DONE)
		snprintf(msg, size, "%s", sqlite3_errmsg(handle(s)));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int line_of(const char *start, const char *at)
{
	int line = 1;

	for (const char *p = start; p < at && *p; p++)
		line += *p == '\n';
	return line;
}

/* Runs every statement of a script; msg gets "near line N: error". */
static int run_script(struct store *s, const char *sql, char *msg, size_t size)
{
	const char *tail = sql;

	while (tail && *tail) {
		sqlite3_stmt *st = NULL;
		const char *start = tail + strspn(tail, " \t\r\n");
		int rc;

		if (sqlite3_prepare_v2(handle(s), tail, -1, &st, &tail) != SQLITE_OK) {
			const char *at = start;
#if SQLITE_VERSION_NUMBER >= 3038000
			int off = sqlite3_error_offset(handle(s));
			if (off >= 0)
				at = start + off;
#endif
			snprintf(msg, size, "near line %d: %s", line_of(sql, at),
				 sqlite3_errmsg(handle(s)));
			return -1;
		}
		if (!st)
			continue; /* only whitespace or comments */
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			;
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			snprintf(msg, size, "near line %d: %s", line_of(sql, start),
				 sqlite3_errmsg(handle(s)));
			return -1;
		}
	}
	return 0;
}

/* The migration's ledger row, through the ledger layer's recorder. */
static int ledger_write(struct store *s, const struct migration *m, long long ms,
			bool dirty, char *msg, size_t size)
{
	if (s->recorder->record(s, m, ms, dirty) == 0)
		return 0;
	snprintf(msg, size, "ledger: %.900s", s->err);
	return -1;
}

static int ledger_prepare(struct store *s, char *msg, size_t size)
{
	if (s->recorder->prepare(s) == 0)
		return 0;
	snprintf(msg, size, "%s", s->err);
	return -1;
}

/* The migration and its ledger row in a savepoint of the held transaction. */
/*
 * A BEGIN, COMMIT, END or ROLLBACK in a migration would end ferry's own
 * transaction, and with it the lock that keeps other writers out: such a
 * statement is not even prepared. Savepoints of the migration's own are
 * fine; ferry's is left alone.
 */
struct guard {
	const char *denied;
	bool raw_schema; /* denied: PRAGMA writable_schema */
	struct sq *p;	 /* notes what is written, for the check after */
};

static int no_transaction_control(void *arg, int action, const char *a, const char *b,
				  const char *c, const char *d)
{
	struct guard *g = arg;

	(void)d;
	if (action == SQLITE_TRANSACTION ||
	    (action == SQLITE_SAVEPOINT && b && !sqlite3_stricmp(b, "ferry_migration"))) {
		g->denied = action == SQLITE_TRANSACTION ? a : "a savepoint of ferry's";
		return SQLITE_DENY;
	}
	/* Raw edits of sqlite_schema can corrupt the file in ways no check on
	 * this connection sees (it keeps the schema it parsed): never run. */
	if (action == SQLITE_PRAGMA && a && !sqlite3_stricmp(a, "writable_schema") && b) {
		g->denied = "PRAGMA writable_schema";
		g->raw_schema = true;
		return SQLITE_DENY;
	}
	sq_written_note(g->p, action, a, b, c);
	return SQLITE_OK;
}

static int run_guarded(struct store *s, const char *sql, char *msg, size_t size)
{
	struct guard g = { NULL, false, sq_priv(s) };
	const char *denied;
	int rc;

	sqlite3_set_authorizer(handle(s), no_transaction_control, &g);
	rc = run_script(s, sql, msg, size);
	sqlite3_set_authorizer(handle(s), NULL, NULL);
	denied = g.denied;
	if (rc < 0 && denied) {
		int line = 0;

		if (sscanf(msg, "near line %d", &line) != 1)
			line = 0;
		if (g.raw_schema)
			snprintf(
				msg, size,
				"line %d: PRAGMA writable_schema edits sqlite_schema by "
				"hand, which ferry cannot verify: change the schema with "
				"CREATE, ALTER and DROP (a table rebuild: create, copy, "
				"drop, rename)",
				line);
		else
			snprintf(
				msg, size,
				"line %d: %s inside a migration would end the "
				"transaction ferry runs it in: remove it, or make the file's "
				"first line -- ferry:no-transaction",
				line, denied);
	}
	return rc;
}

static int apply_held(struct store *s, const struct migration *m, long long *ms,
		      char *msg, size_t size)
{
	double t0 = now_seconds();
	char point[96], ignored[256];

	if (sq_exec(s, "SAVEPOINT ferry_migration", msg, size) < 0)
		return -1;
	if (ledger_prepare(s, msg, size) < 0 || run_guarded(s, m->sql, msg, size) < 0 ||
	    fk_check(s, msg, size) < 0)
		goto undo;
	*ms = (long long)((now_seconds() - t0) * 1000);
	if (ledger_write(s, m, *ms, false, msg, size) < 0)
		goto undo;
	snprintf(point, sizeof(point), "migration:%s:before-commit",
		 version_str(&m->version));
	crash_point(point);
	if (sq_exec(s, "RELEASE ferry_migration", msg, size) < 0)
		goto undo;
	return 0;
undo:
	if (!sqlite3_get_autocommit(handle(s)))
		sq_exec(s, "ROLLBACK TO ferry_migration", ignored, sizeof(ignored));
	return -1;
}

/* no-transaction: dirty row first, the script in autocommit, clean after */
static int apply_outside(struct store *s, const struct migration *m, long long *ms,
			 char *msg, size_t size)
{
	double t0 = now_seconds();
	char point[96];

	sq_priv(s)->written_all = true; /* commits on its own: check it all */
	if (sq_exec(s, "BEGIN IMMEDIATE", msg, size) < 0 ||
	    ledger_prepare(s, msg, size) < 0 ||
	    ledger_write(s, m, 0, true, msg, size) < 0 ||
	    sq_exec(s, "COMMIT", msg, size) < 0)
		return -1;
	snprintf(point, sizeof(point), "migration:%s:dirty", version_str(&m->version));
	crash_point(point);
	/* foreign_keys = ON in the script (diesel's table rebuilds end so)
	 * would hold for the migrations after it: off again, then checked */
	if (run_script(s, m->sql, msg, size) < 0 ||
	    (sqlite3_get_autocommit(handle(s)) &&
	     sq_exec(s, "PRAGMA foreign_keys = OFF", msg, size) < 0) ||
	    fk_check(s, msg, size) < 0)
		return -1;
	*ms = (long long)((now_seconds() - t0) * 1000);
	return ledger_write(s, m, *ms, false, msg, size);
}

/* One migration in its own transaction: a new database being created. */
static int apply_alone(struct store *s, const struct migration *m, long long *ms,
		       char *msg, size_t size)
{
	if (sq_exec(s, "PRAGMA foreign_keys = OFF", msg, size) < 0 ||
	    sq_exec(s, "BEGIN IMMEDIATE", msg, size) < 0)
		return -1;
	if (apply_held(s, m, ms, msg, size) < 0)
		return -1;
	return sq_exec(s, "COMMIT", msg, size);
}

static int sq_apply(struct store *s, const struct migration *m, long long *ms)
{
	struct sq *p = sq_priv(s);
	char msg[1024] = "", ignored[256];
	int rc;

	if (!m->no_transaction && p->held)
		rc = (sqlite3_get_autocommit(handle(s)) &&
		      sq_exec(s, "BEGIN IMMEDIATE", msg, sizeof(msg)) < 0)
			     ? -1
			     : apply_held(s, m, ms, msg, sizeof(msg));
	else if (!m->no_transaction)
		rc = apply_alone(s, m, ms, msg, sizeof(msg));
	else if (!p->held)
		rc = sq_exec(s, "PRAGMA foreign_keys = OFF", msg, sizeof(msg)) < 0
			     ? -1
			     : apply_outside(s, m, ms, msg, sizeof(msg));
	else if (!p->exclusive) {
		snprintf(msg, sizeof(msg),
			 "runs outside a transaction, but the upgrade "
			 "holds no exclusive lock");
		rc = -1;
	} else /* commit what came before; locking_mode EXCLUSIVE keeps the lock */
		rc = (!sqlite3_get_autocommit(handle(s)) &&
		      sq_exec(s, "COMMIT", msg, sizeof(msg)) < 0) ||
				     apply_outside(s, m, ms, msg, sizeof(msg)) < 0
			     ? -1
			     : 0;
	if (rc < 0) {
		int code = sqlite3_errcode(handle(s)) & 0xff;

		/* a full disk, a busy lock, no memory: not the migration's fault */
		s->transient = code == SQLITE_FULL || code == SQLITE_BUSY ||
			       code == SQLITE_LOCKED || code == SQLITE_NOMEM ||
			       code == SQLITE_IOERR;
		if (!p->held && !sqlite3_get_autocommit(handle(s)))
			sq_exec(s, "ROLLBACK", ignored, sizeof(ignored));
		snprintf(s->err, sizeof(s->err), "%s", msg);
	}
	return rc;
}

static int sq_verify(struct store *s)
{
	char msg[512];

	if (sq_written_check(s, s->recorder ? s->recorder->table : NULL, msg,
			     sizeof(msg)) < 0) {
		snprintf(s->err, sizeof(s->err), "integrity check: %s", msg);
		return -1;
	}
	if (fk_check(s, msg, sizeof(msg)) < 0) {
		snprintf(s->err, sizeof(s->err), "%s", msg);
		return -1;
	}
	return 0;
}

static int sq_size(struct store *s, unsigned long long *bytes)
{
	struct stat st;
	char *wal = xasprintf("%s-wal", s->path);

	*bytes = 0;
	if (stat(s->path, &st) == 0)
		*bytes += (unsigned long long)st.st_size;
	if (stat(wal, &st) == 0)
		*bytes += (unsigned long long)st.st_size;
	free(wal);
	return 0;
}

/* PRAGMA quick_check of this connection; msg gets what it found. */
int sq_quick_check(struct store *s, char *msg, size_t size)
{
	return sq_pragma_ok(s, "PRAGMA quick_check", msg, size);
}

/*
 * A file that ends inside a comment, a string or a trigger body would be
 * cut short there by the parser, the rest never run: refused (65).
 * sqlite3_complete() wants a final semicolon, so one is added.
 */
static int sq_check_migration(struct store *s, const struct migration *m)
{
	char *sql = xasprintf("%s\n;", m->sql);
	int complete = sqlite3_complete(sql);

	free(sql);
	if (complete == 1)
		return 0;
	return store_fail(
		s, EXIT_DATA,
		"migration '%s' ends inside a comment, a string or a trigger "
		"body: the rest of the file would never run (nothing was changed)",
		m->path);
}

/* A restore's journal holds at most every page of the database. */
static int sq_restore_size(struct store *s, unsigned long long *bytes)
{
	return sq_size(s, bytes);
}

static const char *sq_location(struct store *s)
{
	return s->path;
}

/* The backup API's rollback journal, when a snapshot was copying through it */
static void sq_remove_partial(struct store *s, const char *path)
{
	static const char *const suffixes[] = { ".tmp-journal", ".new.tmp-journal" };

	(void)s;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char *p = xasprintf("%s%s", path, suffixes[i]);

		unlink(p);
		free(p);
	}
}

/* What a crashed create or restore left under its temp name. */
static void sq_cleanup(struct store *s)
{
	static const char *const leftovers[] = { ".ferry-new", ".ferry-restore",
						 ".rebuild-new", ".rebuild-staging" };

	for (size_t i = 0; i < sizeof(leftovers) / sizeof(leftovers[0]); i++) {
		char *p = xasprintf("%s%s", s->path, leftovers[i]);

		if (unlink(p) == 0)
			log_info("removed leftover %s", p);
		free(p);
	}
}

/* sqlite:///abs, sqlite:rel, or a plain path: anything but another URL */
static bool sq_claims(const char *url)
{
	return !strncmp(url, "sqlite:", 7) || !strstr(url, "://");
}

static int sq_init(struct store *s, const char *url)
{
	const char *path = url;

	if (!strncmp(url, "sqlite://", 9))
		path = url + 9; /* sqlite:///abs -> /abs */
	else if (!strncmp(url, "sqlite:", 7))
		path = url + 7;
	if (redact_has_secret(url))
		return error(
			"database URL: it seems to hold a password, but is neither "
			"a postgres:// URL nor a key=value string (those start with "
			"a key such as host=); SQLite takes sqlite:///path or a file "
			"path");
	if (!*path || strchr(path, '?'))
		return error("database '%s': expected a file path after sqlite:",
			     s->url_redacted);
	s->url = xstrdup(url);
	s->path = xstrdup(path);
	s->ops = &sqlite_ops;
	s->busy_ms = 10000;
	return 0;
}

const struct store_ops sqlite_ops = {
	.engine = "sqlite",
	.claims = sq_claims,
	.init = sq_init,
	.exists = sq_exists,
	.open = sq_open,
	.close = sq_close,
	.dialect = SQL_SQLITE,
	.sql_exec = sq_sql_exec,
	.sql_query = sq_sql_query,
	.list_tables = sq_list_tables,
	.check = sq_check,
	.apply = sq_apply,
	.verify = sq_verify,
	.snapshot = sq_snapshot,
	.restore = sq_restore,
	.restore_size = sq_restore_size,
	.check_migration = sq_check_migration,
	.restore_by_hand = sq_restore_by_hand,
	.hold = sq_hold,
	.settle = sq_settle,
	.snapshot_usable = sq_snapshot_usable,
	.create = sq_create,
	.size = sq_size,
	.location = sq_location,
	.cleanup = sq_cleanup,
	.remove_partial = sq_remove_partial,
	.open_read_only = sq_open_read_only,
	.snapshot_open = sq_snapshot_open,
	.snapshot_verify = sq_snapshot_verify,
	.scratch_open = sq_scratch_open,
	.scratch_drop = sq_scratch_drop,
	.describe_schema = sq_describe_schema,
	.run_checks = sq_run_checks,
	.rebuild_build = sq_rebuild_build,
	.rebuild_swap = sq_rebuild_swap,
	.rebuild_discard = sq_rebuild_discard,
};
