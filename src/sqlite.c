/*
 * sqlite: the SQLite backend. Migrations run with their ledger row in one
 * BEGIN IMMEDIATE transaction with foreign keys off (so a table rebuild
 * cannot cascade-delete) and a foreign_key_check before commit. Snapshots
 * are file copies taken under a write lock after a WAL checkpoint, or the
 * online backup API when the checkpoint cannot complete.
 */
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
 * on it, SQLite's included. So the descriptor the snapshot reads the live
 * database through stays open until SQLite's connection is closed.
 */
struct sq {
	int live_fd;
};

static struct sq *sq_priv(struct store *s)
{
	if (!s->priv) {
		struct sq *p = xcalloc(1, sizeof(*p));

		p->live_fd = -1;
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

static int sq_exists(struct store *s)
{
	struct stat st;

	if (stat(s->path, &st) == 0)
		return 1;
	if (errno == ENOENT) {
		char *dir = dir_of(s->path);
		struct stat dst;
		int ok = stat(dir, &dst) == 0 && S_ISDIR(dst.st_mode);

		if (!ok)
			error("database '%s': directory '%s' does not exist", s->path, dir);
		free(dir);
		return ok ? 0 : -1;
	}
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
	if (s->priv && sq_priv(s)->live_fd >= 0) {
		close(sq_priv(s)->live_fd);
		sq_priv(s)->live_fd = -1;
	}
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

static int sq_apply(struct store *s, const struct migration *m, long long *ms)
{
	char msg[1024] = "", ignored[256], point[64];
	double t0 = now_seconds();
	int rc = -1;

	/* outside any transaction, or SQLite ignores it */
	if (exec(s, "PRAGMA foreign_keys = OFF", msg, sizeof(msg)) < 0)
		goto out;
	if (!m->no_transaction) {
		if (exec(s, "BEGIN IMMEDIATE", msg, sizeof(msg)) < 0 ||
		    exec(s, LEDGER_DDL, msg, sizeof(msg)) < 0)
			goto rollback;
		if (run_script(s, m->sql, msg, sizeof(msg)) < 0 ||
		    fk_check(s, msg, sizeof(msg)) < 0)
			goto rollback;
		*ms = (long long)((now_seconds() - t0) * 1000);
		if (ledger_write(s, m, *ms, false, msg, sizeof(msg)) < 0)
			goto rollback;
		snprintf(point, sizeof(point), "migration:%lld:before-commit", m->version);
		crash_point(point);
		if (exec(s, "COMMIT", msg, sizeof(msg)) < 0)
			goto rollback;
		rc = 0;
		goto out;
	}
	/* no-transaction: dirty row first, clean after */
	if (exec(s, "BEGIN IMMEDIATE", msg, sizeof(msg)) < 0 ||
	    exec(s, LEDGER_DDL, msg, sizeof(msg)) < 0 ||
	    ledger_write(s, m, 0, true, msg, sizeof(msg)) < 0 ||
	    exec(s, "COMMIT", msg, sizeof(msg)) < 0)
		goto rollback;
	if (run_script(s, m->sql, msg, sizeof(msg)) < 0 ||
	    fk_check(s, msg, sizeof(msg)) < 0)
		goto out;
	*ms = (long long)((now_seconds() - t0) * 1000);
	if (ledger_write(s, m, *ms, false, msg, sizeof(msg)) < 0)
		goto out;
	rc = 0;
	goto out;
rollback:
	if (!sqlite3_get_autocommit(handle(s)))
		exec(s, "ROLLBACK", ignored, sizeof(ignored));
out:
	if (rc < 0)
		snprintf(s->err, sizeof(s->err), "%s", msg);
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

/* The online backup API: for when a file copy cannot be consistent. */
static int backup_to(struct store *s, const char *dst_path)
{
	sqlite3 *dst = NULL;
	sqlite3_backup *b;
	int rc;

	if (sqlite3_open_v2(dst_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    NULL) != SQLITE_OK) {
		error("cannot write snapshot '%s': %s", dst_path, sqlite3_errmsg(dst));
		sqlite3_close(dst);
		return -1;
	}
	b = sqlite3_backup_init(dst, "main", handle(s), "main");
	if (!b) {
		error("cannot write snapshot '%s': %s", dst_path, sqlite3_errmsg(dst));
		sqlite3_close(dst);
		return -1;
	}
	do {
		rc = sqlite3_backup_step(b, 4096);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			sqlite3_sleep(50);
		crash_point("snapshot:mid");
	} while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		errno = (rc & 0xff) == SQLITE_FULL ? ENOSPC : EIO;
		error("cannot write snapshot '%s': %s", dst_path, sqlite3_errstr(rc));
		sqlite3_close(dst);
		return -1;
	}
	/* a snapshot is a plain rollback-journal file, whatever the source */
	sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
	if (sqlite3_close(dst) != SQLITE_OK)
		return error("cannot close snapshot '%s'", dst_path);
	return fsync_path(dst_path);
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

static int sq_snapshot(struct store *s, const char *path, const char **how)
{
	char *tmp = xasprintf("%s.tmp", path);
	char msg[512], ignored[256];
	int in = -1, out = -1, rc = -1, saved;
	struct stat st;

	if (unlink(tmp) < 0 && errno != ENOENT) {
		error("cannot remove '%s': %s", tmp, strerror(errno));
		goto out;
	}
	if (!wal_checkpointed(s)) {
		/* a reader keeps frames in the WAL: copy through SQLite */
		*how = "backup API";
		if (backup_to(s, tmp) < 0)
			goto out_unlink;
		goto out_rename;
	}
	/* no other writer while the file is copied */
	if (exec(s, "BEGIN IMMEDIATE", msg, sizeof(msg)) < 0) {
		error("cannot lock '%s' for the snapshot: %s", s->path, msg);
		goto out;
	}
	if (wal_size(s) > 0) {
		/* a commit slipped in after the checkpoint: copy through SQLite */
		exec(s, "ROLLBACK", ignored, sizeof(ignored));
		*how = "backup API";
		if (backup_to(s, tmp) < 0)
			goto out_unlink;
		goto out_rename;
	}
	in = live_fd(s);
	if (in < 0 || fstat(in, &st) < 0) {
		error("cannot read '%s': %s", s->path, strerror(errno));
		goto out_txn;
	}
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		error("cannot write snapshot '%s': %s", tmp, strerror(errno));
		goto out_txn;
	}
	if (copy_fd(in, out, (unsigned long long)st.st_size, "snapshot",
		    "snapshot:mid", how) < 0 ||
	    fsync(out) < 0) {
		saved = errno;
		error("cannot write snapshot '%s': %s", tmp, strerror(saved));
		close(out);
		out = -1;
		unlink(tmp);
		errno = saved;
		goto out_txn;
	}
	if (close(out) < 0) {
		out = -1;
		error("cannot write snapshot '%s': %s", tmp, strerror(errno));
		unlink(tmp);
		goto out_txn;
	}
	out = -1;
	rc = 0;
out_txn:
	saved = errno;
	exec(s, "ROLLBACK", ignored, sizeof(ignored));
	errno = saved;
	if (rc < 0)
		goto out;
	rc = -1;
out_rename:
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
	unlink(tmp);
	errno = saved;
out:
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

static int sq_restore(struct store *s, const char *snap)
{
	char *tmp = xasprintf("%s.ferry-restore", s->path);
	int in = -1, out = -1, rc = -1;
	struct stat st, orig;
	bool have_orig = stat(s->path, &orig) == 0;
	const char *how;
	char why[512];

	/* never replace a database with a snapshot that is not whole */
	if (!whole_file(snap, why, sizeof(why))) {
		error("cannot restore from snapshot '%s': %s; the database '%s' was "
		      "left as it is", snap, why, s->path);
		goto out;
	}
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
	.snapshot_usable = sq_snapshot_usable,
	.create = sq_create,
	.size = sq_size,
	.location = sq_location,
};
