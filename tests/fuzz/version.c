/*
 * fuzz version: version_parse() and what it gives. The input is up to
 * three versions separated by newlines (the whole input is parsed too).
 * Properties: a version is accepted exactly when it is digits and dots
 * without an empty segment, at most VERSION_INPUT_MAX bytes, with a
 * canonical text of at most VERSION_TEXT_MAX characters, and that text is
 * the one a second implementation here computes; the canonical text
 * parses back to the same bytes; a refusal leaves the version untouched;
 * the conversions to and from an integer agree with the text;
 * version_cmp is reflexive, antisymmetric, transitive, and orders
 * integers as integers.
 */
#include "fuzz.h"
#include "version.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_init();
	return 0;
}

static int sign(int c)
{
	return (c > 0) - (c < 0);
}

/*
 * The canonical text of s another way (segments copied without leading
 * zeros, then ".0" cut off the end while it is there), into out (at least
 * len + 2 bytes); false when s is not digits and dots without an empty
 * segment.
 */
static bool reference(const char *s, size_t len, char *out)
{
	size_t w = 0;
	bool at_start = true; /* of a segment */

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (at_start)
				return false;
			out[w++] = '.';
			at_start = true;
		} else if (s[i] >= '0' && s[i] <= '9') {
			bool last_of_zeros = i + 1 == len || s[i + 1] == '.';

			if (!at_start || s[i] != '0' || last_of_zeros)
				out[w++] = s[i], at_start = false;
		} else {
			return false;
		}
	}
	if (at_start)
		return false;
	out[w] = '\0';
	while (w >= 2 && !strcmp(out + w - 2, ".0"))
		out[w -= 2] = '\0';
	if (!strcmp(out, "0"))
		out[0] = '\0';
	return true;
}

/* Parses one version and checks what depends on it alone. */
static bool one(const char *s, size_t len, struct version *v)
{
	static const struct version sentinel = { "sentinel", 77 };
	char *ref = malloc(len + 2);
	bool parsed, valid;
	struct version again;
	long long n;

	if (!ref)
		abort();
	*v = sentinel;
	parsed = version_parse(v, s, len);
	valid = reference(s, len, ref) && len <= VERSION_INPUT_MAX &&
		strlen(ref) <= VERSION_TEXT_MAX;
	if (parsed != valid)
		fuzz_fail(parsed ? "accepted a version that is not one"
				 : "refused a version",
			  s, len);
	if (!parsed && memcmp(v, &sentinel, sizeof(*v)))
		fuzz_fail("a refusal changed the version", s, len);
	if (parsed && strcmp(v->text, ref))
		fuzz_fail("the canonical text is not the reference's", v->text,
			  strlen(v->text));
	free(ref);
	if (!parsed)
		return false;
	if (!version_parse(&again, version_str(v), strlen(version_str(v))) ||
	    memcmp(&again, v, sizeof(again)) || version_cmp(v, &again))
		fuzz_fail("the canonical text does not parse back to the same version", s,
			  len);
	if (version_is_zero(v) != !strcmp(version_str(v), "0"))
		fuzz_fail("zero is not the version that prints 0", s, len);
	if (version_to_ll(v, &n) != (version_is_integer(v) && strlen(v->text) <= 18))
		fuzz_fail("version_to_ll() refuses an integer or takes a dotted one", s,
			  len);
	if (version_to_ll(v, &n) &&
	    (!version_from_ll(&again, n) || version_cmp(&again, v) ||
	     memcmp(&again, v, sizeof(again))))
		fuzz_fail("an integer does not come back as the same version", s, len);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct version v[3];
	bool ok[3] = { false, false, false };
	size_t k = 0;

	one(p, size, &v[0]);
	while (k < 3) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl && k < 2 ? nl : end;

		ok[k] = one(p, (size_t)(stop - p), &v[k]);
		k++;
		if (stop == end)
			break;
		p = stop + 1;
	}
	for (size_t i = 0; i < k; i++) {
		for (size_t j = 0; j < k; j++) {
			long long a, b;

			if (!ok[i] || !ok[j])
				continue;
			if (sign(version_cmp(&v[i], &v[j])) !=
			    -sign(version_cmp(&v[j], &v[i])))
				fuzz_fail("version_cmp is not antisymmetric", v[i].text,
					  strlen(v[i].text));
			if ((version_cmp(&v[i], &v[j]) == 0) !=
			    !memcmp(&v[i], &v[j], sizeof(v[i])))
				fuzz_fail("equal versions differ in their bytes",
					  v[i].text, strlen(v[i].text));
			if (version_to_ll(&v[i], &a) && version_to_ll(&v[j], &b) &&
			    sign(version_cmp(&v[i], &v[j])) != (a > b) - (a < b))
				fuzz_fail("integers are not ordered as integers",
					  v[i].text, strlen(v[i].text));
			for (size_t l = 0; l < k; l++)
				if (ok[l] && version_cmp(&v[i], &v[j]) <= 0 &&
				    version_cmp(&v[j], &v[l]) <= 0 &&
				    version_cmp(&v[i], &v[l]) > 0)
					fuzz_fail("version_cmp is not transitive",
						  v[i].text, strlen(v[i].text));
		}
	}
	return 0;
}
