/*
 * fmt_flyway: Flyway's versioned V1__name.sql, V1.2.3__name.sql and
 * V1_2__name.sql (Flyway reads '_' in a version as '.': V1_2 is 1.2), and
 * its repeatable R__name.sql, which go to set->repeatables with their
 * description as name. Undo (U1__x.sql) and baseline (B1__x.sql) scripts
 * are refused: ferry runs neither. A script config file beside a script
 * (V2__x.sql.conf) may say executeInTransaction=false: that script runs
 * without a transaction; its other keys are Flyway's business.
 */
#include "migrations.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* The version part of "V1_2__x.sql" (after the prefix, before "__"): its
 * length, 0 when there is none made of digits, '.' and '_'. */
static size_t version_len(const char *entry)
{
	const char *sep = strstr(entry + 1, "__");
	size_t n = sep ? (size_t)(sep - entry - 1) : 0;

	return n > 0 && strspn(entry + 1, "0123456789._") >= n ? n : 0;
}

static bool flyway_claims(const char *entry, const char *text)
{
	(void)text;
	if (!migrations_ends_with(entry, ".sql"))
		return false;
	if (!strncmp(entry, "R__", 3))
		return true;
	return strchr("VUB", entry[0]) && entry[0] && version_len(entry) > 0;
}

static int flyway_parse_name(const char *entry, struct version *v, char **name,
			     bool *is_up)
{
	size_t stem = strlen(entry) - strlen(".sql"), n;
	char text[VERSION_INPUT_MAX + 1];

	*is_up = true;
	if (!strncmp(entry, "R__", 3)) {
		if (stem <= 3)
			return -1;
		*name = xasprintf("%.*s", (int)(stem - 3), entry + 3);
		return NAME_REPEATABLE;
	}
	n = version_len(entry);
	if (n == 0 || n > VERSION_INPUT_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		text[i] = entry[1 + i] == '_' ? '.' : entry[1 + i];
	if (!version_parse(v, text, n))
		return -1;
	*name = xasprintf("%.*s", (int)stem, entry);
	return NAME_MIGRATION;
}

/*
 * executeInTransaction of a script config file (Java properties: key=value
 * or key: value, # and ! comments): 0 with *in_tx (kept when the key is
 * not there), or -1 after one line naming path:line.
 */
static int read_conf(const char *path, char *text, bool *in_tx)
{
	int line = 0;

	for (char *p = text, *next; *p; p = next) {
		size_t key, sep, value;

		next = p + strcspn(p, "\n");
		if (*next)
			*next++ = '\0';
		line++;
		p += strspn(p, " \t");
		key = strcspn(p, "=: \t");
		if (key != strlen("executeInTransaction") ||
		    strncmp(p, "executeInTransaction", key))
			continue;
		sep = key + strspn(p + key, " \t");
		sep += p[sep] == '=' || p[sep] == ':';
		sep += strspn(p + sep, " \t");
		value = strcspn(p + sep, " \t");
		if (value == 4 && !strncmp(p + sep, "true", 4) &&
		    !p[sep + 4 + strspn(p + sep + 4, " \t")])
			*in_tx = true;
		else if (value == 5 && !strncmp(p + sep, "false", 5) &&
			 !p[sep + 5 + strspn(p + sep + 5, " \t")])
			*in_tx = false;
		else
			return error("'%s' line %d: executeInTransaction must be true or "
				     "false (nothing was changed)",
				     path, line);
	}
	return 0;
}

static int flyway_read(struct migration *m, size_t len)
{
	char *conf, *text = NULL;
	bool in_tx = true;
	int rc;

	(void)len;
	if (m->name[0] == 'U' || m->name[0] == 'B')
		return error(
			"migration '%s' is a Flyway %s script (prefix %c): ferry does "
			"not run Flyway undo or baseline scripts; remove it from the "
			"directory (nothing was changed)",
			m->path, m->name[0] == 'U' ? "undo" : "baseline", m->name[0]);
	conf = xasprintf("%s.conf", m->path);
	rc = migrations_read_beside(conf, &text);
	if (rc == 0)
		rc = read_conf(conf, text, &in_tx);
	m->no_transaction = !in_tx;
	free(text);
	free(conf);
	return rc < 0 ? -1 : 0;
}

const struct format format_flyway = {
	.name = "flyway",
	.example = "V1__name.sql",
	.up_files = "V*__*.sql",
	.claims = flyway_claims,
	.parse_name = flyway_parse_name,
	.read = flyway_read,
};
