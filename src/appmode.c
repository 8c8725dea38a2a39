/*
 * appmode: the identity of the image and of the database's last healthy
 * boot, and the upgrade strategy of mode = app. The record is one row of
 * ferry_app, written through the store's SQL surface (the same statement
 * on SQLite and PostgreSQL), so it is part of every snapshot. The journal
 * (kind app) carries both identities; recovery asks the record whether
 * the new one was kept.
 */
#include "appmode.h"
#include "archive.h"
#include "exits.h"
#include "failures.h"
#include "log.h"
#include "pid1.h"
#include "session.h"
#include "upgrade.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define APP_TABLE "ferry_app"

/* clang-format off */
static const char app_ddl[] =
	"CREATE TABLE IF NOT EXISTS " APP_TABLE " (id integer PRIMARY KEY "
	"CHECK (id = 1), identity text NOT NULL, recorded_at text NOT NULL)";
static const char app_upsert[] =
	"INSERT INTO " APP_TABLE " (id, identity, recorded_at) VALUES (1, $1, $2) "
	"ON CONFLICT (id) DO UPDATE SET identity = excluded.identity, "
	"recorded_at = excluded.recorded_at";
static const char app_select[] =
	"SELECT identity, recorded_at FROM " APP_TABLE " WHERE id = 1";
/* clang-format on */

int app_check_config(const struct config *c)
{
	int n = !!c->app_version + !!c->app_version_env + !!c->app_version_from_file;
	char why[128];
	char **argv;

	if (c->migrations_mode != MODE_APP)
		return 0;
	if (n != 1) {
		error("[migrations] mode = app needs exactly one of [app] version, "
		      "[app] version_env and [app] version_from_file (%s set): the "
		      "image's identity decides when the server's migrations ran",
		      n ? "more than one is" : "none is");
		return EXIT_CONFIG;
	}
	if (!c->migrations_command &&
	    (c->exec || (!c->health_url && !c->health_command))) {
		error("[migrations] mode = app without [migrations] command needs a "
		      "health gate ([health] url or command, and [run] exec = false): "
		      "nothing else could decide whether to keep the server's own "
		      "migrations or restore the snapshot");
		return EXIT_CONFIG;
	}
	if (!c->migrations_command)
		return 0;
	argv = words_split(c->migrations_command, why, sizeof(why));
	if (!argv || !argv[0]) {
		error("[migrations] command: %s", argv ? "is empty" : why);
		if (argv)
			words_free(argv);
		return EXIT_CONFIG;
	}
	words_free(argv);
	return 0;
}

/* one printable line of at most APP_IDENTITY_MAX bytes */
static int identity_usable(const char *what, const char *v)
{
	size_t len = strlen(v);

	if (!len)
		return error("%s is empty: the image's identity must not be", what);
	if (len > APP_IDENTITY_MAX)
		return error("%s is %zu bytes long: an identity has at most %d", what,
			     len, APP_IDENTITY_MAX);
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return error("%s holds a control character: an identity is "
				     "one line of text",
				     what);
	return 0;
}

/* The image's identity into out: 0, or 78 logged. */
static int image_identity(const struct config *c, char *out, size_t size)
{
	char what[256], *real;
	struct arc_member m = { 0 };
	const char *v = c->app_version;

	snprintf(what, sizeof(what), "[app] version");
	if (c->app_version_env) {
		v = getenv(c->app_version_env);
		snprintf(what, sizeof(what), "[app] version_env: the variable %.200s",
			 c->app_version_env);
		if (!v || !*v) {
			error("[app] version_env = %s: the variable is not set (set it in "
			      "the image, e.g. ENV %s=1.2.3 in the Dockerfile)",
			      c->app_version_env, c->app_version_env);
			return EXIT_CONFIG;
		}
	}
	if (c->app_version_from_file) {
		real = realpath(c->app_version_from_file, NULL);
		if (!real || arc_hash_member(&m, real) < 0) {
			error_errno("[app] version_from_file '%s': cannot read it",
				    c->app_version_from_file);
			free(real);
			return EXIT_CONFIG;
		}
		free(real);
		snprintf(out, size, "sha256:%s", m.sha256);
		return 0;
	}
	if (identity_usable(what, v) < 0)
		return EXIT_CONFIG;
	snprintf(out, size, "%s", v);
	return 0;
}

struct seen {
	bool record, others;
};

static int see_table(void *arg, const char *name, bool in_schema)
{
	struct seen *t = arg;

	if (in_schema && !strcmp(name, APP_TABLE))
		t->record = true;
	else
		t->others = true;
	return 0;
}

static int take_record(void *arg, int ncols, const char *const *v)
{
	struct app_identity *a = arg;

	if (ncols >= 2 && v[0] && v[1]) {
		snprintf(a->recorded, sizeof(a->recorded), "%s", v[0]);
		snprintf(a->recorded_at, sizeof(a->recorded_at), "%s", v[1]);
	}
	return 0;
}

/* The record of the open database into a: 0, or -1 logged. */
static int read_record(struct store *s, struct app_identity *a)
{
	struct seen t = { false, false };

	a->recorded[0] = a->recorded_at[0] = '\0';
	if (!s->db && s->ops->open(s) < 0)
		return -1;
	if (s->ops->list_tables(s, see_table, &t) < 0 ||
	    (t.record && s->ops->sql_query(s, app_select, 0, NULL, take_record, a) < 0))
		return error("cannot read the app identity of %s (" APP_TABLE "): %s",
			     s->url_redacted, s->err);
	a->has_tables = t.others;
	return 0;
}

/* The image's identity as kept at a healthy boot; -1 logged. */
static int write_record(struct store *s, const char *identity)
{
	char stamp[32];
	const char *params[] = { identity, stamp };
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if ((!s->db && s->ops->open(s) < 0) ||
	    s->ops->sql_exec(s, app_ddl, 0, NULL) < 0 ||
	    s->ops->sql_exec(s, app_upsert, 2, params) < 0)
		return error("cannot record the app identity '%s' in %s: %s", identity,
			     s->url_redacted, s->err);
	return 0;
}

int app_read_plan(struct session *s)
{
	struct app_identity *a = &s->app;
	int rc;

	plan_release(&s->plan);
	ledger_release(&s->ledger);
	if (!a->current[0] && (rc = image_identity(s->c, a->current, sizeof(a->current))))
		return rc;
	a->recorded[0] = a->recorded_at[0] = '\0';
	a->has_tables = false;
	if (s->db_exists && read_record(&s->store, a) < 0)
		return EXIT_DATA;
	s->plan.app_identity = a->current;
	if (!s->db_exists || (!a->has_tables && !a->recorded[0]))
		s->plan.kind = PLAN_CREATE;
	else if (!strcmp(a->recorded, a->current))
		s->plan.kind = PLAN_CURRENT;
	else
		s->plan.kind = PLAN_UPGRADE;
	return 0;
}

void app_log_current(const struct session *s)
{
	log_info("app identity '%s' is the one recorded at the last healthy boot "
		 "(%s): nothing to do, no snapshot",
		 s->app.current, s->app.recorded_at);
}

/* ------------------------------------------------------------------ */
/* The strategy */

bool app_fits(const struct session *b)
{
	return b->c->migrations_mode == MODE_APP;
}

static const char *shown(const char *identity)
{
	return identity[0] ? identity : "(none recorded)";
}

/* The exit of the migrate command: was it stopped (docker stop)? */
static int command_exited(void *arg, int status, bool stopped)
{
	*(bool *)arg = stopped;
	return status;
}

/* [migrations] command, supervised like the server (signals forwarded), as
 * [run] user when ferry is root; its output is ferry's. Its exit status. */
static int run_command(struct session *b, bool *stopped)
{
	const struct config *c = b->c;
	struct run_hook hook = { .exited = command_exited, .arg = stopped };
	struct run_opts ro = { .user = geteuid() == 0 ? c->run_user : NULL,
			       .grace_seconds = (int)c->grace_seconds,
			       .signal_group = c->signal_group,
			       .hook = &hook };
	char why[128], **argv = words_split(c->migrations_command, why, sizeof(why));
	double t0 = now_seconds();
	int rc;

	if (!argv) /* app_check_config said it splits */
		return EXIT_CONFIG;
	log_event(LOG_INFO, LOG_FIELDS(.event = "app_migrate_started"),
		  "running the server's migrations: [migrations] command '%s'%s%s",
		  c->migrations_command, ro.user ? " as " : "", ro.user ? ro.user : "");
	pid1_block_signals(); /* ferry migrate too: the supervisor takes them */
	rc = pid1_run(&ro, argv);
	words_free(argv);
	if (rc == 0)
		log_event(LOG_INFO,
			  LOG_FIELDS(.event = "app_migrate_done",
				     .duration_ms = LOG_NUM((now_seconds() - t0) * 1000)),
			  "[migrations] command '%s' succeeded in %.2f s",
			  c->migrations_command, now_seconds() - t0);
	return rc;
}

/*
 * Undoes a failed app upgrade: the snapshot goes back (none for a new
 * database: what the server wrote stays); 70, or 74 when the restore
 * failed. what: the first words of the log line.
 */
static int undo(struct session *b, struct journal *j, const char *what)
{
	int rc;

	if (!j->snapshot[0]) {
		log_event(LOG_ERROR,
			  LOG_FIELDS(.event = "upgrade_failed", .to = j->app_to,
				     .exit = LOG_NUM(EXIT_UPGRADE_FAILED)),
			  "%s — the database was new, so there is no snapshot to "
			  "restore: what was written stays, and the identity '%s' is "
			  "not recorded (the next boot snapshots and tries again)",
			  what, j->app_to);
		return EXIT_UPGRADE_FAILED;
	}
	rc = upgrade_restore(b, j);
	if (rc == 0 && b->store.ops->unhold)
		b->store.ops->unhold(&b->store);
	if (rc) {
		log_event(LOG_ERROR,
			  LOG_FIELDS(.event = "upgrade_failed", .to = j->app_to,
				     .exit = LOG_NUM(rc)),
			  "%s — and the restore failed too", what);
		return rc;
	}
	log_event(LOG_ERROR,
		  LOG_FIELDS(.event = "upgrade_failed", .from = j->app_from,
			     .to = j->app_to, .snapshot = j->snapshot,
			     .exit = LOG_NUM(EXIT_UPGRADE_FAILED)),
		  "%s — database restored from %s, back at app identity %s", what,
		  j->snapshot, shown(j->app_from));
	return EXIT_UPGRADE_FAILED;
}

/* The new identity kept: recorded, then the journal cleared. */
static int commit(struct session *b)
{
	if (write_record(&b->store, b->app.current) < 0)
		return EXIT_CANTCREAT;
	crash_point("app:recorded");
	failure_clear(&b->state);
	if (journal_clear(&b->state) < 0)
		return EXIT_CANTCREAT;
	snprintf(b->app.recorded, sizeof(b->app.recorded), "%s", b->app.current);
	return 0;
}

/* The snapshot, then the database left to the server's own migrations. */
static int snapshot(struct session *b, struct journal *j)
{
	struct store *s = &b->store;
	int rc;

	if (s->ops->check(s) < 0) {
		log_error("refusing to upgrade a damaged database: nothing was changed; "
			  "restore it from a backup");
		return EXIT_DATA;
	}
	rc = upgrade_take_snapshot(b, j, true);
	if (rc)
		return rc;
	if (s->ops->settle)
		s->ops->settle(s, false);
	if (s->ops->unhold)
		s->ops->unhold(s);
	if (journal_write(&b->state, j, PHASE_MIGRATING) < 0) {
		journal_clear(&b->state);
		return EXIT_CANTCREAT;
	}
	return 0;
}

/* The command's exit, when it is not 0: undone, and kept in the guard's
 * record unless a stop asked for it */
static int command_failed(struct session *b, struct journal *j, int status, bool stopped)
{
	char why[1024];
	int rc;

	snprintf(why, sizeof(why), "[migrations] command '%s' %s with status %d",
		 b->c->migrations_command, stopped ? "was stopped" : "failed", status);
	if (!stopped)
		failure_record(&b->state, &b->plan, why, NULL, NULL);
	rc = undo(b, j, why);
	return stopped && rc == EXIT_UPGRADE_FAILED ? status : rc;
}

int app_upgrade(struct session *b)
{
	struct store *s = &b->store;
	struct journal j = { .kind = KIND_APP };
	const char *command = b->c->migrations_command;
	bool fresh = b->plan.kind == PLAN_CREATE, stopped = false;
	double t0 = now_seconds();
	char why[2 * APP_IDENTITY_MAX + 128];
	int rc;

	if (!command && !b->gate) {
		log_info("[migrations] mode = app without a command: the server "
			 "migrates itself when `ferry run` starts it, under the health "
			 "gate; nothing to do here");
		return 0;
	}
	snprintf(j.app_from, sizeof(j.app_from), "%s", b->app.recorded);
	snprintf(j.app_to, sizeof(j.app_to), "%s", b->app.current);
	if (fresh)
		snprintf(why, sizeof(why),
			 "new database, the image is '%s' — no snapshot "
			 "needed",
			 j.app_to);
	else if (j.app_from[0])
		snprintf(why, sizeof(why),
			 "app identity changed: %s recorded, the image "
			 "is '%s' — snapshot first",
			 j.app_from, j.app_to);
	else
		snprintf(why, sizeof(why),
			 "the database has tables but no app identity "
			 "recorded, the image is '%s' — snapshot first",
			 j.app_to);
	log_event(LOG_INFO,
		  LOG_FIELDS(.event = "upgrade_started", .from = j.app_from,
			     .to = j.app_to),
		  "%s, then %s", why,
		  command ? "the server's migrate command"
			  : "the server, kept once it is healthy ([health])");
	if (!fresh && (rc = snapshot(b, &j)))
		return rc;
	/* the server's migrations need the database to themselves */
	if (s->ops->disconnect)
		s->ops->disconnect(s);
	else
		s->ops->close(s);
	if (command && (rc = run_command(b, &stopped)) != 0)
		return command_failed(b, &j, rc, stopped);
	crash_point("app:migrated");
	if (!fresh &&
	    (journal_write(&b->state, &j, PHASE_VERIFYING) < 0 ||
	     journal_write(&b->state, &j, b->gate ? PHASE_APPLIED : PHASE_DONE) < 0))
		return undo(b, &j, "cannot write the journal"), EXIT_CANTCREAT;
	if (b->gate) {
		b->gated = true;
		b->gated_journal = j;
		log_event(LOG_INFO,
			  LOG_FIELDS(.event = "upgrade_applied", .to = j.app_to,
				     .snapshot = j.snapshot),
			  "app identity '%s' %s%s; it is recorded once the server is "
			  "healthy ([health])",
			  j.app_to, command ? "migrated" : "starts",
			  fresh ? "" : " (snapshot kept)");
		return 0;
	}
	rc = commit(b);
	if (rc) /* not recorded: the next boot would take it for a failure */
		return undo(b, &j, "the app identity cannot be recorded"), rc;
	s->ops->close(s);
	log_event(LOG_INFO,
		  LOG_FIELDS(.event = "upgrade_done", .from = j.app_from, .to = j.app_to,
			     .snapshot = j.snapshot,
			     .duration_ms = LOG_NUM((now_seconds() - t0) * 1000)),
		  "app upgraded to identity '%s' in %.2f s%s%s%s, identity recorded",
		  j.app_to, now_seconds() - t0, j.snapshot[0] ? " (snapshot kept: " : "",
		  j.snapshot, j.snapshot[0] ? ")" : "");
	return 0;
}

int app_resolve(struct session *b, const struct journal *j)
{
	struct app_identity a;

	memset(&a, 0, sizeof(a));
	if (read_record(&b->store, &a) < 0 || strcmp(a.recorded, j->app_to))
		return -1;
	log_info("an app upgrade to identity '%s' was interrupted (phase %s) after "
		 "the identity was recorded: it is kept",
		 j->app_to, phase_name(j->phase));
	return journal_clear(&b->state) < 0 ? EXIT_CANTCREAT : 0;
}

int app_accept(struct session *b)
{
	int rc = commit(b);

	if (rc)
		return rc;
	b->gated = false;
	b->store.ops->close(&b->store);
	state_unlock(&b->state);
	return 0;
}

int app_reject(struct session *b, const char *why, const char *probe)
{
	struct journal *j = &b->gated_journal;
	char what[1400];

	b->gated = false;
	failure_record(&b->state, &b->plan, why, probe, NULL);
	snprintf(what, sizeof(what),
		 "the server with app identity '%s' was not healthy (%s%s%s): it was "
		 "stopped; pin the previous image tag (this identity is not tried "
		 "again until the image changes, FERRY_RETRY_FAILED_UPGRADE=1 is set "
		 "or `ferry cleanup --failures` runs)",
		 j->app_to, why, probe && *probe ? "; last probe: " : "",
		 probe ? probe : "");
	return undo(b, j, what);
}

int app_undo_unverified(struct session *b)
{
	struct journal *j = &b->gated_journal;
	int rc;

	b->gated = false;
	rc = undo(b, j,
		  "the server was stopped before it was found healthy: the upgrade is "
		  "undone, the next boot tries it again");
	return rc == EXIT_UPGRADE_FAILED ? 0 : rc;
}
