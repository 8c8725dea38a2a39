/*
 * store: picks the backend from the database URL and holds what every
 * backend shares (the ledger's in-memory form).
 */
#include "store.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

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
		 (strchr(url, '=') && !strchr(url, '/')))
		return error("database '%s': PostgreSQL is not supported by this "
			     "build yet", s->url_redacted);
	else if (strstr(url, "://"))
		return error("database '%s': unknown kind of database URL (expected "
			     "sqlite:///path, sqlite:path or a file path)", s->url_redacted);
	else
		path = url;
	if (!*path || strchr(path, '?'))
		return error("database '%s': expected a file path after sqlite:",
			     s->url_redacted);
	s->path = xstrdup(path);
	s->ops = &sqlite_ops;
	s->busy_ms = 10000;
	return 0;
}

void store_release(struct store *s)
{
	if (s->ops && s->db)
		s->ops->close(s);
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
