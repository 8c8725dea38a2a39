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
#include "owner.h"
#include "pid1.h"
#include "session.h"
#include "upgrade.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
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

/*
 * Who the server runs as, settled before any database work: *drop when
 * ferry (root) must switch to [run] user, not when it already is that
 * user; 78 when it is neither root nor that user.
 */
static int run_identity(const struct config *c, struct run_user *u, bool *drop)
{
	char why[512];

	*drop = false;
	if (!c->run_user)
		return 0;
	if (pid1_resolve_user(c->run_user, u, why, sizeof(why)) < 0 ||
	    pid1_need_drop(u, drop, why, sizeof(why)) < 0) {
		log_error("%s", why);
		return EXIT_CONFIG;
	}
	if (!*drop)
		log_debug("already running as [run] user %s (uid %u): no switch",
			  c->run_user, (unsigned)u->uid);
	return 0;
}

/* 1: dir exists and holds something but dot files; 0: not; -1 logged */
static int holds_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;

	if (!d) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return error_errno("[migrations] dir '%s'", dir);
	}
	while (!found && (e = readdir(d)))
		found = e->d_name[0] != '.';
	closedir(d);
	return found;
}

/*
 * No database: a plain init is fine, but an image that ships migrations
 * and finds no database must not start its server unchecked (78).
 */
static int without_database(const struct config *c)
{
	int r;

	if (c->init_only) {
		log_info("[run] init_only = true: starting without a schema check");
		return 0;
	}
	r = holds_files(c->migrations_dir);
	if (r < 0)
		return EXIT_CONFIG;
	if (r > 0) {
		log_error("'%s' holds migrations, but no database is configured: set "
			  "DATABASE_URL (or --database-url, [database] url), or "
			  "[run] init_only = true to start without a schema check",
			  c->migrations_dir);
		return EXIT_CONFIG;
	}
	log_info("no database configured ([database] url, DATABASE_URL): "
		 "starting without a schema check");
	return 0;
}

/* The database brought to the image's version, its files the server's. */
static int prepare(struct session *s, const struct run_user *u, bool health)
{
	int rc = owner_check(s, u);

	if (rc)
		return rc;
	s->gate = health;
	return upgrade_boot(s, true);
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
	bool exit_zero[256], health, drop, every_boot = !c->health_after_upgrade_only;
	struct run_user user = { 0 };
	struct run_opts ro = {
		.user = c->run_user,
		.grace_seconds = (int)c->grace_seconds,
		.signal_group = c->signal_group,
		.exec = c->exec,
		.exit_zero = exit_zero,
	};
	int rc = gate_config(c, &health);

	if (rc == 0)
		rc = run_identity(c, &user, &drop);
	if (rc)
		goto out;
	if (!drop)
		ro.user = NULL;
	/* the session's copy of the configuration goes with it, below */
	memcpy(exit_zero, c->exit_zero, sizeof(exit_zero));
	/* a probe holds up the supervisor: a stop waits for it at most 5 s */
	g.probe_timeout = hook.interval_seconds < 5 ? hook.interval_seconds : 5;
	if (s->have_store && c->init_only)
		log_info("[run] init_only = true: the database is not looked at, "
			 "starting without a schema check");
	else if (s->have_store)
		rc = prepare(s, &user, health);
	else
		rc = without_database(c);
	if (rc)
		goto out;
	g.upgrade = s->gated;
	/* the server runs without ferry's connections or files; only a gated
	 * upgrade keeps its lock, so that no replica resolves it meanwhile */
	if (s->gated)
		owner_give(s);
	else
		session_close(s);
	if (stop_pending(a->rest[0], &rc))
		goto out;
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
out:
	pid1_release_user(&user);
	return rc;
}
