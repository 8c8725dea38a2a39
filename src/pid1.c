/*
 * pid1: the supervisor. Every catchable signal is blocked at start and taken
 * synchronously with sigtimedwait, so no handler runs and the whole
 * supervisor is one loop: reap, decide, wait for the next signal or deadline.
 *
 * Beyond tini and dumb-init: when the main child exits, what is left of its
 * process group gets SIGTERM and a grace period before SIGKILL, instead of
 * being killed mid-write when PID 1 exits.
 */
#include "pid1.h"
#include "log.h"
#include "util.h"

#include <errno.h>
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
static sigset_t taken;          /* what the supervisor waits for */

void pid1_block_signals(void)
{
	/* Faults stay unblocked: a bug in ferry must crash, not hang. */
	static const int faults[] = { SIGFPE, SIGILL, SIGSEGV, SIGBUS,
				      SIGABRT, SIGTRAP, SIGSYS };

	sigfillset(&taken);
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		sigdelset(&taken, faults[i]);
	sigprocmask(SIG_BLOCK, &taken, &inherited_mask);
}

int pid1_resolve_user(const char *spec, struct run_user *u)
{
	char name[256];
	const char *colon = strchr(spec, ':');
	size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
	struct passwd *pw = NULL;
	long long v;

	memset(u, 0, sizeof(*u));
	if (len == 0 || len >= sizeof(name))
		return error("[run] user: bad value '%s': expected NAME, UID or UID:GID",
			     spec);
	memcpy(name, spec, len);
	name[len] = '\0';
	if (parse_ll(name, 0, 0x7fffffff, &v)) {
		u->uid = (uid_t)v;
		errno = 0;
		pw = getpwuid(u->uid);
	} else {
		errno = 0;
		pw = getpwnam(name);
		if (!pw)
			return error("[run] user: no user '%s' in /etc/passwd", name);
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
			return error("[run] user: no group '%s' in /etc/group", colon + 1);
		}
	}
	/* su-exec's rule: supplementary groups from the user's entry only
	 * when no group was given explicitly */
	u->name = pw && !colon ? xstrdup(pw->pw_name) : NULL;
	u->home = xstrdup(pw ? pw->pw_dir : "/");
	u->set = true;
	return 0;
}

static int drop_privileges(const struct run_user *u)
{
	if (!u->set)
		return 0;
	if (u->name ? initgroups(u->name, u->gid) < 0 : setgroups(1, &u->gid) < 0)
		return error("cannot set supplementary groups for uid %u: %s",
			     (unsigned)u->uid, strerror(errno));
	if (setgid(u->gid) < 0)
		return error("cannot set group id %u: %s", (unsigned)u->gid,
			     strerror(errno));
	if (setuid(u->uid) < 0)
		return error("cannot set user id %u: %s", (unsigned)u->uid,
			     strerror(errno));
	if (u->uid != 0 && setuid(0) == 0)
		return error("privileges were not dropped: could regain root");
	if (setenv("HOME", u->home, 1) < 0)
		return error("cannot set HOME: %s", strerror(errno));
	return 0;
}

static int exec_status(int err)
{
	return err == ENOENT ? 127 : 126;
}

/* Runs in the forked child (or in ferry itself with exec = true). */
static void become(const struct run_user *u, char **argv, int failure_exit)
{
	int err;

	if (drop_privileges(u) < 0)
		_exit(failure_exit ? failure_exit : 71);
	sigprocmask(SIG_SETMASK, &inherited_mask, NULL);
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
	static const struct { int sig; const char *name; } names[] = {
		{ SIGHUP, "HUP" }, { SIGINT, "INT" }, { SIGQUIT, "QUIT" },
		{ SIGKILL, "KILL" }, { SIGUSR1, "USR1" }, { SIGUSR2, "USR2" },
		{ SIGPIPE, "PIPE" }, { SIGALRM, "ALRM" }, { SIGTERM, "TERM" },
		{ SIGCONT, "CONT" }, { SIGWINCH, "WINCH" }, { SIGURG, "URG" },
		{ SIGXCPU, "XCPU" }, { SIGXFSZ, "XFSZ" }, { SIGVTALRM, "VTALRM" },
		{ SIGPROF, "PROF" }, { SIGIO, "IO" }, { SIGPWR, "PWR" },
		{ SIGSEGV, "SEGV" }, { SIGABRT, "ABRT" }, { SIGBUS, "BUS" },
		{ SIGFPE, "FPE" }, { SIGILL, "ILL" }, { SIGTRAP, "TRAP" },
		{ SIGSYS, "SYS" }, { SIGSTKFLT, "STKFLT" },
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

int pid1_run(const struct run_opts *o, char **argv)
{
	struct run_user user = { 0 };
	int status = -1, rc = 0;
	bool draining = false, killed = false, tty = false;
	double kill_at = 0;
	char name[32];
	pid_t pid;

	if (o->user && pid1_resolve_user(o->user, &user) < 0)
		return 78;
	if (o->exec) {
		log_debug("exec %s", argv[0]);
		become(&user, argv, 0);
	}
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warn("cannot become a subreaper (%s): orphans will not be reaped",
			 strerror(errno));
	/* only a foreground ferry hands the terminal on */
	tty = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();

	pid = fork();
	if (pid < 0) {
		error("cannot fork: %s", strerror(errno));
		rc = 71;
		goto out;
	}
	if (pid == 0) {
		/* Own process group, so the grace logic can reach grandchildren
		 * and an interactive shell gets the terminal's foreground. */
		setpgid(0, 0);
		if (tty && tcsetpgrp(STDIN_FILENO, getpid()) < 0)
			log_debug("cannot take the terminal: %s", strerror(errno));
		become(&user, argv, 0);
	}
	if (setpgid(pid, pid) < 0 && errno != EACCES && errno != ESRCH)
		log_debug("setpgid: %s", strerror(errno));
	log_debug("started '%s' as pid %d", argv[0], (int)pid);

	for (;;) {
		siginfo_t info;
		struct timespec ts;
		double left;
		int ws, sig;
		pid_t r;

		/* SIGCHLDs coalesce: reap until nothing is left to reap. */
		while ((r = waitpid(-1, &ws, WNOHANG)) > 0) {
			if (r == pid)
				status = ws;
		}
		if (r < 0 && errno != ECHILD && errno != EINTR)
			log_warn("waitpid: %s", strerror(errno));

		if (status >= 0 && !draining) {
			if (!group_alive(pid))
				break;
			log_info("'%s' exited; stopping what is left of its process group "
				 "(SIGTERM, SIGKILL after %d s)", argv[0], o->grace_seconds);
			kill(-pid, SIGTERM);
			kill(-pid, SIGCONT);
			draining = true;
			/* a stop already under way keeps its deadline */
			if (kill_at == 0 && !killed)
				kill_at = now_seconds() + o->grace_seconds;
		}
		if (draining && !group_alive(pid))
			break;
		if (kill_at > 0 && now_seconds() >= kill_at) {
			log_warn("grace period of %d s is over: sending SIGKILL to process group %d",
				 o->grace_seconds, (int)pid);
			kill(-pid, SIGKILL);
			kill_at = 0;
			killed = true;
		}

		if (kill_at > 0) {
			left = kill_at - now_seconds();
			if (left < 0)
				left = 0;
		} else {
			/* after SIGKILL only reaping is left; poll in case a member
			 * is not our child and its exit sends us nothing */
			left = killed || draining ? 0.1 : 3600;
		}
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		sig = sigtimedwait(&taken, &info, &ts);
		if (sig < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("sigtimedwait: %s", strerror(errno));
			continue;
		}
		if (sig == SIGCHLD || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
			continue;
		log_debug("forwarding %s to %s %d", signame(sig, name, sizeof(name)),
			  o->signal_group || draining ? "process group" : "pid", (int)pid);
		if (kill(o->signal_group || draining ? -pid : pid, sig) < 0 && errno != ESRCH)
			log_warn("cannot forward %s: %s", signame(sig, name, sizeof(name)),
				 strerror(errno));
		if ((sig == SIGTERM || sig == SIGINT) && kill_at == 0 && !killed)
			kill_at = now_seconds() + o->grace_seconds;
	}

	if (WIFEXITED(status)) {
		rc = WEXITSTATUS(status);
		log_debug("'%s' exited with status %d", argv[0], rc);
	} else {
		rc = 128 + WTERMSIG(status);
		log_info("'%s' was killed by %s", argv[0],
			 signame(WTERMSIG(status), name, sizeof(name)));
	}
	if (o->exit_zero && o->exit_zero[rc] && rc != 0) {
		log_debug("exit status %d reported as 0 ([run] exit_zero)", rc);
		rc = 0;
	}
out:
	free(user.name);
	free(user.home);
	return rc;
}
