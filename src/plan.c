/*
 * plan: pure comparison, no I/O. The order of the refusals matters: a
 * dirty ledger first (the database is half-migrated), then versions the
 * image does not know, then edited files, then history the image cannot
 * explain (a version it ships below the highest applied one, never
 * applied), then pending files the engines would not read as written.
 */
#include "plan.h"
#include "ledger.h"
#include "migrations.h"
#include "store.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool refuse(struct plan *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Fills p->why and makes the plan a refusal; true, for `return refuse(...)`. */
static bool refuse(struct plan *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->why, sizeof(p->why), fmt, ap);
	va_end(ap);
	p->kind = PLAN_REFUSE;
	return true;
}

/* The ledger as the image knows it: nothing dirty, unknown or edited. */
static bool refuse_ledger(struct plan *p, const struct migration_set *set,
			  const struct ledger *l)
{
	if (l->has_user_tables && ledger_tracks_nothing(l))
		return refuse(
			p,
			"the database has tables but %s %s ledger, so its schema "
			"version is unknown: refusing to migrate it. If its schema is "
			"that of version V of the image's migrations, adopt it with "
			"`ferry baseline --version V`",
			l->exists ? "an empty" : "no",
			l->table ? l->table : "ferry_migrations");
	for (size_t i = 0; i < l->n; i++) {
		const struct ledger_row *r = &l->rows[i];

		if (r->dirty && l->dirty_hint[0])
			return refuse(p, "%s", l->dirty_hint);
		if (r->dirty)
			return refuse(
				p,
				"migration %s (version %s) is marked dirty: it "
				"ran outside a transaction and did not finish. Restore "
				"the database with `ferry rollback`, then start again",
				r->name, version_str(&r->version));
	}
	if (version_cmp(&p->db_version, &p->image_version) > 0)
		return refuse(
			p,
			"the database is at %s but this image knows migrations "
			"up to %s: the image was rolled back without restoring the "
			"database; to keep the data written since, run `ferry "
			"downgrade --to %s` with the newer image (it ships the down "
			"parts), or restore the snapshot with `ferry rollback`, or use "
			"an image that ships %s",
			version_str(&p->db_version), version_str(&p->image_version),
			version_str(&p->image_version), version_str(&p->db_version));
	/* rebuild mode ships no history to compare: schema.sql is the truth */
	if (set->rebuild)
		return false;
	for (size_t i = 0; i < l->n; i++) {
		const struct ledger_row *r = &l->rows[i];
		const struct migration *m = migrations_find(set, &r->version);

		if (!m && r->baseline)
			continue; /* the floor the tool's baseline set, no migration */
		if (!m)
			return refuse(
				p,
				"the database has migration %s (version %s), which "
				"this image does not ship: use the image that applied it, "
				"or `ferry rollback`",
				r->name, version_str(&r->version));
		if (strcmp(m->sha256, r->sha256))
			return refuse(
				p,
				"migration '%s' was changed after it was applied "
				"(sha256 %.12s in the database, %.12s in the image): ship "
				"the file as it was applied and put the change in a new "
				"migration",
				m->path, r->sha256, m->sha256);
	}
	return false;
}

/*
 * A version the image ships below the highest applied one that was never
 * applied: a migration added out of order, or a lost ledger row. Running
 * it now would run it after migrations written to come after it.
 */
static bool refuse_holes(struct plan *p, const struct migration_set *set,
			 const struct ledger *l)
{
	const struct migration *hole = NULL;
	const struct version *top = &p->db_version, *above = top;
	size_t holes = 0;
	char more[96] = "";

	for (size_t i = 0; i < set->n; i++) {
		const struct migration *m = &set->items[i];

		if (version_cmp(&m->version, top) < 0 && !ledger_find(l, &m->version)) {
			if (!hole)
				hole = m; /* the lowest: the set is sorted */
			holes++;
		}
	}
	if (!hole)
		return false;
	/* the lowest applied version above the hole: the one it comes before */
	for (size_t i = 0; i < l->n; i++) {
		const struct version *v = &l->rows[i].version;

		if (version_cmp(v, &hole->version) > 0 && version_cmp(v, above) < 0)
			above = v;
	}
	if (holes > 1)
		snprintf(more, sizeof(more), " (and %zu more version%s below %s)",
			 holes - 1, holes == 2 ? "" : "s", version_str(top));
	return refuse(
		p,
		"the ledger has %s but not %s (%s), which the image ships "
		"before it%s: ferry applies only versions above the highest applied "
		"one (%s), never one out of order. If %s is new, give it a version "
		"above %s; if the database already has its changes, its ledger row "
		"was lost: put it back, or restore the database from a backup; to "
		"apply it anyway, before the newer ones, set [migrations] "
		"allow_out_of_order = true",
		version_str(above), version_str(&hole->version), hole->name, more,
		version_str(top), hole->name, version_str(top));
}

/* A migration about to run that the engines would not read as written,
 * or whose version the ledger cannot keep. */
static bool refuse_pending(struct plan *p, const struct ledger *l)
{
	for (size_t i = 0; i < p->n_pending; i++) {
		const struct migration *m = p->pending[i];

		if (l->integer_versions && !version_is_integer(&m->version))
			return refuse(
				p,
				"migration '%s' has the dotted version %s, which the "
				"ledger %s cannot keep (integer versions only): use "
				"[migrations] ledger = flyway (flyway_schema_history keeps "
				"versions as text), or give it an integer version",
				m->path, version_str(&m->version),
				l->table ? l->table : "ferry_migrations");

		if (m->not_utf8_line)
			return refuse(
				p,
				"migration '%s' is not UTF-8 text: the byte at "
				"offset %zu (line %d) starts no UTF-8 character, which "
				"PostgreSQL refuses and SQLite stores as broken text; "
				"convert the file to UTF-8 (Latin-1: `iconv -f latin1 -t "
				"utf-8`)",
				m->path, m->not_utf8_at, m->not_utf8_line);
	}
	return false;
}

void plan_make(struct plan *p, const struct migration_set *set, const struct ledger *l,
	       bool db_exists, const struct version *target, bool out_of_order)
{
	memset(p, 0, sizeof(*p));
	if (target && !version_is_zero(target))
		p->image_version = *target;
	else
		p->image_version = migrations_latest(set);
	p->pending = xcalloc(set->n + set->n_repeatables + 1, sizeof(*p->pending));
	for (size_t i = 0; i < l->n; i++) {
		const struct ledger_row *r = &l->rows[i];

		if (version_cmp(&r->version, &p->db_version) > 0)
			p->db_version = r->version;
		if (r->dirty)
			p->n_dirty++;
		if (!migrations_find(set, &r->version))
			p->n_unknown++;
	}
	/*
	 * only what comes after the highest applied version is pending; a
	 * version 0 (diesel's 00000000000000_diesel_initial_setup) comes
	 * first, pending until its row is there; out of order allowed, also
	 * the versions below the highest never applied (holes), which version
	 * order puts first
	 */
	for (size_t i = 0; i < set->n; i++) {
		const struct migration *m = &set->items[i];
		bool first = version_is_zero(&m->version) &&
			     version_is_zero(&p->db_version) &&
			     !ledger_find(l, &m->version);
		bool hole = out_of_order && !ledger_find(l, &m->version);

		if ((first || hole || version_cmp(&m->version, &p->db_version) > 0) &&
		    version_cmp(&m->version, &p->image_version) <= 0)
			p->pending[p->n_pending++] = m;
	}
	/* Flyway's repeatables after them, in name order, when changed */
	for (size_t i = 0; i < set->n_repeatables; i++)
		if (!ledger_rep_current(l, set->repeatables[i].name))
			p->pending[p->n_pending++] = &set->repeatables[i];

	if (!db_exists) {
		if (!refuse_pending(p, l))
			p->kind = PLAN_CREATE;
		return;
	}
	if (refuse_ledger(p, set, l) || (!out_of_order && refuse_holes(p, set, l)) ||
	    refuse_pending(p, l))
		return;
	p->kind = p->n_pending ? PLAN_UPGRADE : PLAN_CURRENT;
}

void plan_release(struct plan *p)
{
	free(p->pending);
	memset(p, 0, sizeof(*p));
}
