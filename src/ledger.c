/*
 * ledger: ferry's own ledger, ferry_migrations, as the first row of the
 * table of shapes. The SQL is written once; where the engines' dialects
 * differ (column types, timestamps) both forms stand side by side.
 * Parameters are text, written $1, $2 ... for every engine.
 */
#include "ledger.h"
#include "ledger_shape.h"
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

static const char *const ferry_delete =
	"DELETE FROM ferry_migrations WHERE version = $1";

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

/*
 * ferry_migrations keeps its versions in an INTEGER (bigint) column: the
 * migration's version as that column's text, or -1 with s->err set for
 * one it cannot hold (a dotted version; no format ships one yet).
 */
static int ferry_version(struct store *s, const struct migration *m, char *buf,
			 size_t size)
{
	const char *v = version_str(&m->version);
	long long n;

	if (version_to_ll(&m->version, &n)) {
		snprintf(buf, size, "%s", v);
		return 0;
	}
	if (version_is_integer(&m->version))
		snprintf(s->err, sizeof(s->err),
			 "version %s has more than 18 digits: ferry's "
			 "ledger (ferry_migrations) keeps 64-bit integer versions",
			 v);
	else
		snprintf(s->err, sizeof(s->err),
			 "version %s is not an integer: ferry's "
			 "ledger (ferry_migrations) keeps integer versions",
			 v);
	return -1;
}

static int ferry_record(struct store *s, const struct migration *m, long long ms,
			bool dirty)
{
	char version[VERSION_TEXT_MAX + 1], dur[24], stamp[32];
	const char *params[] = { version, m->name, m->sha256,
				 stamp,	  dur,	   dirty ? "1" : "0" };
	time_t now = time(NULL);
	struct tm tm;

	if (ledger_is_repeatable(s, m))
		return ledger_repeatable_record(s, m, ms);
	if (ferry_version(s, m, version, sizeof(version)) < 0)
		return -1;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(dur, sizeof(dur), "%lld", ms);
	return s->ops->sql_exec(s, ferry_upsert[s->ops->dialect], 6, params);
}

static int ferry_progress_write(struct store *s, const struct migration *m, size_t done)
{
	const char *sql = ferry_progress[s->ops->dialect];
	char version[VERSION_TEXT_MAX + 1], n[24];
	const char *params[] = { n, version };

	if (!sql)
		return 0;
	if (ferry_version(s, m, version, sizeof(version)) < 0)
		return -1;
	snprintf(n, sizeof(n), "%zu", done);
	return s->ops->sql_exec(s, sql, 2, params);
}

/* ferry downgrade: the row of a migration whose down part ran */
static int ferry_forget(struct store *s, const struct version *v)
{
	char version[VERSION_TEXT_MAX + 1];
	const char *params[] = { version };
	long long n;

	if (!version_to_ll(v, &n)) {
		snprintf(s->err, sizeof(s->err),
			 "version %s is not one ferry's ledger (ferry_migrations) "
			 "keeps",
			 version_str(v));
		return -1;
	}
	snprintf(version, sizeof(version), "%lld", n);
	return s->ops->sql_exec(s, ferry_delete, 1, params);
}

/* The rows being read, and the first whose version does not parse. */
struct reading {
	struct ledger *l;
	char bad_version[72], bad_name[72];
	bool bad;
};

static int add_row(void *arg, int ncols, const char *const *v)
{
	struct reading *rd = arg;
	struct ledger *l = rd->l;
	struct ledger_row *r;
	struct version ver;

	if (ncols < 6)
		return -1;
	if (!v[0] || !version_parse(&ver, v[0], strlen(v[0]))) {
		snprintf(rd->bad_version, sizeof(rd->bad_version), "%s",
			 v[0] ? v[0] : "NULL");
		snprintf(rd->bad_name, sizeof(rd->bad_name), "%s", v[1] ? v[1] : "");
		rd->bad = true;
		return -1;
	}
	l->rows = xrealloc(l->rows, (l->n + 1) * sizeof(*l->rows));
	r = &l->rows[l->n++];
	memset(r, 0, sizeof(*r));
	r->version = ver;
	r->name = xstrdup(v[1] ? v[1] : "");
	snprintf(r->sha256, sizeof(r->sha256), "%s", v[2] ? v[2] : "");
	snprintf(r->applied_at, sizeof(r->applied_at), "%s", v[3] ? v[3] : "");
	parse_ll(v[4] ? v[4] : "", 0, 999999999999999999LL, &r->duration_ms);
	r->dirty = v[5] && strcmp(v[5], "0") != 0;
	return 0;
}

static int ferry_read(struct store *s, struct ledger *l)
{
	struct reading rd = { .l = l };
	int rc = s->ops->sql_query(s, ferry_select[s->ops->dialect], 0, NULL, add_row,
				   &rd);

	/* the backend said "unexpected result": say which row */
	if (rc < 0 && rd.bad)
		snprintf(s->err, sizeof(s->err),
			 "ferry_migrations: the row of migration '%s' "
			 "has version '%s', which is no version (digits and dots, as 3, "
			 "20240101120000 or 1.2.3): correct or remove that row",
			 rd.bad_name, rd.bad_version);
	return rc;
}

/*
 * The shapes of ledger ferry reads and writes. A shape names its table,
 * reads its rows into struct ledger, creates the table, and records a
 * migration (and, where the engine runs statement by statement, its
 * progress) inside the backend's transaction. ferry's own is the first:
 * the one of a new database whose format names no other tool.
 */
static const struct ledger_shape ledger_ferry = {
	"ferry",
	"ferry_migrations",
	NULL,
	ferry_read,
	false,
	true,
	{ "ferry_migrations", ferry_prepare, ferry_record, ferry_progress_write,
	  ferry_forget },
};

static const struct ledger_shape *const shapes[] = {
	&ledger_ferry,	&ledger_golang_migrate, &ledger_dbmate, &ledger_goose,
	&ledger_flyway, &ledger_diesel,		&ledger_sqlx,
};
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))

static const struct ledger_shape *shape_named(const char *name)
{
	for (size_t i = 0; name && i < NSHAPES; i++)
		if (!strcmp(shapes[i]->name, name))
			return shapes[i];
	return NULL;
}

static const struct ledger_shape *shape_of(const struct store *s)
{
	for (size_t i = 0; i < NSHAPES; i++)
		if (s->recorder == &shapes[i]->recorder)
			return shapes[i];
	return &ledger_ferry;
}

void ledger_attach(struct store *s)
{
	s->recorder = &ledger_ferry.recorder;
}

void ledger_configure(struct store *s, const char *want, const struct migration_set *set)
{
	const struct ledger_shape *shape = shape_named(want);

	s->ledger_want = want && strcmp(want, "auto") ? want : NULL;
	s->ledger_set = set;
	/* a new database: the format's own tool's ledger */
	if (!shape && set)
		shape = shape_named(set->format);
	s->recorder = &(shape ? shape : &ledger_ferry)->recorder;
}

void ledger_describe(const struct store *s, struct ledger *l)
{
	const struct ledger_shape *shape = shape_of(s);

	if (!l->table)
		l->table = shape->table;
	l->integer_versions = shape->integer_versions;
}

bool ledger_own_table(const struct store *s, const char *name)
{
	return (s->recorder && !strcmp(name, s->recorder->table)) ||
	       !strcmp(name, SIDE_TABLE) || !strcmp(name, REPEATABLES_TABLE);
}

const char *ledger_shape_name(const struct store *s)
{
	return shape_of(s)->name;
}

struct tables {
	bool found[NSHAPES];
	bool side, reps;
	struct ledger *l;
};

static int see_table(void *arg, const char *name, bool in_schema)
{
	struct tables *t = arg;
	bool known = false;

	for (size_t i = 0; in_schema && i < NSHAPES; i++)
		if (!strcmp(name, shapes[i]->table))
			t->found[i] = known = true;
	if (in_schema && !strcmp(name, SIDE_TABLE))
		t->side = known = true;
	if (in_schema && !strcmp(name, REPEATABLES_TABLE))
		t->reps = known = true;
	if (!known)
		t->l->has_user_tables = true;
	return 0;
}

/*
 * The shape of the database's ledger: the one [migrations] ledger names,
 * else the one whose table is there (two: refused, naming both), else the
 * attached one (the format's). NULL with s->err set.
 */
static const struct ledger_shape *choose(struct store *s, struct tables *t)
{
	const struct ledger_shape *want = shape_named(s->ledger_want), *found = NULL;

	for (size_t i = 0; i < NSHAPES; i++) {
		const struct ledger_shape *sh = shapes[i];

		if (!t->found[i] || (sh->is_mine && !sh->is_mine(s)))
			continue;
		if (want && sh != want) {
			/* another tool's table: the app's own, for this ledger */
			t->l->has_user_tables = true;
			continue;
		}
		if (found && !want) {
			snprintf(s->err, sizeof(s->err),
				 "the database has two ledgers, %s's %s and %s's %s: set "
				 "[migrations] ledger to the one that is current",
				 found->name, found->table, sh->name, sh->table);
			return NULL;
		}
		found = sh;
	}
	if (found)
		t->l->exists = true;
	return found ? found : want ? want : shape_of(s);
}

/* ferry_checksums' rows onto the ledger's: what was applied by ferry */
static int side_row(void *arg, int ncols, const char *const *v)
{
	struct ledger *l = arg;
	struct version ver;

	if (ncols < 2 || !v[0] || !v[1] || !version_parse(&ver, v[0], strlen(v[0])))
		return 0;
	for (size_t i = 0; i < l->n; i++)
		if (!version_cmp(&l->rows[i].version, &ver)) {
			snprintf(l->rows[i].sha256, sizeof(l->rows[i].sha256), "%s",
				 v[1]);
			l->rows[i].trusted = false;
		}
	return 0;
}

static int side_read(struct store *s, struct ledger *l)
{
	return s->ops->sql_query(s, "SELECT version, sha256 FROM " SIDE_TABLE, 0, NULL,
				 side_row, l);
}

static int by_version(const void *a, const void *b)
{
	const struct ledger_row *x = a, *y = b;
	return version_cmp(&x->version, &y->version);
}

int ledger_read(struct store *s, struct ledger *l)
{
	const struct ledger_shape *shape;
	struct tables t = { .l = l };

	memset(l, 0, sizeof(*l));
	if (!s->db && s->ops->open(s) < 0)
		return -1;
	if (s->ops->list_tables(s, see_table, &t) < 0 || !(shape = choose(s, &t)))
		goto fail;
	s->recorder = &shape->recorder;
	l->shape = shape->name;
	l->table = shape->table;
	if (l->exists &&
	    (shape->read(s, l) < 0 || (shape->side && t.side && side_read(s, l) < 0)))
		goto fail;
	/* Flyway's shape reads its own repeatables' rows */
	if (t.reps && shape != &ledger_flyway && ledger_repeatables_read(s, l) < 0)
		goto fail;
	/* the order of versions, whatever order the table's column gives */
	if (l->n)
		qsort(l->rows, l->n, sizeof(*l->rows), by_version);
	return 0;
fail:
	error("cannot read the ledger of %s: %s", s->url_redacted, s->err);
	ledger_release(l);
	return -1;
}

void ledger_release(struct ledger *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->rows[i].name);
	free(l->rows);
	for (size_t i = 0; i < l->n_rep_current; i++)
		free(l->rep_current[i]);
	free(l->rep_current);
	memset(l, 0, sizeof(*l));
}

bool ledger_rep_current(const struct ledger *l, const char *name)
{
	for (size_t i = 0; i < l->n_rep_current; i++)
		if (!strcmp(l->rep_current[i], name))
			return true;
	return false;
}

/* Rows come ORDER BY version: a binary search first (as migrations_find),
 * the linear scan when a shape's order is not version_cmp's. */
const struct ledger_row *ledger_find(const struct ledger *l, const struct version *v)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = version_cmp(&l->rows[mid].version, v);

		if (c == 0)
			return &l->rows[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < l->n; i++)
		if (version_cmp(&l->rows[i].version, v) == 0)
			return &l->rows[i];
	return NULL;
}

bool ledger_tracks_nothing(const struct ledger *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (!version_is_zero(&l->rows[i].version) || l->rows[i].dirty)
			return false;
	return true;
}

struct version ledger_top(const struct ledger *l)
{
	struct version top = VERSION_ZERO;

	for (size_t i = 0; i < l->n; i++)
		if (version_cmp(&l->rows[i].version, &top) > 0)
			top = l->rows[i].version;
	return top;
}
