/*
 * ledger_diesel: diesel's __diesel_schema_migrations(version, run_on),
 * one row per applied migration, the version as the directory name
 * writes it without its dashes ("20240101120000"), run_on the database's
 * CURRENT_TIMESTAMP. The checksums go to ferry's side table.
 */
#include "ledger_shape.h"
#include "migrations.h"

#include <stdio.h>
#include <string.h>

/* as diesel's migrations_internals create it, on SQLite and PostgreSQL */
static const char ddl[] = "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations ("
			  "version VARCHAR(50) PRIMARY KEY NOT NULL, "
			  "run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)";

static int prepare(struct store *s)
{
	if (s->ops->sql_exec(s, ddl, 0, NULL) < 0)
		return -1;
	return ledger_side_prepare(s);
}

static int read_rows(struct store *s, struct ledger *l)
{
	return ledger_read_versions(s, l,
				    "SELECT version FROM __diesel_schema_migrations",
				    "__diesel_schema_migrations");
}

static int record(struct store *s, const struct migration *m, long long ms, bool dirty)
{
	char version[VERSION_INPUT_MAX + 1];
	const char *params[] = { version };

	if (ledger_is_repeatable(s, m))
		return ledger_repeatable_record(s, m, ms);

	if (!dirty) {
		ledger_file_version(m, version, sizeof(version));
		if (s->ops->sql_exec(s,
				     "INSERT INTO __diesel_schema_migrations (version) "
				     "VALUES ($1) ON CONFLICT (version) DO NOTHING",
				     1, params) < 0)
			return -1;
	}
	return ledger_side_record(s, m, ms);
}

static int forget(struct store *s, const struct version *v)
{
	return ledger_delete_version(
		s, "DELETE FROM __diesel_schema_migrations WHERE version = $1", v, true);
}

const struct ledger_shape ledger_diesel = {
	"diesel",
	"__diesel_schema_migrations",
	NULL,
	read_rows,
	true,
	false,
	{ "__diesel_schema_migrations", prepare, record, NULL, forget },
};
