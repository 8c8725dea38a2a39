/*
 * failures: one small key=value file, <state dir>/failed-upgrade, written
 * to a temp name, fsynced and renamed like the journal. Its text fields
 * are kept on one line each (control characters become blanks).
 */
#include "failures.h"
#include "journal.h"
#include "log.h"
#include "migrations.h"
#include "plan.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *record_path(const struct state *st)
{
	return xasprintf("%s/failed-upgrade", st->dir);
}

/* line (freed) appended to text[0, *len) */
static char *append(char *text, size_t *len, char *line)
{
	size_t n = strlen(line);

	text = xrealloc(text, *len + n + 1);
	memcpy(text + *len, line, n + 1);
	*len += n;
	free(line);
	return text;
}

/* sha256 over "name sha256\n" of each pending migration, in order, then
 * "app IDENTITY\n" in mode = app */
static void migrations_key(const struct plan *p, char out[65])
{
	size_t len = 0;
	char *text = xmalloc(1);

	text[0] = '\0';
	for (size_t i = 0; i < p->n_pending; i++)
		text = append(
			text, &len,
			xasprintf("%s %s\n", p->pending[i]->name, p->pending[i]->sha256));
	if (p->app_identity)
		text = append(text, &len, xasprintf("app %s\n", p->app_identity));
	sha256_hex(text, len, out);
	free(text);
}

const char *failure_what(const struct failure *f, char *buf, size_t size)
{
	if (f->identity[0])
		snprintf(buf, size, "to app identity '%s'", f->identity);
	else
		snprintf(buf, size, "from %s to %s", version_str(&f->from),
			 version_str(&f->to));
	return buf;
}

bool failure_same(const struct failure *f, const struct plan *p)
{
	char key[65];

	migrations_key(p, key);
	return !version_cmp(&f->from, &p->db_version) &&
	       !version_cmp(&f->to, &p->image_version) && !strcmp(f->migrations, key);
}

static void set_field(struct failure *f, const char *key, const char *v)
{
	if (!strcmp(key, "from"))
		version_parse(&f->from, v, strlen(v));
	else if (!strcmp(key, "to"))
		version_parse(&f->to, v, strlen(v));
	else if (!strcmp(key, "migrations"))
		snprintf(f->migrations, sizeof(f->migrations), "%s", v);
	else if (!strcmp(key, "attempts"))
		parse_ll(v, 0, 1000000, &f->attempts);
	else if (!strcmp(key, "time"))
		snprintf(f->time, sizeof(f->time), "%s", v);
	else if (!strcmp(key, "reason"))
		snprintf(f->reason, sizeof(f->reason), "%s", v);
	else if (!strcmp(key, "probe"))
		snprintf(f->probe, sizeof(f->probe), "%s", v);
	else if (!strcmp(key, "identity"))
		snprintf(f->identity, sizeof(f->identity), "%s", v);
}

int failure_read(const struct state *st, struct failure *f)
{
	char *path = record_path(st), line[2048];
	FILE *in = fopen(path, "re");
	int rc = 1;

	memset(f, 0, sizeof(*f));
	if (!in) {
		rc = errno == ENOENT ? 0 : error_errno("cannot read '%s'", path);
		goto out;
	}
	while (fgets(line, sizeof(line), in)) {
		char *eq = strchr(line, '=');

		line[strcspn(line, "\n")] = '\0';
		if (!eq)
			continue;
		*eq = '\0';
		set_field(f, line, eq + 1);
	}
	if (ferror(in))
		rc = error("cannot read '%s'", path);
	fclose(in);
	if (rc == 1 && f->attempts < 1)
		f->attempts = 1;
out:
	free(path);
	return rc;
}

/* text on one line: control characters become blanks */
static void one_line(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
	for (char *c = dst; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
}

int failure_record(const struct state *st, const struct plan *p, const char *reason,
		   const char *probe, struct failure *out)
{
	struct failure f, old;
	char *path = record_path(st), *text;
	time_t now = time(NULL);
	struct tm tm;
	int rc;

	memset(&f, 0, sizeof(f));
	f.from = p->db_version;
	f.to = p->image_version;
	migrations_key(p, f.migrations);
	f.attempts = 1;
	if (failure_read(st, &old) == 1 && failure_same(&old, p))
		f.attempts = old.attempts + 1;
	gmtime_r(&now, &tm);
	strftime(f.time, sizeof(f.time), "%Y-%m-%dT%H:%M:%SZ", &tm);
	one_line(f.reason, sizeof(f.reason), reason);
	one_line(f.probe, sizeof(f.probe), probe);
	one_line(f.identity, sizeof(f.identity), p->app_identity);
	text = xasprintf(
		"from=%s\nto=%s\nmigrations=%s\nattempts=%lld\ntime=%s\nreason=%s\n"
		"probe=%s\nidentity=%s\n",
		version_str(&f.from), version_str(&f.to), f.migrations, f.attempts,
		f.time, f.reason, f.probe, f.identity);
	rc = mkdir_p(st->dir, 0700) < 0
		     ? -1
		     : write_file_atomic(path, text, strlen(text), 0600);
	if (rc == 0 && out)
		*out = f;
	free(text);
	free(path);
	return rc;
}

int failure_clear(const struct state *st)
{
	char *path = record_path(st);
	int rc = 0;

	if (unlink(path) == 0)
		rc = fsync_path(st->dir);
	else if (errno != ENOENT)
		rc = error_errno("cannot remove '%s'", path);
	free(path);
	return rc;
}
