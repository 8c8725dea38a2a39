/*
 * migrations: the files an image ships. Discovery per directory through a
 * small table of formats, numeric version order, normalised checksums.
 */
#ifndef FERRY_MIGRATIONS_H
#define FERRY_MIGRATIONS_H

#include <stdbool.h>
#include <stddef.h>

struct migration {
	long long version;
	char *name;         /* file name without the format's suffix */
	char *path;         /* the up file */
	char *sql;          /* normalised content: no BOM, LF line ends */
	char sha256[65];    /* of sql */
	bool no_transaction;
	/* the first byte that is not UTF-8: its line (0: the whole file is
	 * UTF-8) and its offset in the file */
	int not_utf8_line;
	size_t not_utf8_at;
};

struct migration_set {
	const char *format; /* "ferry", "golang-migrate" */
	char *dir;
	struct migration *items; /* sorted by version */
	size_t n;
};

/*
 * Reads dir. Returns 0, or logs one line naming the file and returns the
 * exit status: 78 for a missing directory or one without migrations, 65
 * for a bad file (unreadable, empty, a NUL byte, a name without version,
 * a duplicate version).
 */
int migrations_load(struct migration_set *set, const char *dir);
void migrations_release(struct migration_set *set);
const struct migration *migrations_find(const struct migration_set *set,
					long long version);
long long migrations_latest(const struct migration_set *set);
/* Normalises text in place (BOM, CRLF) and returns its new length. */
size_t migrations_normalise(char *text, size_t len);
void sha256_hex(const void *data, size_t len, char out[65]);

#endif
