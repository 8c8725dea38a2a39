/*
 * fmt_golang_migrate: golang-migrate's 000001_name.up.sql with its
 * 000001_name.down.sql. The down file is matched by version, as
 * golang-migrate matches it (the names after the version may differ);
 * neither file holds directives.
 */
#include "migrations.h"

#include <stdlib.h>
#include <string.h>

static bool golang_claims(const char *entry, const char *text)
{
	(void)text;
	return migrations_ends_with(entry, ".up.sql") ||
	       migrations_ends_with(entry, ".down.sql");
}

static int golang_parse_name(const char *entry, struct version *v, char **name,
			     bool *is_up)
{
	*is_up = !migrations_ends_with(entry, ".down.sql");
	if (*is_up)
		return migrations_parse_numbered(entry, strlen(".up.sql"), v, name);
	/* a down file, of the up migration of its version; junk is skipped */
	if (migrations_parse_numbered(entry, strlen(".down.sql"), v, name) < 0)
		return NAME_SKIP;
	free(*name);
	*name = NULL;
	return NAME_MIGRATION;
}

/* The whole file migrates up; the loader attaches the down file. */
static int golang_read(struct migration *m, size_t len)
{
	(void)m;
	(void)len;
	return 0;
}

const struct format format_golang_migrate = {
	.name = "golang-migrate",
	.example = "000001_name.up.sql",
	.up_files = "*.up.sql",
	.claims = golang_claims,
	.parse_name = golang_parse_name,
	.read = golang_read,
};
