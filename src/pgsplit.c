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

/* The splitter's state: where it is, and the statement being read. */
struct scanner {
	const char *sql; /* the whole script */
	const char *p;
	int line;
	const char *content; /* the first character of the statement, or NULL */
	int content_line;
	int atomic, atomic_line, cases; /* BEGIN ATOMIC bodies, CASE inside them */
	char prev[16];			/* the word just before, for BEGIN ATOMIC */
	struct sql_statement *out;
	size_t n, cap;
	struct open_end *end;
};

/* Ends the statement being read (if any) at stop. */
static void emit(struct scanner *sc, const char *stop)
{
	if (!sc->content)
		return;
	if (sc->n == sc->cap)
		sc->out = xrealloc(sc->out, (sc->cap *= 2) * sizeof(*sc->out));
	sc->out[sc->n].start = sc->content;
	sc->out[sc->n].len = (size_t)(stop - sc->content);
	sc->out[sc->n].line = sc->content_line;
	sc->n++;
	sc->content = NULL;
}

/* At a comment opener: past the (nested) comment. */
static void skip_comment(struct scanner *sc)
{
	const char *open = sc->p;
	int depth = 0, open_line = sc->line;

	do {
		if (*sc->p == '/' && sc->p[1] == '*') {
			depth++;
			sc->p += 2;
		} else if (*sc->p == '*' && sc->p[1] == '/') {
			depth--;
			sc->p += 2;
		} else {
			sc->line += *sc->p == '\n';
			sc->p++;
		}
	} while (*sc->p && depth > 0);
	if (depth > 0) {
		*sc->end = (struct open_end){ "a /* comment opened there is never closed",
					      NULL, 0, open_line };
		if (!sc->content) {
			sc->content = open;
			sc->content_line = open_line;
		}
	}
}

/* At a quote: past the string literal or quoted identifier. */
static void scan_quoted(struct scanner *sc)
{
	const char *p = sc->p;
	char c = *p;
	/* E'...' strings take backslash escapes */
	bool esc = c == '\'' && p > sc->sql && (p[-1] == 'E' || p[-1] == 'e') &&
		   (p - 1 == sc->sql || !ident_char(p[-2])),
	     closed;
	int open_line = sc->line;

	sc->p = skip_quoted(p, esc, &sc->line, &closed);
	if (!closed)
		*sc->end = (struct open_end){
			c == '"' ? "a quoted identifier opened there is never closed"
				 : "a string literal opened there is never closed",
			NULL, 0, open_line
		};
	sc->prev[0] = '\0';
}

/* At a '$' that starts a word: past the dollar quote; false if none. */
static bool scan_dollar(struct scanner *sc)
{
	const char *tag = sc->p;
	size_t tl = dollar_tag(tag);
	int open_line = sc->line;

	if (!tl)
		return false;
	for (sc->p += tl; *sc->p && strncmp(sc->p, tag, tl); sc->p++)
		sc->line += *sc->p == '\n';
	if (*sc->p)
		sc->p += tl;
	else
		*sc->end = (struct open_end){ "a dollar quote", tag, tl, open_line };
	sc->prev[0] = '\0';
	return true;
}

/* Past a word, counting BEGIN ATOMIC ... END and the CASE ... END in it. */
static void scan_word(struct scanner *sc)
{
	const char *w = sc->p;
	size_t wl;

	while (ident_char(*sc->p))
		sc->p++;
	wl = (size_t)(sc->p - w);
	/* SQL-standard function bodies hold semicolons */
	if (wl == 6 && !strncasecmp(w, "ATOMIC", 6) && !strcasecmp(sc->prev, "BEGIN")) {
		if (!sc->atomic++)
			sc->atomic_line = sc->line;
	} else if (sc->atomic && wl == 4 && !strncasecmp(w, "CASE", 4))
		sc->cases++;
	else if (sc->atomic && wl == 3 && !strncasecmp(w, "END", 3)) {
		if (sc->cases)
			sc->cases--;
		else
			sc->atomic--;
	}
	snprintf(sc->prev, sizeof(sc->prev), "%.*s", (int)(wl < 15 ? wl : 15), w);
}

/* Past a token that belongs to a statement, which it may begin. */
static void scan_content(struct scanner *sc)
{
	char c = *sc->p;

	if (!sc->content) {
		sc->content = sc->p;
		sc->content_line = sc->line;
	}
	if (c == '\'' || c == '"') {
		scan_quoted(sc);
		return;
	}
	if (c == '$' && (sc->p == sc->sql || !ident_char(sc->p[-1])) && scan_dollar(sc))
		return;
	if (ident_start(c)) {
		scan_word(sc);
		return;
	}
	sc->prev[0] = '\0';
	sc->p++;
}

/* Past one token: a blank, a comment, a ';' or a statement's token. */
static void scan_token(struct scanner *sc)
{
	char c = *sc->p;

	if (c == '\n') {
		sc->line++;
		sc->p++;
	} else if (isspace((unsigned char)c)) {
		sc->p++;
	} else if (c == '-' && sc->p[1] == '-') {
		while (*sc->p && *sc->p != '\n')
			sc->p++;
	} else if (c == '/' && sc->p[1] == '*') {
		skip_comment(sc);
	} else if (c == ';' && !sc->atomic) {
		emit(sc, sc->p);
		sc->prev[0] = '\0';
		sc->p++;
	} else {
		scan_content(sc);
	}
}

/*
 * The splitter proper. Nothing is dropped: text the script ends inside of
 * (an unclosed literal, dollar quote or comment) is part of the last
 * statement, so the server sees it and says what is wrong, and *end says
 * what was left open for a refusal before anything runs.
 */
static size_t split(const char *sql, struct sql_statement **out, struct open_end *end)
{
	struct scanner sc = {
		.sql = sql, .p = sql, .line = 1, .content_line = 1, .cap = 8, .end = end
	};

	memset(end, 0, sizeof(*end));
	sc.out = xmalloc(sc.cap * sizeof(*sc.out));
	while (*sc.p)
		scan_token(&sc);
	emit(&sc, sc.p);
	if (sc.atomic && !end->what)
		*end = (struct open_end){ "a BEGIN ATOMIC body begun there has no END",
					  NULL, 0, sc.atomic_line };
	*out = sc.out;
	return sc.n;
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
		snprintf(
			why, size,
			"line %d: the dollar quote %.*s opened there is never "
			"closed, so the server would refuse the rest of the file; close it",
			end.line, (int)(end.tag_len < 40 ? end.tag_len : 40), end.tag);
	else
		snprintf(why, size,
			 "line %d: %s, so the server would refuse the rest of "
			 "the file; close it",
			 end.line, end.what);
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
	if (IS(0, "CREATE") &&
	    ((IS(1, "INDEX") && IS(2, "CONCURRENTLY")) ||
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
