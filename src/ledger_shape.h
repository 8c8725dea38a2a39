/*
 * ledger_shape: what ledger.c and the files of the other tools' ledger
 * shapes (ledger_NAME.c) share: the row of the table of shapes, the
 * helpers that fill struct ledger, and ferry's side table of checksums
 * (ferry_checksums) for the tools whose table keeps none.
 */
#ifndef FERRY_LEDGER_SHAPE_H
#define FERRY_LEDGER_SHAPE_H

#include "ledger.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>

#define SIDE_TABLE	  "ferry_checksums"
#define REPEATABLES_TABLE "ferry_repeatables"

struct ledger_shape {
	const char *name;  /* [migrations] ledger, messages */
	const char *table; /* found by list_tables */
	/* Optional: is the table found this shape's (dbmate's
	 * schema_migrations against golang-migrate's)? */
	bool (*is_mine)(struct store *s);
	/* Reads the rows into l (unsorted), -1 with s->err set */
	int (*read)(struct store *s, struct ledger *l);
	bool side;	       /* the checksums live in ferry_checksums */
	bool integer_versions; /* dotted versions cannot be kept */
	struct store_recorder recorder;
};

extern const struct ledger_shape ledger_golang_migrate, ledger_dbmate, ledger_goose,
	ledger_flyway, ledger_diesel, ledger_sqlx;

/* Adds a row to l: name NULL takes the shipped migration's, else the
 * version; sha256 NULL: the shipped file's (the tool checked it). */
struct ledger_row *ledger_add(struct store *s, struct ledger *l, const struct version *v,
			      const char *name, const char *sha256, bool dirty);
/* A row the tool marked failed (success = false) for version text v: its
 * hint, the first one only, says how to repair it with that tool (remedy:
 * what to run once the schema is fixed by hand). */
void ledger_failed_row(struct ledger *l, const char *table, const char *v,
		       const char *remedy);
/* Reads the versions of sql's first column, one row each; a row that is no
 * version is named (table) in s->err. */
int ledger_read_versions(struct store *s, struct ledger *l, const char *sql,
			 const char *table);
/* The version as the migration's file name writes it ("0001", "1.2"),
 * canonical when the name says nothing else; dashes dropped (diesel). */
void ledger_file_version(const struct migration *m, char *buf, size_t size);
/* The migration's name after its version, '_' as ' ' ("create users"):
 * the description Flyway and sqlx store. */
void ledger_description(const struct migration *m, char *buf, size_t size);
/* The file name of the migration's up file. */
const char *ledger_script(const struct migration *m);
/* Side table: created if missing; m's checksum written (and those of the
 * shipped versions below it that have none: applied by the tool). */
int ledger_side_prepare(struct store *s);
int ledger_side_record(struct store *s, const struct migration *m, long long ms);
/* ferry downgrade: v's row of the side table deleted */
int ledger_side_forget(struct store *s, const struct version *v);
/* v as the tool writes it: the shipped file's version text, else canonical */
void ledger_version_text(struct store *s, const struct version *v, char *buf,
			 size_t size);
/* sql ("DELETE ... WHERE version = $1") with v as the tool writes it, and
 * with side, v's row of the side table deleted too */
int ledger_delete_version(struct store *s, const char *sql, const struct version *v,
			  bool side);
/* "$1" as the engine's boolean/integer text: 1/0 */
const char *ledger_bool(bool b);
/* Does table have a column called column? */
bool ledger_has_column(struct store *s, const char *table, const char *column);
/* Is m one of the image's repeatables (Flyway's R__name.sql)? */
bool ledger_is_repeatable(const struct store *s, const struct migration *m);
/* A repeatable applied: its sha256 in ferry_repeatables (every shape but
 * Flyway's, which keeps them in its own table) */
int ledger_repeatable_record(struct store *s, const struct migration *m, long long ms);
/* ferry_repeatables read into l->rep_current */
int ledger_repeatables_read(struct store *s, struct ledger *l);
/* Adds name to l->rep_current */
void ledger_rep_add(struct ledger *l, const char *name);
/* Flyway's checksum of a script's text: CRC-32 of its lines. */
int ledger_flyway_checksum(const char *text, size_t len);
/* The whole file at path, malloc'd (*len), NULL when unreadable. */
char *ledger_file(const char *path, size_t *len);

#endif
