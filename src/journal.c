/*
 * journal: a small key=value file replaced atomically for each phase, and
 * an flock(2) on a lock file beside it. flock is released by the kernel
 * when the holder dies, even by kill -9, so a crash never leaves a stale
 * lock; replicas sharing a volume on one host share the lock.
 */
#include "journal.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const phase_names[] = {
	"none", "snapshotting", "snapshotted", "migrating",
	"verifying", "restoring", "done",
};

const char *phase_name(enum phase p)
{
	return phase_names[p];
}

void state_init(struct state *st, const char *dir)
{
	st->dir = xstrdup(dir);
	st->journal_path = xasprintf("%s/journal", dir);
	st->lock_path = xasprintf("%s/lock", dir);
	st->lock_fd = -1;
}

void state_release(struct state *st)
{
	state_unlock(st);
	free(st->dir);
	free(st->journal_path);
	free(st->lock_path);
}

int journal_read(const struct state *st, struct journal *j)
{
	char line[PATH_MAX + 64];
	FILE *f;
	int rc = 0;

	memset(j, 0, sizeof(*j));
	f = fopen(st->journal_path, "re");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		return error("cannot read journal '%s': %s", st->journal_path,
			     strerror(errno));
	}
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '='), *v;

		line[strcspn(line, "\n")] = '\0';
		if (!eq)
			continue;
		*eq = '\0';
		v = eq + 1;
		if (!strcmp(line, "phase")) {
			for (size_t i = 0; i < sizeof(phase_names) / sizeof(phase_names[0]); i++)
				if (!strcmp(v, phase_names[i]))
					j->phase = (enum phase)i;
		} else if (!strcmp(line, "from")) {
			parse_ll(v, 0, 999999999999999999LL, &j->from);
		} else if (!strcmp(line, "to")) {
			parse_ll(v, 0, 999999999999999999LL, &j->to);
		} else if (!strcmp(line, "snapshot")) {
			snprintf(j->snapshot, sizeof(j->snapshot), "%s", v);
		}
	}
	if (ferror(f))
		rc = error("cannot read journal '%s'", st->journal_path);
	fclose(f);
	if (rc == 0 && j->phase == PHASE_NONE)
		rc = error("journal '%s' names no phase: it was edited by hand?",
			   st->journal_path);
	return rc;
}

int journal_write(const struct state *st, const struct journal *j)
{
	char buf[PATH_MAX + 256], point[64];
	int n;

	n = snprintf(buf, sizeof(buf), "phase=%s\nfrom=%lld\nto=%lld\nsnapshot=%s\npid=%d\ntime=%lld\n",
		     phase_names[j->phase], j->from, j->to, j->snapshot, (int)getpid(),
		     (long long)time(NULL));
	if (mkdir_p(st->dir, 0700) < 0 ||
	    write_file_atomic(st->journal_path, buf, (size_t)n, 0600) < 0)
		return -1;
	snprintf(point, sizeof(point), "journal:%s", phase_names[j->phase]);
	crash_point(point);
	return 0;
}

int journal_clear(const struct state *st)
{
	if (unlink(st->journal_path) < 0 && errno != ENOENT)
		return error("cannot remove journal '%s': %s", st->journal_path,
			     strerror(errno));
	return fsync_path(st->dir);
}

static int holder_pid(int fd)
{
	char buf[32] = "";
	long long pid = 0;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n > 0) {
		buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		parse_ll(buf, 1, 0x7fffffff, &pid);
	}
	return (int)pid;
}

/* ferry run blocks signals for its supervisor: a docker stop is pending */
static bool stop_requested(void)
{
	sigset_t pending;

	return sigpending(&pending) == 0 &&
	       (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT));
}

int state_lock(struct state *st, long long timeout)
{
	double deadline = now_seconds() + (double)timeout, next_log;
	char pid[32];
	int fd, n;

	if (mkdir_p(st->dir, 0700) < 0)
		return -1;
	fd = open(st->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return error("cannot open lock '%s': %s", st->lock_path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			error("cannot lock '%s': %s", st->lock_path, strerror(errno));
			close(fd);
			return -1;
		}
		if (timeout == 0) {
			log_error("another ferry (pid %d) holds the migration lock '%s'",
				  holder_pid(fd), st->lock_path);
			close(fd);
			return 1;
		}
		log_info("waiting for another ferry (pid %d) that holds the migration "
			 "lock '%s' (up to %lld s)", holder_pid(fd), st->lock_path, timeout);
		next_log = now_seconds() + 10;
		while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno != EWOULDBLOCK && errno != EINTR) {
				error("cannot lock '%s': %s", st->lock_path, strerror(errno));
				close(fd);
				return -1;
			}
			if (now_seconds() >= deadline) {
				log_error("gave up waiting for the migration lock '%s' after "
					  "%lld s ([migrations] lock_timeout_seconds): another "
					  "ferry (pid %d) is still migrating; try again later",
					  st->lock_path, timeout, holder_pid(fd));
				close(fd);
				return 1;
			}
			if (stop_requested()) {
				log_info("stop requested while waiting for the migration lock");
				close(fd);
				return 1;
			}
			if (now_seconds() >= next_log) {
				log_info("still waiting for the migration lock (pid %d)",
					 holder_pid(fd));
				next_log = now_seconds() + 10;
			}
			usleep(50000);
		}
		log_info("got the migration lock");
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_debug("cannot record pid in '%s': %s", st->lock_path, strerror(errno));
	st->lock_fd = fd;
	return 0;
}

void state_unlock(struct state *st)
{
	if (st->lock_fd >= 0) {
		close(st->lock_fd);
		st->lock_fd = -1;
	}
}
