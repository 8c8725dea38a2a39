/*
 * fmt_goose: goose's NNN_name.sql and 20240101120000_name.sql, one file of
 * annotated sections: "-- +goose Up", then an optional "-- +goose Down";
 * "-- +goose StatementBegin" / "StatementEnd" around a statement with
 * semicolons inside (ferry hands whole sections to SQLite and PostgreSQL,
 * whose own parsers keep such statements whole, so these only need to
 * pair up); "-- +goose NO TRANSACTION" anywhere: the whole file runs
 * without a transaction. "-- +goose ENVSUB ON" is refused: goose would
 * replace ${VAR} with the environment, ferry does not. Claimed by content:
 * a *.sql file with a "-- +goose" line. Annotations ignore ASCII case, as
 * goose's do.
 */
#include "migrations.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum annotation {
	A_NONE,
	A_UP,
	A_DOWN,
	A_BEGIN,
	A_END,
	A_NO_TX,
	A_ENVSUB_ON,
	A_ENVSUB_OFF,
	A_UNKNOWN
};

static const struct {
	const char *text;
	enum annotation a;
} annotations[] = {
	{ "up", A_UP },
	{ "down", A_DOWN },
	{ "statementbegin", A_BEGIN },
	{ "statementend", A_END },
	{ "no transaction", A_NO_TX },
	{ "envsub on", A_ENVSUB_ON },
	{ "envsub off", A_ENVSUB_OFF },
};

/* The annotation of a line (len bytes, no '\n'): "--", blanks, "+goose",
 * blanks, one of the annotations, trailing blanks. */
static enum annotation annotation_of(const char *line, size_t len)
{
	size_t i = 0;

	while (len > 0 && strchr(" \t", line[len - 1]))
		len--;
	if (len < 2 || line[0] != '-' || line[1] != '-')
		return A_NONE;
	i = 2 + strspn(line + 2, " \t");
	if (len - i < 6 || strncasecmp(line + i, "+goose", 6))
		return A_NONE;
	i += 6;
	if (i < len && !strchr(" \t", line[i]))
		return A_NONE;
	i += strspn(line + i, " \t");
	if (i > len)
		i = len;
	for (size_t k = 0; k < sizeof(annotations) / sizeof(annotations[0]); k++)
		if (strlen(annotations[k].text) == len - i &&
		    !strncasecmp(line + i, annotations[k].text, len - i))
			return annotations[k].a;
	return A_UNKNOWN;
}

static bool is_annotation(const char *line, size_t len)
{
	return annotation_of(line, len) != A_NONE;
}

static bool goose_claims(const char *entry, const char *text)
{
	return text && migrations_ends_with(entry, ".sql") &&
	       migrations_any_line(text, is_annotation);
}

static int refuse(const struct migration *m, size_t off, const char *why)
{
	return error("migration '%s' line %d: %s (nothing was changed)", m->path,
		     migrations_line_at(m->sql, off), why);
}

static int goose_read(struct migration *m, size_t len)
{
	size_t up = (size_t)-1, down = (size_t)-1, begin = (size_t)-1;
	bool no_tx = false;

	for (size_t off = 0; off < len;) {
		const char *p = m->sql + off;
		size_t n = strcspn(p, "\n");
		enum annotation a = annotation_of(p, n);
		bool open = begin != (size_t)-1;

		if (a == A_UNKNOWN)
			return refuse(m, off, "an annotation goose does not know");
		if (a == A_ENVSUB_ON)
			return refuse(m, off,
				      "'-- +goose ENVSUB ON': goose would replace ${VAR} "
				      "with the environment, ferry does not; write the "
				      "values into the file");
		if (a == A_UP && up != (size_t)-1)
			return refuse(m, off, "a second '-- +goose Up'");
		if (a == A_DOWN && (up == (size_t)-1 || down != (size_t)-1))
			return refuse(m, off,
				      up == (size_t)-1
					      ? "'-- +goose Down' before '-- +goose Up'"
					      : "a second '-- +goose Down'");
		if ((a == A_UP || a == A_DOWN || a == A_BEGIN) && open)
			return refuse(m, begin,
				      "'-- +goose StatementBegin' without its "
				      "'StatementEnd'");
		if ((a == A_BEGIN || a == A_END) && up == (size_t)-1)
			return refuse(m, off,
				      "a statement annotation before '-- +goose Up'");
		if (a == A_END && !open)
			return refuse(
				m, off,
				"'-- +goose StatementEnd' without a StatementBegin");
		if (a == A_NONE && up == (size_t)-1 && !migrations_blank_or_comment(p, n))
			return refuse(
				m, off,
				"SQL before '-- +goose Up', which goose would not run");
		if (a == A_UP)
			up = off;
		else if (a == A_DOWN)
			down = off;
		else if (a == A_BEGIN)
			begin = off;
		else if (a == A_END)
			begin = (size_t)-1;
		else if (a == A_NO_TX)
			no_tx = true;
		off += n + (p[n] == '\n');
	}
	if (begin != (size_t)-1)
		return refuse(m, begin,
			      "'-- +goose StatementBegin' without its 'StatementEnd'");
	if (up == (size_t)-1)
		return error(
			"migration '%s' has no '-- +goose Up' annotation; goose needs "
			"one (nothing was changed)",
			m->path);
	m->no_transaction = m->down_no_transaction = no_tx;
	if (down != (size_t)-1)
		migrations_cut(m, down, down);
	return 0;
}

const struct format format_goose = {
	.name = "goose",
	.example = "00001_name.sql",
	.up_files = "*.sql",
	.claims = goose_claims,
	.parse_name = migrations_parse_sql_name,
	.read = goose_read,
};
