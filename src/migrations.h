/*
 * migrations: the files an image ships. Discovery per directory through a
 * table of formats (struct format below), version order, normalised
 * checksums.
 */
#ifndef FERRY_MIGRATIONS_H
#define FERRY_MIGRATIONS_H

#include "version.h"

#include <stdbool.h>
#include <stddef.h>

struct migration {
	struct version version;
	char *name;	 /* file name without the format's suffix */
	char *path;	 /* the up file */
	char *sql;	 /* the SQL that migrates up: normalised (no BOM, LF
			    line ends), for ferry and golang-migrate the file */
	char sha256[65]; /* of the whole normalised file */
	bool no_transaction;
	/* the SQL that migrates down, normalised: golang-migrate's .down.sql,
	 * a down section, diesel's down.sql ("" for an empty one); NULL when
	 * the migration has no down part (ferry, Flyway) */
	char *down_sql;
	bool down_no_transaction;
	/* the first byte that is not UTF-8: its line (0: the whole file is
	 * UTF-8) and its offset in the file */
	int not_utf8_line;
	size_t not_utf8_at;
};

struct rebuild;

struct migration_set {
	const char *format; /* a format's name ("ferry", "goose"), "rebuild" */
	char *dir;
	struct migration *items; /* sorted by version */
	size_t n;
	/* Flyway's R__name.sql: no version, name the description, sorted by
	 * name; applied after the versioned ones when their sha256 changed */
	struct migration *repeatables;
	size_t n_repeatables;
	/* rebuild mode (rebuild.h): items is schema.sql alone, these are the
	 * transforms; NULL in-place */
	struct rebuild *rebuild;
};

/*
 * A format: how its migrations are named and read. migrations_load() offers
 * each entry of the directory to the formats in table order (migrations.c)
 * and the first that claims it owns it; the directory's format is the one
 * format that owns entries (ferry, the last row, when none does). Entries
 * of two formats in one directory are refused (65, naming one of each). A
 * *.sql file no format claims is refused as a name without version; other
 * unclaimed entries are ignored (README.md, 0001_x.sql~, subdirectories).
 *
 * A new format is one file defining `const struct format format_NAME`
 * (declared next to the table) and one row of the table, placed before
 * the formats whose entries it would also claim: a name rule more
 * specific than theirs (golang-migrate's .up.sql before ferry's .sql), or
 * the same names told apart by content (dbmate's "-- migrate:up", goose's
 * "-- +goose Up" before ferry).
 */
struct format {
	const char *name;     /* "golang-migrate": set->format, messages */
	const char *example;  /* "000001_name.up.sql": the name it expects */
	const char *up_files; /* "*.up.sql": in "holds no migrations (no ...)" */
	/*
	 * NULL: migrations are regular files. Else they are directories that
	 * hold their up file under this name (diesel's
	 * 2024-01-01-120000_name/up.sql): only directories are offered to the
	 * format, and m->path is that file.
	 */
	const char *member;
	/*
	 * Is the entry called entry one of this format's (an up file, a down
	 * file, anything the format would read or skip)? text is the content
	 * of a regular *.sql file as read (NUL-terminated; a BOM, CRLF or NUL
	 * bytes possible), NULL for an unreadable file, another name or a
	 * directory. No I/O, no log.
	 */
	bool (*claims)(const char *entry, const char *text);
	/*
	 * Reads a claimed entry's name: NAME_MIGRATION with *v, *name (the
	 * migration's name, malloc'd) and *is_up true for an up migration;
	 * NAME_MIGRATION with *v and *is_up false for a down file of its own
	 * (golang-migrate's .down.sql: the loader reads it into the down_sql
	 * of the up migration of version *v; no *name); NAME_REPEATABLE with
	 * *name for a migration without version (Flyway's R__name.sql, into
	 * set->repeatables); NAME_SKIP for an entry the loader skips; -1 when
	 * the name holds no version the format accepts (the loader logs
	 * "cannot read a version from the name", 65). No log.
	 */
	int (*parse_name)(const char *entry, struct version *v, char **name, bool *is_up);
	/*
	 * Reads an up file: m->path is set, m->sql holds its normalised text
	 * (len bytes, NUL-terminated, not empty), m->sha256 that text's sum.
	 * Leaves in m->sql the SQL that migrates up (it may cut it in place,
	 * at a down section), sets the directives (m->no_transaction) and the
	 * down part (m->down_sql: a section, a file beside it). Returns 0, or
	 * logs one line naming m->path (and a line) and returns -1 (65).
	 */
	int (*read)(struct migration *m, size_t len);
};

enum { NAME_MIGRATION = 0, NAME_SKIP = 1, NAME_REPEATABLE = 2 };

/* ---- for the formats (fmt_*.c) ---- */
bool migrations_ends_with(const char *s, const char *suffix);
/*
 * "0002_add_tags.sql" with a suffix of 4 -> 2, "0002_add_tags": digits (at
 * most 31, a value of at most 18 digits: ledgers keep an INTEGER), '_',
 * a name, the suffix. -1 for anything else.
 */
int migrations_parse_numbered(const char *entry, size_t suffix_len, struct version *v,
			      char **name);
/* parse_name for NNN_name.sql (ferry's, dbmate's, goose's names) */
int migrations_parse_sql_name(const char *entry, struct version *v, char **name,
			      bool *is_up);
/* Is the line (len bytes, no '\n') blank or an SQL "--" comment? */
bool migrations_blank_or_comment(const char *line, size_t len);
/* Is some line of text one that is() accepts? */
bool migrations_any_line(const char *text, bool (*is)(const char *line, size_t len));
/*
 * Reads a file a migration has beside its up file (diesel's down.sql,
 * metadata.toml): 0 with *text normalised (malloc'd), 1 when there is no
 * such file, or -1 after one line naming path (unreadable, a NUL byte).
 */
int migrations_read_beside(const char *path, char **text);
/*
 * Cuts m->sql: the down part (from down_at to the end) is copied to
 * m->down_sql, then m->sql ends at up_end.
 */
void migrations_cut(struct migration *m, size_t up_end, size_t down_at);
/* The 1-based line of the byte at offset at. */
int migrations_line_at(const char *text, size_t at);

/* The format called name (ASCII case ignored): its own name, or NULL. */
const char *migrations_format_name(const char *name);

/*
 * Reads dir. Returns 0, or logs one line naming the file and returns the
 * exit status: 78 for a missing directory or one without migrations, 65
 * for a bad file (unreadable, empty, a NUL byte, a name without version,
 * a duplicate version) or files of two formats.
 */
int migrations_load(struct migration_set *set, const char *dir);
/*
 * The same in format (a format's name; NULL: detected): an entry another
 * format claims is refused (65, naming it and its format).
 */
int migrations_load_as(struct migration_set *set, const char *dir, const char *format);
void migrations_release(struct migration_set *set);
/* The migration of version v (1.0 finds 1), NULL when none is shipped. */
const struct migration *migrations_find(const struct migration_set *set,
					const struct version *v);
/* The highest version shipped, zero for an empty set. */
struct version migrations_latest(const struct migration_set *set);
/* Normalises text in place (BOM, CRLF) and returns its new length. */
size_t migrations_normalise(char *text, size_t len);
void sha256_hex(const void *data, size_t len, char out[65]);

#endif
