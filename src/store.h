/*
 * store: what the upgrade needs from a database, whatever the engine.
 * SQLite lives behind it now, PostgreSQL next; nothing above this
 * interface says sqlite3_ or PQ. Backends never know about the journal.
 */
#ifndef FERRY_STORE_H
#define FERRY_STORE_H

#include <stdbool.h>
#include <stddef.h>

struct migration;

struct ledger_row {
	long long version;
	char *name;
	char sha256[65];
	char applied_at[32];
	long long duration_ms;
	bool dirty;
};

struct ledger {
	bool exists;          /* the ledger table is there */
	bool has_user_tables; /* tables other than the ledger */
	struct ledger_row *rows; /* by version */
	size_t n;
};

struct store;

struct store_ops {
	const char *engine;
	/* 1: the database exists, 0: not yet (first boot), -1: error (logged) */
	int (*exists)(struct store *s);
	/* Opens an existing database; -1 logged (65 for a corrupt file). */
	int (*open)(struct store *s);
	void (*close)(struct store *s);
	int (*read_ledger)(struct store *s, struct ledger *l);
	/* integrity check: 0 fine, -1 logged */
	int (*check)(struct store *s);
	/* Runs one migration with its ledger row; fills *ms. -1 logged. */
	int (*apply)(struct store *s, const struct migration *m, long long *ms);
	/* integrity + foreign keys of the result */
	int (*verify)(struct store *s);
	/* Writes a consistent copy to path (final name, crash-safe). */
	int (*snapshot)(struct store *s, const char *path, const char **how);
	/* Replaces the (closed) database with the snapshot at path. */
	int (*restore)(struct store *s, const char *path);
	/* Builds a new database by fn(), then moves it into place at once. */
	int (*create)(struct store *s, int (*fn)(struct store *, void *), void *arg);
	/* Bytes a snapshot will need, and whether that fits; -1 logged */
	int (*size)(struct store *s, unsigned long long *bytes);
	/* A path whose directory holds snapshots and state by default. */
	const char *(*location)(struct store *s);
};

struct store {
	const struct store_ops *ops;
	char *url_redacted; /* for messages */
	char *path;         /* SQLite file */
	void *db;           /* the backend's handle */
	long long busy_ms;
	char err[1024];     /* why apply or verify failed */
};

/* Parses a database URL; -1 (logged, 78) when it names no known engine. */
int store_init(struct store *s, const char *url);
void store_release(struct store *s);
void ledger_release(struct ledger *l);
const struct ledger_row *ledger_find(const struct ledger *l, long long version);

extern const struct store_ops sqlite_ops;

#endif
