/*
 * redact: keeps database passwords out of everything ferry prints. A URL or
 * libpq key=value string is shown with its password masked by syntax, and
 * the passwords it held are remembered so that the log layer takes them
 * out of every line, whoever wrote it (libpq's messages quote values).
 */
#ifndef FERRY_REDACT_H
#define FERRY_REDACT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Copies a database URL or libpq conninfo into buf with any password
 * replaced by "***" and control characters escaped (\n, \r, \t, \xNN), so
 * the copy fits on one line. Always NUL-terminates; returns buf.
 */
char *redact_url(const char *url, char *buf, size_t size);

/* Does url hold something redact_url() masks? In url[start, end)? */
bool redact_has_secret(const char *url);
bool redact_overlaps(const char *url, size_t start, size_t end);

/*
 * Remembers what redact_url() would mask in url (as written, and
 * percent- or backslash-decoded), for redact_text().
 */
void redact_remember_url(const char *url);
/* Remembers one password as a driver parsed it. */
void redact_remember(const char *secret);
/* Forgets every remembered password (tests and fuzzing). */
void redact_reset(void);

/*
 * Copies text into buf with every remembered password replaced by "***".
 * Passwords of fewer than 4 characters are replaced only where they stand
 * quoted on their own ("ab", 'ab'): anywhere else they would eat ordinary
 * words. Always NUL-terminates; returns buf.
 */
char *redact_text(const char *text, char *buf, size_t size);

#endif
