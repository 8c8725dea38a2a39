/*
 * cli: ferry's main(). One table of subcommands; run_command() does the
 * setup each command's flags ask for (config, logging), calls it, and makes
 * sure stdout really reached its destination before reporting success.
 */
#include "config.h"
#include "exits.h"
#include "log.h"
#include "pid1.h"
#include "commands.h"
#include "session.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct opts {
	const char *config_file;
	const char *database_url;
	const char *migrations_dir;
	int verbosity; /* -q: -1, -v: +1 */
	struct cmd_args args;
};

/*
 * Adding a command is a cmd_NAME.c and a row here: the session flags say
 * what it needs opened (session.h), the others what it takes.
 */
struct command {
	const char *name;
	int (*fn)(struct session *s, const struct cmd_args *a);
	unsigned takes;	  /* TAKES_* */
	unsigned session; /* session.h's NEED_* flags, 0: configuration only */
	const char *usage;
	const char *help;
};

enum {
	TAKES_COMMAND = 1 << 0, /* everything after the options is argv */
	TAKES_DRY_RUN = 1 << 1,
	TAKES_JSON = 1 << 2,
	NO_CONFIG = 1 << 3,  /* works even when the config is broken */
	NEEDS_ARGV = 1 << 4, /* at least one word of argv */
	SUPERVISES = 1 << 5, /* signals wait for the supervisor from the start */
	TAKES_FAILURES = 1 << 6,
	TAKES_EXIT_CODE = 1 << 7,
	TAKES_DEEP = 1 << 8,
	TAKES_OUTPUT = 1 << 9,	 /* -o FILE */
	TAKES_RESTORE = 1 << 10, /* FILE --mode M --keep-owners */
	TAKES_TO = 1 << 11,	 /* --to V, required */
	TAKES_VERSION = 1 << 12, /* --version V */
};

static int cmd_help(struct session *s, const struct cmd_args *a);

static const struct command commands[] = {
	{ "run", cmd_run, TAKES_COMMAND | NEEDS_ARGV | SUPERVISES, NEED_MIGRATIONS,
	  "run [--] COMMAND [ARG...]",
	  "Prepare the database, then run and supervise COMMAND.\n"
	  "The database is brought to the image's schema version first; then ferry\n"
	  "runs COMMAND as its supervisor: signals forwarded, zombies reaped, its\n"
	  "exit status passed out (128+N when killed by signal N)." },
	{ "migrate", cmd_migrate, TAKES_DRY_RUN, NEED_DATABASE | NEED_MIGRATIONS,
	  "migrate [--dry-run]",
	  "Prepare the database only, then exit.\n"
	  "With --dry-run print the plan and change nothing." },
	{ "status", cmd_status, TAKES_JSON | TAKES_EXIT_CODE,
	  NEED_DATABASE | NEED_MIGRATIONS, "status [--json] [--exit-code]",
	  "Show the schema versions and the history of every migration.\n"
	  "Database and image versions, one row per migration (applied, pending,\n"
	  "dirty, changed, unknown) with when it was applied and how long it took,\n"
	  "the journal, the snapshots and the last failed upgrade.\n"
	  "--json prints the same as one JSON object; with --exit-code status exits\n"
	  "1 unless the database is up to date and clean (for scripts and CI)." },
	{ "snapshot", cmd_snapshot, 0, NEED_DATABASE, "snapshot",
	  "Take a snapshot of the database now (<db>.pre-upgrade)." },
	{ "rollback", cmd_rollback, 0, NEED_DATABASE, "rollback",
	  "Restore the database from the latest pre-upgrade snapshot." },
	{ "downgrade", cmd_downgrade, TAKES_TO | TAKES_DRY_RUN,
	  NEED_DATABASE | NEED_MIGRATIONS | TAKE_LOCK, "downgrade --to V [--dry-run]",
	  "Run the down parts of the migrations above V, newest first.\n"
	  "Run it with the NEWER image (it ships the down parts) before starting an\n"
	  "older image that expects version V: unlike rollback, the data written\n"
	  "since the upgrade is kept. A snapshot is taken first; each down part\n"
	  "runs in a transaction with the removal of its ledger row; a failure\n"
	  "restores the snapshot (exit 70). Refused, changing nothing, when a\n"
	  "migration above V has no down part. --to 0 undoes every migration.\n"
	  "With --dry-run print what would be undone and change nothing." },
	{ "cleanup", cmd_cleanup, TAKES_FAILURES,
	  NEED_DATABASE | TAKE_LOCK | NO_UNFINISHED, "cleanup [--failures]",
	  "Delete snapshots and leftovers of finished upgrades.\n"
	  "With --failures delete only the record of a failed upgrade instead, so\n"
	  "that the next boot tries that upgrade again." },
	{ "health", cmd_health, TAKES_COMMAND, 0, "health [URL]",
	  "Probe the server once: exit 0 when healthy, 1 when not.\n"
	  "For Docker's HEALTHCHECK in images without curl; probes [health] url\n"
	  "(or command) unless URL is given." },
	{ "backup", cmd_backup, TAKES_OUTPUT,
	  NEED_DATABASE | NEED_MIGRATIONS | TAKE_LOCK | NO_UNFINISHED, "backup -o FILE|-",
	  "Write a .ferry archive: the database and the [backup] paths.\n"
	  "A consistent copy of the database plus the data directories, zstd\n"
	  "compressed, with manifest.ini listing every member's size and sha256.\n"
	  "Written to FILE.tmp-<pid>, fsynced and renamed; -o - writes to stdout." },
	{ "restore", cmd_restore, TAKES_RESTORE,
	  NEED_DATABASE | NEED_MIGRATIONS | TAKE_LOCK | NO_UNFINISHED,
	  "restore FILE [--mode verify|replace] [--keep-owners]",
	  "Check a .ferry archive, or restore it.\n"
	  "--mode verify (the default) checks every member against the manifest\n"
	  "and changes nothing. --mode replace extracts into staging beside each\n"
	  "target, verifies it all, then swaps database and data paths in by\n"
	  "journalled renames. Files go to [run] user unless --keep-owners." },
	{ "baseline", cmd_baseline, TAKES_VERSION,
	  NEED_DATABASE | NEED_MIGRATIONS | TAKE_LOCK | NO_UNFINISHED,
	  "baseline --version V",
	  "Adopt a database no tool tracked: record versions up to V as applied.\n"
	  "For a database whose schema is already that of version V of the image's\n"
	  "migrations (built by hand, or by a tool whose ledger was lost): prints\n"
	  "the migrations it will record, then writes them to the ledger\n"
	  "([migrations] ledger: ferry's own, or the format's tool's) without\n"
	  "running them. Refused when the database already has a ledger or V is\n"
	  "not a version the image ships." },
	{ "doctor", cmd_doctor, TAKES_DEEP | TAKES_JSON, NEED_DATABASE,
	  "doctor [--deep] [--json]",
	  "Check the database, its ledger, journal and snapshots; read-only.\n"
	  "One line per check (ok, warn or fail, with what was found), then a\n"
	  "summary; exit 1 when a check fails. --deep adds integrity_check,\n"
	  "foreign keys, every snapshot read through, schema drift against the\n"
	  "migrations and the application's checks ([doctor] checks_dir)." },
	{ "config", cmd_config, TAKES_JSON, 0, "config [--json]",
	  "Print the effective configuration and where each value came from.\n"
	  "Every key of every section, one per line, with its source: file:line of\n"
	  "the config file, the environment variable (NAME_FILE and the file it\n"
	  "names), the command-line option, or default. Passwords in URLs are\n"
	  "masked and a string read from a NAME_FILE is shown as ***. Opens no\n"
	  "database. --json prints the same as one JSON object." },
	{ "version", cmd_version, 0, 0, "version",
	  "Print ferry's version and the schema versions of image and database." },
	{ "help", cmd_help, TAKES_COMMAND | NO_CONFIG, 0, "help [COMMAND]",
	  "Show help for ferry or one command." },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char global_help[] =
	"Global options:\n"
	"  -c FILE              config file (env FERRY_CONFIG, default " DEFAULT_CONFIG_FILE
	")\n"
	"  --database-url URL   database (env DATABASE_URL or DATABASE_URL_FILE)\n"
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
		fprintf(f, "  %-29s %.*s\n", commands[i].usage, (int)strcspn(h, "\n"), h);
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

	if (!file) {
		file = getenv("FERRY_CONFIG");
		if (!file || !*file) {
			file = DEFAULT_CONFIG_FILE;
			required = false;
		}
	}
	if (config_load(c, file, required) < 0 || config_load_env(c) < 0)
		return -1;
	/* an empty --database-url means no database, as an empty [database] url */
	if (o->database_url &&
	    config_set_option(c, "--database-url", o->database_url) < 0)
		return -1;
	if (o->migrations_dir &&
	    config_set_option(c, "--migrations", o->migrations_dir) < 0)
		return -1;
	config_set_verbosity(c, o->verbosity);
	log_setup((enum log_level)c->log_level, (enum log_format)c->log_format);
	return 0;
}

/* backup's and restore's options; 1 taken, 0 not theirs, -1 bad */
static int take_archive_opt(const struct command *cmd, int argc, char **argv, int *i,
			    struct opts *o)
{
	const char *a = argv[*i];
	const char **target = NULL;

	if (cmd->takes & TAKES_OUTPUT && !strcmp(a, "-o"))
		target = &o->args.output;
	else if (cmd->takes & TAKES_RESTORE && !strcmp(a, "--mode"))
		target = &o->args.mode;
	else if (cmd->takes & TAKES_VERSION && !strcmp(a, "--version"))
		target = &o->args.version;
	else if (cmd->takes & TAKES_RESTORE && !strcmp(a, "--keep-owners"))
		return o->args.keep_owners = true, 1;
	else if (cmd->takes & TAKES_TO && !strncmp(a, "--to=", 5))
		return o->args.to = a + 5, 1;
	else if (cmd->takes & TAKES_TO && !strcmp(a, "--to"))
		target = &o->args.to;
	if (!target)
		return 0;
	if (*i + 1 >= argc) {
		usage_error("%s needs a value", a);
		return -1;
	}
	*target = argv[++*i];
	return 1;
}

/* The command's own options, after its name; 0 or the exit status. */
static int parse_command_args(const struct command *cmd, int argc, char **argv, int i,
			      struct opts *o, bool *done)
{
	int t;

	for (; i < argc; i++) {
		const char *a = argv[i];

		if (cmd->takes & TAKES_COMMAND && !strcmp(a, "--")) {
			i++;
			break;
		}
		if (cmd->takes & TAKES_RESTORE && (a[0] != '-' || !a[1]) &&
		    !o->args.file) {
			o->args.file = a; /* the archive; options may follow it */
			continue;
		}
		if (a[0] != '-' || !a[1])
			break;
		if (is_help(a)) {
			print_command_help(cmd);
			*done = true;
			return fflush(stdout) ? EXIT_CANTCREAT : 0;
		}
		if (cmd->takes & TAKES_DRY_RUN && !strcmp(a, "--dry-run")) {
			o->args.dry_run = true;
			continue;
		}
		if (cmd->takes & TAKES_FAILURES && !strcmp(a, "--failures")) {
			o->args.failures = true;
			continue;
		}
		if (cmd->takes & TAKES_JSON && !strcmp(a, "--json")) {
			o->args.json = true;
			continue;
		}
		if (cmd->takes & TAKES_EXIT_CODE && !strcmp(a, "--exit-code")) {
			o->args.exit_code = true;
			continue;
		}
		if (cmd->takes & TAKES_DEEP && !strcmp(a, "--deep")) {
			o->args.deep = true;
			continue;
		}
		t = take_archive_opt(cmd, argc, argv, &i, o);
		if (t == 0)
			t = take_global(argc, argv, &i, o);
		if (t < 0)
			return EXIT_USAGE;
		if (t == 0) /* never echo a value: it may hold a password */
			return usage_error("unknown option '%.*s'", (int)strcspn(a, "="),
					   a);
	}
	if (i < argc && !(cmd->takes & TAKES_COMMAND))
		return usage_error("unexpected argument '%s'", argv[i]);
	o->args.rest = argv + i;
	if (cmd->takes & NEEDS_ARGV && !o->args.rest[0])
		return usage_error("%s needs a COMMAND to supervise", cmd->name);
	if (cmd->takes & TAKES_TO && !o->args.to)
		return usage_error("%s needs --to VERSION", cmd->name);
	return 0;
}

/*
 * git's run_builtin: the setup the command's flags ask for, the command,
 * then a check that stdout really reached its destination (ENOSPC on a
 * full disk must not be a silent success).
 */
static int run_command(const struct command *cmd, struct opts *o)
{
	struct config cfg;
	struct session s;
	int rc;

	config_defaults(&cfg);
	memset(&s, 0, sizeof(s));
	if (!(cmd->takes & NO_CONFIG) && setup_config(&cfg, o) < 0) {
		rc = EXIT_CONFIG;
		goto out;
	}
	/* from here on signals wait for the supervisor, none is lost */
	if (cmd->takes & SUPERVISES)
		pid1_block_signals();
	rc = session_open(&s, &cfg, cmd->session);
	if (rc == 0)
		rc = cmd->fn(&s, &o->args);
	session_close(&s);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		log_error("cannot write output: %s", strerror(errno));
		if (rc == 0)
			rc = EXIT_CANTCREAT;
	}
out:
	config_release(&cfg);
	return rc;
}

/*
 * FERRY_LOG_FORMAT=json holds from the first line: an error in the
 * arguments or the config file, printed before the file says how to log,
 * is JSON too when the environment asked for JSON. A bad value is
 * reported by config_load_env() later; text until then.
 */
static void early_log_format(void)
{
	const char *f = getenv("FERRY_LOG_FORMAT");

	if (f && !strcasecmp(f, "json"))
		log_setup(LOG_INFO, LOG_JSON);
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	const struct command *cmd;
	bool done = false;
	int i = 1, rc, t;

	early_log_format();
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
			return usage_error("unknown option '%.*s'",
					   (int)strcspn(argv[i], "="), argv[i]);
	}
	if (i >= argc) {
		print_usage(stderr);
		return EXIT_USAGE;
	}
	cmd = find_command(argv[i]);
	if (!cmd)
		return usage_error("unknown command '%s'", argv[i]);
	rc = parse_command_args(cmd, argc, argv, i + 1, &o, &done);
	if (rc || done)
		return rc;
	return run_command(cmd, &o);
}

static int cmd_help(struct session *s, const struct cmd_args *a)
{
	const struct command *cmd;

	(void)s;
	if (!a->rest[0]) {
		print_usage(stdout);
		return 0;
	}
	cmd = find_command(a->rest[0]);
	if (!cmd)
		return usage_error("unknown command '%s'", a->rest[0]);
	if (a->rest[1])
		return usage_error("unexpected argument '%s'", a->rest[1]);
	print_command_help(cmd);
	return 0;
}
