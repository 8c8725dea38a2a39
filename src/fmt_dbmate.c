/*
 * fmt_dbmate: dbmate's 20240101120000_name.sql, one file with a
 * "-- migrate:up" and an optional "-- migrate:down" section, each marker
 * optionally followed by options ("transaction:false": that section runs
 * without a transaction). Claimed by content: a *.sql file with a marker
 * line. As dbmate reads them: either section may come first, a section
 * runs from its marker line to the other marker, and nothing but comments
 * and blank lines may come before the first marker.
 */
#include "migrations.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define NONE ((size_t)-1)

/*
 * The marker at the start of line (len bytes, no '\n'): 'u' for
 * "--migrate:up", 'd' for "--migrate:down" (blanks allowed after "--"),
 * then the end of the line or a blank and options (*opts); 0 for another
 * line.
 */
static int marker(const char *line, size_t len, const char **opts, size_t *opts_len)
{
	size_t i = 2, word;
	int kind;

	if (len < 2 || line[0] != '-' || line[1] != '-')
		return 0;
	i += strspn(line + i, " \t");
	if (len - i >= 10 && !strncmp(line + i, "migrate:up", 10))
		kind = 'u', word = 10;
	else if (len - i >= 12 && !strncmp(line + i, "migrate:down", 12))
		kind = 'd', word = 12;
	else
		return 0;
	i += word;
	if (i < len && line[i] != ' ' && line[i] != '\t')
		return 0;
	*opts = line + i;
	*opts_len = len - i;
	return kind;
}

/* Is "transaction:false" among the options (blank-separated key:value)? */
static bool no_transaction(const char *opts, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t word;

		i += strspn(opts + i, " \t");
		word = strcspn(opts + i, " \t\n");
		if (word > len - i)
			word = len - i;
		if (word == 17 && !strncmp(opts + i, "transaction:false", 17))
			return true;
		i += word;
	}
	return false;
}

static bool is_marker(const char *line, size_t len)
{
	const char *opts;
	size_t n;

	return marker(line, len, &opts, &n) != 0;
}

static bool dbmate_claims(const char *entry, const char *text)
{
	return text && migrations_ends_with(entry, ".sql") &&
	       migrations_any_line(text, is_marker);
}

static int dbmate_read(struct migration *m, size_t len)
{
	size_t at[2] = { NONE, NONE }; /* up, down: offsets of their marker lines */
	bool no_tx[2] = { false, false };

	for (size_t off = 0; off < len;) {
		const char *p = m->sql + off, *opts;
		size_t n = strcspn(p, "\n"), ol;
		int kind = marker(p, n, &opts, &ol), which = kind == 'd';

		if (kind && at[which] != NONE)
			return error("migration '%s' line %d: a second '-- migrate:%s' "
				     "marker; dbmate reads one of each (nothing was "
				     "changed)",
				     m->path, migrations_line_at(m->sql, off),
				     which ? "down" : "up");
		if (kind) {
			at[which] = off;
			no_tx[which] = no_transaction(opts, ol);
		} else if (at[0] == NONE && at[1] == NONE &&
			   !migrations_blank_or_comment(p, n)) {
			return error("migration '%s' line %d: SQL before the first "
				     "'-- migrate:up' or '-- migrate:down' marker, which "
				     "dbmate would not run; move it into a section "
				     "(nothing was changed)",
				     m->path, migrations_line_at(m->sql, off));
		}
		off += n + (p[n] == '\n');
	}
	if (at[0] == NONE)
		return error("migration '%s' has no '-- migrate:up' section; dbmate "
			     "needs one (nothing was changed)",
			     m->path);
	m->no_transaction = no_tx[0];
	m->down_no_transaction = no_tx[1];
	if (at[1] == NONE)
		return 0;
	if (at[0] < at[1]) {
		migrations_cut(m, at[1], at[1]);
	} else {
		/* down first: the up section (the file's end) follows the
		 * comments before the down marker */
		free(m->down_sql);
		m->down_sql = xasprintf("%.*s", (int)(at[0] - at[1]), m->sql + at[1]);
		memmove(m->sql + at[1], m->sql + at[0], len - at[0] + 1);
	}
	return 0;
}

const struct format format_dbmate = {
	.name = "dbmate",
	.example = "20240101120000_name.sql",
	.up_files = "*.sql",
	.claims = dbmate_claims,
	.parse_name = migrations_parse_sql_name,
	.read = dbmate_read,
};
