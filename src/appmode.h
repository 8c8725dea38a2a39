/*
 * appmode: [migrations] mode = app, for servers that migrate themselves
 * at startup from migrations compiled in. The image declares an identity
 * ([app] version, version_env or version_from_file); the identity of the last
 * healthy boot is kept in the database itself (table ferry_app), so it
 * travels with the data and a restored snapshot brings its own back. The
 * same identity: nothing to do. Another one: a snapshot, then the
 * server's migrate command or the server itself under the health gate,
 * and the new identity recorded once that succeeded; a failure restores
 * the snapshot. The strategy is a row of upgrade.c's table.
 */
#ifndef FERRY_APPMODE_H
#define FERRY_APPMODE_H

#include <stdbool.h>

#include "journal.h"

struct config;
struct session;

/* The identities of a session in mode = app. */
struct app_identity {
	char current[APP_IDENTITY_MAX + 1];  /* the image's, "" until read */
	char recorded[APP_IDENTITY_MAX + 1]; /* at the last healthy boot, "" none */
	char recorded_at[32];		     /* UTC, "" for none */
	bool has_tables; /* the database holds tables other than ferry_app */
};

/* The [app] and [migrations] keys of mode = app agree: 0, or 78 logged. */
int app_check_config(const struct config *c);
/* session_read_plan in mode = app: the identities read (the image's
 * once), the plan made from them: current, create (no tables yet) or
 * upgrade. 0 or the exit status, logged. */
int app_read_plan(struct session *s);
/* "up to date" of the log, in words of identities */
void app_log_current(const struct session *s);

/* The strategy: fits in mode = app; run carries the plan out. */
bool app_fits(const struct session *b);
int app_upgrade(struct session *b);
/* Recovery of a journal of kind app in migrating .. applied: 0 when the
 * new identity was recorded (the journal cleared), 73 when it cannot be
 * cleared, -1 when the snapshot must go back. */
int app_resolve(struct session *b, const struct journal *j);
/* The health gate's verdicts on a gated app upgrade (upgrade.h's accept,
 * reject and undo_unverified for kind app). */
int app_accept(struct session *b);
int app_reject(struct session *b, const char *why, const char *probe);
int app_undo_unverified(struct session *b);

#endif
