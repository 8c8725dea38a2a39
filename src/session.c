/*
 * session: the setup every database command shares, in one place, so a
 * command is only what it does: resolve the configured directories, parse
 * the URL, read the migrations, find the state dir, take the lock.
 */
#include "session.h"
#include "restore.h"
#include "exits.h"
#include "log.h"
#include "owner.h"
#include "rebuild.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void session_close(struct session *s)
{
	owner_give(s);
	pid1_release_user(&s->owner);
	plan_release(&s->plan);
	ledger_release(&s->ledger);
	free(s->state_dir);
	free(s->snapshot_dir);
	if (s->have_set)
		migrations_release(&s->set);
	if (s->have_state)
		state_release(&s->state);
	if (s->have_store)
		store_release(&s->store);
	memset(s, 0, sizeof(*s));
}

/* a symlinked directory is used by its real path, like the database */
static void resolve_dirs(struct session *s, const struct config *c)
{
	s->cfg = *c;
	if (c->state_dir && (s->state_dir = realpath(c->state_dir, NULL)))
		s->cfg.state_dir = s->state_dir;
	if (c->snapshot_dir && (s->snapshot_dir = realpath(c->snapshot_dir, NULL)))
		s->cfg.snapshot_dir = s->snapshot_dir;
	s->c = &s->cfg;
}

static int load_migrations(struct session *s)
{
	const struct config *c = s->c;
	int rc;

	s->have_set = true;
	rc = c->migrations_mode == MODE_REBUILD
		     ? rebuild_load(&s->set, c->migrations_dir)
		     : migrations_load_as(&s->set, c->migrations_dir,
					  c->migrations_format);
	if (rc)
		return rc;
	if (!version_is_zero(&c->target_version) &&
	    !migrations_find(&s->set, &c->target_version))
		return error("[migrations] target_version %s: no such migration in '%s'",
			     version_str(&c->target_version), c->migrations_dir),
		       EXIT_CONFIG;
	return 0;
}

/* The state dir: configured, or .ferry beside the database. */
static void init_state(struct session *s)
{
	char *dir = dir_of(s->store.ops->location(&s->store)), *sd = NULL;

	if (!s->c->state_dir)
		sd = xasprintf("%s/.ferry", dir);
	state_init(&s->state, sd ? sd : s->c->state_dir, &s->store);
	s->have_state = true;
	free(sd);
	free(dir);
}

/*
 * Run as root with a [run] user, the files ferry creates go to that user.
 * A user that does not resolve is `ferry run`'s error (78); for the
 * other commands the files just stay root's.
 */
static void find_owner(struct session *s)
{
	char why[512];

	if (!s->c->run_user || geteuid() != 0)
		return;
	if (pid1_resolve_user(s->c->run_user, &s->owner, why, sizeof(why)) < 0)
		log_debug("%s: ferry's files stay root's", why);
}

/* state_lock's 1 (timed out) or -1 (failed, maybe with the store's reason) */
static int lock_status(const struct session *s, int rc)
{
	if (rc > 0)
		return EXIT_TEMPFAIL;
	return s->store.status ? s->store.status : EXIT_CANTCREAT;
}

int session_lock(struct session *s, long long timeout)
{
	int rc = state_lock(&s->state, timeout);

	return rc ? lock_status(s, rc) : 0;
}

/* Refuses while an earlier upgrade is unfinished: `ferry migrate` first. */
int session_check_finished(struct session *s)
{
	struct journal j;
	int rc = journal_read(&s->state, &j);

	if (rc < 0)
		return journal_status(&s->state, rc);
	if (j.phase != PHASE_NONE) {
		log_error("%s from %s to %s was interrupted (phase %s): run "
			  "`ferry migrate` to resolve it first",
			  j.kind == KIND_DOWNGRADE ? "a downgrade" : "an upgrade",
			  j.kind == KIND_APP ? j.app_from : version_str(&j.from),
			  j.kind == KIND_APP ? j.app_to : version_str(&j.to),
			  phase_name(j.phase));
		return EXIT_TEMPFAIL;
	}
	return 0;
}

/* An interrupted restore --mode replace finished or undone, under the lock
 * (held by a restore still running: left to it) */
static int recover_restore(struct session *s, unsigned flags)
{
	int rc;

	if (!restore_pending(s->state.dir))
		return 0;
	if (!(flags & TAKE_LOCK) && state_lock(&s->state, 0) != 0) {
		log_debug("restore: the journal's restore still holds the lock");
		return 0;
	}
	rc = restore_recover(&s->store, s->state.dir) < 0 ? EXIT_RESTORE_FAILED : 0;
	if (!(flags & TAKE_LOCK))
		state_unlock(&s->state);
	return rc;
}

int session_open(struct session *s, const struct config *c, unsigned flags)
{
	struct store *st = &s->store;
	int rc, e;

	memset(s, 0, sizeof(*s));
	resolve_dirs(s, c);
	c = s->c;
	/* no flags: the command only wants the configuration */
	if (!flags || !c->database_url) {
		if (!(flags & NEED_DATABASE))
			return 0;
		log_error("no database configured: set [database] url, DATABASE_URL or "
			  "--database-url");
		return EXIT_CONFIG;
	}
	if ((rc = app_check_config(c)))
		return rc;
	s->have_store = true; /* released whatever store_init got to */
	if (store_init(st, c->database_url) < 0)
		return EXIT_CONFIG;
	ledger_attach(st);
	/* mode = app: the migrations are the server's, compiled in */
	if ((flags & NEED_MIGRATIONS) && c->migrations_mode != MODE_APP &&
	    (rc = load_migrations(s)))
		return rc;
	ledger_configure(st, c->migrations_ledger,
			 (flags & NEED_MIGRATIONS) ? &s->set : NULL);
	st->wait_seconds = c->wait_seconds;
	st->lock_timeout = c->lock_timeout_seconds;
	st->statement_lock_timeout = c->statement_lock_timeout;
	st->snapshot_dir = c->snapshot_dir ? c->snapshot_dir : c->state_dir;
	st->maintenance_db = c->maintenance_db;
	e = st->ops->exists(st);
	if (e < 0)
		return st->status ? st->status : EXIT_CONFIG;
	s->db_exists = e == 1;
	init_state(s);
	find_owner(s);
	if ((flags & TAKE_LOCK) && (rc = session_lock(s, 0)))
		return rc;
	if ((rc = recover_restore(s, flags)))
		return rc;
	if ((flags & NO_UNFINISHED) && (rc = session_check_finished(s)))
		return rc;
	return 0;
}

int session_read_plan(struct session *s)
{
	if (s->c->migrations_mode == MODE_APP)
		return app_read_plan(s);
	plan_release(&s->plan);
	ledger_release(&s->ledger);
	if (s->db_exists) {
		if (!s->store.db && s->store.ops->open(&s->store) < 0)
			return EXIT_DATA;
		if (ledger_read(&s->store, &s->ledger) < 0)
			return EXIT_DATA;
	}
	ledger_describe(&s->store, &s->ledger);
	plan_make(&s->plan, &s->set, &s->ledger, s->db_exists, &s->c->target_version,
		  s->c->allow_out_of_order);
	return 0;
}
