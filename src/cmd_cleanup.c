/* ferry cleanup: snapshots and leftovers of finished upgrades removed. */
#include "commands.h"
#include "log.h"
#include "session.h"
#include "snapshot.h"

int cmd_cleanup(struct session *s, const struct cmd_args *a)
{
	int n;

	(void)a;
	n = snapshot_remove_all(s->c, &s->store);
	if (s->store.ops->cleanup)
		s->store.ops->cleanup(&s->store);
	log_info("cleanup: %d snapshot%s removed", n, n == 1 ? "" : "s");
	return 0;
}
