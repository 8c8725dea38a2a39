/*
 * ferry rollback: the latest pre-upgrade snapshot put back, after an
 * unfinished upgrade was resolved the way a boot would.
 */
#include "commands.h"
#include "exits.h"
#include "log.h"
#include "session.h"
#include "snapshot.h"
#include "upgrade.h"
#include "util.h"

#include <stdlib.h>

int cmd_rollback(struct session *s, const struct cmd_args *a)
{
	char *snap = NULL, why[512];
	int rc;

	(void)a;
	rc = session_lock(s, 0);
	if (rc) {
		if (rc == EXIT_TEMPFAIL)
			log_error(
				"refusing to roll back while another ferry is migrating");
		return rc;
	}
	rc = upgrade_recover(s); /* an interrupted upgrade is undone the same way */
	if (rc)
		return rc;
	snap = snapshot_path(s->c, &s->store, 0);
	if (!path_exists(snap)) {
		log_error("no snapshot to roll back to: '%s' does not exist", snap);
		rc = EXIT_DATA;
	} else if (s->store.ops->snapshot_usable &&
		   !s->store.ops->snapshot_usable(&s->store, snap, why, sizeof(why))) {
		log_error("cannot roll back: snapshot '%s' is not usable (%s); nothing "
			  "was changed",
			  snap, why);
		rc = EXIT_DATA;
	} else {
		rc = upgrade_rollback(s, snap);
		if (rc == 0)
			log_event(LOG_INFO,
				  LOG_FIELDS(.event = "rollback_done", .snapshot = snap),
				  "database %s restored from %s%s", s->store.url_redacted,
				  snap,
				  path_exists(snap) ? " (the snapshot is kept; `ferry "
						      "cleanup` removes it)"
						    : "");
	}
	free(snap);
	return rc;
}
