/*
 * fuzz migrations: file names and directives, through migrations_load() on
 * a real directory (in /dev/shm when there is one). The input is records
 * separated by two NUL bytes, each NAME \0 CONTENT (at most 8 files; the
 * content may hold single NUL bytes; a '/' in a name makes a
 * subdirectory). Properties: the status is 0, 65 or 78, and a refusal is
 * exactly one log line; an accepted set is in strictly increasing version
 * order, each version is canonical (its text parses back to it), each
 * item has a name and a path in the directory, and its sha256 is that of
 * the whole file: its up SQL, or its up and down sections joined in
 * either order (dbmate, goose), every byte kept; the repeatables (Flyway's
 * R__) have the zero version, strictly increasing names, and no down part.
 */
#include "fuzz.h"
#include "migrations.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

static char dir[64];

/* Removes everything under path (not path itself). */
static void empty_dir(const char *path)
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
			empty_dir(sub);
			rmdir(sub);
		} else {
			unlink(sub);
		}
	}
	closedir(d);
}

static void remove_dir(void)
{
	empty_dir(dir);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct stat st;

	(void)argc;
	(void)argv;
	fuzz_log_init();
	snprintf(dir, sizeof(dir), "%s/ferry-fuzz-XXXXXX",
		 stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		abort();
	}
	atexit(remove_dir);
	return 0;
}

/* Writes one file; a name that cannot be a file here is skipped. */
static void add_file(const char *name, size_t nlen, const char *content, size_t clen)
{
	char path[512], *slash;
	size_t n = (size_t)snprintf(path, sizeof(path), "%s/", dir);
	int fd;

	if (nlen == 0 || nlen > 200)
		return;
	for (size_t i = 0; i < nlen; i++) {
		if (name[i] == '\0')
			return;
		path[n++] = name[i];
	}
	path[n] = '\0';
	/* no "..", no "." and no empty part: every file stays in dir */
	if (strstr(path + strlen(dir), "/.") || strstr(path + strlen(dir), "//") ||
	    path[n - 1] == '/')
		return;
	slash = strchr(path + strlen(dir) + 1, '/');
	if (slash) {
		*slash = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return;
		*slash = '/';
		if (strchr(slash + 1, '/'))
			return;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, content, clen) != (ssize_t)clen)
		abort();
	close(fd);
}

/* Is m->sha256 that of its file: the up SQL, or (a format of sections)
 * the up SQL with the down part put back somewhere in it? */
static bool whole_file(const char *format, const struct migration *m)
{
	bool sections = !strcmp(format, "dbmate") || !strcmp(format, "goose");
	size_t len = strlen(m->sql);
	char sum[65];

	if (!sections || !m->down_sql) {
		sha256_hex(m->sql, len, sum);
		return !strcmp(sum, m->sha256);
	}
	for (size_t k = 0; k <= len; k++) {
		char *file =
			xasprintf("%.*s%s%s", (int)k, m->sql, m->down_sql, m->sql + k);
		bool same;

		sha256_hex(file, strlen(file), sum);
		same = !strcmp(sum, m->sha256);
		free(file);
		if (same)
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	bool nul_in_text = false;
	struct migration_set set;
	size_t len;
	char *log;
	int rc;

	empty_dir(dir);
	for (int files = 0; p < end && files < 8; files++) {
		const char *rec_end = memmem(p, (size_t)(end - p), "\0\0", 2);
		const char *name_end, *text;

		if (!rec_end)
			rec_end = end;
		name_end = memchr(p, '\0', (size_t)(rec_end - p));
		text = name_end ? name_end + 1 : rec_end;
		if (memchr(text, '\0', (size_t)(rec_end - text)))
			nul_in_text = true;
		add_file(p, (size_t)((name_end ? name_end : rec_end) - p), text,
			 (size_t)(rec_end - text));
		if (rec_end == end)
			break;
		p = rec_end + 2;
	}
	rc = migrations_load(&set, dir);
	log = fuzz_log_take(&len);
	if (rc != 0 && rc != 65 && rc != 78)
		fuzz_fail("migrations_load() returned a status that is not 0, 65 or 78",
			  log, len);
	fuzz_check_lines("migrations_load() logs one line when it refuses", log, len,
			 rc ? 1 : -1);
	for (size_t i = 0; rc == 0 && i < set.n; i++) {
		const struct migration *m = &set.items[i];
		const char *text = version_str(&m->version);
		struct version back;

		if (i > 0 && version_cmp(&m->version, &set.items[i - 1].version) <= 0)
			fuzz_fail("versions are not strictly increasing", log, len);
		if (!version_parse(&back, text, strlen(text)) ||
		    strcmp(version_str(&back), text) || version_cmp(&back, &m->version))
			fuzz_fail(
				"a migration's version does not read back from its text",
				text, strlen(text));
		if (!m->name || !m->sql || !m->path || strncmp(m->path, dir, strlen(dir)))
			fuzz_fail(
				"a migration without name, text or path in the directory",
				log, len);
		if (!nul_in_text && !whole_file(set.format, m))
			fuzz_fail("a migration's sha256 is not that of its file", m->sql,
				  strlen(m->sql));
	}
	for (size_t i = 0; rc == 0 && i < set.n_repeatables; i++) {
		const struct migration *m = &set.repeatables[i];

		if (!version_is_zero(&m->version) || !m->name || !m->sql || m->down_sql ||
		    (i > 0 && strcmp(set.repeatables[i - 1].name, m->name) >= 0))
			fuzz_fail("a repeatable with a version, a down part, or out of "
				  "name order",
				  log, len);
		if (!nul_in_text && !whole_file(set.format, m))
			fuzz_fail("a repeatable's sha256 is not that of its file", m->sql,
				  strlen(m->sql));
	}
	free(log);
	migrations_release(&set);
	return 0;
}
