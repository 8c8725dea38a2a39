/*
 * pgurl: PostgreSQL connection strings (postgres:// URLs and libpq
 * key=value text) checked by libpq's own parser. When libpq refuses one,
 * its message quotes the part it could not place, often the password, so
 * ferry says what is wrong in its own words: a part or a key, never a value.
 */
#ifndef FERRY_PGURL_H
#define FERRY_PGURL_H

#include <stddef.h>

/*
 * 0 when libpq accepts conninfo; its passwords are then remembered for
 * redact_text(). -1 with why filled with what is wrong (one line).
 */
int pgurl_check(const char *conninfo, char *why, size_t size);

#endif
