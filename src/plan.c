/*
 * plan: pure comparison, no I/O. The order of the refusals matters: a
 * dirty ledger first (the database is half-migrated), then versions the
 * image does not know, then edited files.
 */
#include "plan.h"
#include "migrations.h"
#include "store.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void plan_make(struct plan *p, const struct migration_set *set,
	       const struct ledger *l, bool db_exists, long long target)
{
	memset(p, 0, sizeof(*p));
	p->image_version = target ? target : migrations_latest(set);
	p->pending = xcalloc(set->n + 1, sizeof(*p->pending));
	for (size_t i = 0; i < l->n; i++) {
		const struct ledger_row *r = &l->rows[i];

		if (r->version > p->db_version)
			p->db_version = r->version;
		if (r->dirty)
			p->n_dirty++;
		if (!migrations_find(set, r->version))
			p->n_unknown++;
	}
	for (size_t i = 0; i < set->n; i++) {
		const struct migration *m = &set->items[i];

		if (m->version <= p->image_version && !ledger_find(l, m->version))
			p->pending[p->n_pending++] = m;
	}

	if (!db_exists) {
		p->kind = PLAN_CREATE;
		return;
	}
	p->kind = PLAN_REFUSE;
	if (!l->exists && l->has_user_tables) {
		snprintf(p->why, sizeof(p->why),
			 "the database has tables but no ferry_migrations ledger, so its "
			 "schema version is unknown: refusing to migrate it (adopt it by "
			 "creating the ledger for the versions it already has)");
		return;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct ledger_row *r = &l->rows[i];

		if (r->dirty) {
			snprintf(p->why, sizeof(p->why),
				 "migration %s (version %lld) is marked dirty: it ran "
				 "outside a transaction and did not finish. Restore the "
				 "database with `ferry rollback`, then start again",
				 r->name, r->version);
			return;
		}
	}
	if (p->db_version > p->image_version) {
		snprintf(p->why, sizeof(p->why),
			 "the database is at %lld but this image knows migrations up to "
			 "%lld: the image was rolled back without restoring the database; "
			 "run `ferry rollback` or use an image that ships %lld",
			 p->db_version, p->image_version, p->db_version);
		return;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct ledger_row *r = &l->rows[i];
		const struct migration *m = migrations_find(set, r->version);

		if (!m) {
			snprintf(p->why, sizeof(p->why),
				 "the database has migration %s (version %lld), which this "
				 "image does not ship: use the image that applied it, or "
				 "`ferry rollback`", r->name, r->version);
			return;
		}
		if (strcmp(m->sha256, r->sha256)) {
			snprintf(p->why, sizeof(p->why),
				 "migration '%s' was changed after it was applied (sha256 "
				 "%.12s in the database, %.12s in the image): ship the file "
				 "as it was applied and put the change in a new migration",
				 m->path, r->sha256, m->sha256);
			return;
		}
	}
	p->kind = p->n_pending ? PLAN_UPGRADE : PLAN_CURRENT;
}

void plan_release(struct plan *p)
{
	free(p->pending);
	memset(p, 0, sizeof(*p));
}
