/*
 * postgres: the PostgreSQL backend, cut in six: postgres.c (connection,
 * SQL surface, migrations, the ops table), pglock.c (lock, journal table,
 * write hold), pgsnapshot.c (template snapshots, the snapshot kinds,
 * restore), pgdump.c (the logical dump and its replay), pgsplit.c
 * (splitting scripts into statements) and pgcheck.c (privileges, and what
 * ferry doctor asks). This header is what they share;
 * the rest of ferry sees only postgres_ops in store.h.
 */
#ifndef FERRY_POSTGRES_H
#define FERRY_POSTGRES_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "store.h"

struct store;

#define JOURNAL_TABLE "ferry_journal"

struct pg {
	bool locked;
	bool held;     /* new sessions start read-only (pg_hold) */
	PGconn *maint; /* to the maintenance database: lock, templates */
	long long lock_key;
	char dbname[256];
	bool piping; /* a pipeline is open (pgpipe.c): sql_exec only sends */
	int queued;  /* commands sent by sql_exec whose results are unread */
};

struct pg *pg_priv(struct store *s);
PGconn *pg_conn(struct store *s);
int pg_open(struct store *s);
/* Drops the connection to the database itself (the lock stays). */
void pg_disconnect(struct store *s);
/* Runs a command on c; -1 with s->err (and sqlstate if asked) set. */
int pg_run(struct store *s, PGconn *c, const char *sql, char sqlstate[6]);
/* A query with text parameters: the result, or NULL with s->err set. */
PGresult *pg_query(struct store *s, PGconn *c, const char *sql, int n,
		   const char *const *params);
void pg_rollback(PGconn *c);
/* Server notices go to the log (debug), like every other line. */
void pg_on_notice(void *arg, const char *msg);
/* s->err said as the failure of a migration's ledger row */
void pg_record_failed(struct store *s);

/* "near line N: message" in s->err for a statement that failed */
struct sql_statement;
void pg_statement_error(struct store *s, const struct sql_statement *st, PGresult *r);

/* pgpipe.c: transactional migrations pipelined in the open transaction */
bool pg_pipe_fits(const struct migration *const *m, size_t n);
int pg_pipe_send(struct store *s, const char *sql, int n, const char *const *params);
int pg_pipe_apply(struct store *s, const struct migration *const *m, size_t n, size_t *at,
		  char sqlstate[6]);

/* pgurl.c: which URLs are PostgreSQL's, checked before libpq sees them */
bool pg_claims(const char *url);
int pg_init(struct store *s, const char *url);

/* postgres.c, for pglock.c */
void pg_mark_params(struct store *s, char hi[24], char lo[24], int which);
void pg_session_setup(struct store *s);
int pg_maint_connect(struct store *s);
/* A connection to database dbname (NULL: the URL's) of the store's server,
 * waiting while it is down, starting or full; NULL with why and *status. */
PGconn *pg_connect_wait(struct store *s, const char *dbname, const char *what, char *why,
			size_t size, int *status);
/* The connection that holds (or takes) the migrator lock. */
PGconn *pg_lock_conn(struct store *s);

/* pglock.c: the migrator lock, the journal table, the write hold */
int pg_lock(struct store *s, long long timeout);
void pg_unlock(struct store *s);
int pg_journal_load(struct store *s, char *buf, size_t size);
int pg_journal_save(struct store *s, const char *text);
int pg_hold(struct store *s, bool exclusive);
void pg_unhold(struct store *s);
/* Who holds the migrator lock, without taking it (store.h's lock_holder) */
int pg_lock_holder(struct store *s, char *who, size_t size);

/* pgcheck.c: the role's privileges, and what ferry doctor asks (store.h) */
PGconn *pg_connect_db(struct store *s, const char *dbname, char *why, size_t size);
int pg_check_privileges(struct store *s);
int pg_privileges(struct store *s, char *why, size_t size);
int pg_open_read_only(struct store *s);
int pg_scratch_open(struct store *s, struct store *out, char *why, size_t size);
void pg_scratch_drop(struct store *s, struct store *scratch);
int pg_describe_schema(struct store *s, store_row_fn row, void *arg);
int pg_run_checks(struct store *s, const char *sql, store_row_fn row, void *arg);

/* pgarchive.c: a backup archive's database (store.h's archive ops) */
struct dump_sink;
struct dump_source;
int pg_archive_dump(struct store *s, struct dump_sink *out, unsigned long long *rows);
const char *pg_archive_name(struct store *s);
int pg_archive_load(struct store *s, const char *name, struct dump_source *in,
		    unsigned long long *rows);
int pg_archive_swap(struct store *s, const char *staged, const char *target,
		    const char *old);
int pg_archive_drop(struct store *s, const char *name);

/* pgrebuild.c: rebuild mode (store.h's rebuild ops) */
int pg_rebuild_build(struct store *s, const struct rebuild_job *job);
int pg_rebuild_swap(struct store *s);
void pg_rebuild_discard(struct store *s);

struct snapshot_info;
struct version;
int pg_snapshot(struct store *s, const char *path, struct snapshot_info *info);
int pg_restore(struct store *s, const char *path);
bool pg_snapshot_usable(struct store *s, const char *path, char *why, size_t size);
bool pg_snapshot_version(struct store *s, const char *path, struct version *v);
int pg_snapshot_open(struct store *s, const char *path, struct store *out, char *why,
		     size_t size);
int pg_snapshot_verify(struct store *s, const char *path, char *why, size_t size);
void pg_cleanup(struct store *s);
void pg_drop_doctor_leftovers(struct store *s);

/* pgdump.c: the logical dump of the current schema (see there) */
struct dump_sink;
struct dump_source;
/* 0 when the dump can rebuild every object of the schema; else logs the
 * first it cannot and returns -1. Before pg_dump_write, and before any
 * file is made for it. */
int pg_dump_check(struct store *s);
/* Dumps the schema and its data to out in one consistent view; *rows
 * counts the rows. The caller closes or aborts out. */
int pg_dump_write(struct store *s, struct dump_sink *out, unsigned long long *rows);
/* Drops the schema's objects and replays the dump from in, in one
 * transaction; *rows (if not NULL): the rows the server copied in. */
int pg_dump_replay(struct store *s, struct dump_source *in, unsigned long long *rows);
/* The logical snapshot file: the dump in one zstd frame at path. */
int pg_logical_snapshot(struct store *s, const char *path);
int pg_logical_restore(struct store *s, const char *path);
/* The schema version recorded in it into *v; false when unknown. */
bool pg_logical_version(const char *path, struct version *v);
/* Reads it through to its end record, as a restore would: 0, or -1 with why */
int pg_logical_verify(const char *path, char *why, size_t size);

struct sql_statement {
	const char *start; /* into the script; not NUL-terminated */
	size_t len;
	int line; /* 1-based line of the statement's first character */
};

/*
 * Splits a script at top-level semicolons, minding comments, string
 * literals, quoted identifiers, dollar quotes and BEGIN ATOMIC bodies.
 * Returns the number of non-empty statements; *out is malloc'd.
 */
size_t pg_split(const char *sql, struct sql_statement **out);
/*
 * 0 when the script ends at the top level; -1 when it ends inside a string
 * literal, quoted identifier, dollar quote, comment or BEGIN ATOMIC body,
 * with why = "line N: ..." saying what was left open. pg_split keeps such
 * a tail in its last statement (the server refuses it); this is for a
 * refusal before anything runs.
 */
int pg_split_check(const char *sql, char *why, size_t size);
/* Must this statement run outside a transaction block? */
bool pg_needs_autocommit(const char *stmt, size_t len);
/* "BEGIN", "COMMIT" ... when the statement controls the transaction, or NULL */
const char *pg_transaction_control(const char *stmt, size_t len);

#endif
