/*
 * plan: compares what the database has applied with what the image ships
 * and says what to do: nothing, create, upgrade, or refuse (and why).
 */
#ifndef FERRY_PLAN_H
#define FERRY_PLAN_H

#include "version.h"

#include <stdbool.h>
#include <stddef.h>

struct migration;
struct migration_set;
struct ledger;

enum plan_kind { PLAN_CURRENT, PLAN_CREATE, PLAN_UPGRADE, PLAN_REFUSE };

struct plan {
	enum plan_kind kind;
	struct version db_version;	  /* highest applied, zero for none */
	struct version image_version;	  /* the target */
	const struct migration **pending; /* above db_version, in order */
	size_t n_pending;
	size_t n_unknown; /* applied versions the image does not ship */
	size_t n_dirty;
	char why[768]; /* PLAN_REFUSE: what is wrong and what to do */
	/* mode = app: the image's identity, what the upgrade is keyed by
	 * instead of versions (NULL otherwise; appmode.c's plan) */
	const char *app_identity;
};

/* target zero (or NULL): the highest version shipped. db_exists false: first
 * boot. out_of_order: versions below the highest applied one that were never
 * applied are pending too (first, in version order), not refused. */
void plan_make(struct plan *p, const struct migration_set *set, const struct ledger *l,
	       bool db_exists, const struct version *target, bool out_of_order);
void plan_release(struct plan *p);

#endif
