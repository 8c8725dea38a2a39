/*
 * ferry cleanup: snapshots and leftovers of finished upgrades removed;
 * with --failures only the record of a failed upgrade (the crash-loop
 * guard then lets the next boot try it again).
 */
#include "commands.h"
#include "exits.h"
#include "failures.h"
#include "log.h"
#include "session.h"
#include "snapshot.h"

int cmd_cleanup(struct session *s, const struct cmd_args *a)
{
	struct failure f;
	char what[APP_IDENTITY_MAX + 64];
	int n;

	if (a->failures) {
		if (failure_read(&s->state, &f) != 1) {
			log_info("cleanup: no failed upgrade recorded");
			return 0;
		}
		if (failure_clear(&s->state) < 0)
			return EXIT_CANTCREAT;
		log_info("cleanup: forgot the failed upgrade %s (%lld attempt%s: %s); "
			 "the next boot tries it again",
			 failure_what(&f, what, sizeof(what)), f.attempts,
			 f.attempts == 1 ? "" : "s", f.reason);
		return 0;
	}
	n = snapshot_remove_all(s->c, &s->store);
	if (s->store.ops->cleanup)
		s->store.ops->cleanup(&s->store);
	log_info("cleanup: %d snapshot%s removed", n, n == 1 ? "" : "s");
	return 0;
}
