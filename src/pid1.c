/*
 * pid1: the supervisor. Every catchable signal is blocked at start and taken
 * synchronously with sigtimedwait, so no handler runs and the whole
 * supervisor is one loop: reap, decide, wait for the next signal or deadline.
 * Its state is one struct sup moving RUNNING -> DRAINING -> KILLING, and a
 * caller's hook (struct run_hook) can check on the server and ask for a stop.
 *
 * Beyond tini and dumb-init: when the main child exits, what is left of its
 * process group gets SIGTERM and a grace period before SIGKILL, instead of
 * being killed mid-write when PID 1 exits.
 */
#include "pid1.h"
#include "exits.h"
#include "log.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static sigset_t inherited_mask; /* restored in the child before exec */
static sigset_t taken;		/* what the supervisor waits for */

void pid1_block_signals(void)
{
	/* Faults stay unblocked: a bug in ferry must crash, not hang. */
	static const int faults[] = { SIGFPE,  SIGILL,	SIGSEGV, SIGBUS,
				      SIGABRT, SIGTRAP, SIGSYS };

	sigfillset(&taken);
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		sigdelset(&taken, faults[i]);
	if (sigprocmask(SIG_BLOCK, &taken, &inherited_mask) < 0)
		log_warn("cannot block signals: %s", strerror(errno));
}

int pid1_resolve_user(const char *spec, struct run_user *u, char *why, size_t size)
{
	char name[256];
	const char *colon = strchr(spec, ':');
	size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
	struct passwd *pw = NULL;
	long long v;

	memset(u, 0, sizeof(*u));
	if (len == 0 || len >= sizeof(name)) {
		snprintf(why, size,
			 "[run] user: bad value '%s': expected NAME, UID or UID:GID",
			 spec);
		return -1;
	}
	memcpy(name, spec, len);
	name[len] = '\0';
	if (parse_ll(name, 0, 0x7fffffff, &v)) {
		u->uid = (uid_t)v;
		errno = 0;
		pw = getpwuid(u->uid);
	} else {
		errno = 0;
		pw = getpwnam(name);
		if (!pw) {
			snprintf(why, size, "[run] user: no user '%s' in /etc/passwd",
				 name);
			return -1;
		}
		u->uid = pw->pw_uid;
	}
	u->gid = pw ? pw->pw_gid : (gid_t)u->uid;
	if (colon) {
		struct group *gr;

		if (parse_ll(colon + 1, 0, 0x7fffffff, &v)) {
			u->gid = (gid_t)v;
		} else if ((gr = getgrnam(colon + 1))) {
			u->gid = gr->gr_gid;
		} else {
			snprintf(why, size, "[run] user: no group '%s' in /etc/group",
				 colon + 1);
			return -1;
		}
	}
	/* su-exec's rule: supplementary groups from the user's entry only
	 * when no group was given explicitly */
	u->name = pw && !colon ? xstrdup(pw->pw_name) : NULL;
	u->home = xstrdup(pw ? pw->pw_dir : "/");
	u->spec = spec;
	u->set = true;
	return 0;
}

void pid1_release_user(struct run_user *u)
{
	free(u->name);
	free(u->home);
	memset(u, 0, sizeof(*u));
}

int pid1_need_drop(const struct run_user *u, bool *drop, char *why, size_t size)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();

	*drop = false;
	if (!u->set)
		return 0;
	if (uid == 0) {
		*drop = true;
		return 0;
	}
	/* a USER line, docker run --user, runAsUser: already the server's user */
	if (u->uid == uid && u->gid == gid)
		return 0;
	snprintf(why, size,
		 "[run] user = %s (uid %u, gid %u): ferry runs as uid %u gid %u, not as "
		 "root, so it cannot switch users; run the container as that user "
		 "or as root, or remove [run] user",
		 u->spec, (unsigned)u->uid, (unsigned)u->gid, (unsigned)uid,
		 (unsigned)gid);
	return -1;
}

static int drop_privileges(const struct run_user *u)
{
	if (!u->set)
		return 0;
	if (u->name ? initgroups(u->name, u->gid) < 0 : setgroups(1, &u->gid) < 0)
		return error_errno("cannot set supplementary groups for uid %u",
				   (unsigned)u->uid);
	if (setgid(u->gid) < 0)
		return error_errno("cannot set group id %u", (unsigned)u->gid);
	if (setuid(u->uid) < 0)
		return error_errno("cannot set user id %u", (unsigned)u->uid);
	if (u->uid != 0 && setuid(0) == 0)
		return error("privileges were not dropped: could regain root");
	if (setenv("HOME", u->home, 1) < 0)
		return error_errno("cannot set HOME");
	return 0;
}

/*
 * access(2) as the server's user would see it: a child takes u's
 * identity and asks the kernel, so group bits, ACLs and read-only
 * mounts count as they will for the server.
 */
int pid1_access_as(const struct run_user *u, const char *path, int mode)
{
	pid_t pid, r;
	int ws;

	if (!u->set || (u->uid == geteuid() && u->gid == getegid()))
		return faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0 ? 0 : errno;
	pid = fork();
	if (pid < 0)
		return error_errno("cannot fork to check '%s'", path);
	if (pid == 0) {
		if (drop_privileges(u) < 0)
			_exit(255);
		_exit(faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0 ? 0
								       : errno & 0xff);
	}
	while ((r = waitpid(pid, &ws, 0)) < 0 && errno == EINTR)
		;
	if (r < 0)
		return error_errno("cannot wait for the check of '%s'", path);
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) == 255)
		return error("cannot check '%s' as uid %u", path, (unsigned)u->uid);
	return WEXITSTATUS(ws);
}

/* The shell's statuses for a command it cannot run. */
static int exec_status(int err)
{
	return err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
}

/* Runs in the forked child (or in ferry itself with exec = true). */
static _Noreturn void become(const struct run_user *u, char **argv)
{
	int err;

	if (drop_privileges(u) < 0)
		_exit(EXIT_OSERR);
	/* the server gets the mask ferry was started with, not ferry's */
	if (sigprocmask(SIG_SETMASK, &inherited_mask, NULL) < 0)
		log_warn("cannot restore the signal mask: %s", strerror(errno));
	execvp(argv[0], argv);
	err = errno;
	error("cannot run '%s': %s", argv[0], strerror(err));
	_exit(exec_status(err));
}

static bool group_alive(pid_t pgid)
{
	return kill(-pgid, 0) == 0 || errno == EPERM;
}

static const char *signame(int sig, char *buf, size_t size)
{
	static const struct {
		int sig;
		const char *name;
	} names[] = {
		{ SIGHUP, "HUP" },   { SIGINT, "INT" },	      { SIGQUIT, "QUIT" },
		{ SIGKILL, "KILL" }, { SIGUSR1, "USR1" },     { SIGUSR2, "USR2" },
		{ SIGPIPE, "PIPE" }, { SIGALRM, "ALRM" },     { SIGTERM, "TERM" },
		{ SIGCONT, "CONT" }, { SIGWINCH, "WINCH" },   { SIGURG, "URG" },
		{ SIGXCPU, "XCPU" }, { SIGXFSZ, "XFSZ" },     { SIGVTALRM, "VTALRM" },
		{ SIGPROF, "PROF" }, { SIGIO, "IO" },	      { SIGPWR, "PWR" },
		{ SIGSEGV, "SEGV" }, { SIGABRT, "ABRT" },     { SIGBUS, "BUS" },
		{ SIGFPE, "FPE" },   { SIGILL, "ILL" },	      { SIGTRAP, "TRAP" },
		{ SIGSYS, "SYS" },   { SIGSTKFLT, "STKFLT" },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].sig == sig) {
			snprintf(buf, size, "SIG%s", names[i].name);
			return buf;
		}
	if (sig >= SIGRTMIN && sig <= SIGRTMAX)
		snprintf(buf, size, "SIGRTMIN+%d", sig - SIGRTMIN);
	else
		snprintf(buf, size, "signal %d", sig);
	return buf;
}

/*
 * The supervisor's states. A stop only moves forward: a second SIGTERM does
 * not restart the grace period, and a SIGKILL sent is never taken back.
 */
enum sup_state {
	RUNNING,  /* signals are forwarded, the hook's check runs */
	DRAINING, /* a stop signal went out; the grace period runs */
	KILLING,  /* the grace period is over: SIGKILL sent, reaping is left */
};

/* After SIGKILL, poll in case a member of the group is not our child and
 * its exit sends us nothing. */
#define KILL_POLL_SECONDS 0.1
/* The longest single wait: a far deadline is reached in steps, and a
 * timespec never overflows. */
#define MAX_WAIT_SECONDS 86400.0

struct sup {
	const struct run_opts *o;
	const char *prog; /* argv[0], for the log */
	pid_t pid;	  /* the server, leader of its own process group */
	enum sup_state state;
	int status;	   /* the server's wait status, -1 while it runs */
	double kill_at;	   /* DRAINING: when the grace period ends */
	double next_check; /* RUNNING with a hook check: its next call */
	bool hook_stopped; /* the hook's check asked for the stop ... */
	int hook_status;   /* ... and this status is final */
	bool told_to_stop; /* a SIGTERM or SIGINT was forwarded */
};

/* kill() where "nobody left" (ESRCH) is no error. */
static void send_signal(pid_t target, int sig)
{
	char name[32];
	int e;

	if (kill(target, sig) == 0 || errno == ESRCH)
		return;
	e = errno;
	log_warn("cannot send %s to %s %d: %s", signame(sig, name, sizeof(name)),
		 target < 0 ? "process group" : "pid",
		 (int)(target < 0 ? -target : target), strerror(e));
}

/* RUNNING -> DRAINING: the grace period starts now. */
static void sup_drain(struct sup *s)
{
	s->state = DRAINING;
	s->kill_at = now_seconds() + s->o->grace_seconds;
}

/* DRAINING -> KILLING: the grace period is over. */
static void sup_kill(struct sup *s)
{
	log_warn("grace period of %d s is over: sending SIGKILL to process group %d",
		 s->o->grace_seconds, (int)s->pid);
	send_signal(-s->pid, SIGKILL);
	s->state = KILLING;
}

/*
 * Reaps every zombie: SIGCHLDs coalesce, and orphans (of the namespace as
 * PID 1, of the server's descendants as a subreaper) come to us too.
 * Returns true when the server itself was among them.
 */
static bool sup_reap(struct sup *s)
{
	bool server = false;
	pid_t r;
	int ws;

	while ((r = waitpid(-1, &ws, WNOHANG)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != ECHILD)
				log_warn("waitpid: %s", strerror(errno));
			break;
		}
		if (r == s->pid) {
			s->status = ws;
			server = true;
		}
	}
	return server;
}

/*
 * The server exited, members of its process group live on: they get
 * SIGTERM (and SIGCONT, should they be stopped) and the grace period,
 * instead of dying mid-write with PID 1. A stop under way keeps its deadline.
 */
static void sup_stop_leftovers(struct sup *s)
{
	log_info("'%s' exited; stopping what is left of its process group "
		 "(SIGTERM, SIGKILL after %d s)",
		 s->prog, s->o->grace_seconds);
	send_signal(-s->pid, SIGTERM);
	send_signal(-s->pid, SIGCONT);
	if (s->state == RUNNING)
		sup_drain(s);
}

/* The hook's periodic check; the stop it may ask for is a forwarded SIGTERM. */
static void sup_check(struct sup *s)
{
	const struct run_hook *h = s->o->hook;
	int status = -1;

	if (h->check(h->arg, s->pid, &status) == 0) {
		s->next_check = now_seconds() + h->interval_seconds;
		return;
	}
	assert(status >= 0 && status <= 255);
	log_info("stopping '%s' as its check asked (SIGTERM, SIGKILL after %d s)",
		 s->prog, s->o->grace_seconds);
	s->hook_stopped = true;
	s->hook_status = status;
	send_signal(s->o->signal_group ? -s->pid : s->pid, SIGTERM);
	sup_drain(s);
}

/* What the clock decides: the check while running, SIGKILL after the grace. */
static void sup_timers(struct sup *s)
{
	const struct run_hook *h = s->o->hook;

	if (s->state == RUNNING && h && h->check && now_seconds() >= s->next_check)
		sup_check(s);
	if (s->state == DRAINING && now_seconds() >= s->kill_at)
		sup_kill(s);
}

/*
 * A signal for the server: forwarded, but not SIGCHLD (ours) nor job
 * control (it would stop the server). SIGTERM or SIGINT starts the grace.
 */
static void sup_signal(struct sup *s, int sig)
{
	/* once the server exited, what is left is its group */
	bool group = s->o->signal_group || s->status >= 0;
	char name[32];
	int e;

	if (sig == SIGCHLD || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
		return;
	log_debug("forwarding %s to %s %d", signame(sig, name, sizeof(name)),
		  group ? "process group" : "pid", (int)s->pid);
	if (kill(group ? -s->pid : s->pid, sig) < 0 && errno != ESRCH) {
		e = errno;
		log_warn("cannot forward %s: %s", signame(sig, name, sizeof(name)),
			 strerror(e));
	}
	/* docker stop sends the image's STOPSIGNAL (QUIT for nginx, WINCH
	 * for httpd): an exit after any forwarded signal was asked for */
	s->told_to_stop = true;
	if ((sig == SIGTERM || sig == SIGINT) && s->state == RUNNING)
		sup_drain(s);
}

/*
 * The one deadline to wait against, false when there is none. Each state
 * has at most one: the hook's next check (RUNNING), the end of the grace
 * period (DRAINING), the next poll for the group's end (KILLING).
 */
static bool sup_deadline(const struct sup *s, double *at)
{
	const struct run_hook *h = s->o->hook;

	switch (s->state) {
	case RUNNING:
		*at = s->next_check;
		return h && h->check;
	case DRAINING:
		*at = s->kill_at;
		return true;
	case KILLING:
		*at = now_seconds() + KILL_POLL_SECONDS;
		return true;
	}
	return false;
}

/* The next signal taken, or 0 at the deadline (none: wait for a signal). */
static int wait_signal(bool has_deadline, double at)
{
	struct timespec ts = { 0, 0 };
	siginfo_t info;
	double left;
	int sig;

	if (has_deadline) {
		left = at - now_seconds();
		left = left < 0 ? 0 : left > MAX_WAIT_SECONDS ? MAX_WAIT_SECONDS : left;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		if (ts.tv_nsec > 999999999)
			ts.tv_nsec = 999999999;
	}
	sig = has_deadline ? sigtimedwait(&taken, &info, &ts)
			   : sigwaitinfo(&taken, &info);
	if (sig < 0) {
		/* EINTR: the loop comes back with the deadline recomputed */
		if (errno != EAGAIN && errno != EINTR)
			log_warn("sigtimedwait: %s", strerror(errno));
		return 0;
	}
	return sig;
}

/* The one wait loop: reap, decide, wait. Ends once the server and every
 * member of its process group are gone. */
static void sup_loop(struct sup *s)
{
	double at = 0;
	bool exited;
	int sig;

	for (;;) {
		exited = sup_reap(s);
		if (s->status >= 0 && !group_alive(s->pid))
			return;
		if (exited)
			sup_stop_leftovers(s);
		sup_timers(s);
		sig = wait_signal(sup_deadline(s, &at), at);
		if (sig > 0)
			sup_signal(s, sig);
	}
}

/* The status ferry exits with: the server's (128+N when a signal killed
 * it), exit_zero applied, then the hook's word. */
static int sup_result(const struct sup *s)
{
	const struct run_hook *h = s->o->hook;
	char name[32];
	int rc;

	if (WIFEXITED(s->status)) {
		rc = WEXITSTATUS(s->status);
		log_event(LOG_DEBUG,
			  LOG_FIELDS(.event = "server_exited", .exit = LOG_NUM(rc)),
			  "'%s' exited with status %d", s->prog, rc);
	} else {
		rc = EXIT_SIGNALED + WTERMSIG(s->status);
		log_event(LOG_INFO,
			  LOG_FIELDS(.event = "server_exited", .exit = LOG_NUM(rc)),
			  "'%s' was killed by %s", s->prog,
			  signame(WTERMSIG(s->status), name, sizeof(name)));
	}
	if (s->o->exit_zero && s->o->exit_zero[rc] && rc != 0) {
		log_debug("exit status %d reported as 0 ([run] exit_zero)", rc);
		rc = 0;
	}
	if (s->hook_stopped) {
		log_debug("exit status %d, as the check asked", s->hook_status);
		return s->hook_status;
	}
	if (h && h->exited)
		rc = h->exited(h->arg, rc, s->told_to_stop);
	return rc;
}

/*
 * Forks the server into its own process group, so the grace logic reaches
 * its grandchildren and an interactive shell gets the terminal's foreground.
 */
static int sup_start(struct sup *s, const struct run_user *u, char **argv)
{
	/* only a foreground ferry hands the terminal on */
	bool tty = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();

	s->pid = fork();
	if (s->pid < 0)
		return error_errno("cannot fork");
	if (s->pid == 0) {
		if (setpgid(0, 0) < 0)
			log_debug("setpgid: %s", strerror(errno));
		if (tty && tcsetpgrp(STDIN_FILENO, getpid()) < 0)
			log_debug("cannot take the terminal: %s", strerror(errno));
		become(u, argv);
	}
	/* the parent sets it too: signals reach the group whoever runs first */
	if (setpgid(s->pid, s->pid) < 0 && errno != EACCES && errno != ESRCH)
		log_debug("setpgid: %s", strerror(errno));
	log_event(LOG_DEBUG, LOG_FIELDS(.event = "server_started"),
		  "started '%s' as pid %d", argv[0], (int)s->pid);
	return 0;
}

int pid1_run(const struct run_opts *o, char **argv)
{
	struct run_user user = { 0 };
	struct sup s = { .o = o, .prog = argv[0], .state = RUNNING, .status = -1 };
	char why[512];
	int rc;

	assert(!o->hook || !o->hook->check || o->hook->interval_seconds > 0);
	if (o->user && pid1_resolve_user(o->user, &user, why, sizeof(why)) < 0) {
		error("%s", why);
		return EXIT_CONFIG;
	}
	if (o->exec) {
		log_debug("exec %s", argv[0]);
		become(&user, argv);
	}
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warn("cannot become a subreaper (%s): orphans will not be reaped",
			 strerror(errno));
	if (sup_start(&s, &user, argv) < 0) {
		rc = EXIT_OSERR;
		goto out_free_user;
	}
	if (o->hook && o->hook->check)
		s.next_check = now_seconds() + o->hook->interval_seconds;
	sup_loop(&s);
	rc = sup_result(&s);
out_free_user:
	pid1_release_user(&user);
	return rc;
}
