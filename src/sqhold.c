/*
 * sqhold: keeping other writers out of a SQLite database while an upgrade
 * can still be undone. One write transaction is held from the snapshot to
 * the commit; a migration outside a transaction needs locking_mode
 * EXCLUSIVE and, in WAL mode, no other process with the file open (found
 * through the -shm file's DMS byte), so ferry waits for them to leave.
 */
#include "sqlite.h"
#include "exits.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
	struct flock fl = {
		.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 128, .l_len = 1
	};

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

	if (sqlite3_prepare_v2(handle(s), "PRAGMA journal_mode", -1, &st, NULL) ==
		    SQLITE_OK &&
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
		 "outside a transaction needs the database to itself",
		 s->lock_timeout, who, s->path);
}

static void alone_gave_up(void *arg, const char *who, bool stopped)
{
	struct store *s = arg;

	(void)stopped;
	store_fail(
		s, EXIT_TEMPFAIL,
		"'%s' is still open in %s: a migration that runs outside a transaction "
		"needs the database to itself; nothing was changed: stop the other "
		"process (the old release?) and start again",
		s->path, who);
}

static int wait_alone(struct store *s)
{
	struct wait w = { .timeout = s->lock_timeout,
			  .pause = 0.1,
			  .try_once = alone_try,
			  .waiting = alone_waiting,
			  .gave_up = alone_gave_up,
			  .arg = s };

	return wait_for(&w) == 0 ? 0 : -1;
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

/*
 * From here until the close no other process commits: a write transaction
 * is open (their writes wait out their busy timeout, then fail loudly).
 * exclusive: locking_mode EXCLUSIVE instead, whose lock outlives the
 * commits of migrations that run outside a transaction (readers are kept
 * out as well); the transaction then opens with the first migration.
 * -1 logged; status 75 when another process keeps the lock.
 */
int sq_hold(struct store *s, bool exclusive)
{
	struct sq *p = sq_priv(s);
	char msg[512], who[96];

	if (p->held)
		return 0;
	if (exclusive && is_wal(s) && wait_alone(s) < 0)
		return -1;
	if (!exclusive && shm_in_use(s, who, sizeof(who)))
		log_info("'%s' is open in %s too: it can read during the upgrade, and "
			 "its writes wait until the upgrade is over",
			 s->path, who);
	if ((exclusive &&
	     sq_exec(s, "PRAGMA locking_mode = EXCLUSIVE", msg, sizeof(msg)) < 0) ||
	    sq_exec(s, "PRAGMA foreign_keys = OFF", msg, sizeof(msg)) < 0)
		return error("cannot prepare '%s' for the upgrade: %s", s->path, msg);
	wal_checkpointed(s); /* lets the snapshot copy the file itself */
	/* exclusive: the lock is taken now and kept with no transaction open,
	 * so the snapshot can read through this very connection */
	if (sq_exec(s, exclusive ? "BEGIN EXCLUSIVE" : "BEGIN IMMEDIATE", msg,
		    sizeof(msg)) < 0 ||
	    (exclusive && sq_exec(s, "COMMIT", msg, sizeof(msg)) < 0)) {
		if ((sqlite3_errcode(handle(s)) & 0xff) == SQLITE_BUSY) {
			return store_fail(
				s, EXIT_TEMPFAIL,
				"cannot lock '%s' for the upgrade: another process kept "
				"writing to it for %lld ms; nothing was changed: start "
				"again later",
				s->path, s->busy_ms);
		}
		return error("cannot lock '%s' for the upgrade: %s", s->path, msg);
	}
	p->held = true;
	p->exclusive = exclusive;
	sq_written_reset(p, false); /* the check after sees what comes now */
	return 0;
}

/* Ends the hold: commit keeps the work, otherwise what is not committed
 * is rolled back. -1 with s->err set when the commit fails (rolled back).
 * An exclusive lock is kept until the connection closes. */
int sq_settle(struct store *s, bool commit)
{
	struct sq *p = sq_priv(s);
	char msg[512], ignored[256];
	int rc = 0;

	if (!p->held)
		return 0;
	p->held = false;
	if (commit && !sqlite3_get_autocommit(handle(s)) &&
	    sq_exec(s, "COMMIT", msg, sizeof(msg)) < 0) {
		snprintf(s->err, sizeof(s->err), "cannot commit the upgrade: %s", msg);
		if ((sqlite3_errcode(handle(s)) & 0xff) == SQLITE_BUSY) {
			/* readers kept their lock past the busy timeout */
			s->status = EXIT_TEMPFAIL;
			snprintf(
				s->err, sizeof(s->err),
				"cannot commit the upgrade: other "
				"processes kept reading '%s' for more than %lld ms; start "
				"again later",
				s->path, s->busy_ms);
		}
		rc = -1;
	}
	if (!sqlite3_get_autocommit(handle(s)))
		sq_exec(s, "ROLLBACK", ignored, sizeof(ignored));
	/* locking_mode EXCLUSIVE stays until the close: a restore that may
	 * follow writes through this connection, with the lock still held */
	return rc;
}
