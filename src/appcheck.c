/*
 * appcheck: the application's own consistency checks, for ferry doctor.
 * Each *.sql file of [doctor] checks_dir is a query for what must not be
 * (orphans, broken invariants): it runs read-only through the store's
 * run_checks and must return no row; its first rows say what is wrong.
 */
#include "doctor.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOWN_ROWS 5

struct rows {
	size_t n;
	char shown[1024]; /* "(1, Ada), (2, NULL)" */
};

/* Appends text to buf, cut at its size. */
static void append(char *buf, size_t size, const char *text)
{
	size_t n = strlen(buf);

	if (n + 1 < size)
		snprintf(buf + n, size - n, "%s", text);
}

static int see_row(void *arg, int ncols, const char *const *v)
{
	struct rows *r = arg;

	if (r->n++ >= SHOWN_ROWS)
		return 0;
	append(r->shown, sizeof(r->shown), r->n > 1 ? ", (" : "(");
	for (int i = 0; i < ncols; i++) {
		if (i)
			append(r->shown, sizeof(r->shown), ", ");
		append(r->shown, sizeof(r->shown), v[i] ? v[i] : "NULL");
	}
	append(r->shown, sizeof(r->shown), ")");
	return 0;
}

/* The whole file as a string; NULL with errno set. */
static char *read_text(const char *path)
{
	FILE *f = fopen(path, "re");
	size_t len = 0, cap = 4096, n;
	char *text;
	int e;

	if (!f)
		return NULL;
	text = xmalloc(cap);
	while ((n = fread(text + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (len + 1 == cap)
			text = xrealloc(text, cap *= 2);
	}
	text[len] = '\0';
	if (ferror(f)) {
		e = errno;
		free(text);
		text = NULL;
		errno = e;
	}
	fclose(f);
	return text;
}

enum doctor_status doctor_app_check(struct store *st, const char *dir, const char *file,
				    char *detail, size_t size)
{
	char *path = xasprintf("%s/%s", dir, file), *sql = read_text(path);
	enum doctor_status rc = DOCTOR_FAIL;
	struct rows r = { 0 };

	if (!sql)
		snprintf(detail, size, "%s: cannot be read: %s", path, strerror(errno));
	else if (st->ops->run_checks(st, sql, see_row, &r) < 0)
		snprintf(detail, size, "%s: %s", file, st->err);
	else if (r.n)
		snprintf(detail, size, "%s returned %zu row%s: %s%s", file, r.n,
			 r.n == 1 ? "" : "s", r.shown, r.n > SHOWN_ROWS ? ", ..." : "");
	else {
		snprintf(detail, size, "%s: no rows", file);
		rc = DOCTOR_OK;
	}
	free(sql);
	free(path);
	return rc;
}
