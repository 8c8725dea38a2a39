/*
 * fuzz url: database URL parsing (store_init, libpq's refusals in ferry's
 * words) and redaction. In the input every byte 0x01 stands for a password
 * marker, a word of its own for each one ("Zq7WmAa", "Zq7WmAb", ...).
 * Property: a marker that is a password, by libpq's reading or by the
 * plain rules below, is shown by nothing ferry prints: not redact_url(),
 * not store_init()'s messages or url_redacted, not a log line that quotes
 * what libpq parsed. (A marker elsewhere, in a host say, may show.) And
 * every message is one line.
 */
#include "fuzz.h"
#include "redact.h"
#include "store.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <strings.h>

#define MARK	  "Zq7Wm"
#define MARK_LEN  7
#define MAX_MARKS 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_init();
	return 0;
}

static void mark(char out[MARK_LEN + 1], int i)
{
	snprintf(out, MARK_LEN + 1, MARK "%c%c", 'A' + i / 26, 'a' + i % 26);
}

/* The password and sslpassword libpq parses from url, "|"-joined. */
static void libpq_passwords(const char *url, char *out, size_t size)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL);

	out[0] = '\0';
	for (const PQconninfoOption *o = opts; o && o->keyword; o++) {
		if (o->val && (!strcmp(o->keyword, "password") ||
			       !strcmp(o->keyword, "sslpassword"))) {
			size_t n = strlen(out);

			snprintf(out + n, size - n, "%s|", o->val);
		}
	}
	PQconninfoFree(opts);
}

/*
 * The plain rules for the marker at m: it starts a password=/sslpassword=
 * value (any case; the key at the start, after a blank, a quote, '?' or
 * '&'), or sits between a postgres:// URL's user-info ':' and an '@' with
 * no '/' before that '@'.
 */
static bool plain_password(const char *url, const char *m)
{
	const char *v = m, *auth;

	/* back over an optional quote, blanks, '=' and blanks */
	if (v > url && v[-1] == '\'')
		v--;
	while (v > url && strchr(" \t\n\r\f\v", v[-1]))
		v--;
	if (v > url && v[-1] == '=') {
		const char *k = --v;

		while (k > url && strchr(" \t\n\r\f\v", k[-1]))
			k--;
		for (size_t i = 0; i < 2; i++) {
			const char *key = i ? "sslpassword" : "password";
			size_t kl = strlen(key);
			const char *ks = k - kl;

			if (k - url >= (ptrdiff_t)kl && !strncasecmp(ks, key, kl) &&
			    (ks == url || strchr(" \t\n\r\f\v'?&", ks[-1])))
				return true;
		}
	}
	if (!strncmp(url, "postgres://", 11) || !strncmp(url, "postgresql://", 13)) {
		const char *colon, *at;

		auth = strstr(url, "://") + 3;
		colon = m > auth ? memchr(auth, ':', (size_t)(m - auth)) : NULL;
		at = strchr(m + MARK_LEN, '@');
		if (colon && at && !memchr(auth, '/', (size_t)(at - auth)))
			return true;
	}
	return false;
}

/* The markers in url that are passwords, each followed by a NUL. */
static size_t password_marks(const char *url, char marks[][MARK_LEN + 1])
{
	char parsed[8192];
	size_t n = 0;

	libpq_passwords(url, parsed, sizeof(parsed));
	for (int i = 0; i < MAX_MARKS; i++) {
		char m[MARK_LEN + 1];
		const char *at;

		mark(m, i);
		at = strstr(url, m);
		if (at && (strstr(parsed, m) || plain_password(url, at)))
			memcpy(marks[n++], m, MARK_LEN + 1);
	}
	return n;
}

static void must_not_show(const char *what, const char *text, size_t len,
			  char marks[][MARK_LEN + 1], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (memmem(text, len, marks[i], MARK_LEN)) {
			fprintf(stderr, "the password shown: %s\n", marks[i]);
			fuzz_fail(what, text, len);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *url, *log, red[1024], small[40], parsed[8192], line[8300];
	char marks[MAX_MARKS][MARK_LEN + 1];
	struct store st;
	size_t n = 0, len, nmarks;
	int rc, k = 0;

	if (size > 2048)
		return 0;
	url = malloc(size * MARK_LEN + 1);
	if (!url)
		abort();
	/* NUL bytes out first: "Zq7\0WmAa" must not become a marker */
	for (size_t i = 0; i < size; i++)
		if (data[i])
			url[n++] = (char)data[i];
	if (memmem(url, n, "Zq7W", 4) || memmem(url, n, "q7Wm", 4)) {
		free(url);
		return 0; /* markers only where the fuzzer puts a 0x01 */
	}
	n = 0;
	for (size_t i = 0; i < size; i++) {
		if (data[i] == 1 && k < MAX_MARKS) {
			mark(url + n, k++);
			n += MARK_LEN;
		} else if (data[i]) { /* past MAX_MARKS a 0x01 stays itself */
			url[n++] = (char)data[i];
		}
	}
	url[n] = '\0';
	redact_reset();
	nmarks = password_marks(url, marks);

	redact_url(url, red, sizeof(red));
	fuzz_check_lines("redact_url() is one line", red, strlen(red), 0);
	must_not_show("redact_url() shows a password", red, strlen(red), marks, nmarks);
	redact_url(url, small, (size % sizeof(small)) + 1);
	must_not_show("a short redact_url() shows a password", small, strlen(small),
		      marks, nmarks);

	rc = store_init(&st, url);
	log = fuzz_log_take(&len);
	fuzz_check_lines("store_init() logs one line when it refuses", log, len, rc < 0);
	must_not_show("store_init()'s message shows a password", log, len, marks, nmarks);
	must_not_show("url_redacted shows a password", st.url_redacted,
		      strlen(st.url_redacted), marks, nmarks);
	free(log);

	/* a line quoting what libpq parsed, as its connection errors do */
	libpq_passwords(url, parsed, sizeof(parsed));
	if (rc == 0 && parsed[0]) {
		snprintf(line, sizeof(line), "invalid value: \"%s\"", parsed);
		log_error("%s", line);
		log = fuzz_log_take(&len);
		fuzz_check_lines("a log line is one line", log, len, 1);
		must_not_show("a log line quoting libpq shows a password", log, len,
			      marks, nmarks);
		free(log);
	}
	store_release(&st);
	free(url);
	return 0;
}
