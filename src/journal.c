/*
 * journal: a small key=value file replaced atomically for each phase, and
 * an flock(2) on a lock file beside it. flock is released by the kernel
 * when the holder dies, even by kill -9, so a crash never leaves a stale
 * lock; replicas sharing a volume on one host share the lock. Who holds
 * it is read from /proc/locks, never by trying to take it (ferry doctor).
 */
#include "journal.h"
#include "exits.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define TO(p) (1u << (p))

/* Each phase's name in the journal file and the phases it may move to (see
 * journal.h for what each means and what recovery does in it). */
static const struct {
	const char *name;
	unsigned next;
} phases[PHASE_COUNT] = {
	[PHASE_NONE] = { "none", TO(PHASE_SNAPSHOTTING) | TO(PHASE_RESTORING) },
	[PHASE_SNAPSHOTTING] = { "snapshotting", TO(PHASE_SNAPSHOTTED) },
	[PHASE_SNAPSHOTTED] = { "snapshotted", TO(PHASE_MIGRATING) },
	[PHASE_MIGRATING] = { "migrating", TO(PHASE_VERIFYING) | TO(PHASE_RESTORING) },
	[PHASE_VERIFYING] = { "verifying",
			      TO(PHASE_DONE) | TO(PHASE_APPLIED) | TO(PHASE_RESTORING) },
	[PHASE_DONE] = { "done", TO(PHASE_APPLIED) | TO(PHASE_RESTORING) },
	[PHASE_APPLIED] = { "applied", TO(PHASE_RESTORING) },
	[PHASE_RESTORING] = { "restoring", TO(PHASE_RESTORING) },
};

static const char *const kind_names[KIND_COUNT] = {
	[KIND_UPGRADE] = "upgrade",
	[KIND_ROLLBACK] = "rollback",
	[KIND_DOWNGRADE] = "downgrade",
	[KIND_APP] = "app",
};

const char *phase_name(enum phase p)
{
	return phases[p].name;
}

const char *kind_name(enum journal_kind k)
{
	return kind_names[k];
}

void state_init(struct state *st, const char *dir, struct store *store)
{
	st->store = store;
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

static void parse(const char *text, struct journal *j)
{
	char line[PATH_MAX + 64];
	bool have_kind = false;

	while (*text) {
		size_t len = strcspn(text, "\n");
		char *eq, *v;

		snprintf(line, sizeof(line), "%.*s", (int)len, text);
		text += len + (text[len] == '\n');
		eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		v = eq + 1;
		if (!strcmp(line, "phase")) {
			for (int i = 0; i < PHASE_COUNT; i++)
				if (!strcmp(v, phases[i].name))
					j->phase = (enum phase)i;
		} else if (!strcmp(line, "kind")) {
			for (int i = 0; i < KIND_COUNT; i++)
				if (!strcmp(v, kind_names[i]))
					j->kind = (enum journal_kind)i, have_kind = true;
		} else if (!strcmp(line, "from")) {
			version_parse(&j->from, v, strlen(v));
		} else if (!strcmp(line, "to")) {
			version_parse(&j->to, v, strlen(v));
		} else if (!strcmp(line, "snapshot")) {
			snprintf(j->snapshot, sizeof(j->snapshot), "%s", v);
		} else if (!strcmp(line, "app_from")) {
			snprintf(j->app_from, sizeof(j->app_from), "%s", v);
		} else if (!strcmp(line, "app_to")) {
			snprintf(j->app_to, sizeof(j->app_to), "%s", v);
		}
	}
	/* written before kinds existed: a rollback's from and to were equal */
	if (!have_kind && version_cmp(&j->from, &j->to) == 0)
		j->kind = KIND_ROLLBACK;
}

/* "cannot read the journal in the state directory '/data/.ferry' as user
 * app (uid 1000): Permission denied" */
static int state_error(const struct state *st, const char *what)
{
	int e = errno;
	struct passwd *pw = getpwuid(geteuid());

	return error("cannot %s in the state directory '%s' as user %s (uid %d): %s "
		     "([database] state_dir)",
		     what, st->dir, pw ? pw->pw_name : "?", (int)geteuid(), strerror(e));
}

static int read_file(const struct state *st, char *buf, size_t size)
{
	FILE *f = fopen(st->journal_path, "re");
	size_t n;

	buf[0] = '\0';
	if (!f) {
		if (errno == ENOENT)
			return 0;
		return state_error(st, "read the journal");
	}
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	if (ferror(f)) {
		errno = EIO;
		fclose(f);
		return state_error(st, "read the journal");
	}
	fclose(f);
	return 0;
}

/* The state directory is there, and ours to read and write. */
static int state_usable(const struct state *st)
{
	if (mkdir_p(st->dir, 0700) < 0)
		return -1;
	if (access(st->dir, R_OK | W_OK | X_OK) < 0)
		return state_error(st, "write");
	return 0;
}

int journal_read(const struct state *st, struct journal *j)
{
	char text[PATH_MAX + 2 * APP_IDENTITY_MAX + 512];
	int rc;

	memset(j, 0, sizeof(*j));
	if (st->store && st->store->ops->journal_load)
		rc = st->store->ops->journal_load(st->store, text, sizeof(text));
	else
		rc = read_file(st, text, sizeof(text));
	if (rc < 0)
		return -1;
	if (!text[0])
		return 0;
	parse(text, j);
	if (j->phase == PHASE_NONE) {
		error("the journal names no phase: was it edited by hand? (%s)",
		      st->store && st->store->ops->journal_load ? "in the database"
								: st->journal_path);
		return -2;
	}
	return 0;
}

int journal_status(int rc)
{
	return rc == -2 ? EXIT_DATA : EXIT_CANTCREAT;
}

int journal_write(const struct state *st, struct journal *j, enum phase phase)
{
	char buf[PATH_MAX + 2 * APP_IDENTITY_MAX + 256], point[64];
	int n;

	if (!(phases[j->phase].next & TO(phase)))
		return error("internal error: the journal cannot go from %s to %s",
			     phase_name(j->phase), phase_name(phase));
	j->phase = phase;
	n = snprintf(buf, sizeof(buf),
		     "kind=%s\nphase=%s\nfrom=%s\nto=%s\nsnapshot=%s\n"
		     "pid=%d\ntime=%lld\n",
		     kind_names[j->kind], phase_name(j->phase), version_str(&j->from),
		     version_str(&j->to), j->snapshot, (int)getpid(),
		     (long long)time(NULL));
	/* identities are one printable line each (appmode.c checks) */
	if (j->kind == KIND_APP)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n,
			      "app_from=%s\napp_to=%s\n", j->app_from, j->app_to);
	if (st->store && st->store->ops->journal_save) {
		if (st->store->ops->journal_save(st->store, buf) < 0)
			return -1;
	} else if (mkdir_p(st->dir, 0700) < 0 ||
		   write_file_atomic(st->journal_path, buf, (size_t)n, 0600) < 0) {
		return -1;
	}
	snprintf(point, sizeof(point), "journal:%s", phase_name(j->phase));
	crash_point(point);
	return 0;
}

int journal_clear(const struct state *st)
{
	if (st->store && st->store->ops->journal_save)
		return st->store->ops->journal_save(st->store, NULL);
	if (unlink(st->journal_path) < 0) {
		if (errno == ENOENT)
			return 0;
		return error_errno("cannot remove journal '%s'", st->journal_path);
	}
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

static int file_lock(struct state *st, long long timeout);

int state_lock(struct state *st, long long timeout)
{
	if (st->store && st->store->ops->lock)
		return st->store->ops->lock(st->store, timeout);
	return file_lock(st, timeout);
}

struct file_wait {
	struct state *st;
	int fd;
	long long timeout;
	bool waited;
};

static int file_try(void *arg, char *who, size_t size)
{
	struct file_wait *w = arg;

	if (flock(w->fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK && errno != EINTR)
		return error_errno("cannot lock '%s'", w->st->lock_path);
	snprintf(who, size, "pid %d", holder_pid(w->fd));
	return 1;
}

static void file_waiting(void *arg, const char *who, bool first)
{
	struct file_wait *w = arg;

	w->waited = true;
	if (first)
		log_info("waiting for another ferry (%s) that holds the migration lock "
			 "'%s' (up to %lld s)",
			 who, w->st->lock_path, w->timeout);
	else
		log_info("still waiting for the migration lock (%s)", who);
}

static void file_gave_up(void *arg, const char *who, bool stopped)
{
	struct file_wait *w = arg;

	if (w->timeout == 0)
		log_error("another ferry (%s) holds the migration lock '%s'", who,
			  w->st->lock_path);
	else if (stopped)
		log_info("stop requested while waiting for the migration lock");
	else
		log_error("gave up waiting for the migration lock '%s' after %lld s "
			  "([migrations] lock_timeout_seconds): another ferry (%s) is "
			  "still migrating; try again later",
			  w->st->lock_path, w->timeout, who);
}

static int file_lock(struct state *st, long long timeout)
{
	struct file_wait fw = { .st = st, .timeout = timeout };
	struct wait w = { .timeout = timeout,
			  .pause = 0.05,
			  .try_once = file_try,
			  .waiting = file_waiting,
			  .gave_up = file_gave_up,
			  .arg = &fw };
	char pid[32], *tmp;
	int n, rc;

	if (state_usable(st) < 0)
		return -1;
	fw.fd = open(st->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fw.fd < 0)
		return error_errno("cannot open lock '%s'", st->lock_path);
	rc = wait_for(&w);
	if (rc) {
		close(fw.fd);
		return rc;
	}
	if (fw.waited)
		log_info("got the migration lock");
	/* a journal write that a crash cut short, ours to remove now */
	tmp = xasprintf("%s.tmp", st->journal_path);
	unlink(tmp);
	free(tmp);
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fw.fd, 0) < 0 || pwrite(fw.fd, pid, (size_t)n, 0) != n)
		log_debug("cannot record pid in '%s': %s", st->lock_path,
			  strerror(errno));
	st->lock_fd = fw.fd;
	return 0;
}

void state_unlock(struct state *st)
{
	if (st->store && st->store->ops->unlock) {
		st->store->ops->unlock(st->store);
		return;
	}
	if (st->lock_fd >= 0) {
		close(st->lock_fd);
		st->lock_fd = -1;
	}
}

/*
 * Is an flock held on the file st describes, and by which pid (0: one in
 * another PID namespace)? /proc/locks tells without taking the lock, as
 * even a shared one would turn away a ferry that does not wait for it.
 * 1 held, 0 not, -1 when /proc/locks cannot be read.
 */
static int flock_held(const struct stat *st, int *pid)
{
	FILE *f = fopen("/proc/locks", "re");
	char line[256], type[16];
	unsigned maj, min;
	unsigned long long ino;
	int held = 0, p;

	if (!f)
		return -1;
	/* "1: FLOCK  ADVISORY  WRITE 1234 fe:00:10981841 0 EOF"; waiters
	 * ("1: -> FLOCK ...") do not hold it */
	while (!held && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%llu", type, &p, &maj, &min,
			   &ino) == 5 &&
		    !strcmp(type, "FLOCK") && ino == (unsigned long long)st->st_ino &&
		    maj == major(st->st_dev) && min == minor(st->st_dev)) {
			*pid = p;
			held = 1;
		}
	}
	fclose(f);
	return held;
}

/* The file lock: its pid file says who took it last, /proc/locks whether
 * anyone holds it now (flock dies with its holder: a stale pid is harmless). */
static int file_lock_holder(const struct state *st, char *who, size_t size)
{
	struct stat sb;
	int fd = open(st->lock_path, O_RDONLY | O_CLOEXEC), pid, now = 0, held;

	if (fd < 0) {
		if (errno != ENOENT)
			return error_errno("cannot read the lock '%s'", st->lock_path);
		snprintf(who, size, "free (never taken)");
		return 0;
	}
	pid = holder_pid(fd);
	held = fstat(fd, &sb) == 0 ? flock_held(&sb, &now) : -1;
	close(fd);
	if (held < 0) {
		snprintf(who, size,
			 "cannot tell: /proc/locks is not readable (the lock "
			 "file names pid %d)",
			 pid);
		return 3;
	}
	if (held && now > 0)
		snprintf(who, size, "pid %d", now);
	else if (held)
		snprintf(who, size,
			 "pid %d of another PID namespace (a container "
			 "sharing the volume)",
			 pid);
	else if (pid > 0 && kill(pid, 0) < 0 && errno == ESRCH)
		snprintf(who, size,
			 "free; the lock file names pid %d, which has exited "
			 "(harmless: the lock is an flock, gone with its holder)",
			 pid);
	else if (pid > 0)
		snprintf(who, size, "free (last taken by pid %d)", pid);
	else
		snprintf(who, size, "free");
	return held;
}

int state_lock_holder(const struct state *st, char *who, size_t size)
{
	int rc;

	if (!st->store || !st->store->ops->lock_holder)
		return file_lock_holder(st, who, size);
	rc = st->store->ops->lock_holder(st->store, who, size);
	if (rc < 0)
		return error("cannot tell who holds the migration lock: %s",
			     st->store->err);
	return rc;
}
