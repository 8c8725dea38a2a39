/*
 * commands: one function per subcommand, each in its own cmd_NAME.c, all
 * registered in cli.c's table with the session flags they need. cli.c has
 * already opened what the flags ask for when a command runs.
 */
#ifndef FERRY_COMMANDS_H
#define FERRY_COMMANDS_H

#include <stdbool.h>

struct session;

struct cmd_args {
	bool dry_run, json, deep;
	bool failures;	     /* cleanup --failures */
	bool exit_code;	     /* status: 1 unless up to date and clean */
	const char *output;  /* backup -o FILE|- */
	const char *mode;    /* restore --mode verify|replace */
	const char *file;    /* restore FILE */
	bool keep_owners;    /* restore --keep-owners */
	const char *to;	     /* downgrade --to V */
	const char *version; /* baseline --version V */
	char **rest;	     /* run: the server command; help: the command asked about */
};

int cmd_run(struct session *s, const struct cmd_args *a);
int cmd_migrate(struct session *s, const struct cmd_args *a);
int cmd_status(struct session *s, const struct cmd_args *a);
int cmd_snapshot(struct session *s, const struct cmd_args *a);
int cmd_rollback(struct session *s, const struct cmd_args *a);
int cmd_downgrade(struct session *s, const struct cmd_args *a);
int cmd_cleanup(struct session *s, const struct cmd_args *a);
int cmd_version(struct session *s, const struct cmd_args *a);
int cmd_health(struct session *s, const struct cmd_args *a);
int cmd_backup(struct session *s, const struct cmd_args *a);
int cmd_restore(struct session *s, const struct cmd_args *a);
/* backup -o out ("-": stdout) with the lock held; 0 or the exit status */
int backup_write(struct session *s, const char *out);
/* [backup] before_upgrade: an archive into [backup] dir, store open and
 * ledger read; 0 (also when off) or the exit status */
int backup_before_upgrade(struct session *s);
int cmd_doctor(struct session *s, const struct cmd_args *a);
int cmd_baseline(struct session *s, const struct cmd_args *a);
int cmd_config(struct session *s, const struct cmd_args *a);

#endif
