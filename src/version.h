/*
 * version: a migration's version as the formats write it, an integer
 * (0001), a timestamp (20240101120000) or a dotted version (Flyway's
 * 1.2.3), in one fixed-size value that orders them all.
 *
 * Order: segment by segment, numerically (1.1 < 1.2 < 1.10, 9 < 10,
 * 1 < 1.1 < 2); a missing segment is 0, so trailing zeros do not count:
 * 1 == 1.0 == 1.0.0, as Flyway compares (V1 and V1.0 are the same
 * version there too, a duplicate). Leading zeros of a segment are ignored
 * (0001 == 1).
 *
 * Canonical text: each segment without its leading zeros, trailing zero
 * segments dropped, "0" for zero: "0003" -> "3" (what "%lld" printed),
 * "1.02.0" -> "1.2". Two versions are equal exactly when their canonical
 * texts are; the struct holds nothing else, so it may be copied, kept in
 * other structs and compared with version_cmp.
 *
 * The zero value (all bytes 0, VERSION_ZERO, or parsed from "0") means
 * "no version": an empty ledger, a directory without migrations.
 */
#ifndef FERRY_VERSION_H
#define FERRY_VERSION_H

#include <stdbool.h>
#include <stddef.h>

/* The longest canonical text: 47 characters, e.g. 24 one-digit segments. */
#define VERSION_TEXT_MAX 47
/* Longer input is refused before it is read (leading zeros included). */
#define VERSION_INPUT_MAX 255

struct version {
	char text[VERSION_TEXT_MAX + 1]; /* canonical; "" for zero */
	unsigned char segments;		 /* 0: zero; 1: an integer; more: dotted */
};

#define VERSION_ZERO ((struct version){ { 0 }, 0 })

/*
 * Reads len bytes of s (no NUL needed): digits and dots only, no empty
 * segment (no leading or trailing dot, no ".."), at most VERSION_INPUT_MAX
 * bytes and a canonical text of at most VERSION_TEXT_MAX characters.
 * false on anything else, *v then untouched.
 */
bool version_parse(struct version *v, const char *s, size_t len);
/* <0, 0, >0 as a is lower than, equal to or higher than b. */
int version_cmp(const struct version *a, const struct version *b);
/* The canonical text, "0" for zero; it lives as long as *v. */
const char *version_str(const struct version *v);
bool version_is_zero(const struct version *v);
/* An integer version (segments <= 1), for ledgers with an INTEGER column. */
bool version_is_integer(const struct version *v);

/*
 * As an integer: false when v is dotted or has more than 18 digits (what
 * fits a long long whatever the digits), *out then untouched.
 */
bool version_to_ll(const struct version *v, long long *out);
/* false for a negative n, *v then untouched. */
bool version_from_ll(struct version *v, long long n);

#endif
