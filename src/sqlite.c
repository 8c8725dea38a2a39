/*
 * sqlite: the SQLite backend. An upgrade holds one BEGIN IMMEDIATE write
 * transaction from its snapshot to the end of its verification (hold and
 * release), so no other process commits in between: each migration runs
 * with its ledger row in a savepoint of it, with foreign keys off (so a
 * table rebuild cannot cascade-delete) and a foreign_key_check; a failure
 * rolls the whole upgrade back. A migration that must run outside a
 * transaction commits what came before and needs locking_mode EXCLUSIVE,
 * which keeps the lock across commits. Snapshots are file copies under
 * that lock after a WAL checkpoint, or the online backup API when the
 * checkpoint cannot complete; a restore writes the snapshot's pages into
 * the live database through the backup API, so connections that other
 * processes hold stay valid and see the restored content.
 */
#include "exits.h"
#include "migrations.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LEDGER_DDL                                                        \
	"CREATE TABLE IF NOT EXISTS ferry_migrations ("                   \
	"version INTEGER PRIMARY KEY, name TEXT NOT NULL, "                \
	"sha256 TEXT NOT NULL, applied_at TEXT NOT NULL, "                \
	"duration_ms INTEGER NOT NULL, dirty INTEGER NOT NULL DEFAULT 0)"

static sqlite3 *handle(struct store *s)
{
	return s->db;
}

/*
 * Closing ANY descriptor of a file drops every POSIX lock the process holds
 * on it, SQLite's included. So the descriptors the snapshot reads the live
 * database through, and the one that probes its -shm, stay open until
 * SQLite's connection is closed.
 */
struct sq {
	int live_fd;
	int shm_fd;
	bool held;      /* the upgrade's write transaction is open */
	bool exclusive; /* locking_mode EXCLUSIVE: the lock outlives commits */
};

static struct sq *sq_priv(struct store *s)
{
	if (!s->priv) {
		struct sq *p = xcalloc(1, sizeof(*p));

		p->live_fd = -1;
		p->shm_fd = -1;
		s->priv = p;
	}
	return s->priv;
}

static int live_fd(struct store *s)
{
	struct sq *p = sq_priv(s);

	if (p->live_fd < 0)
		p->live_fd = open(s->path, O_RDONLY | O_CLOEXEC);
	return p->live_fd;
}

static uint32_t be32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/*
 * A whole SQLite file, by its header: the magic, and a size that matches
 * the page count (a truncated copy fails here). Fills why when it is not.
 */
static bool whole_file(const char *path, char *why, size_t size)
{
	unsigned char h[100];
	struct stat st;
	unsigned long long page, pages;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;

	if (fd >= 0) {
		if (fstat(fd, &st) == 0)
			n = pread(fd, h, sizeof(h), 0);
		close(fd);
	}
	if (n < 0) {
		snprintf(why, size, "%s", strerror(errno));
		return false;
	}
	if (n < (ssize_t)sizeof(h) || memcmp(h, "SQLite format 3", 16)) {
		snprintf(why, size, "not an SQLite database");
		return false;
	}
	page = (unsigned long long)(h[16] << 8 | h[17]);
	if (page == 1)
		page = 65536;
	pages = be32(h + 28);
	/* the page count is valid when written by the same change */
	if (be32(h + 92) != be32(h + 24) || pages == 0)
		pages = (unsigned long long)st.st_size / (page ? page : 1);
	if (page < 512 || (unsigned long long)st.st_size != page * pages) {
		snprintf(why, size, "truncated or damaged (%lld bytes, %llu pages of %llu)",
			 (long long)st.st_size, pages, page);
		return false;
	}
	return true;
}

/* Runs SQL without result rows; fills msg with the error. */
static int exec(struct store *s, const char *sql, char *msg, size_t size)
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
		return error("database '%s': %s", s->path, strerror(errno));
	if (lstat(s->path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
		s->status = EXIT_CONFIG;
		return error("database '%s' is a symbolic link to a file that does not "
			     "exist: point it at the database on the volume, or name the "
			     "real path in DATABASE_URL", s->path);
	}
	dir = dir_of(s->path);
	rdir = realpath(dir, NULL);
	if (!rdir) {
		s->status = EXIT_CONFIG;
		error("database '%s': directory '%s' does not exist", s->path, dir);
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
	if (stat(s->path, &st) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	return error("database '%s': %s", s->path, strerror(errno));
}

static int open_handle(struct store *s, const char *path, int flags)
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

static void sq_close(struct store *s)
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
	}
}

/*
 * Another process that has a WAL database open holds a read lock on byte
 * 128 of its -shm file (the "DMS" byte of SQLite's unix VFS) for as long
 * as it does; F_GETLK reports it, our own locks aside. Fills who ("pid
 * 123", or another PID namespace's process) and returns true when there
 * is one. Rollback-journal databases leave no such trace while idle.
 */
static bool shm_in_use(struct store *s, char *who, size_t size)
{
	struct sq *p = sq_priv(s);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 128,
			    .l_len = 1 };

	if (p->shm_fd < 0) {
		char *shm = xasprintf("%s-shm", s->path);

		p->shm_fd = open(shm, O_RDONLY | O_CLOEXEC);
		free(shm);
		if (p->shm_fd < 0)
			return false; /* no -shm: nobody has it open in WAL mode */
	}
	if (fcntl(p->shm_fd, F_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
		return false;
	if (fl.l_pid > 0)
		snprintf(who, size, "process %d", (int)fl.l_pid);
	else
		snprintf(who, size, "a process of another container or PID namespace");
	return true;
}

static bool is_wal(struct store *s)
{
	sqlite3_stmt *st = NULL;
	bool wal = false;

	if (sqlite3_prepare_v2(handle(s), "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		wal = !strcmp((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	return wal;
}

/*
 * A migration outside a transaction commits, and a WAL database held in
 * locking_mode EXCLUSIVE by us must be open in no other process: wait for
 * them to close it, up to the lock timeout. -1 logged, status 75.
 */
static int alone_try(void *arg, char *who, size_t size)
{
	return shm_in_use(arg, who, size) ? 1 : 0;
}

static void alone_waiting(void *arg, const char *who, bool first)
{
	struct store *s = arg;

	(void)first;
	log_info("waiting up to %lld s for %s to close '%s': a migration that runs "
		 "outside a transaction needs the database to itself", s->lock_timeout,
		 who, s->path);
}

static void alone_gave_up(void *arg, const char *who, bool stopped)
{
	struct store *s = arg;

	(void)stopped;
	s->status = EXIT_TEMPFAIL;
	error("'%s' is still open in %s: a migration that runs outside a transaction "
	      "needs the database to itself; nothing was changed: stop the other "
	      "process (the old release?) and start again", s->path, who);
}

static int wait_alone(struct store *s)
{
	struct wait w = { .timeout = s->lock_timeout, .pause = 0.1, .try_once = alone_try,
			  .waiting = alone_waiting, .gave_up = alone_gave_up, .arg = s };

	return wait_for(&w) == 0 ? 0 : -1;
}

static bool wal_checkpointed(struct store *s);

/*
 * From here until the close no other process commits: a write transaction
 * is open (their writes wait out their busy timeout, then fail loudly).
 * exclusive: locking_mode EXCLUSIVE instead, whose lock outlives the
 * commits of migrations that run outside a transaction (readers are kept
 * out as well); the transaction then opens with the first migration.
 * -1 logged; status 75 when another process keeps the lock.
 */
static int sq_hold(struct store *s, bool exclusive)
{
	struct sq *p = sq_priv(s);
	char msg[512], who[96];

	if (p->held)
		return 0;
	if (exclusive && is_wal(s) && wait_alone(s) < 0)
		return -1;
	if (!exclusive && shm_in_use(s, who, sizeof(who)))
		log_info("'%s' is open in %s too: it can read during the upgrade, and "
			 "its writes wait until the upgrade is over", s->path, who);
	if ((exclusive && exec(s, "PRAGMA locking_mode = EXCLUSIVE", msg, sizeof(msg)) < 0) ||
	    exec(s, "PRAGMA foreign_keys = OFF", msg, sizeof(msg)) < 0)
		return error("cannot prepare '%s' for the upgrade: %s", s->path, msg);
	wal_checkpointed(s); /* lets the snapshot copy the file itself */
	/* exclusive: the lock is taken now and kept with no transaction open,
	 * so the snapshot can read through this very connection */
	if (exec(s, exclusive ? "BEGIN EXCLUSIVE" : "BEGIN IMMEDIATE", msg, sizeof(msg)) < 0 ||
	    (exclusive && exec(s, "COMMIT", msg, sizeof(msg)) < 0)) {
		if ((sqlite3_errcode(handle(s)) & 0xff) == SQLITE_BUSY) {
			s->status = EXIT_TEMPFAIL;
			return error("cannot lock '%s' for the upgrade: another process kept "
				     "writing to it for %lld ms; nothing was changed: start "
				     "again later", s->path, s->busy_ms);
		}
		return error("cannot lock '%s' for the upgrade: %s", s->path, msg);
	}
	p->held = true;
	p->exclusive = exclusive;
	return 0;
}

/* Ends the hold: commit keeps the work, otherwise what is not committed
 * is rolled back. -1 with s->err set when the commit fails (rolled back).
 * An exclusive lock is kept until the connection closes. */
static int sq_settle(struct store *s, bool commit)
{
	struct sq *p = sq_priv(s);
	char msg[512], ignored[256];
	int rc = 0;

	if (!p->held)
		return 0;
	p->held = false;
	if (commit && !sqlite3_get_autocommit(handle(s)) &&
	    exec(s, "COMMIT", msg, sizeof(msg)) < 0) {
		snprintf(s->err, sizeof(s->err), "cannot commit the upgrade: %s", msg);
		if ((sqlite3_errcode(handle(s)) & 0xff) == SQLITE_BUSY) {
			/* readers kept their lock past the busy timeout */
			s->status = EXIT_TEMPFAIL;
			snprintf(s->err, sizeof(s->err), "cannot commit the upgrade: other "
				 "processes kept reading '%s' for more than %lld ms; start "
				 "again later", s->path, s->busy_ms);
		}
		rc = -1;
	}
	if (!sqlite3_get_autocommit(handle(s)))
		exec(s, "ROLLBACK", ignored, sizeof(ignored));
	/* locking_mode EXCLUSIVE stays until the close: a restore that may
	 * follow writes through this connection, with the lock still held */
	return rc;
}

static int sq_open(struct store *s)
{
	char msg[512];

	if (open_handle(s, s->path, SQLITE_OPEN_READWRITE) < 0)
		return -1;
	/* reading the ledger must not write: no checkpoint when we close */
	sqlite3_db_config(handle(s), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	/* the first read finds a file that is not a database */
	if (exec(s, "SELECT count(*) FROM sqlite_master", msg, sizeof(msg)) < 0) {
		error("database '%s' cannot be read: %s", s->path, msg);
		sq_close(s);
		return -1;
	}
	return 0;
}

static int sq_read_ledger(struct store *s, struct ledger *l)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(l, 0, sizeof(*l));
	if (sqlite3_prepare_v2(handle(s),
			       "SELECT name FROM sqlite_master WHERE type = 'table' "
			       "AND name NOT LIKE 'sqlite_%'",
			       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);

		if (name && !strcmp(name, "ferry_migrations"))
			l->exists = true;
		else
			l->has_user_tables = true;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto fail;
	if (!l->exists)
		return 0;
	if (sqlite3_prepare_v2(handle(s),
			       "SELECT version, name, sha256, applied_at, duration_ms, "
			       "dirty FROM ferry_migrations ORDER BY version",
			       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_row *r;
		const char *t;

		l->rows = xrealloc(l->rows, (l->n + 1) * sizeof(*l->rows));
		r = &l->rows[l->n++];
		memset(r, 0, sizeof(*r));
		r->version = sqlite3_column_int64(st, 0);
		t = (const char *)sqlite3_column_text(st, 1);
		r->name = xstrdup(t ? t : "");
		t = (const char *)sqlite3_column_text(st, 2);
		snprintf(r->sha256, sizeof(r->sha256), "%s", t ? t : "");
		t = (const char *)sqlite3_column_text(st, 3);
		snprintf(r->applied_at, sizeof(r->applied_at), "%s", t ? t : "");
		r->duration_ms = sqlite3_column_int64(st, 4);
		r->dirty = sqlite3_column_int(st, 5) != 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail_msg;
	return 0;
fail:
	sqlite3_finalize(st);
fail_msg:
	error("cannot read the ledger of '%s': %s", s->path, sqlite3_errmsg(handle(s)));
	ledger_release(l);
	return -1;
}

/* First row of a PRAGMA check must be "ok"; else msg gets what it said. */
static int pragma_ok(struct store *s, const char *sql, char *msg, size_t size)
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

	if (pragma_ok(s, "PRAGMA quick_check", msg, sizeof(msg)) < 0)
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

static int ledger_write(struct store *s, const struct migration *m, long long ms,
			bool dirty, char *msg, size_t size)
{
	sqlite3_stmt *st = NULL;
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	int rc;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (sqlite3_prepare_v2(handle(s),
			       "INSERT OR REPLACE INTO ferry_migrations (version, name, "
			       "sha256, applied_at, duration_ms, dirty) "
			       "VALUES (?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) {
		snprintf(msg, size, "ledger: %s", sqlite3_errmsg(handle(s)));
		return -1;
	}
	sqlite3_bind_int64(st, 1, m->version);
	sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, m->sha256, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, stamp, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, ms);
	sqlite3_bind_int(st, 6, dirty);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		snprintf(msg, size, "ledger: %s", sqlite3_errmsg(handle(s)));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The migration and its ledger row in a savepoint of the held transaction. */
/*
 * A BEGIN, COMMIT, END or ROLLBACK in a migration would end ferry's own
 * transaction, and with it the lock that keeps other writers out: such a
 * statement is not even prepared. Savepoints of the migration's own are
 * fine; ferry's is left alone.
 */
static int no_transaction_control(void *arg, int action, const char *a, const char *b,
				  const char *c, const char *d)
{
	(void)c;
	(void)d;
	if (action == SQLITE_TRANSACTION ||
	    (action == SQLITE_SAVEPOINT && b && !sqlite3_stricmp(b, "ferry_migration"))) {
		*(const char **)arg = action == SQLITE_TRANSACTION ? a : "a savepoint of ferry's";
		return SQLITE_DENY;
	}
	return SQLITE_OK;
}

static int run_guarded(struct store *s, const char *sql, char *msg, size_t size)
{
	const char *denied = NULL;
	int rc;

	sqlite3_set_authorizer(handle(s), no_transaction_control, &denied);
	rc = run_script(s, sql, msg, size);
	sqlite3_set_authorizer(handle(s), NULL, NULL);
	if (rc < 0 && denied) {
		int line = 0;

		if (sscanf(msg, "near line %d", &line) != 1)
			line = 0;
		snprintf(msg, size, "line %d: %s inside a migration would end the "
			 "transaction ferry runs it in: remove it, or make the file's "
			 "first line -- ferry:no-transaction", line, denied);
	}
	return rc;
}

static int apply_held(struct store *s, const struct migration *m, long long *ms,
		      char *msg, size_t size)
{
	double t0 = now_seconds();
	char point[64], ignored[256];

	if (exec(s, "SAVEPOINT ferry_migration", msg, size) < 0)
		return -1;
	if (exec(s, LEDGER_DDL, msg, size) < 0 || run_guarded(s, m->sql, msg, size) < 0 ||
	    fk_check(s, msg, size) < 0)
		goto undo;
	*ms = (long long)((now_seconds() - t0) * 1000);
	if (ledger_write(s, m, *ms, false, msg, size) < 0)
		goto undo;
	snprintf(point, sizeof(point), "migration:%lld:before-commit", m->version);
	crash_point(point);
	if (exec(s, "RELEASE ferry_migration", msg, size) < 0)
		goto undo;
	return 0;
undo:
	if (!sqlite3_get_autocommit(handle(s)))
		exec(s, "ROLLBACK TO ferry_migration", ignored, sizeof(ignored));
	return -1;
}

/* no-transaction: dirty row first, the script in autocommit, clean after */
static int apply_outside(struct store *s, const struct migration *m, long long *ms,
			 char *msg, size_t size)
{
	double t0 = now_seconds();

	if (exec(s, "BEGIN IMMEDIATE", msg, size) < 0 || exec(s, LEDGER_DDL, msg, size) < 0 ||
	    ledger_write(s, m, 0, true, msg, size) < 0 || exec(s, "COMMIT", msg, size) < 0)
		return -1;
	if (run_script(s, m->sql, msg, size) < 0 || fk_check(s, msg, size) < 0)
		return -1;
	*ms = (long long)((now_seconds() - t0) * 1000);
	return ledger_write(s, m, *ms, false, msg, size);
}

/* One migration in its own transaction: a new database being created. */
static int apply_alone(struct store *s, const struct migration *m, long long *ms,
		       char *msg, size_t size)
{
	if (exec(s, "PRAGMA foreign_keys = OFF", msg, size) < 0 ||
	    exec(s, "BEGIN IMMEDIATE", msg, size) < 0)
		return -1;
	if (apply_held(s, m, ms, msg, size) < 0)
		return -1;
	return exec(s, "COMMIT", msg, size);
}

static int sq_apply(struct store *s, const struct migration *m, long long *ms)
{
	struct sq *p = sq_priv(s);
	char msg[1024] = "", ignored[256];
	int rc;

	if (!m->no_transaction && p->held)
		rc = (sqlite3_get_autocommit(handle(s)) &&
		      exec(s, "BEGIN IMMEDIATE", msg, sizeof(msg)) < 0) ? -1 :
			apply_held(s, m, ms, msg, sizeof(msg));
	else if (!m->no_transaction)
		rc = apply_alone(s, m, ms, msg, sizeof(msg));
	else if (!p->held)
		rc = exec(s, "PRAGMA foreign_keys = OFF", msg, sizeof(msg)) < 0 ? -1 :
			apply_outside(s, m, ms, msg, sizeof(msg));
	else if (!p->exclusive) {
		snprintf(msg, sizeof(msg), "runs outside a transaction, but the upgrade "
			 "holds no exclusive lock");
		rc = -1;
	} else /* commit what came before; locking_mode EXCLUSIVE keeps the lock */
		rc = (!sqlite3_get_autocommit(handle(s)) &&
		      exec(s, "COMMIT", msg, sizeof(msg)) < 0) ||
			     apply_outside(s, m, ms, msg, sizeof(msg)) < 0 ? -1 : 0;
	if (rc < 0) {
		if (!p->held && !sqlite3_get_autocommit(handle(s)))
			exec(s, "ROLLBACK", ignored, sizeof(ignored));
		snprintf(s->err, sizeof(s->err), "%s", msg);
	}
	return rc;
}

static int sq_verify(struct store *s)
{
	char msg[512];

	if (pragma_ok(s, "PRAGMA quick_check", msg, sizeof(msg)) < 0) {
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

/*
 * Copies every page of src into dst through the online backup API, in one
 * write transaction of dst, waiting up to s->lock_timeout for locks. crash
 * names the test crash point after each step. Returns the last result
 * code: SQLITE_DONE when the copy is whole.
 */
static int backup_pages(struct store *s, sqlite3 *dst, sqlite3 *src, const char *crash)
{
	double deadline = now_seconds() + (double)s->lock_timeout;
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	bool said = false;
	int rc;

	if (!b)
		return sqlite3_errcode(dst);
	do {
		rc = sqlite3_backup_step(b, 4096);
		if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && !said) {
			log_info("waiting up to %lld s for the other processes using '%s' "
				 "to finish their transactions", s->lock_timeout, s->path);
			said = true;
		}
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			sqlite3_sleep(50);
		crash_point(crash);
	} while (rc == SQLITE_OK ||
		 ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && now_seconds() < deadline));
	sqlite3_backup_finish(b);
	return rc;
}

/*
 * The online backup API, for when a file copy cannot be consistent: read
 * through a second connection, since the first may hold the upgrade's
 * write transaction (which keeps the content as it is until then), or
 * through the first when an exclusive hold keeps everyone else out.
 */
static int backup_to(struct store *s, const char *dst_path)
{
	struct store src = { .path = s->path, .busy_ms = s->busy_ms };
	sqlite3 *dst = NULL;
	int rc;

	/* an exclusive hold keeps even readers out, but has no transaction
	 * open: then this connection itself is read */
	if (!sq_priv(s)->exclusive) {
		if (open_handle(&src, s->path, SQLITE_OPEN_READWRITE) < 0)
			return -1;
		sqlite3_db_config(src.db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	}
	if (sqlite3_open_v2(dst_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    NULL) != SQLITE_OK) {
		error("cannot write snapshot '%s': %s", dst_path, sqlite3_errmsg(dst));
		goto fail;
	}
	rc = backup_pages(s, dst, src.db ? src.db : handle(s), "snapshot:mid");
	if (rc != SQLITE_DONE) {
		errno = (rc & 0xff) == SQLITE_FULL ? ENOSPC : EIO;
		error("cannot write snapshot '%s': %s", dst_path, sqlite3_errstr(rc));
		goto fail;
	}
	/* a snapshot is a plain rollback-journal file, whatever the source */
	sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
	sqlite3_close(src.db);
	if (sqlite3_close(dst) != SQLITE_OK)
		return error("cannot close snapshot '%s'", dst_path);
	return fsync_path(dst_path);
fail:
	sqlite3_close(dst);
	sqlite3_close(src.db);
	return -1;
}

static bool wal_checkpointed(struct store *s)
{
	sqlite3_stmt *st = NULL;
	bool ok = false;

	if (sqlite3_prepare_v2(handle(s), "PRAGMA wal_checkpoint(TRUNCATE)", -1, &st,
			       NULL) != SQLITE_OK)
		return false;
	/* columns: busy, wal frames, frames checkpointed (-1 when not WAL) */
	if (sqlite3_step(st) == SQLITE_ROW)
		ok = sqlite3_column_int(st, 0) == 0 &&
		     sqlite3_column_int(st, 1) == sqlite3_column_int(st, 2);
	sqlite3_finalize(st);
	return ok;
}

static long long wal_size(struct store *s)
{
	char *wal = xasprintf("%s-wal", s->path);
	struct stat st;
	long long n = stat(wal, &st) == 0 ? (long long)st.st_size : 0;

	free(wal);
	return n;
}

/*
 * A consistent copy at path: a plain file copy when the WAL is empty (no
 * other writer can change the file while the hold lasts), else through
 * the backup API. Outside an upgrade (ferry snapshot) it holds the write
 * lock for the time of the copy.
 */
static int sq_snapshot(struct store *s, const char *path, struct snapshot_info *info)
{
	const char *how = "?";

	bool own = !sq_priv(s)->held;
	char *tmp = xasprintf("%s.tmp", path);
	int in, out = -1, rc = -1, saved;
	char msg[512];
	struct stat st;

	if (unlink(tmp) < 0 && errno != ENOENT) {
		error("cannot remove '%s': %s", tmp, strerror(errno));
		goto out;
	}
	if (own && sq_hold(s, false) < 0)
		goto out;
	if (wal_size(s) > 0) {
		/* a reader keeps frames in the WAL: copy through SQLite */
		how = "backup API";
		if (backup_to(s, tmp) < 0)
			goto out_unlink;
		goto out_check;
	}
	in = live_fd(s);
	if (in < 0 || fstat(in, &st) < 0) {
		error("cannot read '%s': %s", s->path, strerror(errno));
		goto out;
	}
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		error("cannot write snapshot '%s': %s", tmp, strerror(errno));
		goto out;
	}
	if (copy_fd(in, out, (unsigned long long)st.st_size, "snapshot", "snapshot:mid",
		    &how) < 0 ||
	    fsync(out) < 0) {
		error("cannot write snapshot '%s': %s", tmp, strerror(errno));
		goto out_unlink;
	}
	saved = close(out);
	out = -1;
	if (saved < 0) {
		error("cannot write snapshot '%s': %s", tmp, strerror(errno));
		goto out_unlink;
	}
out_check:
	if (!whole_file(tmp, msg, sizeof(msg))) {
		error("the snapshot '%s' is not a whole copy (%s): no upgrade", tmp, msg);
		goto out_unlink;
	}
	if (rename(tmp, path) < 0) {
		error("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
		goto out_unlink;
	}
	rc = fsync_dir_of(path);
	goto out;
out_unlink:
	saved = errno;
	if (out >= 0)
		close(out);
	out = -1;
	unlink(tmp);
	errno = saved;
out:
	if (own)
		sq_settle(s, false);
	snprintf(info->how, sizeof(info->how), "%s", how);
	info->is_file = true;
	free(tmp);
	return rc;
}

static int unlink_sidecars(const char *path)
{
	static const char *const ext[] = { "-wal", "-shm", "-journal" };

	for (size_t i = 0; i < 3; i++) {
		char *p = xasprintf("%s%s", path, ext[i]);
		int r = unlink(p);

		if (r < 0 && errno != ENOENT) {
			error("cannot remove '%s': %s", p, strerror(errno));
			free(p);
			return -1;
		}
		free(p);
	}
	return 0;
}

/* PRAGMA quick_check of a file that no one else uses yet */
static bool checks_out(const char *path, char *why, size_t size)
{
	struct store tmp = { .path = (char *)path, .busy_ms = 1000 };
	bool ok = false;

	/* read-write: a WAL-mode file needs its -shm to be read at all */
	if (open_handle(&tmp, path, SQLITE_OPEN_READWRITE) < 0) {
		snprintf(why, size, "cannot open it");
		return false;
	}
	ok = pragma_ok(&tmp, "PRAGMA quick_check", why, size) == 0;
	sqlite3_close(tmp.db);
	unlink_sidecars(path);
	return ok;
}

/* The restored file belongs to whoever owned the database (the server's user). */
static int same_owner(int fd, const struct stat *like)
{
	if (fchmod(fd, like->st_mode & 07777) < 0)
		return -1;
	if (geteuid() == 0 && fchown(fd, like->st_uid, like->st_gid) < 0)
		return -1;
	return 0;
}

/*
 * The live file is missing or is no database at all, so no connection can
 * be using it: a copy of the snapshot under a temporary name replaces it.
 */
static int restore_by_copy(struct store *s, const char *snap)
{
	char *tmp = xasprintf("%s.ferry-restore", s->path);
	int in = -1, out = -1, rc = -1;
	struct stat st, orig;
	bool have_orig = stat(s->path, &orig) == 0;
	const char *how;
	char why[512];

	in = open(snap, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0) {
		error("cannot read snapshot '%s': %s", snap, strerror(errno));
		goto out;
	}
	unlink(tmp);
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0 || copy_fd(in, out, (unsigned long long)st.st_size, "restore",
			       "restore:mid", &how) < 0 ||
	    (have_orig && same_owner(out, &orig) < 0) || fsync(out) < 0) {
		error("cannot write '%s': %s", tmp, strerror(errno));
		goto out_unlink;
	}
	if (close(out) < 0) {
		out = -1;
		error("cannot write '%s': %s", tmp, strerror(errno));
		goto out_unlink;
	}
	out = -1;
	if (!checks_out(tmp, why, sizeof(why))) {
		error("cannot restore from snapshot '%s': its copy fails the integrity "
		      "check (%s); the database '%s' was left as it is", snap, why, s->path);
		goto out_unlink;
	}
	/* A WAL or hot journal of the replaced file must never be replayed
	 * onto the restored one: remove them first, durably. */
	if (unlink_sidecars(s->path) < 0 || fsync_dir_of(s->path) < 0)
		goto out_unlink;
	crash_point("restore:before-rename");
	if (rename(tmp, s->path) < 0) {
		error("cannot rename '%s' to '%s': %s", tmp, s->path, strerror(errno));
		goto out_unlink;
	}
	rc = fsync_dir_of(s->path);
	goto out;
out_unlink:
	unlink(tmp);
out:
	if (out >= 0)
		close(out);
	if (in >= 0)
		close(in);
	free(tmp);
	return rc;
}

/*
 * Writes the snapshot's pages into the live database through the backup
 * API: one write transaction of the live file, which keeps its inode, its
 * owner and the connections other processes hold (they read the restored
 * content next). A crash midway rolls that transaction back. *not_db: the
 * live file is missing or no database, so this cannot work.
 */
static int restore_in_place(struct store *s, const char *snap, bool *not_db)
{
	struct store src = { .path = (char *)snap, .busy_ms = s->busy_ms };
	struct store own = { .path = s->path, .busy_ms = s->busy_ms };
	/* the upgrade's connection, when open, still holds its lock */
	struct store *dst = s->db ? s : &own;
	char why[512], ignored[256];
	int rc = -1, r;

	*not_db = false;
	/* read-write: a WAL-mode copy needs its -shm to be read at all */
	if (open_handle(&src, snap, SQLITE_OPEN_READWRITE) < 0)
		return -1;
	if (pragma_ok(&src, "PRAGMA quick_check", why, sizeof(why)) < 0) {
		error("cannot restore from snapshot '%s': it fails the integrity check "
		      "(%s); the database '%s' was left as it is", snap, why, s->path);
		goto out;
	}
	if (dst == &own && (!path_exists(s->path) ||
			    sqlite3_open_v2(s->path, (sqlite3 **)&own.db, SQLITE_OPEN_READWRITE,
					    NULL) != SQLITE_OK)) {
		*not_db = true;
		goto out;
	}
	sqlite3_busy_timeout(dst->db, (int)s->busy_ms);
	if (!sqlite3_get_autocommit(dst->db))
		exec(dst, "ROLLBACK", ignored, sizeof(ignored));
	exec(dst, "PRAGMA synchronous = FULL", ignored, sizeof(ignored));
	r = backup_pages(s, dst->db, src.db, "restore:mid");
	if (r == SQLITE_DONE)
		rc = 0;
	else if ((r & 0xff) == SQLITE_NOTADB || (r & 0xff) == SQLITE_CORRUPT)
		*not_db = true;
	else
		error("cannot write snapshot '%s' into '%s': %s%s", snap, s->path,
		      sqlite3_errstr(r), (r & 0xff) == SQLITE_BUSY ?
		      " (other processes kept it locked)" : "");
out:
	sqlite3_close(own.db);
	sqlite3_close(src.db);
	unlink_sidecars(snap);
	return rc;
}

static int sq_restore(struct store *s, const char *snap)
{
	char why[512];
	bool not_db;

	/* never restore from a snapshot that is not whole */
	if (!whole_file(snap, why, sizeof(why)))
		return error("cannot restore from snapshot '%s': %s; the database '%s' "
			     "was left as it is", snap, why, s->path);
	if (restore_in_place(s, snap, &not_db) == 0)
		return 0;
	if (!not_db)
		return -1;
	log_info("'%s' is missing or is not a database: replacing the file", s->path);
	sq_close(s);
	return restore_by_copy(s, snap);
}

/* A new database belongs to the owner of its directory (the server's user). */
static int owned_like_dir(const char *path, const char *final)
{
	char *dir = dir_of(final);
	struct stat st;
	int rc = 0;

	if (geteuid() == 0 && stat(dir, &st) == 0 && st.st_uid != 0 &&
	    chown(path, st.st_uid, st.st_gid) < 0)
		rc = error("cannot give '%s' to the owner of '%s': %s", path, dir,
			   strerror(errno));
	free(dir);
	return rc;
}

static int sq_create(struct store *s, int (*fn)(struct store *, void *), void *arg)
{
	char *final = s->path;
	char *tmp = xasprintf("%s.ferry-new", final);
	char *wal = xasprintf("%s-wal", tmp);
	int rc = -1;

	if ((unlink(tmp) < 0 && errno != ENOENT) || unlink_sidecars(tmp) < 0) {
		error("cannot remove '%s': %s", tmp, strerror(errno));
		goto out;
	}
	if (open_handle(s, tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) < 0)
		goto out;
	s->path = tmp;
	rc = fn(s, arg);
	sq_close(s);
	s->path = final;
	if (rc == 0 && path_exists(wal))
		rc = error("'%s' was not checkpointed on close", wal);
	if (rc == 0)
		rc = owned_like_dir(tmp, final);
	/* leftovers of an older file at the final name must not be replayed */
	if (rc == 0 && fsync_path(tmp) == 0 && unlink_sidecars(final) == 0 &&
	    rename(tmp, final) == 0) {
		rc = fsync_dir_of(final);
		goto out;
	}
	if (rc == 0)
		rc = error("cannot move '%s' to '%s': %s", tmp, final, strerror(errno));
	unlink(tmp);
	unlink_sidecars(tmp);
out:
	s->path = final;
	free(tmp);
	free(wal);
	return rc;
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
	s->status = EXIT_DATA;
	return error("migration '%s' ends inside a comment, a string or a trigger "
		     "body: the rest of the file would never run (nothing was changed)",
		     m->path);
}

/* A restore's journal holds at most every page of the database. */
static int sq_restore_size(struct store *s, unsigned long long *bytes)
{
	return sq_size(s, bytes);
}

static void sq_restore_by_hand(struct store *s, const char *snap, char *buf, size_t size)
{
	snprintf(buf, size, "stop every process that uses the database, then `cp '%s' "
		 "'%s' && rm -f '%s-wal' '%s-shm' '%s-journal'`", snap, s->path, s->path,
		 s->path, s->path);
}

static bool sq_snapshot_usable(struct store *s, const char *path, char *why, size_t size)
{
	(void)s;
	return whole_file(path, why, size);
}

static const char *sq_location(struct store *s)
{
	return s->path;
}

const struct store_ops sqlite_ops = {
	.engine = "sqlite",
	.exists = sq_exists,
	.open = sq_open,
	.close = sq_close,
	.read_ledger = sq_read_ledger,
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
};
