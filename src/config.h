/*
 * config: every setting ferry has, read from the INI file (inih), then
 * FERRY_<SECTION>_<KEY> environment variables (or the files their _FILE
 * twins name), then the command line; each value remembers its source.
 */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"
#include "version.h"

#define DEFAULT_CONFIG_FILE "/etc/ferry/ferry.ini"
#define CONFIG_NKEYS	    42 /* rows of config.c's key table */

/* Where a key's value came from, for `ferry config`. */
enum config_origin {
	ORIGIN_DEFAULT,
	ORIGIN_FILE,	 /* name: the INI file; line */
	ORIGIN_ENV,	 /* name: the variable */
	ORIGIN_ENV_FILE, /* name: the NAME_FILE variable; path: the file it names */
	ORIGIN_OPTION,	 /* name: the command-line option */
};

struct config_source {
	enum config_origin origin;
	char *name, *path; /* owned */
	int line;
};

/* [migrations] mode: how the database reaches the image's version */
enum migrations_mode {
	MODE_IN_PLACE, /* the pending migrations, in order */
	MODE_REBUILD,  /* a fresh database from schema.sql, the old data copied in */
	MODE_APP, /* the server migrates itself: snapshot when its identity changes */
};

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
	long long migrations_mode;	  /* enum migrations_mode */
	const char *migrations_ledger;	  /* "auto" or a ledger shape's name */
	bool allow_out_of_order;	  /* holes applied first, not refused */
	const char *migrations_format;	  /* a format's name; NULL: auto */
	char *migrations_command;	  /* mode = app: the server's own migrate step */
	/* [snapshot] */
	char *snapshot_dir;
	long long snapshot_keep;
	/* [run] */
	char *run_user;
	long long grace_seconds;
	bool signal_group;
	bool exec;
	bool exit_zero[256];
	bool init_only; /* ferry run: no database work, whatever is shipped */
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
	/* [app] the image's identity, for mode = app: one of the three */
	char *app_version;	     /* a literal */
	char *app_version_env;	     /* the variable that holds it */
	char *app_version_from_file; /* its sha256 */
	/* [log] */
	long long log_level;  /* enum log_level */
	long long log_format; /* enum log_format */

	/* by key, in the order of config_item() */
	struct config_source source[CONFIG_NKEYS];
};

/* One key as `ferry config` shows it. */
struct config_item {
	const char *section, *name;
	enum { ITEM_NULL, ITEM_STRING, ITEM_NUMBER, ITEM_BOOL } kind;
	/*
	 * The value as text, safe to print: a URL's password masked, a string
	 * read from a NAME_FILE shown as "***" (a secret by convention).
	 */
	char text[1024];
	const struct config_source *source;
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
/*
 * The environment: DATABASE_URL, then FERRY_<SECTION>_<KEY>; each may
 * instead be NAME_FILE, naming a file that holds the value (both set is an
 * error, and so is an unreadable file). Unknown FERRY_<SECTION>_* are errors.
 */
int config_load_env(struct config *c);
/* A command-line option (--database-url, --migrations); -1 logged. */
int config_set_option(struct config *c, const char *option, const char *value);
/* -q (< 0) and -v (> 0) move [log] level, within error..debug. */
void config_set_verbosity(struct config *c, int verbosity);
/* Key i < CONFIG_NKEYS, in the key table's order (grouped by section). */
void config_item(const struct config *c, size_t i, struct config_item *it);
void config_release(struct config *c);

/* Parses "143,130" into c->exit_zero; false on a bad list. */
bool config_parse_status_list(bool out[256], const char *value);

#endif
