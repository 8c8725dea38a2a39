/*
 * cli: ferry's main(). One table of subcommands; run_command() does the
 * setup each command's flags ask for (config, logging), calls it, and makes
 * sure stdout really reached its destination before reporting success.
 */
#include "config.h"
#include "exits.h"
#include "log.h"
#include "pid1.h"
#include "upgrade.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FERRY_VERSION
#define FERRY_VERSION "0.1.0"
#endif

struct opts {
	const char *config_file;
	const char *database_url;
	const char *migrations_dir;
	int verbosity; /* -q: -1, -v: +1 */
	bool dry_run, json;
	char **rest; /* run: the server command */
};

struct command {
	const char *name;
	int (*fn)(struct config *c, struct opts *o);
	unsigned flags;
	const char *usage;
	const char *help;
};

enum {
	TAKES_COMMAND = 1 << 0, /* everything after the options is argv */
	TAKES_DRY_RUN = 1 << 1,
	TAKES_JSON = 1 << 2,
	NO_CONFIG = 1 << 3, /* works even when the config is broken */
};

static int cmd_run(struct config *c, struct opts *o);
static int cmd_migrate(struct config *c, struct opts *o);
static int cmd_status(struct config *c, struct opts *o);
static int cmd_snapshot(struct config *c, struct opts *o);
static int cmd_rollback(struct config *c, struct opts *o);
static int cmd_cleanup(struct config *c, struct opts *o);
static int cmd_version(struct config *c, struct opts *o);
static int cmd_help(struct config *c, struct opts *o);

static const struct command commands[] = {
	{ "run", cmd_run, TAKES_COMMAND, "run [--] COMMAND [ARG...]",
	  "Prepare the database, then run and supervise COMMAND.\n"
	  "The database is brought to the image's schema version first; then ferry\n"
	  "runs COMMAND as its supervisor: signals forwarded, zombies reaped, its\n"
	  "exit status passed out (128+N when killed by signal N)." },
	{ "migrate", cmd_migrate, TAKES_DRY_RUN, "migrate [--dry-run]",
	  "Prepare the database only, then exit.\n"
	  "With --dry-run print the plan and change nothing." },
	{ "status", cmd_status, TAKES_JSON, "status [--json]",
	  "Show the schema versions and what an upgrade would do.\n"
	  "Database and image versions, pending, unknown and dirty migrations,\n"
	  "the snapshot and the journal state." },
	{ "snapshot", cmd_snapshot, 0, "snapshot",
	  "Take a snapshot of the database now (<db>.pre-upgrade)." },
	{ "rollback", cmd_rollback, 0, "rollback",
	  "Restore the database from the latest pre-upgrade snapshot." },
	{ "cleanup", cmd_cleanup, 0, "cleanup",
	  "Delete snapshots and leftovers of finished upgrades." },
	{ "version", cmd_version, 0, "version",
	  "Print ferry's version and the schema versions of image and database." },
	{ "help", cmd_help, TAKES_COMMAND | NO_CONFIG, "help [COMMAND]",
	  "Show help for ferry or one command." },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char global_help[] =
	"Global options:\n"
	"  -c FILE              config file (env FERRY_CONFIG, default " DEFAULT_CONFIG_FILE ")\n"
	"  --database-url URL   database (env DATABASE_URL)\n"
	"  --migrations DIR     migrations the image ships (default /app/migrations)\n"
	"  -q, -v               quieter, more verbose\n"
	"  -h, --help           this help\n";

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void print_usage(FILE *f)
{
	fprintf(f, "usage: ferry [OPTIONS] COMMAND [ARGS]\n\nCommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const char *h = commands[i].help;

		/* the usage, then the help's first line */
		fprintf(f, "  %-27s %.*s\n", commands[i].usage, (int)strcspn(h, "\n"), h);
	}
	fprintf(f, "\n%s\nRun 'ferry help COMMAND' for more.\n", global_help);
}

static void print_command_help(const struct command *cmd)
{
	printf("usage: ferry [OPTIONS] %s\n\n%s\n\n%s", cmd->usage, cmd->help,
	       global_help);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("%s (see 'ferry help')", msg);
	return EXIT_USAGE;
}

/*
 * Takes one global option at argv[*i]; returns 1 when taken, 0 when it is
 * not a global option, -1 (logged) on a usage error.
 */
static int take_global(int argc, char **argv, int *i, struct opts *o)
{
	const char *a = argv[*i];
	const char **target = NULL;
	size_t len;

	if (!strcmp(a, "-q")) {
		o->verbosity--;
		return 1;
	}
	if (!strcmp(a, "-v")) {
		o->verbosity++;
		return 1;
	}
	if (!strcmp(a, "-c") || !strncmp(a, "--config", 8))
		target = &o->config_file;
	else if (!strncmp(a, "--database-url", 14))
		target = &o->database_url;
	else if (!strncmp(a, "--migrations", 12))
		target = &o->migrations_dir;
	else
		return 0;
	len = strcspn(a, "=");
	if (a[len] == '=') {
		if (strncmp(a, "--config", len) && strncmp(a, "--database-url", len) &&
		    strncmp(a, "--migrations", len))
			return 0;
		*target = a + len + 1;
		return 1;
	}
	if (strcmp(a, "-c") && strcmp(a, "--config") && strcmp(a, "--database-url") &&
	    strcmp(a, "--migrations"))
		return 0;
	if (*i + 1 >= argc) {
		usage_error("option '%s' needs a value", a);
		return -1;
	}
	*target = argv[++*i];
	return 1;
}

static bool is_help(const char *a)
{
	return !strcmp(a, "-h") || !strcmp(a, "--help");
}

static int setup_config(struct config *c, struct opts *o)
{
	const char *file = o->config_file;
	bool required = true;
	long long level;

	if (!file) {
		file = getenv("FERRY_CONFIG");
		if (!file || !*file) {
			file = DEFAULT_CONFIG_FILE;
			required = false;
		}
	}
	if (config_load(c, file, required) < 0 || config_load_env(c) < 0)
		return -1;
	if (o->database_url) {
		/* empty means no database, as an empty [database] url does */
		free(c->database_url);
		c->database_url = o->database_url[0] ? xstrdup(o->database_url) : NULL;
	}
	if (o->migrations_dir) {
		free(c->migrations_dir);
		c->migrations_dir = xstrdup(o->migrations_dir);
	}
	level = c->log_level + o->verbosity;
	if (level < LOG_ERROR)
		level = LOG_ERROR;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	c->log_level = level;
	log_setup((enum log_level)c->log_level, (enum log_format)c->log_format);
	return 0;
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct opts o = { 0 };
	const struct command *cmd;
	int i = 1, rc, t;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (is_help(argv[i])) {
			print_usage(stdout);
			return fflush(stdout) ? EXIT_CANTCREAT : 0;
		}
		if (!strcmp(argv[i], "--version")) {
			argv[i] = (char *)"version";
			break;
		}
		t = take_global(argc, argv, &i, &o);
		if (t < 0)
			return EXIT_USAGE;
		if (t == 0)
			return usage_error("unknown option '%.*s'", (int)strcspn(argv[i], "="),
					   argv[i]);
	}
	if (i >= argc) {
		print_usage(stderr);
		return EXIT_USAGE;
	}
	cmd = find_command(argv[i]);
	if (!cmd)
		return usage_error("unknown command '%s'", argv[i]);
	for (i++; i < argc; i++) {
		const char *a = argv[i];

		if (cmd->flags & TAKES_COMMAND && !strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-' || !a[1])
			break;
		if (is_help(a)) {
			print_command_help(cmd);
			return fflush(stdout) ? EXIT_CANTCREAT : 0;
		}
		if (cmd->flags & TAKES_DRY_RUN && !strcmp(a, "--dry-run")) {
			o.dry_run = true;
			continue;
		}
		if (cmd->flags & TAKES_JSON && !strcmp(a, "--json")) {
			o.json = true;
			continue;
		}
		t = take_global(argc, argv, &i, &o);
		if (t < 0)
			return EXIT_USAGE;
		if (t == 0) /* never echo a value: it may hold a password */
			return usage_error("unknown option '%.*s'", (int)strcspn(a, "="), a);
	}
	if (i < argc && !(cmd->flags & TAKES_COMMAND))
		return usage_error("unexpected argument '%s'", argv[i]);
	o.rest = argv + i;

	config_defaults(&cfg);
	if (!(cmd->flags & NO_CONFIG) && setup_config(&cfg, &o) < 0) {
		rc = EXIT_CONFIG;
		goto out;
	}
	rc = cmd->fn(&cfg, &o);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		log_error("cannot write output: %s", strerror(errno));
		if (rc == 0)
			rc = EXIT_CANTCREAT;
	}
out:
	config_release(&cfg);
	return rc;
}

static int cmd_run(struct config *c, struct opts *o)
{
	struct run_opts ro = {
		.user = c->run_user,
		.grace_seconds = (int)c->grace_seconds,
		.signal_group = c->signal_group,
		.exec = c->exec,
		.exit_zero = c->exit_zero,
	};
	sigset_t pending;
	int rc;

	if (!o->rest[0])
		return usage_error("%s", "run needs a COMMAND to supervise");
	/* From here on signals wait for the supervisor, none is lost. */
	pid1_block_signals();
	if (c->database_url) {
		rc = upgrade_prepare(c, false, true);
		if (rc != 0)
			return rc;
	} else {
		log_info("no database configured ([database] url, DATABASE_URL): "
			 "starting without a schema check");
	}
	/* A stop request that came during the upgrade: do not start the server. */
	if (sigpending(&pending) == 0 &&
	    (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT))) {
		log_info("stop requested during preparation: not starting '%s'",
			 o->rest[0]);
		return 128 + (sigismember(&pending, SIGTERM) ? SIGTERM : SIGINT);
	}
	return pid1_run(&ro, o->rest);
}

static int need_database(const struct config *c)
{
	if (c->database_url)
		return 0;
	log_error("no database configured: set [database] url, DATABASE_URL or "
		  "--database-url");
	return EXIT_CONFIG;
}

static int cmd_migrate(struct config *c, struct opts *o)
{
	return need_database(c) ?: upgrade_prepare(c, o->dry_run, false);
}

static int cmd_status(struct config *c, struct opts *o)
{
	return need_database(c) ?: upgrade_status(c, o->json);
}

static int cmd_snapshot(struct config *c, struct opts *o)
{
	(void)o;
	return need_database(c) ?: upgrade_snapshot(c);
}

static int cmd_rollback(struct config *c, struct opts *o)
{
	(void)o;
	return need_database(c) ?: upgrade_rollback(c);
}

static int cmd_cleanup(struct config *c, struct opts *o)
{
	(void)o;
	return need_database(c) ?: upgrade_cleanup(c);
}

static int cmd_version(struct config *c, struct opts *o)
{
	(void)o;
	printf("ferry %s\n", FERRY_VERSION);
#ifdef FERRY_BUILD_INFO
	/* the static build's libraries and their Debian source versions */
	printf("%s\n", FERRY_BUILD_INFO);
#endif
	upgrade_print_versions(c);
	return 0;
}

static int cmd_help(struct config *c, struct opts *o)
{
	const struct command *cmd;

	(void)c;
	if (!o->rest[0]) {
		print_usage(stdout);
		return 0;
	}
	cmd = find_command(o->rest[0]);
	if (!cmd)
		return usage_error("unknown command '%s'", o->rest[0]);
	if (o->rest[1])
		return usage_error("unexpected argument '%s'", o->rest[1]);
	print_command_help(cmd);
	return 0;
}
