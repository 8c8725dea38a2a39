/*
 * json: escaping for one-line output, and the streaming writer. Hand
 * written because none of ferry's libraries writes JSON, and the little
 * that is needed (objects, arrays, strings, integers) fits here.
 */
#include "json.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s, 0 when none starts there. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned cp;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07u;
	else
		return 0;
	for (size_t i = 1; i < n; i++) { /* a NUL is no continuation byte */
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void escape_line(char *dst, size_t size, const char *src, bool json)
{
	size_t n = 0;

	for (const unsigned char *s = (const unsigned char *)src; *s && n + 7 < size;) {
		unsigned char c = *s;
		size_t len;

		if (c == '\n' || c == '\r' || c == '\t') {
			dst[n++] = '\\';
			dst[n++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			s++;
		} else if (c < 0x20 || c == 0x7f) {
			n += (size_t)snprintf(dst + n, size - n,
					      json ? "\\u%04x" : "\\x%02x", c);
			s++;
		} else if (json && (c == '"' || c == '\\')) {
			dst[n++] = '\\';
			dst[n++] = (char)c;
			s++;
		} else if ((len = json ? utf8_len(s) : 1) == 0) {
			n += (size_t)snprintf(dst + n, size - n, "\\ufffd");
			s++;
		} else {
			memcpy(dst + n, s, len);
			n += len;
			s += len;
		}
	}
	dst[n] = '\0';
}

void json_init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
}

static void put_string(FILE *f, const char *s)
{
	size_t size = 6 * strlen(s) + 8;
	char *esc = xmalloc(size);

	escape_line(esc, size, s, true);
	fprintf(f, "\"%s\"", esc);
	free(esc);
}

/* The comma before a value, and its member name inside an object. */
static void member(struct json *j, const char *key)
{
	if (j->need_comma[j->depth])
		fputc(',', j->f);
	j->need_comma[j->depth] = true;
	if (key) {
		put_string(j->f, key);
		fputc(':', j->f);
	}
}

static void open_value(struct json *j, const char *key, char open)
{
	member(j, key);
	fputc(open, j->f);
	if (j->depth + 1 < (int)(sizeof(j->need_comma) / sizeof(j->need_comma[0])))
		j->depth++;
	j->need_comma[j->depth] = false;
}

void json_object(struct json *j, const char *key)
{
	open_value(j, key, '{');
}

void json_array(struct json *j, const char *key)
{
	open_value(j, key, '[');
}

void json_end(struct json *j, char close)
{
	fputc(close, j->f);
	if (j->depth > 0)
		j->depth--;
	if (j->depth == 0 && close == '}')
		fputc('\n', j->f);
}

void json_str(struct json *j, const char *key, const char *value)
{
	member(j, key);
	if (value)
		put_string(j->f, value);
	else
		fputs("null", j->f);
}

void json_int(struct json *j, const char *key, long long value)
{
	member(j, key);
	fprintf(j->f, "%lld", value);
}

void json_number(struct json *j, const char *key, const char *digits)
{
	member(j, key);
	fputs(digits, j->f);
}

void json_bool(struct json *j, const char *key, bool value)
{
	member(j, key);
	fputs(value ? "true" : "false", j->f);
}

void json_null(struct json *j, const char *key)
{
	member(j, key);
	fputs("null", j->f);
}
