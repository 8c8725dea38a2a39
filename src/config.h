/*
 * config: every setting ferry has, read from the INI file (inih), then
 * FERRY_<SECTION>_<KEY> environment variables, then the command line.
 */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"
#include "version.h"

#define DEFAULT_CONFIG_FILE "/etc/ferry/ferry.ini"

struct config {
	/* [database] */
	char *database_url;
	long long wait_seconds;
	char *state_dir;
	char *maintenance_db;
	/* [migrations] */
	char *migrations_dir;
	long long lock_timeout_seconds;
	bool auto_upgrade;
	struct version target_version;	  /* zero: the highest shipped */
	long long statement_lock_timeout; /* seconds, PostgreSQL */
	/* [snapshot] */
	char *snapshot_dir;
	long long snapshot_keep;
	/* [run] */
	char *run_user;
	long long grace_seconds;
	bool signal_group;
	bool exec;
	bool exit_zero[256];
	/* [health] */
	char *health_url;     /* http://127.0.0.1:PORT/PATH */
	char *health_command; /* exec'd: argv split on blanks */
	long long health_interval_seconds;
	long long health_timeout_seconds;
	bool health_after_upgrade_only;
	long long health_max_attempts;
	/* [backup] */
	char *backup_paths;   /* blank-separated directories */
	char *backup_exclude; /* blank-separated fnmatch patterns */
	char *backup_dir;     /* before_upgrade archives; default snapshot dir */
	long long backup_zstd_level;
	long long backup_threads; /* zstd workers, 0: single-threaded */
	bool backup_before_upgrade;
	long long backup_max_bytes, backup_max_members; /* restore limits */
	/* [doctor] */
	char *doctor_checks_dir;
	/* [log] */
	long long log_level;  /* enum log_level */
	long long log_format; /* enum log_format */
};

void config_defaults(struct config *c);
/*
 * Loads path into c (a missing file is fine when !required), then the
 * environment. On error logs one line naming file:line or the variable and
 * returns -1.
 */
int config_load(struct config *c, const char *path, bool required);
/* The same for INI text in memory, name standing for the file (fuzzing). */
int config_load_text(struct config *c, const char *name, const char *text, size_t len);
int config_load_env(struct config *c);
void config_release(struct config *c);

/* Parses "143,130" into c->exit_zero; false on a bad list. */
bool config_parse_status_list(bool out[256], const char *value);

#endif
