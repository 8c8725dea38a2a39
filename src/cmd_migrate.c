/*
 * ferry migrate: the boot's database work alone (init containers, jobs,
 * CI); with --dry-run the plan is printed and nothing is changed.
 */
#include "commands.h"
#include "exits.h"
#include "session.h"
#include "upgrade.h"

#include <stdio.h>

static void print_plan(const struct session *b)
{
	const struct plan *p = &b->plan;

	printf("database: %s (%s)\n", b->store.url_redacted,
	       b->db_exists ? "exists" : "does not exist yet");
	if (p->app_identity) {
		printf("app identity: %s recorded, the image is '%s'\n",
		       b->app.recorded[0] ? b->app.recorded : "none", p->app_identity);
		printf("plan: %s\n",
		       p->kind == PLAN_CURRENT ? "nothing to do"
		       : p->kind == PLAN_CREATE
			       ? "new database: the server's migrations, no snapshot"
			       : "snapshot, then the server's migrations");
		return;
	}
	printf("database version: %s\n", version_str(&p->db_version));
	printf("image version: %s (%zu migrations in %s, %s format)\n",
	       version_str(&p->image_version), b->set.n, b->set.dir, b->set.format);
	switch (p->kind) {
	case PLAN_CURRENT:
		printf("plan: nothing to do\n");
		break;
	case PLAN_REFUSE:
		printf("plan: refuse: %s\n", p->why);
		break;
	case PLAN_CREATE:
	case PLAN_UPGRADE:
		printf("plan: %s, applying %zu migration%s:\n",
		       p->kind == PLAN_CREATE ? "create the database"
					      : "snapshot, then upgrade",
		       p->n_pending, p->n_pending == 1 ? "" : "s");
		for (size_t i = 0; i < p->n_pending; i++)
			printf("  %s%s\n", p->pending[i]->name,
			       p->pending[i]->no_transaction ? " (no transaction)" : "");
		break;
	}
}

/* The plan without a lock or a write, and what the upgrade would refuse. */
static int dry_run(struct session *s)
{
	struct journal j;
	int rc = journal_read(&s->state, &j);

	if (rc < 0)
		return journal_status(rc);
	rc = session_read_plan(s);
	if (rc)
		return rc;
	if (j.phase != PHASE_NONE)
		printf("journal: an interrupted upgrade (phase %s) will be resolved first\n",
		       phase_name(j.phase));
	print_plan(s);
	if (s->plan.kind == PLAN_REFUSE)
		return EXIT_DATA;
	if (s->plan.kind == PLAN_CREATE || s->plan.kind == PLAN_UPGRADE)
		return upgrade_check_pending(s);
	return 0;
}

int cmd_migrate(struct session *s, const struct cmd_args *a)
{
	return a->dry_run ? dry_run(s) : upgrade_boot(s, false);
}
