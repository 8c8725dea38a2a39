/*
 * pid1: run the server as ferry's child and be a correct init for it:
 * forward signals, reap every zombie, stop stragglers, pass the status out.
 * Knows nothing about databases.
 */
#ifndef FERRY_PID1_H
#define FERRY_PID1_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * A caller's say in the supervision (a health gate: probe the server every
 * few seconds, stop it and restore the database when it never gets healthy).
 * Both callbacks run in the supervisor's loop, so they should return soon:
 * signals for the server wait while they run. Unused with exec = true.
 */
struct run_hook {
	double interval_seconds; /* > 0: time between two calls of check */
	/*
	 * Called every interval_seconds while the server runs and no stop is
	 * under way; never before the first interval. Returns 0 to keep going,
	 * or non-zero to stop the server (SIGTERM as if forwarded, the grace
	 * period, then SIGKILL to its process group) and make pid1_run return
	 * the status (0-255) the hook put in *status. May be NULL: no periodic
	 * call.
	 */
	int (*check)(void *arg, pid_t child, int *status);
	/*
	 * Called once the server and its whole process group are gone, unless
	 * check asked for the stop (its status is final then): an exit, a
	 * crash, a forwarded SIGTERM. Gets the status pid1_run would return (exit
	 * status or 128+N, exit_zero applied) and returns the one it returns.
	 * Not called when the server never started (unknown user, fork
	 * failed). stopped: a signal was forwarded to it (docker stop sends
	 * the image's STOPSIGNAL), so the exit may have been asked for. May
	 * be NULL: the status stands.
	 */
	int (*exited)(void *arg, int status, bool stopped);
	void *arg;
};

struct run_opts {
	const char *user; /* NAME|UID[:GID] or NULL */
	int grace_seconds;
	bool signal_group;	     /* forward to the child's process group */
	bool exec;		     /* replace ferry instead of supervising */
	const bool *exit_zero;	     /* 256 flags: statuses reported as 0 */
	const struct run_hook *hook; /* NULL: none */
};

/* Blocks the signals the supervisor takes synchronously; call first thing. */
void pid1_block_signals(void);

/*
 * Resolved identity for the child, filled by pid1_resolve_user (-1 with
 * why when the user or group does not exist); pid1_release_user frees it.
 */
struct run_user {
	bool set;
	uid_t uid;
	gid_t gid;
	char *name; /* for initgroups; NULL when numeric without passwd entry */
	char *home;
	const char *spec; /* as configured, for messages */
};
int pid1_resolve_user(const char *spec, struct run_user *u, char *why, size_t size);
void pid1_release_user(struct run_user *u);
/*
 * Can ferry become u? *drop: it must switch (it is root); false when it
 * already runs as u's uid and gid (a USER line, docker run --user,
 * runAsUser). -1 with why when it is neither root nor u.
 */
int pid1_need_drop(const struct run_user *u, bool *drop, char *why, size_t size);
/*
 * 0 when u may access path with mode (R_OK, W_OK, X_OK), as the server
 * will run; else the errno the server would get (EACCES, EROFS ...), or -1
 * (logged) when the check itself failed. Forks when u is someone else.
 */
int pid1_access_as(const struct run_user *u, const char *path, int mode);

/*
 * Runs argv; returns the exit status ferry should exit with. Expects
 * pid1_block_signals to have run: the signals it takes must be blocked.
 */
int pid1_run(const struct run_opts *o, char **argv);

#endif
