/*
 * redact: where a password sits in a database URL or libpq key=value
 * string, found by syntax alone (a string libpq refuses must be masked as
 * well as one it accepts), and the passwords seen so far, which the log
 * layer takes out of every line. Hand-written: libpq has no "print this
 * URL safely" call. When in doubt it masks more than the password: a
 * message that says less is better than one that says the password.
 */
#include "redact.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SPACE	  " \t\n\r\f\v"
#define MAX_SPANS 32

struct span {
	size_t start, end; /* [start, end) of the string */
};

struct spans {
	struct span s[MAX_SPANS];
	size_t n;
};

static void add_span(struct spans *sp, size_t start, size_t end)
{
	struct span *last;

	if (end <= start)
		return;
	if (sp->n < MAX_SPANS) {
		sp->s[sp->n].start = start;
		sp->s[sp->n].end = end;
		sp->n++;
		return;
	}
	/* no room: the last span grows over this one and what lies between */
	last = &sp->s[MAX_SPANS - 1];
	if (start < last->start)
		last->start = start;
	if (end > last->end)
		last->end = end;
}

static int by_start(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

static bool all_digits(const char *p, const char *end)
{
	if (p >= end)
		return false;
	for (; p < end; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	return true;
}

/*
 * scheme:[//]user:PASSWORD@host... from the ':' after the scheme. The user
 * info ends at the last '@' (libpq stops at the first one, but a password
 * with a raw '@' or '/' is what people write); a '/' before the ':' means
 * there is no user info. With "://", a host's "port" that is no number is
 * masked too: postgres://user:secret without a host reads as host "user",
 * port "secret", and libpq would say "invalid port number: "secret"".
 */
static void userinfo_span(const char *url, const char *p, struct spans *sp)
{
	const char *auth, *slash, *at, *colon, *host;
	bool slashes = p[1] == '/' && p[2] == '/';

	auth = p + 1 + strspn(p + 1, "/");
	slash = auth + strcspn(auth, "/");
	at = strrchr(auth, '@');
	host = auth;
	if (at) {
		const char *lim = at < slash ? at : slash;

		colon = memchr(auth, ':', (size_t)(lim - auth));
		/* "host:5432/db?user=a@b" is a port, not a password */
		if (colon && !(at > slash && all_digits(colon + 1, slash))) {
			add_span(sp, (size_t)(colon + 1 - url), (size_t)(at - url));
			return;
		}
		if (at < slash)
			host = at + 1;
	}
	if (!slashes)
		return;
	if (*host == '[') {
		host = strchr(host, ']');
		if (!host)
			return;
		host++;
	} else {
		host += strcspn(host, ":/?,");
	}
	if (*host == ':') {
		const char *port = host + 1, *end = port + strcspn(port, "/?,");

		if (end > port && !all_digits(port, end))
			add_span(sp, (size_t)(port - url), (size_t)(end - url));
	}
}

#define SCHEME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-."

/*
 * The string's own scheme (any number of slashes after it), and every
 * scheme://... inside it: "dbname=postgres://u:pw@h/db" is a database name
 * to libpq, which quotes it whole when there is no such database.
 */
static void url_spans(const char *url, struct spans *sp)
{
	const char *p = url + strspn(url, SPACE);

	if (isalpha((unsigned char)*p) && p[strspn(p, SCHEME_CHARS)] == ':')
		userinfo_span(url, p + strspn(p, SCHEME_CHARS), sp);
	for (const char *q = strstr(url, "://"); q; q = strstr(q + 1, "://")) {
		const char *start = q;

		while (start > url && strchr(SCHEME_CHARS, start[-1]))
			start--;
		while (start < q && !isalpha((unsigned char)*start))
			start++;
		if (start < q)
			userinfo_span(url, q, sp);
	}
}

/*
 * The key at p, lower-cased into key: in a URL query percent-decoded and
 * ending at '=' or '&' (libpq decodes query keys), in key=value text the
 * letters before optional blanks. Blanks at its end do not count (libpq
 * keeps them in a query key, but "password =" still means a password).
 * Returns where '=' should be, or NULL when the key is longer than any
 * that holds a password.
 */
static const char *read_key(const char *p, bool query, char *key, size_t size)
{
	const char *start = p, *end;
	size_t n = 0;

	if (query) {
		p += strcspn(p, "=&");
		end = p;
	} else {
		while (isalpha((unsigned char)*p) || *p == '_')
			p++;
		end = p;
		p += strspn(p, SPACE);
	}
	while (end > start && isspace((unsigned char)end[-1]))
		end--;
	for (const char *q = start; q < end; q++) {
		int c = (unsigned char)*q;

		if (query && c == '%' && q + 2 < end && hex_digit(q[1]) >= 0 &&
		    hex_digit(q[2]) >= 0) {
			c = hex_digit(q[1]) * 16 + hex_digit(q[2]);
			q += 2;
		}
		if (n + 1 >= size)
			return NULL;
		key[n++] = (char)tolower(c);
	}
	while (n > 0 && isspace((unsigned char)key[n - 1]))
		n--;
	key[n] = '\0';
	return p;
}

/* Past a key=value value at v: '...' with backslash escapes, or up to a blank. */
static const char *conninfo_value_end(const char *v)
{
	if (*v == '\'') {
		for (v++; *v && *v != '\''; v++)
			if (*v == '\\' && v[1])
				v++;
		return *v ? v + 1 : v;
	}
	while (*v && !isspace((unsigned char)*v)) {
		if (*v == '\\' && v[1])
			v++;
		v++;
	}
	return v;
}

/*
 * password=... and sslpassword=..., any case, where a key can start: at
 * the beginning, after a blank or a quote (key=value text), after '?' or
 * '&' (a URL query, where the value runs to the next '&').
 */
static void keyword_spans(const char *url, struct spans *sp)
{
	const char *p = url;

	while (*p) {
		bool query = p > url && (p[-1] == '?' || p[-1] == '&');
		const char *eq, *end;
		char key[16];

		if (p > url && !query && !strchr(SPACE "'", p[-1])) {
			p++;
			continue;
		}
		eq = read_key(p, query, key, sizeof(key));
		if (!eq || *eq != '=' ||
		    (strcmp(key, "password") && strcmp(key, "sslpassword"))) {
			p++;
			continue;
		}
		if (query) {
			end = eq + 1 + strcspn(eq + 1, "&");
		} else {
			end = eq + 1 + strspn(eq + 1, SPACE);
			end = conninfo_value_end(end);
		}
		add_span(sp, (size_t)(eq + 1 - url), (size_t)(end - url));
		/* on right after the '=': a quote that ends early
		 * ("password='a b password='c d'") leaves another
		 * password key inside this value */
		p = eq + 1;
	}
}

/* The parts of url to mask, sorted, overlaps merged. */
static void find_spans(const char *url, struct spans *sp)
{
	size_t w = 0;

	sp->n = 0;
	url_spans(url, sp);
	keyword_spans(url, sp);
	qsort(sp->s, sp->n, sizeof(sp->s[0]), by_start);
	for (size_t r = 0; r < sp->n; r++) {
		if (w > 0 && sp->s[r].start <= sp->s[w - 1].end) {
			if (sp->s[r].end > sp->s[w - 1].end)
				sp->s[w - 1].end = sp->s[r].end;
		} else {
			sp->s[w++] = sp->s[r];
		}
	}
	sp->n = w;
}

bool redact_has_secret(const char *url)
{
	struct spans sp;

	find_spans(url, &sp);
	return sp.n > 0;
}

bool redact_overlaps(const char *url, size_t start, size_t end)
{
	struct spans sp;

	find_spans(url, &sp);
	for (size_t k = 0; k < sp.n; k++)
		if (start < sp.s[k].end && sp.s[k].start < end)
			return true;
	return false;
}

/* Appends to a bounded buffer; what does not fit is dropped. */
struct out {
	char *buf;
	size_t size, n;
};

static void put(struct out *o, const char *s, size_t len)
{
	if (o->n + len >= o->size)
		len = o->n + 1 < o->size ? o->size - o->n - 1 : 0;
	memcpy(o->buf + o->n, s, len);
	o->n += len;
}

static void put_escaped(struct out *o, unsigned char c)
{
	char esc[8];

	if (c == '\n')
		put(o, "\\n", 2);
	else if (c == '\r')
		put(o, "\\r", 2);
	else if (c == '\t')
		put(o, "\\t", 2);
	else if (c < 0x20 || c == 0x7f)
		put(o, esc, (size_t)snprintf(esc, sizeof(esc), "\\x%02x", c));
	else
		put(o, (const char *)&c, 1);
}

char *redact_url(const char *url, char *buf, size_t size)
{
	struct out o = { buf, size, 0 };
	struct spans sp;
	size_t k = 0;

	if (size == 0)
		return buf;
	find_spans(url, &sp);
	for (size_t i = 0; url[i];) {
		if (k < sp.n && i == sp.s[k].start) {
			put(&o, "***", 3);
			i = sp.s[k++].end;
			continue;
		}
		put_escaped(&o, (unsigned char)url[i++]);
	}
	buf[o.n] = '\0';
	return buf;
}

/* ------------------------------------------------------------------ */
/* Remembered passwords, longest first so a longer one is replaced whole. */

static char **secrets;
static size_t nsecrets;

static void remember_n(const char *s, size_t len)
{
	size_t i;
	char *copy;

	if (len == 0)
		return;
	for (i = 0; i < nsecrets; i++)
		if (strlen(secrets[i]) == len && !memcmp(secrets[i], s, len))
			return;
	copy = xmalloc(len + 1);
	memcpy(copy, s, len);
	copy[len] = '\0';
	secrets = xrealloc(secrets, (nsecrets + 1) * sizeof(*secrets));
	for (i = nsecrets; i > 0 && strlen(secrets[i - 1]) < len; i--)
		secrets[i] = secrets[i - 1];
	secrets[i] = copy;
	nsecrets++;
}

void redact_remember(const char *secret)
{
	remember_n(secret, strlen(secret));
}

void redact_remember_url(const char *url)
{
	struct spans sp;

	find_spans(url, &sp);
	for (size_t k = 0; k < sp.n; k++) {
		const char *v = url + sp.s[k].start;
		size_t len = sp.s[k].end - sp.s[k].start, n = 0;
		char *dec;

		/* key = 'value': the value without the blanks and quotes */
		while (len > 0 && isspace((unsigned char)*v))
			v++, len--;
		if (len >= 2 && v[0] == '\'' && v[len - 1] == '\'')
			v++, len -= 2;
		remember_n(v, len);
		/* as libpq hands it on: percent-decoded, or backslashes undone */
		dec = xmalloc(len + 1);
		for (size_t i = 0; i < len; i++) {
			if (v[i] == '%' && i + 2 < len && hex_digit(v[i + 1]) >= 0 &&
			    hex_digit(v[i + 2]) >= 0) {
				dec[n++] = (char)(hex_digit(v[i + 1]) * 16 +
						  hex_digit(v[i + 2]));
				i += 2;
			} else {
				dec[n++] = v[i];
			}
		}
		remember_n(dec, strnlen(dec, n));
		n = 0;
		for (size_t i = 0; i < len; i++) {
			if (v[i] == '\\' && i + 1 < len)
				i++;
			dec[n++] = v[i];
		}
		remember_n(dec, n);
		free(dec);
	}
}

void redact_reset(void)
{
	for (size_t i = 0; i < nsecrets; i++)
		free(secrets[i]);
	free(secrets);
	secrets = NULL;
	nsecrets = 0;
}

char *redact_text(const char *text, char *buf, size_t size)
{
	struct out o = { buf, size, 0 };
	const char *p = text;

	if (size == 0)
		return buf;
	while (*p) {
		size_t hit = 0;

		for (size_t i = 0; i < nsecrets && !hit; i++) {
			size_t len = strlen(secrets[i]);

			if (strncmp(p, secrets[i], len))
				continue;
			/* a short one only as a quoted word of its own */
			if (len < 4 && !(p > text && (p[-1] == '"' || p[-1] == '\'') &&
					 p[len] == p[-1]))
				continue;
			hit = len;
		}
		if (hit) {
			put(&o, "***", 3);
			p += hit;
		} else {
			put(&o, p++, 1);
		}
	}
	buf[o.n] = '\0';
	return buf;
}
