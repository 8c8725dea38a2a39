/*
 * json: the one place that escapes text for a line of output, and a small
 * streaming JSON writer for the commands' --json output. Log lines (text or
 * JSON) and `ferry status --json` escape the same way.
 */
#ifndef FERRY_JSON_H
#define FERRY_JSON_H

#include <stdbool.h>
#include <stdio.h>

/*
 * Escapes src into dst (6 bytes per source byte are always enough) so
 * that it stays on one line: \n \r \t, and \xNN for other control
 * characters; with json, JSON's own escapes (\uNNNN, \" and \\) and
 * U+FFFD for bytes that are not UTF-8.
 */
void escape_line(char *dst, size_t size, const char *src, bool json);

/* Writes one JSON value at a time; commas and nesting are its business. */
struct json {
	FILE *f;
	int depth;
	bool need_comma[16];
};

void json_init(struct json *j, FILE *f);
/* key is NULL inside an array, a member name inside an object */
void json_object(struct json *j, const char *key);
void json_array(struct json *j, const char *key);
void json_end(struct json *j, char close);			   /* '}' or ']' */
void json_str(struct json *j, const char *key, const char *value); /* NULL: null */
void json_int(struct json *j, const char *key, long long value);
/* digits: a JSON number's text, written as it is (an integer of any length) */
void json_number(struct json *j, const char *key, const char *digits);
void json_bool(struct json *j, const char *key, bool value);
void json_null(struct json *j, const char *key);

#endif
