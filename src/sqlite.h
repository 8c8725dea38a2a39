/*
 * sqlite: the SQLite backend, cut in four: sqlite.c (the connection, the
 * ledger, migrations, the ops table), sqhold.c (the upgrade's hold on
 * other writers), sqsnapshot.c (snapshots, restores, new databases) and
 * sqcheck.c (what ferry doctor asks, none of it a write). This header is
 * what they share; the rest of ferry sees only sqlite_ops in store.h.
 */
#ifndef FERRY_SQLITE_H
#define FERRY_SQLITE_H

#include "store.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Closing ANY descriptor of a file drops every POSIX lock the process holds
 * on it, SQLite's included. So the descriptors the snapshot reads the live
 * database through, and the one that probes its -shm, stay open until
 * SQLite's connection is closed.
 */
struct sq {
	int live_fd;
	int shm_fd;
	bool held;	/* the upgrade's write transaction is open */
	bool exclusive; /* locking_mode EXCLUSIVE: the lock outlives commits */
	/* what the held migrations wrote (sqverify.c) */
	char **written;
	size_t n_written;
	bool written_all; /* ... or anything: the whole file is checked */
};

static inline sqlite3 *handle(struct store *s)
{
	return s->db;
}

struct sq *sq_priv(struct store *s);
/* Opens path as s->db with ferry's busy timeout; -1 logged. */
int sq_open_handle(struct store *s, const char *path, int flags);
void sq_close(struct store *s);
/* The upgrade's lock (see sqlite.c); -1 logged, status 75 when busy. */
int sq_hold(struct store *s, bool exclusive);
int sq_settle(struct store *s, bool commit);
/* PRAGMA quick_check of this connection; msg gets what it found. */
int sq_quick_check(struct store *s, char *msg, size_t size);
/* The first row of a PRAGMA check must be "ok"; else msg says what it was. */
int sq_pragma_ok(struct store *s, const char *sql, char *msg, size_t size);

/* sqverify.c: the check after an upgrade, of what it wrote */
void sq_written_reset(struct sq *p, bool all);
void sq_written_note(struct sq *p, int action, const char *a, const char *b,
		     const char *db);
int sq_written_check(struct store *s, const char *ledger, char *msg, size_t size);

int sq_snapshot(struct store *s, const char *path, struct snapshot_info *info);
int sq_restore(struct store *s, const char *snap);
/* path's -wal, -shm and -journal, and path itself unless sidecars_only */
int sq_unlink_files(const char *path, bool sidecars_only);
bool sq_snapshot_usable(struct store *s, const char *path, char *why, size_t size);
void sq_restore_by_hand(struct store *s, const char *snap, char *buf, size_t size);
int sq_create(struct store *s, int (*fn)(struct store *, void *), void *arg);

/* sqrebuild.c: rebuild mode (store.h's rebuild ops) */
int sq_rebuild_build(struct store *s, const struct rebuild_job *job);
int sq_rebuild_swap(struct store *s);
void sq_rebuild_discard(struct store *s);

/* sqcheck.c: what ferry doctor asks (store.h), none of it a write */
int sq_open_read_only(struct store *s);
int sq_snapshot_open(struct store *s, const char *path, struct store *out, char *why,
		     size_t size);
int sq_snapshot_verify(struct store *s, const char *path, char *why, size_t size);
int sq_scratch_open(struct store *s, struct store *out, char *why, size_t size);
void sq_scratch_drop(struct store *s, struct store *scratch);
int sq_describe_schema(struct store *s, store_row_fn row, void *arg);
int sq_run_checks(struct store *s, const char *sql, store_row_fn row, void *arg);

/* Steps st, calling row() for each row (NULL: none) until it returns
 * non-zero: 0 done, 1 stopped by row(), -1 with s->err on an error. */
int sq_step_rows(struct store *s, sqlite3_stmt *st, store_row_fn row, void *arg);
/* Runs sql on the database; -1 with msg set to SQLite's words. */
int sq_exec(struct store *s, const char *sql, char *msg, size_t size);

#endif
