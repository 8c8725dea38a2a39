/*
 * ledger_dbmate: dbmate's schema_migrations(version varchar(128)), one
 * row per applied version, written as the file name writes it
 * ("20240101120000"). Told apart from golang-migrate's table of the same
 * name by its columns (no dirty). The checksums go to ferry's side table.
 */
#include "ledger_shape.h"
#include "migrations.h"

#include <stdio.h>
#include <string.h>

/* as dbmate's sqlite and postgres drivers create it */
static const char ddl[] = "CREATE TABLE IF NOT EXISTS schema_migrations "
			  "(version varchar(128) PRIMARY KEY)";

static int prepare(struct store *s)
{
	if (s->ops->sql_exec(s, ddl, 0, NULL) < 0)
		return -1;
	return ledger_side_prepare(s);
}

static bool is_mine(struct store *s)
{
	return !ledger_has_column(s, "schema_migrations", "dirty");
}

static int read_rows(struct store *s, struct ledger *l)
{
	return ledger_read_versions(s, l, "SELECT version FROM schema_migrations",
				    "schema_migrations (dbmate)");
}

static int record(struct store *s, const struct migration *m, long long ms, bool dirty)
{
	char version[VERSION_INPUT_MAX + 1];
	const char *params[] = { version };

	if (ledger_is_repeatable(s, m))
		return ledger_repeatable_record(s, m, ms);

	/* dbmate has no dirty state: the row goes in once the step is done */
	if (dirty)
		return ledger_side_record(s, m, ms);
	ledger_file_version(m, version, sizeof(version));
	if (s->ops->sql_exec(s,
			     "INSERT INTO schema_migrations (version) VALUES ($1) "
			     "ON CONFLICT (version) DO NOTHING",
			     1, params) < 0)
		return -1;
	return ledger_side_record(s, m, ms);
}

static int forget(struct store *s, const struct version *v)
{
	return ledger_delete_version(
		s, "DELETE FROM schema_migrations WHERE version = $1", v, true);
}

const struct ledger_shape ledger_dbmate = {
	"dbmate",
	"schema_migrations",
	is_mine,
	read_rows,
	true,
	false,
	{ "schema_migrations", prepare, record, NULL, forget },
};
