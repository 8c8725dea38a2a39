/*
 * fuzz pgsplit: the PostgreSQL statement splitter and the checks made on
 * each statement (no-transaction detection, transaction control). The
 * input is a script. Properties: statements lie inside the script, in
 * order, without overlap; each starts at a character that is not blank
 * and ends at a ';' (the last one may end with the script); its line is
 * the line its first character is on; nothing is dropped (between
 * statements there are only blanks, ';' and closed comments);
 * pg_split_check() names a line when it refuses. Each statement is handed
 * on in a copy of exactly its length (plus a NUL), so a read past it is
 * caught.
 */
#include "fuzz.h"
#include "postgres.h"

#include <ctype.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_init();
	return 0;
}

/* Is [p, end) only blanks, ';' and comments that close? */
static bool nothing_dropped(const char *p, const char *end)
{
	while (p < end) {
		if (isspace((unsigned char)*p) || *p == ';') {
			p++;
		} else if (p + 1 < end && p[0] == '-' && p[1] == '-') {
			while (p < end && *p != '\n')
				p++;
		} else if (p + 1 < end && p[0] == '/' && p[1] == '*') {
			int depth = 0;

			do {
				if (p + 1 < end && p[0] == '/' && p[1] == '*') {
					depth++;
					p += 2;
				} else if (p + 1 < end && p[0] == '*' && p[1] == '/') {
					depth--;
					p += 2;
				} else {
					p++;
				}
			} while (p < end && depth > 0);
			if (depth > 0)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *sql = malloc(size + 1);
	struct sql_statement *st;
	const char *prev_end;
	size_t n, len;
	int line = 1;
	const char *counted;
	char why[512];

	if (!sql)
		abort();
	memcpy(sql, data, size);
	sql[size] = '\0';
	len = strlen(sql);
	n = pg_split(sql, &st);
	prev_end = sql;
	counted = sql;
	for (size_t i = 0; i < n; i++) {
		const char *s = st[i].start, *e = s + st[i].len;
		char *copy;

		if (s < prev_end || e > sql + len || st[i].len == 0 ||
		    !nothing_dropped(prev_end, s))
			fuzz_fail("a statement outside the script, out of order, empty, "
				  "or text "
				  "dropped before it",
				  sql, len);
		if (isspace((unsigned char)*s))
			fuzz_fail("a statement starts with a blank", s, st[i].len);
		if (*e != ';' && (i + 1 < n || *e != '\0'))
			fuzz_fail("a statement does not end at a ';'", s, st[i].len);
		for (; counted < s; counted++)
			line += *counted == '\n';
		if (st[i].line != line)
			fuzz_fail("a statement's line is not the line it starts on", s,
				  st[i].len);
		copy = malloc(st[i].len + 1);
		if (!copy)
			abort();
		memcpy(copy, s, st[i].len);
		copy[st[i].len] = '\0';
		pg_needs_autocommit(copy, st[i].len);
		pg_transaction_control(copy, st[i].len);
		free(copy);
		prev_end = e;
	}
	if (!nothing_dropped(prev_end, sql + len))
		fuzz_fail("text dropped after the last statement", sql, len);
	if (pg_split_check(sql, why, sizeof(why)) < 0 && strncmp(why, "line ", 5))
		fuzz_fail("pg_split_check() refuses without naming the line", why,
			  strlen(why));
	free(st);
	free(sql);
	return 0;
}
