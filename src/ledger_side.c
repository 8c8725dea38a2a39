/*
 * ledger_side: what the other tools' ledger shapes share: rows added to
 * struct ledger, a migration's version and description as its file name
 * writes them (what the tools store), and ferry's side table
 * ferry_checksums, which keeps the sha256 of each migration ferry applied
 * for the tools whose own table keeps no checksum, so an edited file is
 * still refused after adoption.
 */
#include "ledger_shape.h"
#include "migrations.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void ledger_failed_row(struct ledger *l, const char *table, const char *v,
		       const char *remedy)
{
	if (l->dirty_hint[0])
		return;
	snprintf(l->dirty_hint, sizeof(l->dirty_hint),
		 "%s has a failed row for version %s (success = false): a run "
		 "failed half-way, and ferry has no snapshot of it. Fix the schema "
		 "by hand, then %s",
		 table, v, remedy);
}

struct ledger_row *ledger_add(struct store *s, struct ledger *l, const struct version *v,
			      const char *name, const char *sha256, bool dirty)
{
	const struct migration *m =
		s->ledger_set ? migrations_find(s->ledger_set, v) : NULL;
	struct ledger_row *r;

	l->rows = xrealloc(l->rows, (l->n + 1) * sizeof(*l->rows));
	r = &l->rows[l->n++];
	memset(r, 0, sizeof(*r));
	r->version = *v;
	r->name = xstrdup(name ? name : m ? m->name : version_str(v));
	r->dirty = dirty;
	if (sha256)
		snprintf(r->sha256, sizeof(r->sha256), "%s", sha256);
	else if (m) {
		/* no checksum of its own yet: trusted, until the side table says */
		snprintf(r->sha256, sizeof(r->sha256), "%s", m->sha256);
		r->trusted = true;
	}
	return r;
}

struct versions_reading {
	struct store *s;
	struct ledger *l;
	char bad[72];
};

static int add_version(void *arg, int ncols, const char *const *v)
{
	struct versions_reading *rd = arg;
	struct version ver;

	if (ncols < 1 || !v[0] || !version_parse(&ver, v[0], strlen(v[0]))) {
		snprintf(rd->bad, sizeof(rd->bad), "%s",
			 ncols > 0 && v[0] ? v[0] : "NULL");
		return -1;
	}
	ledger_add(rd->s, rd->l, &ver, NULL, NULL, false);
	return 0;
}

int ledger_read_versions(struct store *s, struct ledger *l, const char *sql,
			 const char *table)
{
	struct versions_reading rd = { s, l, "" };
	int rc = s->ops->sql_query(s, sql, 0, NULL, add_version, &rd);

	if (rc < 0 && rd.bad[0])
		snprintf(s->err, sizeof(s->err),
			 "%s holds version '%s', which is no version (digits and "
			 "dots): correct or remove that row",
			 table, rd.bad);
	return rc;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

const char *ledger_script(const struct migration *m)
{
	return base_name(m->path);
}

/* Where the version of the name ends: before "__" or "_word". */
static size_t version_end(const char *n)
{
	size_t i = 0;

	while (n[i] && (isdigit((unsigned char)n[i]) || n[i] == '.' || n[i] == '-' ||
			(n[i] == '_' && isdigit((unsigned char)n[i + 1]))))
		i++;
	return i;
}

void ledger_file_version(const struct migration *m, char *buf, size_t size)
{
	const char *n = m->name;
	size_t len, w = 0;
	struct version v;

	while (*n && !isdigit((unsigned char)*n))
		n++; /* Flyway's V */
	len = version_end(n);
	for (size_t i = 0; i < len && w + 1 < size; i++)
		if (n[i] != '-')
			buf[w++] = n[i] == '_' ? '.' : n[i];
	buf[w] = '\0';
	/* a name whose version reads otherwise: the canonical text */
	if (!version_parse(&v, buf, w) || version_cmp(&v, &m->version))
		snprintf(buf, size, "%s", version_str(&m->version));
}

void ledger_description(const struct migration *m, char *buf, size_t size)
{
	const char *n = m->name;
	size_t w = 0;

	while (*n && !isdigit((unsigned char)*n))
		n++;
	n += version_end(n);
	while (*n == '_')
		n++;
	for (; *n && w + 1 < size; n++)
		buf[w++] = *n == '_' ? ' ' : *n;
	buf[w] = '\0';
}

const char *ledger_bool(bool b)
{
	return b ? "1" : "0";
}

/* clang-format off */
static const char *const side_ddl[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"CREATE TABLE IF NOT EXISTS " SIDE_TABLE " ("
		"version TEXT PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, "
		"applied_at TEXT NOT NULL, duration_ms INTEGER NOT NULL)",
	[SQL_POSTGRES] =
		"CREATE TABLE IF NOT EXISTS " SIDE_TABLE " ("
		"version text PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL, "
		"applied_at timestamptz NOT NULL DEFAULT now(), "
		"duration_ms bigint NOT NULL DEFAULT 0)",
};

static const char *const side_upsert =
	"INSERT INTO " SIDE_TABLE " (version, name, sha256, applied_at, duration_ms) "
	"VALUES ($1, $2, $3, $4, $5) ON CONFLICT (version) DO UPDATE SET "
	"name = excluded.name, sha256 = excluded.sha256, "
	"applied_at = excluded.applied_at, duration_ms = excluded.duration_ms";

static const char *const side_backfill =
	"INSERT INTO " SIDE_TABLE " (version, name, sha256, applied_at, duration_ms) "
	"VALUES ($1, $2, $3, $4, 0) ON CONFLICT (version) DO NOTHING";

static const char *const columns_sql[SQL_DIALECTS] = {
	[SQL_SQLITE] = "SELECT 1 FROM pragma_table_info($1) WHERE name = $2",
	[SQL_POSTGRES] =
		"SELECT 1 FROM information_schema.columns WHERE table_schema = "
		"current_schema() AND table_name = $1 AND column_name = $2",
};
/* clang-format on */

int ledger_side_prepare(struct store *s)
{
	return s->ops->sql_exec(s, side_ddl[s->ops->dialect], 0, NULL);
}

static int side_write(struct store *s, const char *sql, const struct migration *m,
		      long long ms)
{
	char dur[24], stamp[32];
	const char *params[] = { version_str(&m->version), m->name, m->sha256, stamp,
				 dur };
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(dur, sizeof(dur), "%lld", ms);
	return s->ops->sql_exec(s, sql, sql == side_upsert ? 5 : 4, params);
}

int ledger_side_record(struct store *s, const struct migration *m, long long ms)
{
	const struct migration_set *set = s->ledger_set;

	if (ledger_side_prepare(s) < 0 || side_write(s, side_upsert, m, ms) < 0)
		return -1;
	/* the versions below, applied by the tool itself: trusted as shipped */
	for (size_t i = 0; set && !s->ledger_backfilled && i < set->n; i++)
		if (version_cmp(&set->items[i].version, &m->version) < 0 &&
		    side_write(s, side_backfill, &set->items[i], 0) < 0)
			return -1;
	s->ledger_backfilled = true;
	return 0;
}

int ledger_side_forget(struct store *s, const struct version *v)
{
	const char *params[] = { version_str(v) };

	return s->ops->sql_exec(s, "DELETE FROM " SIDE_TABLE " WHERE version = $1", 1,
				params);
}

void ledger_version_text(struct store *s, const struct version *v, char *buf, size_t size)
{
	const struct migration *m =
		s->ledger_set ? migrations_find(s->ledger_set, v) : NULL;

	if (m)
		ledger_file_version(m, buf, size);
	else
		snprintf(buf, size, "%s", version_str(v));
}

int ledger_delete_version(struct store *s, const char *sql, const struct version *v,
			  bool side)
{
	char text[VERSION_INPUT_MAX + 1];
	const char *params[] = { text };

	ledger_version_text(s, v, text, sizeof(text));
	if (s->ops->sql_exec(s, sql, 1, params) < 0)
		return -1;
	return side ? ledger_side_forget(s, v) : 0;
}

bool ledger_is_repeatable(const struct store *s, const struct migration *m)
{
	const struct migration_set *set = s->ledger_set;

	return set && set->n_repeatables && m >= set->repeatables &&
	       m < set->repeatables + set->n_repeatables;
}

/* clang-format off */
static const char *const reps_ddl[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"CREATE TABLE IF NOT EXISTS " REPEATABLES_TABLE " ("
		"name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, applied_at TEXT NOT NULL, "
		"duration_ms INTEGER NOT NULL)",
	[SQL_POSTGRES] =
		"CREATE TABLE IF NOT EXISTS " REPEATABLES_TABLE " ("
		"name text PRIMARY KEY, sha256 text NOT NULL, "
		"applied_at timestamptz NOT NULL DEFAULT now(), "
		"duration_ms bigint NOT NULL DEFAULT 0)",
};
/* clang-format on */

int ledger_repeatable_record(struct store *s, const struct migration *m, long long ms)
{
	char dur[24], stamp[32];
	const char *params[] = { m->name, m->sha256, stamp, dur };
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(dur, sizeof(dur), "%lld", ms);
	if (s->ops->sql_exec(s, reps_ddl[s->ops->dialect], 0, NULL) < 0)
		return -1;
	return s->ops->sql_exec(
		s,
		"INSERT INTO " REPEATABLES_TABLE
		" (name, sha256, applied_at, duration_ms) VALUES ($1, $2, $3, "
		"$4) ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, "
		"applied_at = excluded.applied_at, "
		"duration_ms = excluded.duration_ms",
		4, params);
}

void ledger_rep_add(struct ledger *l, const char *name)
{
	l->rep_current = xrealloc(l->rep_current,
				  (l->n_rep_current + 1) * sizeof(*l->rep_current));
	l->rep_current[l->n_rep_current++] = xstrdup(name);
}

struct reps_reading {
	struct store *s;
	struct ledger *l;
};

static int rep_row(void *arg, int ncols, const char *const *v)
{
	struct reps_reading *rd = arg;
	const struct migration_set *set = rd->s->ledger_set;

	for (size_t i = 0; set && ncols >= 2 && v[0] && v[1] && i < set->n_repeatables;
	     i++)
		if (!strcmp(set->repeatables[i].name, v[0]) &&
		    !strcmp(set->repeatables[i].sha256, v[1]))
			ledger_rep_add(rd->l, v[0]);
	return 0;
}

int ledger_repeatables_read(struct store *s, struct ledger *l)
{
	struct reps_reading rd = { s, l };

	return s->ops->sql_query(s, "SELECT name, sha256 FROM " REPEATABLES_TABLE, 0,
				 NULL, rep_row, &rd);
}

static int any_row(void *arg, int ncols, const char *const *v)
{
	(void)ncols;
	(void)v;
	*(bool *)arg = true;
	return 0;
}

bool ledger_has_column(struct store *s, const char *table, const char *column)
{
	const char *params[] = { table, column };
	bool found = false;

	if (s->ops->sql_query(s, columns_sql[s->ops->dialect], 2, params, any_row,
			      &found) < 0)
		return false;
	return found;
}

char *ledger_file(const char *path, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || st.st_size < 0)
		goto out;
	buf = xmalloc((size_t)st.st_size + 1);
	while (done < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + done, (size_t)st.st_size - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(buf);
			buf = NULL;
			goto out;
		}
		done += (size_t)r;
	}
	buf[done] = '\0';
	*len = done;
out:
	close(fd);
	return buf;
}
