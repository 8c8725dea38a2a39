/*
 * pid1: run the server as ferry's child and be a correct init for it:
 * forward signals, reap every zombie, stop stragglers, pass the status out.
 * Knows nothing about databases.
 */
#ifndef FERRY_PID1_H
#define FERRY_PID1_H

#include <stdbool.h>
#include <sys/types.h>

struct run_opts {
	const char *user;     /* NAME|UID[:GID] or NULL */
	int grace_seconds;
	bool signal_group;    /* forward to the child's process group */
	bool exec;            /* replace ferry instead of supervising */
	const bool *exit_zero; /* 256 flags: statuses reported as 0 */
};

/* Blocks the signals the supervisor takes synchronously; call first thing. */
void pid1_block_signals(void);

/*
 * Resolved identity for the child; filled by pid1_resolve_user, which logs
 * and returns -1 when the user does not exist.
 */
struct run_user {
	bool set;
	uid_t uid;
	gid_t gid;
	char *name; /* for initgroups; NULL when numeric without passwd entry */
	char *home;
};
int pid1_resolve_user(const char *spec, struct run_user *u);

/* Runs argv; returns the exit status ferry should exit with. */
int pid1_run(const struct run_opts *o, char **argv);

#endif
