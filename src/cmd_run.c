/*
 * ferry run: prepare the database (when one is configured), then run the
 * server as its supervisor. cli.c blocked the signals before the session
 * was opened, so a stop that comes while the database is prepared waits.
 * With [health], an upgrade is kept only once the server is healthy: the
 * gate probes it from the supervisor's hook, and when it is not healthy in
 * time (or exits first) ferry stops it and restores the database.
 */
#include "commands.h"
#include "config.h"
#include "exits.h"
#include "health.h"
#include "log.h"
#include "pid1.h"
#include "session.h"
#include "upgrade.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

struct gate {
	struct session *s;
	const char *url, *command;
	double start, timeout, probe_timeout;
	bool decided, failed; /* healthy (decided), or failed */
	bool unkept;	      /* healthy, but the verdict could not be written */
	bool stopped;	      /* stopped (docker stop) before a verdict */
	bool upgrade;	      /* an upgrade waits for the verdict */
	char why[256];
	char answer[256]; /* the last probe's */
};

static int gate_check(void *arg, pid_t child, int *status)
{
	struct gate *g = arg;
	double waited = now_seconds() - g->start;
	int r;

	(void)child;
	if (g->decided)
		return 0;
	r = health_probe(g->url, g->command, g->probe_timeout, g->answer,
			 sizeof(g->answer));
	if (r == 0) {
		g->decided = true;
		if (g->upgrade && upgrade_accept(g->s) != 0) {
			/* left at applied, the next boot would undo the upgrade
			 * under a server that wrote on: undo it now instead */
			log_error(
				"the server is healthy, but the upgrade cannot be marked "
				"as kept (the journal cannot be cleared): stopping the "
				"server to undo the upgrade");
			g->unkept = true;
			*status = EXIT_CANTCREAT;
			return 1;
		}
		log_event(LOG_INFO,
			  LOG_FIELDS(.event = "health_passed",
				     .duration_ms = LOG_NUM(waited * 1000)),
			  "the server is healthy after %.1f s (%s)%s", waited, g->answer,
			  g->upgrade ? ": the upgrade is kept" : "");
		return 0;
	}
	if (waited < g->timeout)
		return 0;
	g->decided = true;
	snprintf(g->why, sizeof(g->why),
		 "not healthy within %.0f s ([health] "
		 "timeout_seconds)",
		 g->timeout);
	if (!g->upgrade) {
		log_event(LOG_WARN, LOG_FIELDS(.event = "health_failed"),
			  "the server is %s; last probe: %s", g->why, g->answer);
		return 0;
	}
	g->failed = true;
	*status = EXIT_UPGRADE_FAILED;
	return 1;
}

/* The server exited before it was healthy: the release failed too. */
static int gate_exited(void *arg, int status, bool stopped)
{
	struct gate *g = arg;

	if (g->decided || !g->upgrade)
		return status;
	if (stopped) {
		g->stopped = true;
		return status;
	}
	g->decided = g->failed = true;
	snprintf(g->why, sizeof(g->why),
		 "the server exited with status %d before it "
		 "was healthy",
		 status);
	return EXIT_UPGRADE_FAILED;
}

/* [health] as configured: a url that the probe can ask, not with exec. */
static int gate_config(const struct config *c, bool *on)
{
	char why[256];

	*on = c->health_url || c->health_command;
	if (c->health_url && health_check_url(c->health_url, why, sizeof(why)) < 0) {
		/* (a URL with a password is refused without being shown) */
		log_error("[health] url%s%s%s: %s",
			  strchr(c->health_url, '@') ? "" : " '",
			  strchr(c->health_url, '@') ? "" : c->health_url,
			  strchr(c->health_url, '@') ? "" : "'", why);
		return EXIT_CONFIG;
	}
	if (c->health_command && !c->health_url &&
	    health_check_command(c->health_command, why, sizeof(why)) < 0) {
		log_error("%s", why);
		return EXIT_CONFIG;
	}
	if (*on && c->exec) {
		/* the url may be there for ferry health alone (HEALTHCHECK) */
		log_warn("[run] exec = true: ferry does not stay to watch the server, so "
			 "upgrades are not health-gated ([health])");
		*on = false;
	}
	return 0;
}

static bool stop_pending(const char *server, int *status)
{
	sigset_t pending;

	if (sigpending(&pending) != 0 ||
	    !(sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT)))
		return false;
	log_info("stop requested during preparation: not starting '%s'", server);
	*status = EXIT_SIGNALED + (sigismember(&pending, SIGTERM) ? SIGTERM : SIGINT);
	return true;
}

int cmd_run(struct session *s, const struct cmd_args *a)
{
	const struct config *c = s->c;
	struct gate g = { .s = s,
			  .url = c->health_url,
			  .command = c->health_command,
			  .timeout = (double)c->health_timeout_seconds };
	struct run_hook hook = { .interval_seconds = (double)c->health_interval_seconds,
				 .check = gate_check,
				 .exited = gate_exited,
				 .arg = &g };
	bool exit_zero[256], health, every_boot = !c->health_after_upgrade_only;
	struct run_opts ro = {
		.user = c->run_user,
		.grace_seconds = (int)c->grace_seconds,
		.signal_group = c->signal_group,
		.exec = c->exec,
		.exit_zero = exit_zero,
	};
	int rc = gate_config(c, &health);

	if (rc)
		return rc;
	/* the session's copy of the configuration goes with it, below */
	memcpy(exit_zero, c->exit_zero, sizeof(exit_zero));
	/* a probe holds up the supervisor: a stop waits for it at most 5 s */
	g.probe_timeout = hook.interval_seconds < 5 ? hook.interval_seconds : 5;
	if (s->have_store) {
		s->gate = health;
		rc = upgrade_boot(s, true);
		if (rc != 0)
			return rc;
	} else {
		log_info("no database configured ([database] url, DATABASE_URL): "
			 "starting without a schema check");
	}
	g.upgrade = s->gated;
	/* the server runs without ferry's connections or files; only a gated
	 * upgrade keeps its lock, so that no replica resolves it meanwhile */
	if (!s->gated)
		session_close(s);
	if (stop_pending(a->rest[0], &rc))
		return rc;
	if (health && (g.upgrade || every_boot))
		ro.hook = &hook;
	g.start = now_seconds();
	rc = pid1_run(&ro, a->rest);
	if (g.failed)
		rc = upgrade_reject(s, g.why, g.answer);
	else if ((g.stopped || g.unkept) && upgrade_undo_unverified(s) != 0)
		rc = EXIT_RESTORE_FAILED;
	else if (s->gated) /* ended before a verdict: the next boot undoes it */
		log_warn("the server stopped before it was found healthy: the upgrade "
			 "is undone at the next boot");
	return rc;
}
