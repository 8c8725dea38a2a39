/*
 * store: picks the backend that claims the database URL, and holds what
 * every backend shares.
 */
#include "store.h"
#include "migrations.h"
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The engines, asked in turn whether a URL is theirs. */
static const struct store_ops *const engines[] = { &postgres_ops, &sqlite_ops };

int store_init(struct store *s, const char *url)
{
	char red[1024];

	memset(s, 0, sizeof(*s));
	/* from here on no log line shows what redact_url() masks, whoever
	 * writes it (the SQLite file name in the backend's messages included) */
	redact_remember_url(url);
	s->url_redacted = xstrdup(redact_url(url, red, sizeof(red)));
	for (size_t i = 0; i < sizeof(engines) / sizeof(engines[0]); i++)
		if (engines[i]->claims(url))
			return engines[i]->init(s, url);
	return error("database '%s': unknown kind of database URL (expected "
		     "sqlite:///path, sqlite:path or a file path)",
		     s->url_redacted);
}

void store_release(struct store *s)
{
	if (s->ops)
		s->ops->close(s); /* also what is not s->db, like a lock session */
	free(s->priv);		  /* backends keep no pointers in it */
	free(s->url);
	free(s->url_redacted);
	free(s->path);
	memset(s, 0, sizeof(*s));
}

bool store_outside_transaction(const struct store *s, const struct migration *m)
{
	if (m->no_transaction)
		return true;
	return s->ops->outside_transaction && s->ops->outside_transaction(m);
}

int store_fail(struct store *s, int status, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->status = status;
	return error("%s", msg);
}
