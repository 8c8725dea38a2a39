/*
 * pgurl: libpq decides whether a connection string is good; when it is
 * not, the string is walked here by libpq's own rules (fe-connect.c's
 * conninfo_parse and conninfo_uri_parse_options) to name what is wrong.
 * libpq's message is never shown: "invalid percent-encoded token: "..."",
 * "end of string reached when looking for matching "]" ...: "<the URL>""
 * and "missing "=" after "..."" quote the password as often as not.
 * Hand-written because libpq explains its refusals only in those words.
 * Here too: which URLs are PostgreSQL's (pg_claims), and the store started
 * on one once it checks out (pg_init).
 */
#include "pgurl.h"
#include "log.h"
#include "postgres.h"
#include "store.h"
#include "redact.h"
#include "util.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SPACE	   " \t\n\r\f\v"
#define QUOTE_HINT "a value with blanks needs quotes: %s='...'"

struct why {
	const char *text; /* the connection string */
	char *buf;
	size_t size;
	bool found;
};

static void say(struct why *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(struct why *w, const char *fmt, ...)
{
	va_list ap;

	if (w->found)
		return;
	va_start(ap, fmt);
	vsnprintf(w->buf, w->size, fmt, ap);
	va_end(ap);
	w->found = true;
}

static bool is_secret_key(const char *key)
{
	return !strcasecmp(key, "password") || !strcasecmp(key, "sslpassword");
}

/* Is key one of libpq's options? (The option list: libpq's parse of "".) */
static bool known_option(const char *key)
{
	PQconninfoOption *all = PQconninfoParse("", NULL);
	bool found = !strcmp(key, "requiressl"); /* still taken, as sslmode */

	for (const PQconninfoOption *o = all; o && o->keyword && !found; o++)
		found = !strcmp(o->keyword, key);
	PQconninfoFree(all);
	return found;
}

/*
 * A key is named in a message only when it looks like one and lies outside
 * what redact_url() masks: other text may be a piece of a password cut by
 * a blank, '=' or '&'. key is the decoded text of raw[0..len).
 */
static bool nameable(const struct why *w, const char *key, const char *raw, size_t len)
{
	size_t n = strlen(key), at = (size_t)(raw - w->text);

	return n > 0 && n <= 40 &&
	       strspn(key,
		      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
		       n &&
	       !redact_overlaps(w->text, at, at + len);
}

/*
 * Percent-decodes s[0..len) into out (as far as it fits). Returns 0, 1 for
 * a '%' without two hex digits, 2 for %00: libpq's two refusals.
 */
static int decode(const char *s, size_t len, char *out, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '%') {
			if (i + 2 >= len || hex_digit(s[i + 1]) < 0 ||
			    hex_digit(s[i + 2]) < 0)
				return 1;
			c = (char)(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
			if (c == '\0')
				return 2;
			i += 2;
		}
		if (n + 1 < size)
			out[n++] = c;
	}
	if (size)
		out[n] = '\0';
	return 0;
}

/* A part of a URL that libpq percent-decodes: says what is wrong with it. */
static void check_part(struct why *w, const char *s, size_t len, const char *part)
{
	char tmp[8];
	int e = decode(s, len, tmp, sizeof(tmp));

	if (e == 1)
		say(w,
		    "bad percent-escape in %s (a '%%' must be followed by two hex "
		    "digits; write %%25 for a '%%' itself)",
		    part);
	else if (e == 2)
		say(w, "%%00 in %s (no value may hold a NUL byte)", part);
}

/*
 * One key=value of a URL's query, from p to end, with eq at its '=': says
 * what is wrong with it, or returns true with its decoded name in key.
 */
static bool check_param(struct why *w, const char *p, const char *eq, const char *end,
			bool after_secret, char *key, size_t size)
{
	char value[8], part[96];

	check_part(w, p, (size_t)(eq - p), "the name of a query parameter");
	if (w->found)
		return false;
	decode(p, (size_t)(eq - p), key, size);
	if (nameable(w, key, p, (size_t)(eq - p)))
		snprintf(part, sizeof(part), "query parameter '%s'", key);
	else
		snprintf(part, sizeof(part), "a query parameter");
	check_part(w, eq + 1, (size_t)(end - eq - 1), part);
	if (w->found)
		return false;
	value[0] = '\0';
	if ((size_t)(end - eq - 1) < sizeof(value))
		decode(eq + 1, (size_t)(end - eq - 1), value, sizeof(value));
	/* libpq's JDBC habit: ssl=true means sslmode=require */
	if (!(!strcmp(key, "ssl") && !strcmp(value, "true")) && !known_option(key)) {
		if (after_secret)
			say(w, "a query parameter after the password is no "
			       "option (write '&' in a password as %%26)");
		else if (nameable(w, key, p, (size_t)(eq - p)))
			say(w, "unknown option '%s' in the query", key);
		else
			say(w, "an unknown option in the query");
		return false;
	}
	return true;
}

/* ?key=value&...: the query of a URL */
static void explain_query(struct why *w, const char *p)
{
	bool after_secret = false;

	while (*p && !w->found) {
		const char *eq = NULL, *end = p;
		char key[64];

		for (; *end && *end != '&'; end++) {
			if (*end == '=' && eq) {
				decode(p, (size_t)(eq - p), key, sizeof(key));
				if (nameable(w, key, p, (size_t)(eq - p)) &&
				    !after_secret)
					say(w,
					    "a second '=' in query parameter '%s' (write "
					    "it as %%3D)",
					    key);
				else
					say(w,
					    "a second '=' in a query parameter (write it "
					    "as %%3D)");
				return;
			}
			if (*end == '=')
				eq = end;
		}
		if (!eq) {
			say(w,
			    "a query parameter without '='%s (write key=value, and "
			    "'&' in a value as %%26)",
			    after_secret ? " after the password" : "");
			return;
		}
		if (!check_param(w, p, eq, end, after_secret, key, sizeof(key)))
			return;
		after_secret = is_secret_key(key);
		p = *end ? end + 1 : end;
	}
}

/* postgres[ql]://[user[:password]@][host][:port][,...][/dbname][?query] */
static void explain_uri(struct why *w, const char *uri)
{
	const char *p = strstr(uri, "://") + 3, *q;

	/* the user info ends at the first '@' before any '/' */
	q = p + strcspn(p, "@/");
	if (*q == '@') {
		const char *colon = memchr(p, ':', (size_t)(q - p));

		check_part(w, p, (size_t)((colon ? colon : q) - p), "the user name");
		if (colon)
			check_part(w, colon + 1, (size_t)(q - colon - 1), "the password");
		p = q + 1;
	}
	for (;;) {
		const char *host = p, *end;

		if (*p == '[') {
			end = strchr(p, ']');
			if (!end) {
				say(w, "unclosed '[' in the host (an IPv6 address is "
				       "written [::1])");
				return;
			}
			if (end == p + 1) {
				say(w, "empty [] in the host");
				return;
			}
			host = p + 1;
			p = end + 1;
			if (*p && !strchr(":/?,", *p)) {
				say(w, "unexpected character after ']' in the host "
				       "(expected ':', '/', '?' or ',')");
				return;
			}
		} else {
			end = p + strcspn(p, ":/?,");
			p = end;
		}
		check_part(w, host, (size_t)(end - host), "the host");
		if (*p == ':') {
			const char *port = ++p;

			p += strcspn(p, "/?,");
			check_part(w, port, (size_t)(p - port), "the port");
		}
		if (*p != ',')
			break;
		p++;
	}
	if (*p == '/') {
		const char *db = ++p;

		p += strcspn(p, "?");
		check_part(w, db, (size_t)(p - db), "the database name");
	}
	if (*p == '?')
		explain_query(w, p + 1);
}

/* The key=value pair before, for what is said about the text after it. */
struct prev_pair {
	char key[64];
	bool bare_secret; /* its value: an unquoted password */
};

/* Past a value at cp, quoted or not; NULL when its quote never closes. */
static const char *skip_value(const char *cp)
{
	if (*cp == '\'') {
		for (cp++; *cp && *cp != '\''; cp++)
			if (*cp == '\\' && cp[1])
				cp++;
		return *cp ? cp + 1 : NULL;
	}
	while (*cp && !isspace((unsigned char)*cp)) {
		if (*cp == '\\' && cp[1])
			cp++;
		cp++;
	}
	return cp;
}

/* A word with no '=' after it. */
static void say_no_equals(struct why *w, const struct prev_pair *prev)
{
	if (prev->bare_secret)
		say(w,
		    "a word without '=' after the value of '%s' "
		    "(" QUOTE_HINT ")",
		    prev->key, prev->key);
	else if (prev->key[0])
		say(w,
		    "a word without '=' after the value of '%s' "
		    "(expected key=value; " QUOTE_HINT ")",
		    prev->key, prev->key);
	else
		say(w, "a word without '=' (expected key=value pairs)");
}

/* A key libpq does not know, written raw[0..len) in the text. */
static void say_unknown(struct why *w, const char *key, const char *raw, size_t len,
			const struct prev_pair *prev)
{
	char lower[64];
	size_t i;

	for (i = 0; key[i] && i + 1 < sizeof(lower); i++)
		lower[i] = (char)tolower((unsigned char)key[i]);
	lower[i] = '\0';
	if (prev->bare_secret) /* or a piece of a password with blanks */
		say(w,
		    "an unknown option after the value of '%s' (a "
		    "misspelt "
		    "option, or a value with blanks: quote it, %s='...')",
		    prev->key, prev->key);
	else if (nameable(w, key, raw, len) && known_option(lower))
		say(w, "unknown option '%s' (options are lower case: '%s')", key, lower);
	else if (nameable(w, key, raw, len))
		say(w, "unknown option '%s'", key);
	else
		say(w, "an unknown option");
}

/* key = value key = 'value' ...: libpq's key=value form */
static void explain_keywords(struct why *w, const char *s)
{
	const char *cp = s;
	struct prev_pair prev = { "", false };

	while (*cp && !w->found) {
		const char *k;
		char key[64];
		size_t klen;
		bool quoted;

		if (isspace((unsigned char)*cp)) {
			cp++;
			continue;
		}
		k = cp;
		while (*cp && *cp != '=' && !isspace((unsigned char)*cp))
			cp++;
		klen = (size_t)(cp - k);
		snprintf(key, sizeof(key), "%.*s", (int)klen, k);
		if (klen >= sizeof(key))
			key[0] = '\0'; /* too long to be a key: never named */
		cp += strspn(cp, SPACE);
		if (*cp != '=') {
			say_no_equals(w, &prev);
			return;
		}
		cp++;
		cp += strspn(cp, SPACE);
		quoted = *cp == '\'';
		cp = skip_value(cp);
		if (!cp) {
			if (nameable(w, key, k, klen) && !prev.bare_secret)
				say(w, "unterminated quoted value of '%s'", key);
			else
				say(w, "an unterminated quoted value");
			return;
		}
		if (!known_option(key)) {
			say_unknown(w, key, k, klen, &prev);
			return;
		}
		snprintf(prev.key, sizeof(prev.key), "%s", key);
		prev.bare_secret = !quoted && is_secret_key(key);
	}
}

int pgurl_check(const char *conninfo, char *why, size_t size)
{
	struct why w = { conninfo, why, size, false };
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);

	if (opts) {
		for (const PQconninfoOption *o = opts; o->keyword; o++)
			if (o->val && is_secret_key(o->keyword))
				redact_remember(o->val);
		PQconninfoFree(opts);
		return 0;
	}
	if (!err) {
		say(&w, "out of memory while parsing it");
		return -1;
	}
	PQfreemem(err);
	if (!strncmp(conninfo, "postgresql://", 13) ||
	    !strncmp(conninfo, "postgres://", 11))
		explain_uri(&w, conninfo);
	else
		explain_keywords(&w, conninfo);
	say(&w,
	    "libpq cannot parse it (check its quotes, '=' signs and percent-escapes)");
	return -1;
}

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

bool pg_claims(const char *url)
{
	return !strncmp(url, "postgres://", 11) || !strncmp(url, "postgresql://", 13) ||
	       is_conninfo(url);
}

int pg_init(struct store *s, const char *url)
{
	char why[512];

	/* not even redacted: which part is a password is a guess in a string
	 * libpq cannot read (a misspelt "passwrd=..." key) */
	if (pgurl_check(url, why, sizeof(why)) < 0)
		return error("database URL: %s", why);
	s->url = xstrdup(url);
	s->ops = &postgres_ops;
	return 0;
}
