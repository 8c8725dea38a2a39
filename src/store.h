/*
 * store: what the upgrade needs from a database, whatever the engine.
 * SQLite lives behind it now, PostgreSQL next; nothing above this
 * interface says sqlite3_ or PQ. Backends never know about the journal.
 */
#ifndef FERRY_STORE_H
#define FERRY_STORE_H

#include "version.h"

#include <stdbool.h>
#include <stddef.h>

struct migration;
struct migration_set;
struct rebuild_job;
struct dump_sink;
struct dump_source;

/* How a snapshot was taken, for the log line. */
struct snapshot_info {
	char how[1400]; /* "copy_file_range", "template database app_pre_upgrade" ... */
	bool is_file;	/* the snapshot is the file at its path (its size means
			 * something); else a marker of a copy kept elsewhere */
	/* in, set by the caller: a scratch copy, read once and deleted (a
	 * backup's staged database), so it needs no fsync; what must last is
	 * what is made of it, made durable on its own */
	bool scratch;
};

/* The engines' SQL dialects, for the few statements that differ. */
enum sql_dialect { SQL_SQLITE, SQL_POSTGRES, SQL_DIALECTS };

struct store;

/*
 * What a backend calls, inside its own transaction, to keep the ledger
 * beside a migration; the ledger layer (ledger.c) provides it, so the
 * backends run the ledger's SQL without knowing it.
 */
struct store_recorder {
	const char *table;		 /* for privilege checks */
	int (*prepare)(struct store *s); /* creates the table if missing */
	/* the migration as applied (dirty: started outside a transaction) */
	int (*record)(struct store *s, const struct migration *m, long long ms,
		      bool dirty);
	/* Optional: done of its statements have run (statement by statement) */
	int (*progress)(struct store *s, const struct migration *m, size_t done);
	/* Removes version v from the ledger, inside the current transaction
	 * (a migration undone by ferry downgrade) */
	int (*forget)(struct store *s, const struct version *v);
};

/* One row of a query's result: ncols text values (NULL for SQL NULL). */
typedef int (*store_row_fn)(void *arg, int ncols, const char *const *values);
/* One table of the database; in_schema: in the schema ferry works in. */
typedef int (*store_table_fn)(void *arg, const char *name, bool in_schema);

/*
 * Each backend fills what it has. Optional entries (NULL) fall back to the
 * generic way: lock and journal in files of the state dir, every migration
 * in its own transaction, no privilege check.
 */
struct store_ops {
	const char *engine;
	/* Is url one of this engine's? (store_init asks each in turn) */
	bool (*claims)(const char *url);
	/* Fills s from url (s->url_redacted is set); -1 logged (78). */
	int (*init)(struct store *s, const char *url);
	/* 1: the database exists, 0: not yet (first boot), -1: error (logged,
	 * s->status says why: 69 unreachable, 78 bad location) */
	int (*exists)(struct store *s);
	/* Opens an existing database; -1 logged (65 for a corrupt file). */
	int (*open)(struct store *s);
	void (*close)(struct store *s);
	/* Optional: drops the connection to the database itself, keeping the
	 * migrator lock (close otherwise) */
	void (*disconnect)(struct store *s);
	enum sql_dialect dialect;
	/*
	 * The SQL surface for the layers above (ledgers): a statement with
	 * text parameters $1..$n, a query calling row() per result row (a
	 * non-zero return stops it), the tables of the database but the
	 * backend's own. -1 with s->err set.
	 */
	int (*sql_exec)(struct store *s, const char *sql, int n,
			const char *const *params);
	int (*sql_query)(struct store *s, const char *sql, int n,
			 const char *const *params, store_row_fn row, void *arg);
	int (*list_tables)(struct store *s, store_table_fn fn, void *arg);
	/* integrity check: 0 fine, -1 logged */
	int (*check)(struct store *s);
	/* Runs one migration with its ledger row; fills *ms. -1, s->err set. */
	int (*apply)(struct store *s, const struct migration *m, long long *ms);
	/* Optional: runs transactional migrations in one transaction, so a
	 * failure undoes them all and no snapshot is needed. */
	int (*apply_all)(struct store *s, const struct migration *const *m, size_t n,
			 const struct migration **failed);
	/* Optional: must this migration run outside a transaction? */
	bool (*outside_transaction)(const struct migration *m);
	/* integrity + foreign keys of the result; -1, s->err set */
	int (*verify)(struct store *s);
	/* Optional: refuses a migration the backend cannot run safely (-1
	 * logged, status 65), before anything is written */
	int (*check_migration)(struct store *s, const struct migration *m);
	/* Optional: the schema version a snapshot holds in *v; false when
	 * unknown (zero is a version: no migrations applied) */
	bool (*snapshot_version)(struct store *s, const char *path, struct version *v);
	/* Optional: is the snapshot at path there and whole? */
	bool (*snapshot_usable)(struct store *s, const char *path, char *why,
				size_t size);
	/* Optional: can the role do what migrations need? -1 logged, status 77 */
	int (*check_privileges)(struct store *s);
	/*
	 * Optional: from now until unhold (or the close) no other process
	 * commits (their writes wait or fail loudly), so that nothing written
	 * beside the upgrade is lost when it is undone. exclusive: a
	 * migration runs outside a transaction (commits in between). -1
	 * logged; s->status 75 when others keep the database.
	 */
	int (*hold)(struct store *s, bool exclusive);
	/* Optional: commits the held work (keep) or undoes what is not
	 * committed yet; others stay out. -1 with s->err set when the commit
	 * fails (the work is then undone). */
	int (*settle)(struct store *s, bool keep);
	/* Optional: lets others write again; also after a crash (recovery). */
	void (*unhold)(struct store *s);
	/* Writes a consistent copy to path (final name, crash-safe). */
	int (*snapshot)(struct store *s, const char *path, struct snapshot_info *info);
	/* Replaces the database with the snapshot at path; logs on failure. */
	int (*restore)(struct store *s, const char *path);
	/* Optional: builds a new database by fn(), then moves it into place. */
	int (*create)(struct store *s, int (*fn)(struct store *, void *), void *arg);
	/*
	 * Rebuild mode (rebuild.h), which every engine has: builds the fresh database
	 * beside the held old one: a staging copy of the old data, job's
	 * transforms run on it, schema.sql, the common tables and columns
	 * copied across, the ledger written at the schema's version,
	 * verified. The old database is untouched. -1 with s->err set.
	 */
	int (*rebuild_build)(struct store *s, const struct rebuild_job *job);
	/* Moves the built database over the old one in one step and closes
	 * the store; -1 logged with the old database still in place */
	int (*rebuild_swap)(struct store *s);
	/* Removes what a build left beside the database */
	void (*rebuild_discard)(struct store *s);
	/*
	 * Optional, a backup archive of a database that is no file
	 * (PostgreSQL; SQLite's is its snapshot file). All -1 logged, with
	 * s->status saying why where it is not the default.
	 * archive_dump: the schema and its data to out, one consistent view,
	 * *rows the rows written. archive_name: the database's name.
	 * archive_load: creates the database name beside the live one (same
	 * owner and encoding) and replays a dump into it, *rows the rows the
	 * server took. archive_swap: renames target to old and staged to
	 * target in one step (0 at once when staged is gone: done before),
	 * waiting up to lock_timeout for other sessions on target to leave
	 * (then s->status 75, nothing renamed). archive_drop: drops name if
	 * it is there.
	 */
	int (*archive_dump)(struct store *s, struct dump_sink *out,
			    unsigned long long *rows);
	const char *(*archive_name)(struct store *s);
	int (*archive_load)(struct store *s, const char *name, struct dump_source *in,
			    unsigned long long *rows);
	int (*archive_swap)(struct store *s, const char *staged, const char *target,
			    const char *old);
	int (*archive_drop)(struct store *s, const char *name);
	/* Bytes a snapshot will need; -1 logged */
	int (*size)(struct store *s, unsigned long long *bytes);
	/* Optional: bytes a restore needs beside the database (its journal) */
	int (*restore_size)(struct store *s, unsigned long long *bytes);
	/* Optional: what to do by hand when a restore failed, one sentence */
	void (*restore_by_hand)(struct store *s, const char *snap, char *buf,
				size_t size);
	/* A path whose directory holds snapshots and state by default. */
	const char *(*location)(struct store *s);
	/* Optional migrator lock: 0 taken, 1 timed out (logged), -1 error */
	int (*lock)(struct store *s, long long timeout);
	void (*unlock)(struct store *s);
	/* Optional journal storage: the text of the journal, "" for none */
	int (*journal_load)(struct store *s, char *buf, size_t size);
	int (*journal_save)(struct store *s, const char *text); /* NULL: clear */
	/* Optional: removes snapshots the backend keeps outside files, and
	 * leftovers of its own (temp names of a create or a restore) */
	void (*cleanup)(struct store *s);
	/* Optional: removes what an interrupted snapshot to path left beside
	 * it, other than path.tmp (which every backend writes first) */
	void (*remove_partial)(struct store *s, const char *path);

	/*
	 * What `ferry doctor` asks (doctor.c), all optional: it never writes
	 * to the database, and a check whose op is missing is left out.
	 */
	/* Opens the existing database so that nothing can be written through
	 * the connection; -1 logged */
	int (*open_read_only)(struct store *s);
	/* check_privileges without a log line: 0 with what the role may do in
	 * why, or the exit status it would give with the reason */
	int (*privileges)(struct store *s, char *why, size_t size);
	/* Who holds the migrator lock (op lock's), found without taking it:
	 * 0 free, 1 held (who: by whom), 2 free, but a dead holder's work
	 * still runs (who: what); -1 with s->err set */
	int (*lock_holder)(struct store *s, char *who, size_t size);
	/* The snapshot at path as a database of its own in *out, opened
	 * read-only (for its ledger): 0; 1 when it is no database (a file to
	 * replay); -1 with why. store_release(out) closes it. */
	int (*snapshot_open)(struct store *s, const char *path, struct store *out,
			     char *why, size_t size);
	/* Reads the snapshot at path through, as a restore would, without
	 * restoring: 0, or -1 with why */
	int (*snapshot_verify)(struct store *s, const char *path, char *why, size_t size);
	/* A new empty database of the engine in *out, to replay migrations on:
	 * 0, or -1 with why; scratch_drop removes it and releases *out */
	int (*scratch_open)(struct store *s, struct store *out, char *why, size_t size);
	void (*scratch_drop)(struct store *s, struct store *scratch);
	/* The schema as rows (table, object, definition): every table, column,
	 * index and constraint of the backend's schema but its own tables,
	 * definitions written so that two databases built by the same script
	 * give the same rows. -1 with s->err set. */
	int (*describe_schema)(struct store *s, store_row_fn row, void *arg);
	/* Runs a script of read-only checks, row() for every result row of
	 * each statement; nothing it does is kept. -1 with s->err set. */
	int (*run_checks)(struct store *s, const char *sql, store_row_fn row, void *arg);
};

struct store {
	const struct store_ops *ops;
	char *url;	    /* as given: only ever passed to the driver */
	char *url_redacted; /* for messages */
	char *path;	    /* SQLite file; PostgreSQL: <snapshot dir>/<db name> */
	void *db;	    /* the backend's handle */
	void *priv;	    /* more backend state */
	const struct store_recorder *recorder; /* the ledger's, ledger_attach() */
	/* the ledger layer's (ledger_configure): [migrations] ledger (NULL:
	 * auto), the image's migrations, side table filled */
	const char *ledger_want;
	const struct migration_set *ledger_set;
	bool ledger_backfilled;
	long long busy_ms;
	long long lock_timeout; /* seconds to wait for other processes */
	long long wait_seconds; /* for a database that is not up yet */
	long long statement_lock_timeout;
	const char *snapshot_dir;
	const char *maintenance_db;	 /* PostgreSQL: where the lock lives */
	struct version snapshot_version; /* of the snapshot being taken */
	int status;	  /* exit status a failure asks for; 0: the default */
	bool lock_waited; /* the lock last taken was another's at first */
	/* in: once another's lock came free, the lock op may return 0
	 * without taking it (lock_waited set, nothing held): the caller
	 * looks again, and unlocks in any case */
	bool lock_peek;
	/* the failure was the environment's (a lock timeout, a full disk, out
	 * of memory), not the release's: the crash-loop guard does not count it */
	bool transient;
	char err[1024]; /* why apply or verify failed */
};

/*
 * How a backend reports a failure: the message logged once, and the exit
 * status the command should give for it kept in s->status. Returns -1.
 */
int store_fail(struct store *s, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parses a database URL; -1 (logged, 78) when it names no known engine. */
int store_init(struct store *s, const char *url);
void store_release(struct store *s);
/* m runs outside a transaction: declared, or detected by the backend */
bool store_outside_transaction(const struct store *s, const struct migration *m);

extern const struct store_ops sqlite_ops;
extern const struct store_ops postgres_ops;

#endif
