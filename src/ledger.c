/*
 * ledger: ferry's own ledger, ferry_migrations, as the first row of the
 * table of shapes. The SQL is written once; where the engines' dialects
 * differ (column types, timestamps) both forms stand side by side.
 * Parameters are text, written $1, $2 ... for every engine.
 */
#include "ledger.h"
#include "log.h"
#include "migrations.h"
#include "store.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* clang-format off */
static const char *const ferry_ddl[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"CREATE TABLE IF NOT EXISTS ferry_migrations ("
		"version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
		"sha256 TEXT NOT NULL, applied_at TEXT NOT NULL, "
		"duration_ms INTEGER NOT NULL, dirty INTEGER NOT NULL DEFAULT 0)",
	[SQL_POSTGRES] =
		"CREATE TABLE IF NOT EXISTS ferry_migrations ("
		"version bigint PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL, "
		"applied_at timestamptz NOT NULL DEFAULT now(), "
		"duration_ms bigint NOT NULL DEFAULT 0, "
		"dirty boolean NOT NULL DEFAULT false, "
		"statements_done integer NOT NULL DEFAULT 0)",
};

static const char *const ferry_select[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"SELECT version, name, sha256, applied_at, duration_ms, dirty "
		"FROM ferry_migrations ORDER BY version",
	[SQL_POSTGRES] =
		"SELECT version, name, sha256, to_char(applied_at AT TIME ZONE 'UTC', "
		"'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), duration_ms, "
		"CASE WHEN dirty THEN 1 ELSE 0 END FROM ferry_migrations ORDER BY version",
};

static const char *const ferry_upsert[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"INSERT INTO ferry_migrations (version, name, sha256, applied_at, "
		"duration_ms, dirty) VALUES ($1, $2, $3, $4, $5, $6) "
		"ON CONFLICT (version) DO UPDATE SET name = excluded.name, "
		"sha256 = excluded.sha256, applied_at = excluded.applied_at, "
		"duration_ms = excluded.duration_ms, dirty = excluded.dirty",
	[SQL_POSTGRES] =
		"INSERT INTO ferry_migrations (version, name, sha256, applied_at, "
		"duration_ms, dirty) VALUES ($1, $2, $3, $4, $5, $6::int::boolean) "
		"ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, "
		"sha256 = EXCLUDED.sha256, applied_at = EXCLUDED.applied_at, "
		"duration_ms = EXCLUDED.duration_ms, dirty = EXCLUDED.dirty",
};

static const char *const ferry_progress[SQL_DIALECTS] = {
	[SQL_SQLITE] = NULL, /* no statement-level progress: one script */
	[SQL_POSTGRES] =
		"UPDATE ferry_migrations SET statements_done = $1 WHERE version = $2",
};
/* clang-format on */

static int ferry_prepare(struct store *s)
{
	return s->ops->sql_exec(s, ferry_ddl[s->ops->dialect], 0, NULL);
}

static int ferry_record(struct store *s, const struct migration *m, long long ms,
			bool dirty)
{
	char version[24], dur[24], stamp[32];
	const char *params[] = { version, m->name, m->sha256, stamp, dur, dirty ? "1" : "0" };
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(version, sizeof(version), "%lld", m->version);
	snprintf(dur, sizeof(dur), "%lld", ms);
	return s->ops->sql_exec(s, ferry_upsert[s->ops->dialect], 6, params);
}

static int ferry_progress_write(struct store *s, const struct migration *m, size_t done)
{
	const char *sql = ferry_progress[s->ops->dialect];
	char version[24], n[24];
	const char *params[] = { n, version };

	if (!sql)
		return 0;
	snprintf(n, sizeof(n), "%zu", done);
	snprintf(version, sizeof(version), "%lld", m->version);
	return s->ops->sql_exec(s, sql, 2, params);
}

static int add_row(void *arg, int ncols, const char *const *v)
{
	struct ledger *l = arg;
	struct ledger_row *r;

	if (ncols < 6)
		return -1;
	l->rows = xrealloc(l->rows, (l->n + 1) * sizeof(*l->rows));
	r = &l->rows[l->n++];
	memset(r, 0, sizeof(*r));
	parse_ll(v[0] ? v[0] : "", -999999999999999999LL, 999999999999999999LL,
		 &r->version);
	r->name = xstrdup(v[1] ? v[1] : "");
	snprintf(r->sha256, sizeof(r->sha256), "%s", v[2] ? v[2] : "");
	snprintf(r->applied_at, sizeof(r->applied_at), "%s", v[3] ? v[3] : "");
	parse_ll(v[4] ? v[4] : "", 0, 999999999999999999LL, &r->duration_ms);
	r->dirty = v[5] && strcmp(v[5], "0") != 0;
	return 0;
}

static int ferry_read(struct store *s, struct ledger *l)
{
	return s->ops->sql_query(s, ferry_select[s->ops->dialect], 0, NULL, add_row, l);
}

/*
 * The shapes of ledger ferry reads and writes. A shape names its table,
 * reads its rows into struct ledger, creates the table, and records a
 * migration (and, where the engine runs statement by statement, its
 * progress) inside the backend's transaction.
 */
static const struct ledger_shape {
	const char *name;
	const char *table;
	int (*read)(struct store *s, struct ledger *l);
	struct store_recorder recorder;
} shapes[] = {
	{ "ferry", "ferry_migrations", ferry_read,
	  { "ferry_migrations", ferry_prepare, ferry_record, ferry_progress_write } },
};

void ledger_attach(struct store *s)
{
	s->recorder = &shapes[0].recorder;
}

struct tables {
	const char *ledger;
	struct ledger *l;
};

static int see_table(void *arg, const char *name, bool in_schema)
{
	struct tables *t = arg;

	if (in_schema && !strcmp(name, t->ledger))
		t->l->exists = true;
	else
		t->l->has_user_tables = true;
	return 0;
}

int ledger_read(struct store *s, struct ledger *l)
{
	const struct ledger_shape *shape = &shapes[0];
	struct tables t = { shape->table, l };

	memset(l, 0, sizeof(*l));
	if (!s->db && s->ops->open(s) < 0)
		return -1;
	if (s->ops->list_tables(s, see_table, &t) < 0 || (l->exists && shape->read(s, l) < 0)) {
		error("cannot read the ledger of %s: %s", s->url_redacted, s->err);
		ledger_release(l);
		return -1;
	}
	return 0;
}

void ledger_release(struct ledger *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->rows[i].name);
	free(l->rows);
	memset(l, 0, sizeof(*l));
}

const struct ledger_row *ledger_find(const struct ledger *l, long long version)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->rows[i].version == version)
			return &l->rows[i];
	return NULL;
}

long long ledger_top(const struct ledger *l)
{
	long long top = 0;

	for (size_t i = 0; i < l->n; i++)
		if (l->rows[i].version > top)
			top = l->rows[i].version;
	return top;
}
