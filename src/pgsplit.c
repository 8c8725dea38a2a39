/*
 * pgsplit: cuts a migration script into statements the way the server's
 * lexer would, so each statement can run (and fail) on its own line
 * number, and says which statements cannot run inside a transaction.
 * Hand-written: libpq offers no lexer.
 */
#include "postgres.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


static bool ident_start(char c)
{
	return isalpha((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

static bool ident_char(char c)
{
	return ident_start(c) || isdigit((unsigned char)c) || c == '$';
}

/* At a '$': the length of a dollar-quote tag ("$$", "$fn$"), or 0. */
static size_t dollar_tag(const char *p)
{
	const char *q = p + 1;

	if (*q == '$')
		return 2;
	if (!ident_start(*q))
		return 0; /* $1 is a parameter */
	while (ident_start(*q) || isdigit((unsigned char)*q))
		q++;
	return *q == '$' ? (size_t)(q + 1 - p) : 0;
}

/*
 * Past a '...' literal or "..." identifier at p (doubled quotes inside);
 * *closed false when the script ends first.
 */
static const char *skip_quoted(const char *p, bool backslash, int *line, bool *closed)
{
	char q = *p;

	for (p++; *p; p++) {
		*line += *p == '\n';
		if (backslash && *p == '\\' && p[1]) {
			p++;
			*line += *p == '\n';
		} else if (*p == q) {
			if (p[1] != q)
				break;
			p++;
		}
	}
	*closed = *p != '\0';
	return *p ? p + 1 : p;
}

/* What a script ends inside of, if anything, and the line it opened on. */
struct open_end {
	const char *what; /* what is wrong; NULL: the script ends at the top level */
	const char *tag;  /* a dollar quote's tag */
	size_t tag_len;
	int line;
};

/*
 * The splitter proper. Nothing is dropped: text the script ends inside of
 * (an unclosed literal, dollar quote or comment) is part of the last
 * statement, so the server sees it and says what is wrong, and *end says
 * what was left open for a refusal before anything runs.
 */
static size_t split(const char *sql, struct sql_statement **out, struct open_end *end)
{
	const char *p = sql, *content = NULL;
	int line = 1, content_line = 1, atomic = 0, atomic_line = 0, cases = 0;
	char prev[16] = "";
	size_t n = 0, cap = 8;

	memset(end, 0, sizeof(*end));
	*out = xmalloc(cap * sizeof(**out));
#define EMIT(stop)                                                             \
	do {                                                                   \
		if (content) {                                                 \
			if (n == cap)                                          \
				*out = xrealloc(*out, (cap *= 2) * sizeof(**out)); \
			(*out)[n].start = content;                             \
			(*out)[n].len = (size_t)((stop) - content);            \
			(*out)[n].line = content_line;                         \
			n++;                                                   \
			content = NULL;                                        \
		}                                                              \
	} while (0)
	while (*p) {
		char c = *p;

		if (c == '\n') {
			line++;
			p++;
			continue;
		}
		if (isspace((unsigned char)c)) {
			p++;
			continue;
		}
		if (c == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				p++;
			continue;
		}
		if (c == '/' && p[1] == '*') {
			const char *open = p;
			int depth = 0, open_line = line;

			do {
				if (*p == '/' && p[1] == '*') {
					depth++;
					p += 2;
				} else if (*p == '*' && p[1] == '/') {
					depth--;
					p += 2;
				} else {
					line += *p == '\n';
					p++;
				}
			} while (*p && depth > 0);
			if (depth > 0) {
				*end = (struct open_end){ "a /* comment opened there is never "
							  "closed", NULL, 0, open_line };
				if (!content) {
					content = open;
					content_line = open_line;
				}
			}
			continue;
		}
		if (c == ';' && !atomic) {
			EMIT(p);
			prev[0] = '\0';
			p++;
			continue;
		}
		if (!content) {
			content = p;
			content_line = line;
		}
		if (c == '\'' || c == '"') {
			/* E'...' strings take backslash escapes */
			bool esc = c == '\'' && p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
				   (p - 1 == sql || !ident_char(p[-2])), closed;
			int open_line = line;

			p = skip_quoted(p, esc, &line, &closed);
			if (!closed)
				*end = (struct open_end){
					c == '"' ? "a quoted identifier opened there is never closed"
						 : "a string literal opened there is never closed",
					NULL, 0, open_line
				};
			prev[0] = '\0';
			continue;
		}
		if (c == '$' && (p == sql || !ident_char(p[-1]))) {
			size_t tl = dollar_tag(p);

			if (tl) {
				const char *tag = p;
				int open_line = line;

				for (p += tl; *p && strncmp(p, tag, tl); p++)
					line += *p == '\n';
				if (*p)
					p += tl;
				else
					*end = (struct open_end){ "a dollar quote", tag, tl,
								  open_line };
				prev[0] = '\0';
				continue;
			}
		}
		if (ident_start(c)) {
			const char *w = p;
			size_t wl;

			while (ident_char(*p))
				p++;
			wl = (size_t)(p - w);
			/* SQL-standard function bodies hold semicolons */
			if (wl == 6 && !strncasecmp(w, "ATOMIC", 6) && !strcasecmp(prev, "BEGIN")) {
				if (!atomic++)
					atomic_line = line;
			} else if (atomic && wl == 4 && !strncasecmp(w, "CASE", 4))
				cases++;
			else if (atomic && wl == 3 && !strncasecmp(w, "END", 3)) {
				if (cases)
					cases--;
				else
					atomic--;
			}
			snprintf(prev, sizeof(prev), "%.*s", (int)(wl < 15 ? wl : 15), w);
			continue;
		}
		prev[0] = '\0';
		p++;
	}
	EMIT(p);
#undef EMIT
	if (atomic && !end->what)
		*end = (struct open_end){ "a BEGIN ATOMIC body begun there has no END",
					  NULL, 0, atomic_line };
	return n;
}

size_t pg_split(const char *sql, struct sql_statement **out)
{
	struct open_end end;

	return split(sql, out, &end);
}

int pg_split_check(const char *sql, char *why, size_t size)
{
	struct sql_statement *st;
	struct open_end end;

	split(sql, &st, &end);
	free(st);
	if (!end.what)
		return 0;
	if (end.tag)
		snprintf(why, size, "line %d: the dollar quote %.*s opened there is never "
			 "closed, so the server would refuse the rest of the file; close it",
			 end.line, (int)(end.tag_len < 40 ? end.tag_len : 40), end.tag);
	else
		snprintf(why, size, "line %d: %s, so the server would refuse the rest of "
			 "the file; close it", end.line, end.what);
	return -1;
}

/* The first words of a statement, upper-cased, past comments and (...) */
static int first_words(const char *stmt, size_t len, char w[6][16])
{
	const char *p = stmt, *end = stmt + len;
	int n = 0;

	while (p < end && n < 6) {
		if (isspace((unsigned char)*p)) {
			p++;
		} else if (*p == '-' && p + 1 < end && p[1] == '-') {
			while (p < end && *p != '\n')
				p++;
		} else if (*p == '/' && p + 1 < end && p[1] == '*') {
			/* bounded: the statement need not end with a NUL */
			const char *close = memmem(p + 2, (size_t)(end - p - 2), "*/", 2);
			p = close ? close + 2 : end;
		} else if (*p == '(') { /* REINDEX (VERBOSE) ... */
			while (p < end && *p != ')')
				p++;
			p++;
		} else if (ident_start(*p)) {
			size_t k = 0;

			while (p < end && ident_char(*p)) {
				if (k < sizeof(w[0]) - 1)
					w[n][k++] = (char)toupper((unsigned char)*p);
				p++;
			}
			w[n++][k] = '\0';
		} else {
			break;
		}
	}
	return n;
}

bool pg_needs_autocommit(const char *stmt, size_t len)
{
	char w[6][16] = { "" };
	int n = first_words(stmt, len, w);

#define IS(i, s) (!strcmp(w[i], s))
	if (IS(0, "VACUUM") || (IS(0, "ALTER") && IS(1, "SYSTEM")))
		return true;
	if ((IS(0, "CREATE") || IS(0, "DROP")) &&
	    (IS(1, "DATABASE") || IS(1, "TABLESPACE")))
		return true;
	if (IS(0, "CREATE") && ((IS(1, "INDEX") && IS(2, "CONCURRENTLY")) ||
				(IS(1, "UNIQUE") && IS(2, "INDEX") && IS(3, "CONCURRENTLY"))))
		return true;
	if (IS(0, "DROP") && IS(1, "INDEX") && IS(2, "CONCURRENTLY"))
		return true;
	if (IS(0, "REINDEX"))
		for (int i = 1; i < n; i++)
			if (IS(i, "CONCURRENTLY"))
				return true;
#undef IS
	return false;
}

const char *pg_transaction_control(const char *stmt, size_t len)
{
	static const char *const words[] = {
		"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "PREPARE",
	};
	char w[6][16] = { "" };
	int n = first_words(stmt, len, w);

	if (n == 0 || (!strcmp(w[0], "ROLLBACK") && n > 1 && !strcmp(w[1], "TO")) ||
	    (!strcmp(w[0], "PREPARE") && (n < 2 || strcmp(w[1], "TRANSACTION"))) ||
	    (!strcmp(w[0], "START") && (n < 2 || strcmp(w[1], "TRANSACTION"))))
		return NULL;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(w[0], words[i]))
			return words[i];
	return NULL;
}
