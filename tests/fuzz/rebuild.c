/*
 * fuzz rebuild: the files of rebuild mode (schema.sql, transforms/), read
 * by rebuild_load() from a real directory (in /dev/shm when there is one).
 * The input is records separated by two NUL bytes, each NAME \0 CONTENT (at
 * most 8 files; "transforms/1-2.sql" makes the subdirectory). Properties:
 * the status is 0, 65 or 78 and a refusal is exactly one log line; an
 * accepted set is one migration, the schema, at a version above zero that
 * reads back from its text, with the transforms sorted by from, each from
 * below its to, no to above the schema's version, no two ranges
 * overlapping; and a job for any version picks only transforms from there.
 */
#include "fuzz.h"
#include "rebuild.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

static char root[64];

/* Empties path, its subdirectories too (path itself stays). */
static void clear(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (!d)
		abort();
	while ((e = readdir(d))) {
		char sub[4096];
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
			clear(sub);
			rmdir(sub);
		} else
			unlink(sub);
	}
	closedir(d);
}

static void at_exit_remove(void)
{
	clear(root);
	rmdir(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct stat st;

	(void)argc;
	(void)argv;
	fuzz_log_init();
	snprintf(root, sizeof(root), "%s/ferry-fuzz-rebuild-XXXXXX",
		 stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		abort();
	}
	atexit(at_exit_remove);
	return 0;
}

/* One file under root, one directory level at most; others skipped. */
static void put(const char *name, size_t nlen, const char *text, size_t tlen)
{
	char path[512], *slash;
	size_t base = strlen(root) + 1;
	int fd;

	if (nlen == 0 || nlen > 200 || memchr(name, '\0', nlen))
		return;
	snprintf(path, sizeof(path), "%s/%.*s", root, (int)nlen, name);
	if (strstr(path + base - 1, "/.") || strstr(path + base - 1, "//") ||
	    path[strlen(path) - 1] == '/')
		return;
	slash = strchr(path + base, '/');
	if (slash) {
		if (strchr(slash + 1, '/'))
			return;
		*slash = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return;
		*slash = '/';
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, text, tlen) != (ssize_t)tlen)
		abort();
	close(fd);
}

static void check_set(const struct migration_set *set, const char *log, size_t len)
{
	const struct rebuild *r = set->rebuild;
	const struct version *top = &set->items[0].version;
	const char *text = version_str(top);
	struct version back;

	if (set->n != 1 || version_is_zero(top) ||
	    !version_parse(&back, text, strlen(text)) || version_cmp(&back, top))
		fuzz_fail("the schema is not one migration at a version above 0", log,
			  len);
	for (size_t i = 0; i < r->n; i++) {
		const struct transform *t = &r->t[i];

		if (version_cmp(&t->from, &t->to) >= 0 || version_cmp(&t->to, top) > 0)
			fuzz_fail("a transform's range is empty or past the schema", log,
				  len);
		if (i > 0 && version_cmp(&t->from, &r->t[i - 1].to) < 0)
			fuzz_fail("two transforms overlap or are out of order", log, len);
	}
	for (size_t i = 0; i <= r->n; i++) {
		struct version v = i < r->n ? r->t[i].to : VERSION_ZERO;
		struct rebuild_job job;

		rebuild_job_init(&job, set, &v);
		for (size_t k = 0; k < job.n_steps; k++)
			if (version_cmp(&job.steps[k]->from, &v) < 0 ||
			    (k > 0 &&
			     version_cmp(&job.steps[k]->from, &job.steps[k - 1]->to) < 0))
				fuzz_fail("a job picked a transform before its version",
					  log, len);
		rebuild_job_release(&job);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct migration_set set;
	size_t len;
	char *log;
	int rc;

	clear(root);
	for (int files = 0; p < end && files < 8; files++) {
		const char *rec = memmem(p, (size_t)(end - p), "\0\0", 2);
		const char *name_end, *text;

		if (!rec)
			rec = end;
		name_end = memchr(p, '\0', (size_t)(rec - p));
		text = name_end ? name_end + 1 : rec;
		put(p, (size_t)((name_end ? name_end : rec) - p), text,
		    (size_t)(rec - text));
		if (rec == end)
			break;
		p = rec + 2;
	}
	rc = rebuild_load(&set, root);
	log = fuzz_log_take(&len);
	if (rc != 0 && rc != 65 && rc != 78)
		fuzz_fail("rebuild_load() returned a status that is not 0, 65 or 78", log,
			  len);
	fuzz_check_lines("rebuild_load() logs one line when it refuses", log, len,
			 rc ? 1 : -1);
	if (rc == 0)
		check_set(&set, log, len);
	free(log);
	migrations_release(&set);
	free(fuzz_log_take(&len));
	return 0;
}
