/*
 * failures: the record of the last upgrade that failed (a migration or
 * the health gate), in the state dir beside the journal, so that the next
 * boot with the same image does not snapshot, migrate and restore again
 * forever (the crash-loop guard, DESIGN.md promise 7). The same upgrade
 * means the same from and to versions and the same migrations (names and
 * checksums): an image with other migrations is a new upgrade. In mode =
 * app the image's identity is part of it: an image that fixes the server
 * is a new upgrade too.
 */
#ifndef FERRY_FAILURES_H
#define FERRY_FAILURES_H

#include <stdbool.h>
#include <stddef.h>

#include "journal.h"
#include "version.h"

struct plan;
struct state;

struct failure {
	struct version from, to;
	char migrations[65]; /* sha256 over the pending migrations */
	long long attempts;  /* how many times this upgrade failed */
	char time[32];	     /* of the last failure, UTC */
	char reason[1024];   /* one line */
	char probe[512];     /* the health probe's last answer, "" for none */
	char identity[APP_IDENTITY_MAX + 1]; /* mode = app: the image's, else "" */
};

/* 1 and *f filled when there is a record, 0 when none, -1 logged. */
int failure_read(const struct state *st, struct failure *f);
/*
 * Records that the upgrade of p failed for reason (probe: the health
 * probe's last answer, or NULL); attempts counts on from a stored record
 * of the same upgrade. Written crash-safe. *out (may be NULL) gets the
 * record as written. -1 logged.
 */
int failure_record(const struct state *st, const struct plan *p, const char *reason,
		   const char *probe, struct failure *out);
/* Forgets the record (a later upgrade succeeded, or cleanup --failures). */
int failure_clear(const struct state *st);
/* "from 3 to 4", or "to app identity '1.4.2'" in mode = app: the upgrade
 * f names, for messages; returns buf */
const char *failure_what(const struct failure *f, char *buf, size_t size);
/* Is f a failure of the very upgrade p plans? */
bool failure_same(const struct failure *f, const struct plan *p);

#endif
