/*
 * postgres: the PostgreSQL backend (its ops are in store.h). What is
 * exported here is its statement splitter, for the unit tests.
 */
#ifndef FERRY_POSTGRES_H
#define FERRY_POSTGRES_H

#include <stdbool.h>
#include <stddef.h>

struct sql_statement {
	const char *start; /* into the script; not NUL-terminated */
	size_t len;
	int line;          /* 1-based line of the statement's first character */
};

/*
 * Splits a script at top-level semicolons, minding comments, string
 * literals, quoted identifiers, dollar quotes and BEGIN ATOMIC bodies.
 * Returns the number of non-empty statements; *out is malloc'd.
 */
size_t pg_split(const char *sql, struct sql_statement **out);
/* Must this statement run outside a transaction block? */
bool pg_needs_autocommit(const char *stmt, size_t len);

#endif
