/*
 * ferry run: prepare the database (when one is configured), then run the
 * server as its supervisor. cli.c blocked the signals before the session
 * was opened, so a stop that comes while the database is prepared waits.
 */
#include "commands.h"
#include "config.h"
#include "exits.h"
#include "log.h"
#include "pid1.h"
#include "session.h"
#include "upgrade.h"
#include "util.h"

#include <signal.h>
#include <string.h>

int cmd_run(struct session *s, const struct cmd_args *a)
{
	const struct config *c = s->c;
	bool exit_zero[256];
	struct run_opts ro = {
		.user = c->run_user,
		.grace_seconds = (int)c->grace_seconds,
		.signal_group = c->signal_group,
		.exec = c->exec,
		.exit_zero = exit_zero,
	};
	sigset_t pending;
	int rc;

	/* the session's copy of the configuration goes with it, below */
	memcpy(exit_zero, c->exit_zero, sizeof(exit_zero));
	if (s->have_store) {
		rc = upgrade_boot(s, true);
		if (rc != 0)
			return rc;
	} else {
		log_info("no database configured ([database] url, DATABASE_URL): "
			 "starting without a schema check");
	}
	/* the server runs without ferry's lock, connections or files */
	session_close(s);
	/* A stop request that came during the upgrade: do not start the server. */
	if (sigpending(&pending) == 0 &&
	    (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT))) {
		log_info("stop requested during preparation: not starting '%s'",
			 a->rest[0]);
		return EXIT_SIGNALED +
		       (sigismember(&pending, SIGTERM) ? SIGTERM : SIGINT);
	}
	return pid1_run(&ro, a->rest);
}
