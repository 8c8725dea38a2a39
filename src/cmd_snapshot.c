/* ferry snapshot: a snapshot of the database now, as an upgrade takes it. */
#include "commands.h"
#include "exits.h"
#include "log.h"
#include "session.h"
#include "snapshot.h"

int cmd_snapshot(struct session *s, const struct cmd_args *a)
{
	struct version top;
	int rc;

	(void)a;
	if (!s->db_exists) {
		log_error("no database at '%s' to snapshot", s->store.path);
		return EXIT_DATA;
	}
	rc = session_lock(s, 0);
	if (rc == 0)
		rc = session_check_finished(s);
	if (rc)
		return rc;
	if (s->store.ops->open(&s->store) < 0 || ledger_read(&s->store, &s->ledger) < 0)
		return EXIT_DATA;
	top = ledger_top(&s->ledger);
	return snapshot_take(s->c, &s->store, &top, false);
}
