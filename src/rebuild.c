/*
 * rebuild: reads schema.sql and transforms/ for [migrations] mode =
 * rebuild, and picks the transforms a database needs. Every refusal names
 * the file (both files for two overlapping ranges) and is a 65: the
 * image is wrong, nothing was touched.
 */
#include "rebuild.h"
#include "exits.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERSION_LINE "-- ferry:version "

/* The whole file, normalised (no BOM, LF ends); NULL logged. */
static char *read_sql(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t n = 0, cap = 4096;
	char *buf;

	if (!f) {
		error_errno("cannot read '%s'", path);
		return NULL;
	}
	buf = xmalloc(cap);
	for (;;) {
		size_t r = fread(buf + n, 1, cap - n - 1, f);

		n += r;
		if (r == 0)
			break;
		if (cap - n < 2)
			buf = xrealloc(buf, cap *= 2);
	}
	if (ferror(f)) {
		error_errno("cannot read '%s'", path);
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = migrations_normalise(buf, n);
	buf[*len] = '\0';
	return buf;
}

/* "-- ferry:version N" on the first line: 0 with *v, -1 logged. */
static int version_line(const char *path, const char *text, struct version *v)
{
	size_t len = strcspn(text, "\n"), pre = strlen(VERSION_LINE);
	const char *num = text + pre;
	size_t nlen;

	if (len < pre || strncmp(text, VERSION_LINE, pre))
		return error("%s:1: the first line must be '-- ferry:version N', the "
			     "version of the schema (rebuild mode)",
			     path);
	nlen = len - pre;
	while (nlen && (num[nlen - 1] == ' ' || num[nlen - 1] == '\t'))
		nlen--;
	if (!version_parse(v, num, nlen) || version_is_zero(v))
		return error("%s:1: '%.*s' is no version: expected digits and dots, "
			     "as 3 or 1.2.3, above 0",
			     path, (int)(len - pre), num);
	return 0;
}

static int load_schema(struct migration_set *set, const char *dir)
{
	struct migration *m = xcalloc(1, sizeof(*m));
	size_t len = 0;

	set->items = m;
	set->n = 1; /* released with the set, whatever comes next */
	m->path = xasprintf("%s/schema.sql", dir);
	m->name = xstrdup("schema");
	if (!path_exists(m->path))
		return error("'%s' is missing: rebuild mode ([migrations] mode = "
			     "rebuild) builds the database from it",
			     m->path),
		       EXIT_DATA;
	m->sql = read_sql(m->path, &len);
	if (!m->sql)
		return EXIT_DATA;
	if (version_line(m->path, m->sql, &m->version) < 0)
		return EXIT_DATA;
	sha256_hex(m->sql, len, m->sha256);
	return 0;
}

/* "<from>-<to>.sql": 0, or -1 (the caller names the file). */
static int parse_range(const char *name, struct version *from, struct version *to)
{
	size_t len = strlen(name);
	const char *dash = strchr(name, '-');

	if (len < 4 || strcmp(name + len - 4, ".sql") || !dash)
		return -1;
	if (!version_parse(from, name, (size_t)(dash - name)) ||
	    !version_parse(to, dash + 1, (size_t)(name + len - 4 - dash - 1)))
		return -1;
	return 0;
}

static int by_from(const void *a, const void *b)
{
	const struct transform *x = a, *y = b;
	int c = version_cmp(&x->from, &y->from);

	/* then by to: qsort is not stable, and glibc's and musl's differ */
	return c ? c : version_cmp(&x->to, &y->to);
}

/* One file of transforms/: 0, or the status (logged). */
static int add_transform(struct rebuild *r, const char *tdir, const char *name,
			 const struct version *top)
{
	struct transform t = { .path = xasprintf("%s/%s", tdir, name) };
	size_t len;

	if (parse_range(name, &t.from, &t.to) < 0) {
		error("'%s': a transform is named <from>-<to>.sql, as 1-2.sql or "
		      "1.2-2.0.sql",
		      t.path);
		goto bad;
	}
	if (version_cmp(&t.from, &t.to) >= 0) {
		error("'%s': its from version %s is not below its to version %s", t.path,
		      version_str(&t.from), version_str(&t.to));
		goto bad;
	}
	if (version_cmp(&t.to, top) > 0) {
		error("'%s': it goes to %s, above the schema's version %s", t.path,
		      version_str(&t.to), version_str(top));
		goto bad;
	}
	t.sql = read_sql(t.path, &len);
	if (!t.sql)
		goto bad;
	r->t = xrealloc(r->t, (r->n + 1) * sizeof(*r->t));
	r->t[r->n++] = t;
	return 0;
bad:
	free(t.path);
	return EXIT_DATA;
}

/* Sorted by from: a range that starts before the one above ends overlaps. */
static int check_overlaps(const struct rebuild *r)
{
	for (size_t i = 0; i + 1 < r->n; i++) {
		const struct transform *a = &r->t[i], *b = &r->t[i + 1];

		if (version_cmp(&b->from, &a->to) < 0)
			return error("transforms '%s' and '%s' overlap: %s-%s and %s-%s; "
				     "ship one per range of versions (1-2 and 2-3, or "
				     "one 1-3)",
				     a->path, b->path, version_str(&a->from),
				     version_str(&a->to), version_str(&b->from),
				     version_str(&b->to)),
			       EXIT_DATA;
	}
	return 0;
}

static int load_transforms(struct rebuild *r, const char *dir, const struct version *top)
{
	char *tdir = xasprintf("%s/transforms", dir);
	struct dirent *e;
	DIR *d = opendir(tdir);
	int rc = 0;

	if (!d) {
		if (errno != ENOENT) {
			error_errno("cannot read '%s'", tdir);
			rc = EXIT_DATA;
		}
		free(tdir);
		return rc;
	}
	while (rc == 0 && (e = readdir(d)))
		if (e->d_name[0] != '.')
			rc = add_transform(r, tdir, e->d_name, top);
	closedir(d);
	free(tdir);
	if (rc == 0 && r->n) {
		qsort(r->t, r->n, sizeof(*r->t), by_from);
		rc = check_overlaps(r);
	}
	return rc;
}

int rebuild_load(struct migration_set *set, const char *dir)
{
	DIR *d;
	int rc;

	memset(set, 0, sizeof(*set));
	set->dir = xstrdup(dir);
	set->format = "rebuild";
	set->rebuild = xcalloc(1, sizeof(*set->rebuild));
	d = opendir(dir);
	if (!d) {
		error_errno("[migrations] dir '%s'", dir);
		return EXIT_CONFIG;
	}
	closedir(d);
	rc = load_schema(set, dir);
	if (rc == 0)
		rc = load_transforms(set->rebuild, dir, &set->items[0].version);
	return rc;
}

void rebuild_release(struct rebuild *r)
{
	for (size_t i = 0; r && i < r->n; i++) {
		free(r->t[i].path);
		free(r->t[i].sql);
	}
	if (r)
		free(r->t);
	free(r);
}

void rebuild_job_init(struct rebuild_job *job, const struct migration_set *set,
		      const struct version *v)
{
	const struct rebuild *r = set->rebuild;

	job->schema = &set->items[0];
	job->steps = xcalloc(r->n + 1, sizeof(*job->steps));
	job->n_steps = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct transform *t = &r->t[i];

		if (version_cmp(&t->from, v) >= 0)
			job->steps[job->n_steps++] = t;
		else if (version_cmp(&t->to, v) > 0)
			log_warn("transform '%s' is skipped: the database is at %s, past "
				 "its start %s",
				 t->path, version_str(v), version_str(&t->from));
	}
	log_info("schema version mismatch: database has %s, image expects %s — "
		 "rebuilding it from %s (%zu transform%s)",
		 version_str(v), version_str(&job->schema->version), job->schema->path,
		 job->n_steps, job->n_steps == 1 ? "" : "s");
}

void rebuild_job_release(struct rebuild_job *job)
{
	free(job->steps);
	memset(job, 0, sizeof(*job));
}
