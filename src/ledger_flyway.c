/*
 * ledger_flyway: Flyway's flyway_schema_history, one row per applied
 * script ranked by installed_rank, with the script's checksum as Flyway
 * computes it: a CRC-32 over the file's lines, each without its line
 * end, the first without its BOM, stored as a signed 32-bit integer. A
 * BASELINE row stands for every version up to its own; a row with
 * success false is a script that failed half-way (dirty). Flyway checks
 * its own checksums, so no side table.
 */
#include "ledger_shape.h"
#include "migrations.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
/* as Flyway's SQLite and PostgreSQL createMetaDataTable.sql create it */
static const char *const ddl[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"CREATE TABLE IF NOT EXISTS \"flyway_schema_history\" ("
		"\"installed_rank\" INT NOT NULL PRIMARY KEY, "
		"\"version\" VARCHAR(50), \"description\" VARCHAR(200) NOT NULL, "
		"\"type\" VARCHAR(20) NOT NULL, \"script\" VARCHAR(1000) NOT NULL, "
		"\"checksum\" INT, \"installed_by\" VARCHAR(100) NOT NULL, "
		"\"installed_on\" TEXT NOT NULL DEFAULT "
		"(strftime('%Y-%m-%d %H:%M:%f','now')), "
		"\"execution_time\" INT NOT NULL, \"success\" BOOLEAN NOT NULL)",
	[SQL_POSTGRES] =
		"CREATE TABLE IF NOT EXISTS \"flyway_schema_history\" ("
		"\"installed_rank\" INT NOT NULL, \"version\" VARCHAR(50), "
		"\"description\" VARCHAR(200) NOT NULL, \"type\" VARCHAR(20) NOT NULL, "
		"\"script\" VARCHAR(1000) NOT NULL, \"checksum\" INTEGER, "
		"\"installed_by\" VARCHAR(100) NOT NULL, "
		"\"installed_on\" TIMESTAMP NOT NULL DEFAULT now(), "
		"\"execution_time\" INTEGER NOT NULL, \"success\" BOOLEAN NOT NULL, "
		"CONSTRAINT \"flyway_schema_history_pk\" PRIMARY KEY (\"installed_rank\"))",
};

static const char *const select_sql[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"SELECT version, checksum, success, type FROM flyway_schema_history "
		"WHERE version IS NOT NULL ORDER BY installed_rank",
	[SQL_POSTGRES] =
		"SELECT version, checksum, CASE WHEN success THEN 1 ELSE 0 END, type "
		"FROM flyway_schema_history WHERE version IS NOT NULL "
		"ORDER BY installed_rank",
};

static const char *const reps_sql[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"SELECT script, checksum FROM flyway_schema_history WHERE version IS NULL "
		"AND type = 'SQL' AND success = 1 ORDER BY installed_rank",
	[SQL_POSTGRES] =
		"SELECT script, checksum FROM flyway_schema_history WHERE version IS NULL "
		"AND type = 'SQL' AND success ORDER BY installed_rank",
};

/* the failed row of a version goes when it is recorded again */
static const char *const forget_failed[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"DELETE FROM flyway_schema_history WHERE version = $1 AND success = 0",
	[SQL_POSTGRES] =
		"DELETE FROM flyway_schema_history WHERE version = $1 AND NOT success",
};

static const char *const forget_failed_repeatable[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"DELETE FROM flyway_schema_history WHERE version IS NULL AND script = $1 "
		"AND success = 0",
	[SQL_POSTGRES] =
		"DELETE FROM flyway_schema_history WHERE version IS NULL AND script = $1 "
		"AND NOT success",
};

static const char *const insert_sql[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"INSERT INTO flyway_schema_history (installed_rank, version, "
		"description, type, script, checksum, installed_by, execution_time, "
		"success) SELECT COALESCE(MAX(installed_rank), 0) + 1, $1, $2, $3, $4, "
		"$5, '', $6, $7 FROM flyway_schema_history",
	[SQL_POSTGRES] =
		"INSERT INTO flyway_schema_history (installed_rank, version, "
		"description, type, script, checksum, installed_by, execution_time, "
		"success) SELECT COALESCE(MAX(installed_rank), 0) + 1, $1, $2, $3, $4, "
		"$5::int, current_user, $6::int, $7::int::boolean "
		"FROM flyway_schema_history",
};
/* clang-format on */

static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t n)
{
	/* zlib's CRC-32 (java.util.zip.CRC32), bit by bit: no table to build */
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

int ledger_flyway_checksum(const char *text, size_t len)
{
	uint32_t crc = 0;
	size_t i = 0;

	if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
		i = 3;
	while (i < len) {
		size_t start = i;

		while (i < len && text[i] != '\n' && text[i] != '\r')
			i++;
		crc = crc_update(crc, (const unsigned char *)text + start, i - start);
		if (i < len && text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
			i++;
		if (i < len)
			i++;
	}
	return (int)(int32_t)crc;
}

/* The checksum of the shipped file, false when it cannot be read. */
static bool file_checksum(const struct migration *m, int *sum)
{
	size_t len;
	char *text = ledger_file(m->path, &len);

	if (!text)
		return false;
	*sum = ledger_flyway_checksum(text, len);
	free(text);
	return true;
}

static int prepare(struct store *s)
{
	if (s->ops->sql_exec(s, ddl[s->ops->dialect], 0, NULL) < 0)
		return -1;
	return s->ops->sql_exec(
		s,
		"CREATE INDEX IF NOT EXISTS \"flyway_schema_history_s_idx\" "
		"ON \"flyway_schema_history\" (\"success\")",
		0, NULL);
}

struct reading {
	struct store *s;
	struct ledger *l;
	char bad[72];
};

/* A baseline at v: every shipped version up to it, as Flyway skips them */
static void add_baseline(struct reading *rd, const struct version *v)
{
	const struct migration_set *set = rd->s->ledger_set;

	for (size_t i = 0; set && i < set->n; i++)
		if (version_cmp(&set->items[i].version, v) < 0 &&
		    !ledger_find(rd->l, &set->items[i].version))
			ledger_add(rd->s, rd->l, &set->items[i].version, NULL, NULL,
				   false);
	if (!ledger_find(rd->l, v))
		ledger_add(rd->s, rd->l, v, NULL, NULL, false)->baseline = true;
}

static int add_row(void *arg, int ncols, const char *const *v)
{
	struct reading *rd = arg;
	const struct migration *m;
	struct version ver;
	char sha[65];
	long long stored;
	int sum;

	if (ncols < 4 || !v[0] || !version_parse(&ver, v[0], strlen(v[0]))) {
		snprintf(rd->bad, sizeof(rd->bad), "%s", ncols && v[0] ? v[0] : "NULL");
		return -1;
	}
	if (v[3] && !strcmp(v[3], "BASELINE")) {
		add_baseline(rd, &ver);
		return 0;
	}
	if (v[3] && !strcmp(v[3], "DELETE"))
		return 0;
	m = rd->s->ledger_set ? migrations_find(rd->s->ledger_set, &ver) : NULL;
	/* the stored checksum against the shipped file's, as Flyway validates */
	if (m && v[1] && parse_ll(v[1], INT32_MIN, INT32_MAX, &stored) &&
	    file_checksum(m, &sum) && sum != stored)
		snprintf(sha, sizeof(sha), "crc32 %s", v[1]);
	else
		snprintf(sha, sizeof(sha), "%s", m ? m->sha256 : "");
	ledger_add(rd->s, rd->l, &ver, NULL, sha, v[2] && !strcmp(v[2], "0"));
	if (v[2] && !strcmp(v[2], "0"))
		ledger_failed_row(rd->l, "flyway_schema_history", v[0],
				  "remove the failed row (`flyway repair`, or DELETE "
				  "FROM flyway_schema_history WHERE NOT success)");
	return 0;
}

/* The repeatables' rows, oldest first: the last of a script says whether
 * the shipped file is the one applied */
struct reps {
	struct store *s;
	bool *current;
};

static int rep_row(void *arg, int ncols, const char *const *v)
{
	struct reps *r = arg;
	const struct migration_set *set = r->s->ledger_set;
	long long stored;
	int sum;

	for (size_t i = 0; ncols >= 2 && v[0] && i < set->n_repeatables; i++)
		if (!strcmp(ledger_script(&set->repeatables[i]), v[0]))
			r->current[i] = v[1] &&
					parse_ll(v[1], INT32_MIN, INT32_MAX, &stored) &&
					file_checksum(&set->repeatables[i], &sum) &&
					sum == stored;
	return 0;
}

static int read_repeatables(struct store *s, struct ledger *l)
{
	const struct migration_set *set = s->ledger_set;
	struct reps r = { s, NULL };
	int rc;

	if (!set || !set->n_repeatables)
		return 0;
	r.current = xcalloc(set->n_repeatables, sizeof(*r.current));
	rc = s->ops->sql_query(s, reps_sql[s->ops->dialect], 0, NULL, rep_row, &r);
	for (size_t i = 0; rc == 0 && i < set->n_repeatables; i++)
		if (r.current[i])
			ledger_rep_add(l, set->repeatables[i].name);
	free(r.current);
	return rc;
}

static int read_rows(struct store *s, struct ledger *l)
{
	struct reading rd = { s, l, "" };
	int rc = s->ops->sql_query(s, select_sql[s->ops->dialect], 0, NULL, add_row, &rd);

	if (rc == 0)
		rc = read_repeatables(s, l);

	if (rc < 0 && rd.bad[0])
		snprintf(s->err, sizeof(s->err),
			 "flyway_schema_history holds version '%s', which is no "
			 "version: correct or remove that row",
			 rd.bad);
	return rc;
}

/* A row of type (SQL, BASELINE) for m, checksum "" for NULL. */
static int insert_row(struct store *s, const char *version, const char *desc,
		      const char *type, const char *script, const char *checksum,
		      long long ms, bool success)
{
	char dur[24];
	const char *params[] = { version,
				 desc,
				 type,
				 script,
				 checksum[0] ? checksum : NULL,
				 dur,
				 ledger_bool(success) };
	snprintf(dur, sizeof(dur), "%lld", ms);
	return s->ops->sql_exec(s, insert_sql[s->ops->dialect], 7, params);
}

static int record(struct store *s, const struct migration *m, long long ms, bool dirty)
{
	char version[VERSION_INPUT_MAX + 1], sum[16] = "", desc[201];
	const char *params[] = { version };
	int crc;

	if (file_checksum(m, &crc))
		snprintf(sum, sizeof(sum), "%d", crc);
	/* a repeatable: a row without version, each time it is applied */
	if (ledger_is_repeatable(s, m)) {
		const char *script[] = { ledger_script(m) };
		size_t i;

		if (s->ops->sql_exec(s, forget_failed_repeatable[s->ops->dialect], 1,
				     script) < 0)
			return -1;

		for (i = 0; m->name[i] && i + 1 < sizeof(desc); i++)
			desc[i] = m->name[i] == '_' ? ' ' : m->name[i];
		desc[i] = '\0';
		return insert_row(s, NULL, desc, "SQL", ledger_script(m), sum, ms,
				  !dirty);
	}
	ledger_file_version(m, version, sizeof(version));
	if (s->ops->sql_exec(s, forget_failed[s->ops->dialect], 1, params) < 0)
		return -1;
	ledger_description(m, desc, sizeof(desc));
	return insert_row(s, version, desc, "SQL", ledger_script(m), sum, ms, !dirty);
}

static int forget(struct store *s, const struct version *v)
{
	return ledger_delete_version(
		s, "DELETE FROM flyway_schema_history WHERE version = $1", v, false);
}

const struct ledger_shape ledger_flyway = {
	"flyway",
	"flyway_schema_history",
	NULL,
	read_rows,
	false,
	false,
	{ "flyway_schema_history", prepare, record, NULL, forget },
};
