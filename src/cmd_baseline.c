/*
 * ferry baseline --version V: adopts a database that no tool tracked (its
 * schema built by hand, or its ledger lost) by recording every shipped
 * version up to V as applied, without running them, in the ledger shape
 * [migrations] ledger picks (Flyway's baseline, for every shape). It says
 * what it will record first, and writes it all in one transaction.
 */
#include "commands.h"
#include "exits.h"
#include "ledger.h"
#include "log.h"
#include "session.h"
#include "store.h"

#include <stdio.h>
#include <string.h>

/* Refusals before anything is written: 0, or 65 logged. */
static int check(struct session *s, const struct version *v)
{
	const struct ledger *l = &s->ledger;
	struct version top = ledger_top(l);

	if (l->exists && !ledger_tracks_nothing(l)) {
		log_error("baseline refused: the database already has a ledger (%s's "
			  "%s, at version %s): nothing to adopt, nothing changed",
			  l->shape, l->table, version_str(&top));
		return EXIT_DATA;
	}
	if (!migrations_find(&s->set, v)) {
		log_error(
			"baseline refused: --version %s is not a version the image "
			"ships in '%s' (%s to %s): nothing changed",
			version_str(v), s->set.dir,
			s->set.n ? version_str(&s->set.items[0].version) : "-",
			version_str(&s->set.items[s->set.n ? s->set.n - 1 : 0].version));
		return EXIT_DATA;
	}
	return 0;
}

static int record_all(struct store *st, const struct migration_set *set,
		      const struct version *v)
{
	if (st->ops->sql_exec(st, "BEGIN", 0, NULL) < 0 || st->recorder->prepare(st) < 0)
		goto fail;
	for (size_t i = 0; i < set->n && version_cmp(&set->items[i].version, v) <= 0; i++)
		if (st->recorder->record(st, &set->items[i], 0, false) < 0)
			goto fail;
	if (st->ops->sql_exec(st, "COMMIT", 0, NULL) < 0)
		goto fail;
	return 0;
fail:
	log_error("baseline failed, nothing recorded: %s", st->err);
	st->ops->sql_exec(st, "ROLLBACK", 0, NULL);
	return -1;
}

int cmd_baseline(struct session *s, const struct cmd_args *a)
{
	struct version v;
	size_t n = 0;
	int rc;

	if (!a->version || !version_parse(&v, a->version, strlen(a->version)) ||
	    version_is_zero(&v)) {
		log_error("baseline needs --version V, V a version the image ships "
			  "(as 3, 20240101120000 or 1.2)");
		return EXIT_USAGE;
	}
	if (!s->db_exists) {
		log_error("baseline refused: there is no database at %s to adopt",
			  s->store.url_redacted);
		return EXIT_DATA;
	}
	if ((rc = session_read_plan(s)) || (rc = check(s, &v)))
		return rc;
	printf("baseline: recording in %s's ledger (%s) as applied, without "
	       "running them:\n",
	       ledger_shape_name(&s->store), s->store.recorder->table);
	for (size_t i = 0; i < s->set.n && version_cmp(&s->set.items[i].version, &v) <= 0;
	     i++, n++)
		printf("  %s (version %s)\n", s->set.items[i].name,
		       version_str(&s->set.items[i].version));
	if (fflush(stdout))
		return EXIT_CANTCREAT;
	if (record_all(&s->store, &s->set, &v) < 0)
		return EXIT_CANTCREAT;
	log_info("baseline: %zu migration%s recorded as applied, the database is at "
		 "version %s",
		 n, n == 1 ? "" : "s", version_str(&v));
	return 0;
}
