/*
 * store: picks the backend from the database URL and holds what every
 * backend shares (the ledger's in-memory form).
 */
#include "store.h"
#include "migrations.h"
#include "log.h"
#include "pgurl.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * "host=db dbname=app": libpq's key=value form starts with a keyword. Any
 * case and any blank: "PASSWORD=x host=db" must reach libpq's parser (and
 * be refused there as an unknown option), not become a file name.
 */
static bool is_conninfo(const char *url)
{
	static const char word[] = "abcdefghijklmnopqrstuvwxyz"
				   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
	const char *p = url + strspn(url, " \t\n\r\f\v");
	size_t key = isalpha((unsigned char)*p) || *p == '_' ? strspn(p, word) : 0;

	return key > 0 && p[key + strspn(p + key, " \t\n\r\f\v")] == '=';
}

int store_init(struct store *s, const char *url)
{
	char red[1024];
	const char *path = NULL;

	memset(s, 0, sizeof(*s));
	/* from here on no log line shows what redact_url() masks, whoever
	 * writes it (the SQLite file name in sqlite.c's messages included) */
	redact_remember_url(url);
	s->url_redacted = xstrdup(redact_url(url, red, sizeof(red)));
	if (!strncmp(url, "sqlite://", 9))
		path = url + 9; /* sqlite:///abs -> /abs */
	else if (!strncmp(url, "sqlite:", 7))
		path = url + 7;
	else if (!strncmp(url, "postgres://", 11) || !strncmp(url, "postgresql://", 13) ||
		 is_conninfo(url)) {
		char why[512];

		/* not even redacted: which part is a password is a guess in a
		 * string libpq cannot read (a misspelt "passwrd=..." key) */
		if (pgurl_check(url, why, sizeof(why)) < 0)
			return error("database URL: %s", why);
		s->url = xstrdup(url);
		s->ops = &postgres_ops;
		return 0;
	} else if (strstr(url, "://"))
		return error("database '%s': unknown kind of database URL (expected "
			     "sqlite:///path, sqlite:path or a file path)", s->url_redacted);
	else
		path = url;
	if (redact_has_secret(url))
		return error("database URL: it seems to hold a password, but is neither "
			     "a postgres:// URL nor a key=value string (those start with "
			     "a key such as host=); SQLite takes sqlite:///path or a file "
			     "path");
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

bool store_outside_transaction(const struct store *s, const struct migration *m)
{
	if (m->no_transaction)
		return true;
	return s->ops->outside_transaction && s->ops->outside_transaction(m);
}
