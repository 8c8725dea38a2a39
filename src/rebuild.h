/*
 * rebuild: what an image ships for [migrations] mode = rebuild: schema.sql,
 * the whole schema of its version (first line `-- ferry:version N`), and
 * optional data transforms transforms/<from>-<to>.sql, each written for
 * the data as it was at version <from>. Read and checked here; the
 * backends' rebuild ops (sqrebuild.c) carry a rebuild out.
 */
#ifndef FERRY_REBUILD_H
#define FERRY_REBUILD_H

#include "migrations.h"
#include "version.h"

#include <stddef.h>

struct transform {
	struct version from, to;
	char *path; /* dir/transforms/1-2.sql */
	char *sql;  /* normalised text */
};

struct rebuild {
	struct transform *t; /* sorted by from, no two ranges overlapping */
	size_t n;
};

/* What a backend's rebuild_build is asked to do. */
struct rebuild_job {
	const struct migration *schema; /* schema.sql at version N */
	const struct transform **steps; /* run on the staging copy, in order */
	size_t n_steps;
};

/*
 * Reads dir for rebuild mode into set: one migration, the schema at its
 * version N, named "schema" (so the ledger, the plan and ferry status
 * see version N), and the transforms in set->rebuild. Returns 0, or logs
 * one line naming the file(s) and returns the exit status: 78 for a
 * missing directory, 65 for a missing or unreadable schema.sql, a bad
 * first line, a transform name that does not parse, from >= to, to > N,
 * or two overlapping ranges (both files named).
 */
int rebuild_load(struct migration_set *set, const char *dir);
void rebuild_release(struct rebuild *r);
/* The job for a database at v, of a set rebuild_load read: the
 * transforms with v <= from (to <= N always), in order of from; the plan
 * logged. */
void rebuild_job_init(struct rebuild_job *job, const struct migration_set *set,
		      const struct version *v);
void rebuild_job_release(struct rebuild_job *job);

#endif
