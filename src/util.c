/*
 * util: helpers with no knowledge of databases or processes. Allocation
 * failure is fatal (exit 71): a program this small has nothing sensible to
 * do without memory, and checking every strdup would bury the logic.
 */
#include "util.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void *oom(void)
{
	log_error("out of memory");
	exit(71);
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	return p ? p : oom();
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	return p ? p : oom();
}

void *xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);
	return q ? q : oom();
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	return p ? p : oom();
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? oom() : s;
}

int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool parse_ll(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return strndup(path, (size_t)(slash - path)) ?: oom();
}

const char *base_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

int fsync_path(const char *path)
{
	int fd, rc = 0;

	do
		fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return error_errno("cannot open '%s'", path);
	if (fsync(fd) < 0 && errno != EINVAL)
		rc = error_errno("cannot fsync '%s'", path);
	close(fd);
	return rc;
}

int fsync_dir_of(const char *path)
{
	char *dir = dir_of(path);
	int rc = fsync_path(dir);

	free(dir);
	return rc;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp = xasprintf("%s.tmp", path);
	int fd, rc = -1;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		error_errno("cannot write '%s'", tmp);
		goto out;
	}
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		error_errno("cannot write '%s'", tmp);
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) < 0) {
		error_errno("cannot write '%s'", tmp);
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		error_errno("cannot rename '%s' to '%s'", tmp, path);
		unlink(tmp);
		goto out;
	}
	rc = fsync_dir_of(path);
out:
	free(tmp);
	return rc;
}

int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return error("bad directory path '%s'", path);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, mode) == 0) {
				/* the new entry must survive a power cut */
				if (fsync_dir_of(buf) < 0)
					return -1;
			} else if (errno != EEXIST) {
				return error_errno("cannot create directory '%s'", buf);
			}
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

bool path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

const char *human_size(unsigned long long bytes, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", bytes);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
	return buf;
}

void crash_point(const char *name)
{
	const char *at = getenv("FERRY_TEST_CRASH_AT");

	if (at && !strcmp(at, name)) {
		log_debug("FERRY_TEST_CRASH_AT=%s: killing myself", name);
		kill(getpid(), SIGKILL);
	}
}

int copy_fd(int in, int out, unsigned long long size, const char *label,
	    const char *crash, const char **how)
{
	unsigned long long done = 0;
	double start = now_seconds(), last = start;
	bool cfr = true;
	char *buf = NULL;
	int rc = -1;

	if (ioctl(out, FICLONE, in) == 0) {
		*how = "reflink";
		return 0;
	}
	*how = "copy_file_range";
	if (lseek(in, 0, SEEK_SET) < 0 || lseek(out, 0, SEEK_SET) < 0)
		return -1;
	while (done < size) {
		size_t chunk =
			size - done > (8u << 20) ? (8u << 20) : (size_t)(size - done);
		ssize_t n = -1;

		if (cfr) {
			n = copy_file_range(in, NULL, out, NULL, chunk, 0);
			if (n < 0 && done == 0 &&
			    (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
			     errno == EOPNOTSUPP)) {
				cfr = false;
				*how = "read/write";
			}
		}
		if (!cfr) {
			if (!buf)
				buf = xmalloc(1 << 20);
			n = read(in, buf, chunk > (1u << 20) ? (1u << 20) : chunk);
			if (n > 0 && write_all(out, buf, (size_t)n) < 0)
				n = -1;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		if (n == 0)
			break; /* the source shrank: copy what is there */
		done += (unsigned long long)n;
		crash_point(crash);
		if (now_seconds() - last >= 3) {
			char a[32], b[32];

			last = now_seconds();
			log_info("%s: %s of %s copied (%.0f s)", label,
				 human_size(done, a, sizeof(a)),
				 human_size(size, b, sizeof(b)), last - start);
		}
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/* ferry run blocks signals for its supervisor: a docker stop is pending */
bool stop_requested(void)
{
	sigset_t pending;

	return sigpending(&pending) == 0 &&
	       (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT));
}

int wait_for(const struct wait *w)
{
	double deadline = now_seconds() + (double)w->timeout, next_log = 0;
	char who[512] = "";
	bool first = true;
	int rc;

	while ((rc = w->try_once(w->arg, who, sizeof(who))) == 1) {
		bool stopped = stop_requested();

		if (w->timeout == 0 || now_seconds() >= deadline || stopped) {
			w->gave_up(w->arg, who, stopped);
			return 1;
		}
		if (now_seconds() >= next_log) {
			w->waiting(w->arg, who, first);
			first = false;
			next_log = now_seconds() + 10;
		}
		usleep((useconds_t)(w->pause * 1e6));
	}
	return rc;
}

/* util.h says what it accepts; hand-written: no linked library splits words */
char **words_split(const char *command, char *why, size_t size)
{
	char **argv = xcalloc(strlen(command) / 2 + 2, sizeof(*argv));
	char *word = xmalloc(strlen(command) + 1);
	size_t n = 0;

	for (const char *p = command; *p;) {
		size_t len = 0;
		char quote = 0;

		p += strspn(p, " \t");
		if (!*p)
			break;
		for (; *p && (quote || (*p != ' ' && *p != '\t')); p++) {
			if (!quote && (*p == '\'' || *p == '"'))
				quote = *p;
			else if (quote && *p == quote)
				quote = 0;
			else if (*p == '\\' && quote != '\'' && p[1])
				word[len++] = *++p;
			else
				word[len++] = *p;
		}
		if (quote) {
			snprintf(why, size, "an unclosed %c quote", quote);
			word[0] = '\0';
			argv[n] = NULL;
			for (size_t k = 0; k < n; k++)
				free(argv[k]);
			free(argv);
			free(word);
			return NULL;
		}
		argv[n++] = xasprintf("%.*s", (int)len, word);
	}
	free(word);
	return argv;
}

void words_free(char **argv)
{
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}
