/*
 * store: picks the backend from the database URL and holds what every
 * backend shares (the ledger's in-memory form).
 */
#include "store.h"
#include "migrations.h"
#include "log.h"
#include "util.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libpq's messages end in a newline */
static const char *one_line_msg(const char *msg, char *buf, size_t size)
{
	snprintf(buf, size, "%s", msg);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/* "host=db dbname=app": libpq's key=value form starts with a keyword */
static bool is_conninfo(const char *url)
{
	const char *p = url + strspn(url, " \t");
	size_t key = strspn(p, "abcdefghijklmnopqrstuvwxyz_");

	return key > 0 && p[key + strspn(p + key, " ")] == '=';
}

int store_init(struct store *s, const char *url)
{
	char red[1024];
	const char *path = NULL;

	memset(s, 0, sizeof(*s));
	s->url_redacted = xstrdup(redact_url(url, red, sizeof(red)));
	if (!strncmp(url, "sqlite://", 9))
		path = url + 9; /* sqlite:///abs -> /abs */
	else if (!strncmp(url, "sqlite:", 7))
		path = url + 7;
	else if (!strncmp(url, "postgres://", 11) || !strncmp(url, "postgresql://", 13) ||
		 is_conninfo(url)) {
		char *why = NULL;
		PQconninfoOption *opts = PQconninfoParse(url, &why);

		if (!opts) {
			char msg[512];

			error("database '%s': %s", s->url_redacted,
			      why ? one_line_msg(why, msg, sizeof(msg)) : "out of memory");
			PQfreemem(why);
			return -1;
		}
		PQconninfoFree(opts);
		s->url = xstrdup(url);
		s->ops = &postgres_ops;
		return 0;
	} else if (strstr(url, "://"))
		return error("database '%s': unknown kind of database URL (expected "
			     "sqlite:///path, sqlite:path or a file path)", s->url_redacted);
	else
		path = url;
	if (!*path || strchr(path, '?'))
		return error("database '%s': expected a file path after sqlite:",
			     s->url_redacted);
	s->url = xstrdup(url);
	s->path = xstrdup(path);
	s->ops = &sqlite_ops;
	s->busy_ms = 10000;
	return 0;
}

void store_release(struct store *s)
{
	if (s->ops)
		s->ops->close(s); /* also what is not s->db, like a lock session */
	free(s->priv); /* backends keep no pointers in it */
	free(s->url);
	free(s->url_redacted);
	free(s->path);
	memset(s, 0, sizeof(*s));
}

void ledger_release(struct ledger *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->rows[i].name);
	free(l->rows);
	memset(l, 0, sizeof(*l));
}

const struct ledger_row *ledger_find(const struct ledger *l, long long version)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->rows[i].version == version)
			return &l->rows[i];
	return NULL;
}

bool store_outside_transaction(const struct store *s, const struct migration *m)
{
	if (m->no_transaction)
		return true;
	return s->ops->outside_transaction && s->ops->outside_transaction(m);
}
