/*
 * ledger_golang: golang-migrate's schema_migrations(version, dirty), one
 * row holding the current version: every shipped version up to it is
 * applied. migrate writes it by emptying the table and inserting the new
 * row (dirty while a migration runs); ferry does the same, naming only
 * those two columns, so columns the app's own migrations add or drop
 * change nothing. The checksums go to ferry's side table.
 */
#include "ledger_shape.h"
#include "migrations.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

/* clang-format off */
/* as migrate's database/sqlite3 and database/postgres create it */
static const char *const ddl[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"CREATE TABLE IF NOT EXISTS schema_migrations (version uint64, dirty bool)",
	[SQL_POSTGRES] =
		"CREATE TABLE IF NOT EXISTS schema_migrations ("
		"version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)",
};

static const char *const select_sql[SQL_DIALECTS] = {
	[SQL_SQLITE] = "SELECT version, dirty FROM schema_migrations LIMIT 1",
	[SQL_POSTGRES] =
		"SELECT version, CASE WHEN dirty THEN 1 ELSE 0 END "
		"FROM schema_migrations LIMIT 1",
};

static const char *const insert_sql[SQL_DIALECTS] = {
	[SQL_SQLITE] = "INSERT INTO schema_migrations (version, dirty) VALUES ($1, $2)",
	[SQL_POSTGRES] =
		"INSERT INTO schema_migrations (version, dirty) "
		"VALUES ($1, $2::int::boolean)",
};
/* clang-format on */

static int prepare(struct store *s)
{
	if (s->ops->sql_exec(s, ddl[s->ops->dialect], 0, NULL) < 0 ||
	    (s->ops->dialect == SQL_SQLITE &&
	     s->ops->sql_exec(s,
			      "CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON "
			      "schema_migrations (version)",
			      0, NULL) < 0))
		return -1;
	return ledger_side_prepare(s);
}

static bool is_mine(struct store *s)
{
	return ledger_has_column(s, "schema_migrations", "dirty");
}

struct current {
	char version[32];
	bool dirty, have;
};

static int one_row(void *arg, int ncols, const char *const *v)
{
	struct current *c = arg;

	if (ncols < 2 || !v[0])
		return 0;
	snprintf(c->version, sizeof(c->version), "%s", v[0]);
	c->dirty = v[1] && strcmp(v[1], "0");
	c->have = true;
	return 0;
}

/* The version before v among the shipped ones, zero for none. */
static struct version previous(const struct migration_set *set, const struct version *v)
{
	struct version p = VERSION_ZERO;

	for (size_t i = 0; set && i < set->n; i++)
		if (version_cmp(&set->items[i].version, v) < 0)
			p = set->items[i].version;
	return p;
}

static int read_rows(struct store *s, struct ledger *l)
{
	const struct migration_set *set = s->ledger_set;
	struct current c = { .have = false };
	struct version top, prev;

	if (s->ops->sql_query(s, select_sql[s->ops->dialect], 0, NULL, one_row, &c) < 0)
		return -1;
	if (!c.have)
		return 0; /* migrate's "no version": nothing applied */
	if (c.version[0] == '-' || !version_parse(&top, c.version, strlen(c.version))) {
		snprintf(s->err, sizeof(s->err),
			 "schema_migrations holds version '%s', which is no version",
			 c.version);
		return -1;
	}
	/* every shipped version up to the current one is applied */
	for (size_t i = 0; set && i < set->n; i++)
		if (version_cmp(&set->items[i].version, &top) < 0)
			ledger_add(s, l, &set->items[i].version, NULL, NULL, false);
	ledger_add(s, l, &top, NULL, NULL, c.dirty);
	prev = previous(set, &top);
	if (c.dirty)
		snprintf(l->dirty_hint, sizeof(l->dirty_hint),
			 "golang-migrate's schema_migrations says version %s is dirty: "
			 "a migration run crashed or failed half-way, and ferry has no "
			 "snapshot of that run. Fix the schema by hand, then record "
			 "what it is: `migrate force %s` (or UPDATE schema_migrations "
			 "SET dirty = false) if all of %s is in, `migrate force %s` if "
			 "none of it is",
			 c.version, c.version, c.version, version_str(&prev));
	return 0;
}

static int set_version(struct store *s, const char *version, bool dirty)
{
	const char *params[] = { version, ledger_bool(dirty) };

	if (s->ops->sql_exec(s, "DELETE FROM schema_migrations", 0, NULL) < 0)
		return -1;
	return s->ops->sql_exec(s, insert_sql[s->ops->dialect], 2, params);
}

static int record(struct store *s, const struct migration *m, long long ms, bool dirty)
{
	long long n;
	char version[24];

	if (ledger_is_repeatable(s, m))
		return ledger_repeatable_record(s, m, ms);

	if (!version_to_ll(&m->version, &n)) {
		snprintf(s->err, sizeof(s->err),
			 "version %s is not an integer: golang-migrate's "
			 "schema_migrations keeps integer versions",
			 version_str(&m->version));
		return -1;
	}
	snprintf(version, sizeof(version), "%lld", n);
	if (set_version(s, version, dirty) < 0)
		return -1;
	return ledger_side_record(s, m, ms);
}

/* migrate down: the version before v is current, none at the first */
static int forget(struct store *s, const struct version *v)
{
	struct version prev = previous(s->ledger_set, v);

	if (version_is_zero(&prev)) {
		if (s->ops->sql_exec(s, "DELETE FROM schema_migrations", 0, NULL) < 0)
			return -1;
	} else if (set_version(s, version_str(&prev), false) < 0)
		return -1;
	return ledger_side_forget(s, v);
}

const struct ledger_shape ledger_golang_migrate = {
	"golang-migrate",
	"schema_migrations",
	is_mine,
	read_rows,
	true,
	true,
	{ "schema_migrations", prepare, record, NULL, forget },
};
