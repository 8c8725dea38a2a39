/*
 * fmt_diesel: diesel's directories 2024-01-01-120000_name/ (or
 * 20240101120000_name/, and diesel's own 00000000000000_diesel_initial_setup)
 * holding up.sql, an optional down.sql and an optional metadata.toml, of
 * which only the top-level key run_in_transaction is read (false: up and
 * down run without a transaction). The version is the timestamp's digits,
 * 20240101120000, as diesel records it.
 */
#include "migrations.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* The length of the timestamp before '_': digits and '-', 14 digits. */
static size_t stamp_len(const char *entry)
{
	size_t n = strspn(entry, "0123456789-"), digits = 0;

	for (size_t i = 0; i < n; i++)
		digits += entry[i] != '-';
	return digits == 14 && entry[0] != '-' && entry[n] == '_' && entry[n + 1] ? n : 0;
}

static bool diesel_claims(const char *entry, const char *text)
{
	(void)text;
	return stamp_len(entry) > 0;
}

static int diesel_parse_name(const char *entry, struct version *v, char **name,
			     bool *is_up)
{
	size_t n = stamp_len(entry), k = 0;
	char digits[16];

	*is_up = true;
	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (entry[i] != '-')
			digits[k++] = entry[i];
	if (!version_parse(v, digits, k))
		return -1;
	*name = xstrdup(entry);
	return NAME_MIGRATION;
}

static const char *trim(char *s)
{
	size_t n;

	s += strspn(s, " \t");
	n = strlen(s);
	while (n > 0 && strchr(" \t", s[n - 1]))
		s[--n] = '\0';
	return s;
}

/*
 * Reads metadata.toml's run_in_transaction: 0 with *in_tx set (kept when
 * the key is not there), or -1 after one line naming path:line.
 */
static int read_metadata(const char *path, char *text, bool *in_tx)
{
	bool top = true;
	int line = 0;

	for (char *p = text, *next; *p; p = next) {
		char *eq, *hash;
		const char *key, *value;

		next = p + strcspn(p, "\n");
		if (*next)
			*next++ = '\0';
		line++;
		key = trim(p);
		if (!*key || *key == '#')
			continue;
		if (*key == '[') {
			if (key[strlen(key) - 1] != ']')
				goto bad;
			top = false;
			continue;
		}
		if (!(eq = strchr(p, '=')))
			goto bad;
		*eq = '\0';
		key = trim(p);
		if ((hash = strchr(eq + 1, '#')))
			*hash = '\0';
		value = trim(eq + 1);
		if (!*key || !*value)
			goto bad;
		if (!top || strcmp(key, "run_in_transaction"))
			continue;
		if (!strcmp(value, "true") || !strcmp(value, "false")) {
			*in_tx = !strcmp(value, "true");
			continue;
		}
		return error("'%s' line %d: run_in_transaction must be true or false "
			     "(nothing was changed)",
			     path, line);
	}
	return 0;
bad:
	return error("'%s' line %d: not a line of TOML ferry reads (key = value, "
		     "[table] or # comment) (nothing was changed)",
		     path, line);
}

static int diesel_read(struct migration *m, size_t len)
{
	size_t dir_len = strlen(m->path) - strlen("/up.sql");
	char *down = xasprintf("%.*s/down.sql", (int)dir_len, m->path);
	char *meta = xasprintf("%.*s/metadata.toml", (int)dir_len, m->path);
	char *text = NULL;
	bool in_tx = true;
	int rc;

	(void)len;
	rc = migrations_read_beside(down, &m->down_sql);
	if (rc >= 0)
		rc = migrations_read_beside(meta, &text);
	if (rc == 0 && text)
		rc = read_metadata(meta, text, &in_tx);
	m->no_transaction = m->down_no_transaction = !in_tx;
	free(text);
	free(down);
	free(meta);
	return rc < 0 ? -1 : 0;
}

const struct format format_diesel = {
	.name = "diesel",
	.example = "2024-01-01-120000_name/up.sql",
	.up_files = "*/up.sql",
	.member = "up.sql",
	.claims = diesel_claims,
	.parse_name = diesel_parse_name,
	.read = diesel_read,
};
