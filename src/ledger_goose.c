/*
 * ledger_goose: goose's goose_db_version(id, version_id, is_applied,
 * tstamp), a log of applies (and of downs, as is_applied false rows in
 * older goose): the newest row of a version says whether it is applied,
 * as goose reads it; version 0 is the row goose writes when it creates
 * the table. The checksums go to ferry's side table.
 */
#include "ledger_shape.h"
#include "migrations.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
/* as goose's sqlite3 and postgres dialects create it, with its row 0 */
static const char *const ddl[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"CREATE TABLE IF NOT EXISTS goose_db_version ("
		"id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL, "
		"is_applied INTEGER NOT NULL, tstamp TIMESTAMP DEFAULT (datetime('now')))",
	[SQL_POSTGRES] =
		"CREATE TABLE IF NOT EXISTS goose_db_version ("
		"id serial NOT NULL, version_id bigint NOT NULL, "
		"is_applied boolean NOT NULL, tstamp timestamp NULL DEFAULT now(), "
		"PRIMARY KEY (id))",
};

static const char *const zero_sql[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"INSERT INTO goose_db_version (version_id, is_applied) SELECT 0, 1 "
		"WHERE NOT EXISTS (SELECT 1 FROM goose_db_version)",
	[SQL_POSTGRES] =
		"INSERT INTO goose_db_version (version_id, is_applied) SELECT 0, true "
		"WHERE NOT EXISTS (SELECT 1 FROM goose_db_version)",
};

static const char *const select_sql[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"SELECT version_id, is_applied FROM goose_db_version ORDER BY id DESC",
	[SQL_POSTGRES] =
		"SELECT version_id, CASE WHEN is_applied THEN 1 ELSE 0 END "
		"FROM goose_db_version ORDER BY id DESC",
};

static const char *const insert_sql[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, 1)",
	[SQL_POSTGRES] =
		"INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)",
};
/* clang-format on */

static int prepare(struct store *s)
{
	if (s->ops->sql_exec(s, ddl[s->ops->dialect], 0, NULL) < 0 ||
	    s->ops->sql_exec(s, zero_sql[s->ops->dialect], 0, NULL) < 0)
		return -1;
	return ledger_side_prepare(s);
}

struct reading {
	struct store *s;
	struct ledger *l;
	/* versions decided by a newer row, applied or not */
	struct version *seen;
	size_t n_seen;
};

static int add_row(void *arg, int ncols, const char *const *v)
{
	struct reading *rd = arg;
	struct version ver;

	if (ncols < 2 || !v[0] || !version_parse(&ver, v[0], strlen(v[0])) ||
	    version_is_zero(&ver))
		return 0;
	for (size_t i = 0; i < rd->n_seen; i++)
		if (!version_cmp(&rd->seen[i], &ver))
			return 0; /* a newer row decided it */
	rd->seen = xrealloc(rd->seen, (rd->n_seen + 1) * sizeof(*rd->seen));
	rd->seen[rd->n_seen++] = ver;
	if (v[1] && strcmp(v[1], "0"))
		ledger_add(rd->s, rd->l, &ver, NULL, NULL, false);
	return 0;
}

static int read_rows(struct store *s, struct ledger *l)
{
	struct reading rd = { s, l, NULL, 0 };
	int rc = s->ops->sql_query(s, select_sql[s->ops->dialect], 0, NULL, add_row, &rd);

	free(rd.seen);
	return rc;
}

static int record(struct store *s, const struct migration *m, long long ms, bool dirty)
{
	long long n;
	char version[24];
	const char *params[] = { version };

	if (ledger_is_repeatable(s, m))
		return ledger_repeatable_record(s, m, ms);

	if (!version_to_ll(&m->version, &n)) {
		snprintf(s->err, sizeof(s->err),
			 "version %s is not an integer: goose's goose_db_version "
			 "keeps integer versions",
			 version_str(&m->version));
		return -1;
	}
	/* goose writes its row once the step is done */
	if (!dirty) {
		snprintf(version, sizeof(version), "%lld", n);
		if (s->ops->sql_exec(s, insert_sql[s->ops->dialect], 1, params) < 0)
			return -1;
	}
	return ledger_side_record(s, m, ms);
}

/* as goose since v3 undoes: the version's rows go */
static int forget(struct store *s, const struct version *v)
{
	return ledger_delete_version(
		s, "DELETE FROM goose_db_version WHERE version_id = $1", v, true);
}

const struct ledger_shape ledger_goose = {
	"goose",
	"goose_db_version",
	NULL,
	read_rows,
	true,
	true,
	{ "goose_db_version", prepare, record, NULL, forget },
};
