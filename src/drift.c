/*
 * drift: has the live schema drifted from what the migrations build? The
 * migrations the ledger has applied are replayed on a scratch database of
 * the same engine (the backend's: SQLite in memory, PostgreSQL a
 * temporary database), both schemas are described by the backend as rows
 * (table, object, definition), and the rows compared by object. ferry's
 * own tables are left out: the ledger here, the journal by the backend.
 * A hand-made `ALTER TABLE users ADD COLUMN x` shows as "table users:
 * column x not in the migrations".
 */
#include "doctor.h"
#include "session.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct object {
	char *key; /* "table users: column x", "index users_name" */
	char *def;
};

struct schema {
	const struct store *st; /* its ledger's tables are left out */
	struct object *items;
	size_t n, cap;
};

static int add_object(void *arg, int ncols, const char *const *v)
{
	struct schema *sc = arg;

	if (ncols < 3 || !v[1] || (v[0] && ledger_own_table(sc->st, v[0])))
		return 0;
	if (sc->n == sc->cap) {
		sc->cap = sc->cap ? 2 * sc->cap : 64;
		sc->items = xrealloc(sc->items, sc->cap * sizeof(*sc->items));
	}
	sc->items[sc->n].key = xstrdup(v[1]);
	sc->items[sc->n].def = xstrdup(v[2] ? v[2] : "");
	sc->n++;
	return 0;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct object *)a)->key, ((const struct object *)b)->key);
}

static int describe(struct store *st, struct schema *sc)
{
	sc->st = st;
	if (st->ops->describe_schema(st, add_object, sc) < 0)
		return -1;
	if (sc->n)
		qsort(sc->items, sc->n, sizeof(*sc->items), by_key);
	return 0;
}

static void schema_release(struct schema *sc)
{
	for (size_t i = 0; i < sc->n; i++) {
		free(sc->items[i].key);
		free(sc->items[i].def);
	}
	free(sc->items);
}

static const struct object *find(const struct schema *sc, const char *key)
{
	struct object k = { (char *)key, NULL };

	return sc->n ? bsearch(&k, sc->items, sc->n, sizeof(*sc->items), by_key) : NULL;
}

/* "table users: column x" whose table itself is only on one side: the
 * table's own line says it all. */
static bool table_alone(const char *key, const struct schema *other)
{
	const char *colon = strstr(key, ": ");
	char *table;
	bool alone;

	if (strncmp(key, "table ", 6) || !colon)
		return false;
	table = xasprintf("%.*s", (int)(colon - key), key);
	alone = !find(other, table);
	free(table);
	return alone;
}

struct diff {
	char *buf;
	size_t size, count;
};

static void differ(struct diff *df, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void differ(struct diff *df, const char *fmt, ...)
{
	size_t len = strlen(df->buf);
	va_list ap;

	if (df->count++ >= 5 || len + 3 >= df->size)
		return;
	if (len)
		len += (size_t)snprintf(df->buf + len, df->size - len, "; ");
	va_start(ap, fmt);
	vsnprintf(df->buf + len, df->size - len, fmt, ap);
	va_end(ap);
}

/* Two definitions that differ, each shown from a little before the first
 * byte where they part (a column added at the end of a CREATE TABLE). */
static void differ_defs(struct diff *df, const char *key, const char *a, const char *b)
{
	size_t k = 0;

	while (a[k] && a[k] == b[k])
		k++;
	k = k > 24 ? k - 24 : 0;
	differ(df, "%s differs: '%s%.70s' in the database, '%s%.70s' from the migrations",
	       key, k ? "..." : "", a + k, k ? "..." : "", b + k);
}

/* Merges the two sorted lists: what only one has, what both define apart. */
static void compare(const struct schema *live, const struct schema *want, struct diff *df)
{
	size_t i = 0, j = 0;

	while (i < live->n || j < want->n) {
		int c = i == live->n   ? 1
			: j == want->n ? -1
				       : strcmp(live->items[i].key, want->items[j].key);

		if (c < 0) {
			if (!table_alone(live->items[i].key, want))
				differ(df, "%s not in the migrations",
				       live->items[i].key);
			i++;
		} else if (c > 0) {
			if (!table_alone(want->items[j].key, live))
				differ(df, "%s missing (the migrations make it)",
				       want->items[j].key);
			j++;
		} else {
			if (strcmp(live->items[i].def, want->items[j].def))
				differ_defs(df, live->items[i].key, live->items[i].def,
					    want->items[j].def);
			i++;
			j++;
		}
	}
}

/* The applied migrations, in order, on the scratch database. */
static int replay(struct store *scratch, const struct session *s, size_t *n, char *why,
		  size_t size)
{
	long long ms;

	ledger_attach(scratch);
	for (size_t i = 0; i < s->set.n; i++) {
		const struct migration *m = &s->set.items[i];

		if (!ledger_find(&s->ledger, &m->version))
			continue;
		if (scratch->ops->apply(scratch, m, &ms) < 0) {
			snprintf(why, size, "%s fails on an empty database: %.700s",
				 m->name, scratch->err);
			return -1;
		}
		(*n)++;
	}
	return 0;
}

enum doctor_status doctor_drift(struct session *s, char *detail, size_t size)
{
	struct store *st = &s->store, scratch;
	struct schema live = { 0 }, want = { 0 };
	struct diff df = { detail, size, 0 };
	enum doctor_status rc = DOCTOR_WARN;
	char why[1024];
	size_t n = 0;

	detail[0] = '\0';
	if (!st->ops->scratch_open || !st->ops->describe_schema) {
		snprintf(detail, size, "cannot check drift on %s", st->ops->engine);
		return DOCTOR_WARN;
	}
	if (describe(st, &live) < 0) {
		snprintf(detail, size, "cannot read the schema: %s", st->err);
		return DOCTOR_FAIL;
	}
	if (st->ops->scratch_open(st, &scratch, why, sizeof(why)) < 0) {
		snprintf(detail, size, "cannot check drift: %s", why);
		goto out;
	}
	if (replay(&scratch, s, &n, why, sizeof(why)) < 0)
		snprintf(detail, size, "cannot check drift: %s", why);
	else if (describe(&scratch, &want) < 0)
		snprintf(detail, size, "cannot check drift: %s", scratch.err);
	else
		compare(&live, &want, &df);
	st->ops->scratch_drop(st, &scratch);
	if (df.count) {
		if (df.count > 5)
			snprintf(detail + strlen(detail), size - strlen(detail),
				 " (and %zu more)", df.count - 5);
		rc = DOCTOR_FAIL;
	} else if (!detail[0]) {
		snprintf(detail, size, "the schema is what the %zu applied migration%s",
			 n, n == 1 ? " builds" : "s build");
		rc = DOCTOR_OK;
	}
out:
	schema_release(&live);
	schema_release(&want);
	return rc;
}
