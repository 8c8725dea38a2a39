/*
 * ferry version: ferry's own version (and the static build's libraries),
 * then the schema versions of image and database as far as they can be
 * known: a missing database or migrations directory is no error here.
 */
#include "commands.h"
#include "session.h"

#include <stdio.h>
#include <sys/stat.h>

#ifndef FERRY_VERSION
#define FERRY_VERSION "0.1.0"
#endif

static void print_schema_versions(const struct config *c)
{
	struct session s;
	struct stat st;

	if (stat(c->migrations_dir, &st) < 0)
		return;
	if (!c->database_url) {
		struct migration_set set;
		struct version latest;

		if (migrations_load_as(&set, c->migrations_dir, c->migrations_format) ==
		    0) {
			latest = migrations_latest(&set);
			printf("image schema version: %s\n", version_str(&latest));
		}
		migrations_release(&set);
		return;
	}
	if (session_open(&s, c, NEED_DATABASE | NEED_MIGRATIONS) == 0) {
		struct version image = version_is_zero(&s.c->target_version)
					       ? migrations_latest(&s.set)
					       : s.c->target_version;

		printf("image schema version: %s\n", version_str(&image));
		if (s.db_exists && session_read_plan(&s) == 0)
			printf("database schema version: %s\n",
			       version_str(&s.plan.db_version));
		else if (!s.db_exists)
			printf("database schema version: none (not created yet)\n");
	}
	session_close(&s);
}

int cmd_version(struct session *s, const struct cmd_args *a)
{
	(void)a;
	printf("ferry %s\n", FERRY_VERSION);
#ifdef FERRY_BUILD_INFO
	/* the static build's libraries and their Debian source versions */
	printf("%s\n", FERRY_BUILD_INFO);
#endif
	print_schema_versions(s->c);
	return 0;
}
