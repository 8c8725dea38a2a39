/*
 * ledger_sqlx: sqlx's _sqlx_migrations, one row per applied migration
 * with the SHA-384 of its file as sqlx reads it (the bytes as they are)
 * and its execution time in nanoseconds; a row with success false is a
 * migration that failed half-way (dirty). sqlx checks its own checksums,
 * so no side table.
 */
#include "ledger_shape.h"
#include "migrations.h"
#include "util.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

/* clang-format off */
/* as sqlx's sqlite and postgres migrate.rs create it */
static const char *const ddl[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"CREATE TABLE IF NOT EXISTS _sqlx_migrations ("
		"version BIGINT PRIMARY KEY, description TEXT NOT NULL, "
		"installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, "
		"success BOOLEAN NOT NULL, checksum BLOB NOT NULL, "
		"execution_time BIGINT NOT NULL)",
	[SQL_POSTGRES] =
		"CREATE TABLE IF NOT EXISTS _sqlx_migrations ("
		"version BIGINT PRIMARY KEY, description TEXT NOT NULL, "
		"installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), "
		"success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, "
		"execution_time BIGINT NOT NULL)",
};

static const char *const select_sql[SQL_DIALECTS] = {
	[SQL_SQLITE] =
		"SELECT version, lower(hex(checksum)), success FROM _sqlx_migrations",
	[SQL_POSTGRES] =
		"SELECT version, encode(checksum, 'hex'), "
		"CASE WHEN success THEN 1 ELSE 0 END FROM _sqlx_migrations",
};

/* the checksum is spliced in as hex digits, which need no quoting */
#define UPSERT_SQLITE                                                             \
	"INSERT INTO _sqlx_migrations (version, description, success, "           \
	"checksum, execution_time) VALUES ($1, $2, $3, X'%s', $4) "                \
	"ON CONFLICT (version) DO UPDATE SET success = excluded.success, "          \
	"checksum = excluded.checksum, execution_time = excluded.execution_time"
#define UPSERT_POSTGRES                                                           \
	"INSERT INTO _sqlx_migrations (version, description, success, "           \
	"checksum, execution_time) VALUES ($1, $2, $3::int::boolean, "             \
	"decode('%s', 'hex'), $4) ON CONFLICT (version) DO UPDATE SET "            \
	"success = EXCLUDED.success, checksum = EXCLUDED.checksum, "               \
	"execution_time = EXCLUDED.execution_time"
/* clang-format on */

/* The SHA-384 of the file as sqlx sums it, in hex; false if unreadable. */
static bool file_sum(const struct migration *m, char out[97])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[48];
	unsigned int mdlen = 0;
	size_t len;
	char *text = ledger_file(m->path, &len);

	if (!text)
		return false;
	EVP_Digest(text, len, md, &mdlen, EVP_sha384(), NULL);
	free(text);
	for (unsigned i = 0; i < 48; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[96] = '\0';
	return true;
}

static int prepare(struct store *s)
{
	return s->ops->sql_exec(s, ddl[s->ops->dialect], 0, NULL);
}

struct reading {
	struct store *s;
	struct ledger *l;
	char bad[72];
};

static int add_row(void *arg, int ncols, const char *const *v)
{
	struct reading *rd = arg;
	const struct migration *m;
	struct version ver;
	char sum[97], sha[65];

	if (ncols < 3 || !v[0] || !version_parse(&ver, v[0], strlen(v[0]))) {
		snprintf(rd->bad, sizeof(rd->bad), "%s", ncols && v[0] ? v[0] : "NULL");
		return -1;
	}
	m = rd->s->ledger_set ? migrations_find(rd->s->ledger_set, &ver) : NULL;
	if (m && v[1] && file_sum(m, sum) && strcasecmp(sum, v[1]))
		snprintf(sha, sizeof(sha), "sha384 %.40s", v[1]);
	else
		snprintf(sha, sizeof(sha), "%s", m ? m->sha256 : "");
	ledger_add(rd->s, rd->l, &ver, NULL, sha, v[2] && !strcmp(v[2], "0"));
	if (v[2] && !strcmp(v[2], "0")) {
		char remedy[160];

		snprintf(remedy, sizeof(remedy),
			 "remove that row (DELETE FROM _sqlx_migrations WHERE "
			 "version = %.40s) to run it again",
			 v[0]);
		ledger_failed_row(rd->l, "_sqlx_migrations", v[0], remedy);
	}
	return 0;
}

static int read_rows(struct store *s, struct ledger *l)
{
	struct reading rd = { s, l, "" };
	int rc = s->ops->sql_query(s, select_sql[s->ops->dialect], 0, NULL, add_row, &rd);

	if (rc < 0 && rd.bad[0])
		snprintf(s->err, sizeof(s->err),
			 "_sqlx_migrations holds version '%s', which is no version: "
			 "correct or remove that row",
			 rd.bad);
	return rc;
}

static int record(struct store *s, const struct migration *m, long long ms, bool dirty)
{
	char version[24], ns[24], sum[97], desc[256];
	const char *params[] = { version, desc, ledger_bool(!dirty), ns };
	long long n;
	char *sql;
	int rc;

	if (ledger_is_repeatable(s, m))
		return ledger_repeatable_record(s, m, ms);

	if (!version_to_ll(&m->version, &n) || !file_sum(m, sum)) {
		snprintf(s->err, sizeof(s->err),
			 "version %s: sqlx's _sqlx_migrations keeps integer versions "
			 "and the checksum of a readable file",
			 version_str(&m->version));
		return -1;
	}
	snprintf(version, sizeof(version), "%lld", n);
	snprintf(ns, sizeof(ns), "%lld", ms * 1000000);
	ledger_description(m, desc, sizeof(desc));
	sql = s->ops->dialect == SQL_SQLITE ? xasprintf(UPSERT_SQLITE, sum)
					    : xasprintf(UPSERT_POSTGRES, sum);
	rc = s->ops->sql_exec(s, sql, 4, params);
	free(sql);
	return rc;
}

/* as sqlx's revert: the version's row goes */
static int forget(struct store *s, const struct version *v)
{
	return ledger_delete_version(s, "DELETE FROM _sqlx_migrations WHERE version = $1",
				     v, false);
}

const struct ledger_shape ledger_sqlx = {
	"sqlx",
	"_sqlx_migrations",
	NULL,
	read_rows,
	false,
	true,
	{ "_sqlx_migrations", prepare, record, NULL, forget },
};
