/*
 * sqsnapshot: SQLite snapshots, restores and new databases. Snapshots are
 * file copies under the upgrade's lock after a WAL checkpoint, or the
 * online backup API when the checkpoint cannot complete; a restore writes
 * the snapshot's pages into the live database through the backup API, so
 * connections that other processes hold stay valid and see the restored
 * content (a file that is missing or no database is replaced by a copy). A
 * new database is built under a temporary name and renamed into place.
 */
#include "log.h"
#include "sqlite.h"
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
#include <unistd.h>

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
		snprintf(why, size,
			 "truncated or damaged (%lld bytes, %llu pages of %llu)",
			 (long long)st.st_size, pages, page);
		return false;
	}
	return true;
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
			log_info(
				"waiting up to %lld s for the other processes using '%s' "
				"to finish their transactions",
				s->lock_timeout, s->path);
			said = true;
		}
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			sqlite3_sleep(50);
		crash_point(crash);
	} while (rc == SQLITE_OK || ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) &&
				     now_seconds() < deadline));
	sqlite3_backup_finish(b);
	return rc;
}

/*
 * The online backup API, for when a file copy cannot be consistent: read
 * through a second connection, since the first may hold the upgrade's
 * write transaction (which keeps the content as it is until then), or
 * through the first when an exclusive hold keeps everyone else out.
 */
static int backup_to(struct store *s, const char *dst_path, bool durable)
{
	struct store src = { .path = s->path, .busy_ms = s->busy_ms };
	sqlite3 *dst = NULL;
	int rc;

	/* an exclusive hold keeps even readers out, but has no transaction
	 * open: then this connection itself is read */
	if (!sq_priv(s)->exclusive) {
		if (sq_open_handle(&src, s->path, SQLITE_OPEN_READWRITE) < 0)
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
	return durable ? fsync_path(dst_path) : 0;
fail:
	sqlite3_close(dst);
	sqlite3_close(src.db);
	return -1;
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
int sq_snapshot(struct store *s, const char *path, struct snapshot_info *info)
{
	const char *how = "?";

	bool own = !sq_priv(s)->held;
	char *tmp = xasprintf("%s.tmp", path);
	int in, out = -1, rc = -1, saved;
	char msg[512];
	struct stat st;

	if (unlink(tmp) < 0 && errno != ENOENT) {
		error_errno("cannot remove '%s'", tmp);
		goto out;
	}
	if (own && sq_hold(s, false) < 0)
		goto out;
	if (wal_size(s) > 0) {
		/* a reader keeps frames in the WAL: copy through SQLite */
		how = "backup API";
		if (backup_to(s, tmp, !info->scratch) < 0)
			goto out_unlink;
		goto out_check;
	}
	in = live_fd(s);
	if (in < 0 || fstat(in, &st) < 0) {
		error_errno("cannot read '%s'", s->path);
		goto out;
	}
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		error_errno("cannot write snapshot '%s'", tmp);
		goto out;
	}
	if (copy_fd(in, out, (unsigned long long)st.st_size, "snapshot", "snapshot:mid",
		    &how) < 0 ||
	    (!info->scratch && fsync(out) < 0)) {
		error_errno("cannot write snapshot '%s'", tmp);
		goto out_unlink;
	}
	saved = close(out);
	out = -1;
	if (saved < 0) {
		error_errno("cannot write snapshot '%s'", tmp);
		goto out_unlink;
	}
out_check:
	if (!whole_file(tmp, msg, sizeof(msg))) {
		error("the snapshot '%s' is not a whole copy (%s): no upgrade", tmp, msg);
		goto out_unlink;
	}
	if (rename(tmp, path) < 0) {
		error_errno("cannot rename '%s' to '%s'", tmp, path);
		goto out_unlink;
	}
	rc = info->scratch ? 0 : fsync_dir_of(path);
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

/* path's -wal, -shm and -journal, and path itself unless sidecars_only */
int sq_unlink_files(const char *path, bool sidecars_only)
{
	static const char *const ext[] = { "", "-wal", "-shm", "-journal" };

	for (size_t i = sidecars_only; i < sizeof(ext) / sizeof(ext[0]); i++) {
		char *p = xasprintf("%s%s", path, ext[i]);
		int r = unlink(p);

		if (r < 0 && errno != ENOENT) {
			error_errno("cannot remove '%s'", p);
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
	if (sq_open_handle(&tmp, path, SQLITE_OPEN_READWRITE) < 0) {
		snprintf(why, size, "cannot open it");
		return false;
	}
	ok = sq_quick_check(&tmp, why, size) == 0;
	sqlite3_close(tmp.db);
	sq_unlink_files(path, true);
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
		error_errno("cannot read snapshot '%s'", snap);
		goto out;
	}
	unlink(tmp);
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0 ||
	    copy_fd(in, out, (unsigned long long)st.st_size, "restore", "restore:mid",
		    &how) < 0 ||
	    (have_orig && same_owner(out, &orig) < 0) || fsync(out) < 0) {
		error_errno("cannot write '%s'", tmp);
		goto out_unlink;
	}
	if (close(out) < 0) {
		out = -1;
		error_errno("cannot write '%s'", tmp);
		goto out_unlink;
	}
	out = -1;
	if (!checks_out(tmp, why, sizeof(why))) {
		error("cannot restore from snapshot '%s': its copy fails the integrity "
		      "check (%s); the database '%s' was left as it is",
		      snap, why, s->path);
		goto out_unlink;
	}
	/* A WAL or hot journal of the replaced file must never be replayed
	 * onto the restored one: remove them first, durably. */
	if (sq_unlink_files(s->path, true) < 0 || fsync_dir_of(s->path) < 0)
		goto out_unlink;
	crash_point("restore:before-rename");
	if (rename(tmp, s->path) < 0) {
		error_errno("cannot rename '%s' to '%s'", tmp, s->path);
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
	char why[512];
	int rc = -1, r;

	*not_db = false;
	/* read-write: a WAL-mode copy needs its -shm to be read at all */
	if (sq_open_handle(&src, snap, SQLITE_OPEN_READWRITE) < 0)
		return -1;
	if (sq_quick_check(&src, why, sizeof(why)) < 0) {
		error("cannot restore from snapshot '%s': it fails the integrity check "
		      "(%s); the database '%s' was left as it is",
		      snap, why, s->path);
		goto out;
	}
	if (dst == &own && (!path_exists(s->path) ||
			    sqlite3_open_v2(s->path, (sqlite3 **)&own.db,
					    SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)) {
		*not_db = true;
		goto out;
	}
	sqlite3_busy_timeout(dst->db, (int)s->busy_ms);
	if (!sqlite3_get_autocommit(dst->db))
		sqlite3_exec(dst->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_exec(dst->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	r = backup_pages(s, dst->db, src.db, "restore:mid");
	if (r == SQLITE_DONE)
		rc = 0;
	else if ((r & 0xff) == SQLITE_NOTADB || (r & 0xff) == SQLITE_CORRUPT)
		*not_db = true;
	else
		error("cannot write snapshot '%s' into '%s': %s%s", snap, s->path,
		      sqlite3_errstr(r),
		      (r & 0xff) == SQLITE_BUSY ? " (other processes kept it locked)"
						: "");
out:
	sqlite3_close(own.db);
	sqlite3_close(src.db);
	sq_unlink_files(snap, true);
	return rc;
}

int sq_restore(struct store *s, const char *snap)
{
	char why[512];
	bool not_db;

	/* never restore from a snapshot that is not whole */
	if (!whole_file(snap, why, sizeof(why)))
		return error("cannot restore from snapshot '%s': %s; the database '%s' "
			     "was left as it is",
			     snap, why, s->path);
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
		rc = error_errno("cannot give '%s' to the owner of '%s'", path, dir);
	free(dir);
	return rc;
}

/*
 * A database being created is built under a temporary name that no one
 * else opens and that the next boot deletes unread (sq_unlink_files
 * below) if ferry dies before the rename: a power cut or a kill -9 in the
 * middle can leave a torn file only there. So its commits need neither an
 * fsync each (synchronous = OFF) nor a journal on disk (journal_mode =
 * MEMORY: a failed migration still rolls back to its savepoint, in
 * memory). Nothing else may open it either (locking_mode = EXCLUSIVE:
 * one lock for the whole build, and a page cache that stays valid
 * between the migrations). Durability comes once, at the end: the file is fsynced before
 * the rename, the directory after it, and only then does ferry say the
 * database was created. 4000 fdatasync calls for 1000 migrations become one.
 */
static const char create_pragmas[] = "PRAGMA synchronous = OFF; "
				     "PRAGMA journal_mode = MEMORY; "
				     "PRAGMA locking_mode = EXCLUSIVE";

int sq_create(struct store *s, int (*fn)(struct store *, void *), void *arg)
{
	char *final = s->path;
	char *tmp = xasprintf("%s.ferry-new", final);
	char *wal = xasprintf("%s-wal", tmp);
	char why[256];
	int rc = -1;

	if (sq_unlink_files(tmp, false) < 0) /* logged */
		goto out;
	if (sq_open_handle(s, tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) < 0)
		goto out;
	s->path = tmp;
	if (sq_exec(s, create_pragmas, why, sizeof(why)) < 0)
		rc = error("cannot set up '%s': %s", tmp, why);
	else
		rc = fn(s, arg);
	sq_close(s);
	s->path = final;
	if (rc == 0 && path_exists(wal))
		rc = error("'%s' was not checkpointed on close", wal);
	if (rc == 0)
		rc = owned_like_dir(tmp, final);
	/* leftovers of an older file at the final name must not be replayed */
	if (rc == 0 && fsync_path(tmp) == 0 && sq_unlink_files(final, true) == 0 &&
	    rename(tmp, final) == 0) {
		rc = fsync_dir_of(final);
		goto out;
	}
	if (rc == 0)
		rc = error_errno("cannot move '%s' to '%s'", tmp, final);
	unlink(tmp);
	sq_unlink_files(tmp, true);
out:
	s->path = final;
	free(tmp);
	free(wal);
	return rc;
}

void sq_restore_by_hand(struct store *s, const char *snap, char *buf, size_t size)
{
	snprintf(buf, size,
		 "stop every process that uses the database, then `cp '%s' "
		 "'%s' && rm -f '%s-wal' '%s-shm' '%s-journal'`",
		 snap, s->path, s->path, s->path, s->path);
}

bool sq_snapshot_usable(struct store *s, const char *path, char *why, size_t size)
{
	(void)s;
	return whole_file(path, why, size);
}
