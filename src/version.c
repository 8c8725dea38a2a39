/*
 * version: parsing to canonical text and the segment-wise order. Hand
 * written: the dotted-version rules are Flyway's and no linked library
 * has them. The canonical text is the only state, so comparing two
 * segments is comparing their lengths (no leading zeros), then their
 * digits.
 */
#include "version.h"

#include <stdio.h>
#include <string.h>

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool version_parse(struct version *v, const char *s, size_t len)
{
	char buf[VERSION_INPUT_MAX + 1];
	size_t i = 0, w = 0, keep = 0; /* keep: w after the last segment that is not 0 */
	unsigned segments = 0, kept = 0;

	if (!s || len == 0 || len > VERSION_INPUT_MAX)
		return false;
	for (;;) {
		size_t start = i;

		while (i < len && is_digit(s[i]))
			i++;
		if (i == start || (i < len && s[i] != '.'))
			return false; /* an empty segment, or not a digit or dot */
		while (start + 1 < i && s[start] == '0')
			start++;
		if (segments++)
			buf[w++] = '.';
		memcpy(buf + w, s + start, i - start);
		w += i - start;
		if (i - start > 1 || s[start] != '0') {
			keep = w;
			kept = segments;
		}
		if (i == len)
			break;
		i++; /* the dot; a trailing one makes an empty segment above */
	}
	if (keep > VERSION_TEXT_MAX)
		return false;
	memset(v, 0, sizeof(*v));
	memcpy(v->text, buf, keep);
	v->segments = (unsigned char)kept;
	return true;
}

int version_cmp(const struct version *a, const struct version *b)
{
	const char *p = a->text, *q = b->text;

	/* A segment only one side has is higher: canonical texts end in a
	 * segment that is not 0. */
	while (*p || *q) {
		size_t m = strcspn(p, "."), n = strcspn(q, ".");
		int c;

		if (m != n)
			return m < n ? -1 : 1;
		c = memcmp(p, q, m);
		if (c)
			return c < 0 ? -1 : 1;
		p += m + (p[m] == '.');
		q += n + (q[n] == '.');
	}
	return 0;
}

const char *version_str(const struct version *v)
{
	return v->text[0] ? v->text : "0";
}

bool version_is_zero(const struct version *v)
{
	return v->text[0] == '\0';
}

bool version_is_integer(const struct version *v)
{
	return v->segments <= 1;
}

bool version_to_ll(const struct version *v, long long *out)
{
	long long n = 0;

	if (!version_is_integer(v) || strlen(v->text) > 18)
		return false;
	for (const char *p = v->text; *p; p++)
		n = 10 * n + (*p - '0');
	*out = n;
	return true;
}

bool version_from_ll(struct version *v, long long n)
{
	if (n < 0)
		return false;
	memset(v, 0, sizeof(*v));
	if (n > 0) {
		snprintf(v->text, sizeof(v->text), "%lld", n);
		v->segments = 1;
	}
	return true;
}
