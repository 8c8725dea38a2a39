/*
 * ledger: the table in the database that says which migrations were
 * applied. Each ledger shape (ferry's own ferry_migrations, the tables
 * of golang-migrate, dbmate, goose, Flyway, diesel and sqlx) is one
 * row of ledger.c's table, reading and writing through the store's small
 * SQL surface, so a shape is written once for every engine.
 */
#ifndef FERRY_LEDGER_H
#define FERRY_LEDGER_H

#include "version.h"

#include <stdbool.h>
#include <stddef.h>

struct migration;
struct store;

struct ledger_row {
	struct version version;
	char *name;
	char sha256[65];
	char applied_at[32];
	long long duration_ms;
	bool dirty;
	bool trusted; /* applied by another tool, no checksum of ferry's yet */
	/* a baseline mark (Flyway's BASELINE row): versions up to it count as
	 * applied; it need not be a version the image ships */
	bool baseline;
};

struct ledger {
	bool exists;		 /* the ledger table is there */
	bool has_user_tables;	 /* tables other than the ledger */
	struct ledger_row *rows; /* by version */
	size_t n;
	const char *shape, *table; /* "golang-migrate", "schema_migrations" */
	/* the repeatables (set->repeatables' names) whose last recorded
	 * checksum is the shipped file's: not to run again */
	char **rep_current;
	size_t n_rep_current;
	bool integer_versions; /* the table keeps integers only (not 1.2) */
	/* a dirty row: what to do, when the shape says more than rollback */
	char dirty_hint[512];
};

struct migration_set;

/* Attaches ferry's own ledger shape to the store: what its migrations record. */
void ledger_attach(struct store *s);
/*
 * [migrations] ledger: want ("auto", NULL or a shape's name) and the
 * image's migrations (their format picks a new database's shape; their
 * names and checksums fill the tools' rows). ledger_read() then attaches
 * the shape of the table it finds.
 */
void ledger_configure(struct store *s, const char *want, const struct migration_set *set);
/* The attached shape's table and whether it keeps integer versions only
 * into l (for the plan of a database that has no ledger yet) */
void ledger_describe(const struct store *s, struct ledger *l);
/* Is the table called name the ledger's: the attached shape's table, or
 * ferry's side tables of checksums and repeatables? */
bool ledger_own_table(const struct store *s, const char *name);
/* The attached shape's name: "ferry", "golang-migrate" ... */
const char *ledger_shape_name(const struct store *s);
/* Reads the ledger of the open database, rows sorted by version; -1
 * logged (a row whose version does not parse is named). */
int ledger_read(struct store *s, struct ledger *l);
void ledger_release(struct ledger *l);
/* The row of version v (1.0 finds 1), NULL when none. */
const struct ledger_row *ledger_find(const struct ledger *l, const struct version *v);
/* Is the repeatable called name applied as shipped? */
bool ledger_rep_current(const struct ledger *l, const char *name);
/* No version applied: no ledger, an empty one, or only rows of version 0
 * that did not fail (goose's table starts with one): nothing tracked. */
bool ledger_tracks_nothing(const struct ledger *l);
/* The highest version applied, zero for an empty ledger. */
struct version ledger_top(const struct ledger *l);

#endif
