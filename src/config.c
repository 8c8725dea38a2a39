/*
 * config: one table lists every key with its type and default, so the INI
 * reader, the environment overlay and the reference ferry.ini cannot drift
 * apart. Unknown sections and keys are errors, never silently ignored.
 */
#include "config.h"
#include "migrations.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

enum type {
	T_STR,
	T_INT,
	T_BOOL,
	T_LEVEL,
	T_FORMAT,
	T_STATUSES,
	T_VERSION,
	T_MODE,
	T_LEDGER,
	T_MIGRATION_FORMAT,
};

enum key_flags {
	K_URL = 1 << 0,	     /* may hold a password: shown through redact_url() */
	K_NONEMPTY = 1 << 1, /* empty is refused (no sensible "unset") */
};

struct key {
	const char *section, *name;
	enum type type;
	size_t offset;
	long long min, max;
	unsigned flags;
};

#define OFF(f) offsetof(struct config, f)
/* clang-format off */
static const struct key keys[] = {
	{ "database", "url", T_STR, OFF(database_url), 0, 0, K_URL },
	{ "database", "wait_seconds", T_INT, OFF(wait_seconds), 0, 86400, 0 },
	{ "database", "state_dir", T_STR, OFF(state_dir), 0, 0, 0 },
	{ "database", "maintenance_db", T_STR, OFF(maintenance_db), 0, 0, 0 },
	{ "migrations", "dir", T_STR, OFF(migrations_dir), 0, 0, K_NONEMPTY },
	{ "migrations", "lock_timeout_seconds", T_INT, OFF(lock_timeout_seconds), 0, 86400, 0 },
	{ "migrations", "auto_upgrade", T_BOOL, OFF(auto_upgrade), 0, 0, 0 },
	{ "migrations", "statement_lock_timeout", T_INT, OFF(statement_lock_timeout), 1, 3600, 0 },
	{ "migrations", "target_version", T_VERSION, OFF(target_version), 0, 0, 0 },
	{ "migrations", "mode", T_MODE, OFF(migrations_mode), 0, 0, 0 },
	{ "migrations", "ledger", T_LEDGER, OFF(migrations_ledger), 0, 0, 0 },
	{ "migrations", "allow_out_of_order", T_BOOL, OFF(allow_out_of_order), 0, 0, 0 },
	{ "migrations", "format", T_MIGRATION_FORMAT, OFF(migrations_format), 0, 0, 0 },
	{ "migrations", "command", T_STR, OFF(migrations_command), 0, 0, 0 },
	{ "snapshot", "dir", T_STR, OFF(snapshot_dir), 0, 0, 0 },
	{ "snapshot", "keep", T_INT, OFF(snapshot_keep), 1, 100, 0 },
	{ "run", "user", T_STR, OFF(run_user), 0, 0, 0 },
	{ "run", "grace_seconds", T_INT, OFF(grace_seconds), 0, 3600, 0 },
	{ "run", "signal_group", T_BOOL, OFF(signal_group), 0, 0, 0 },
	{ "run", "exec", T_BOOL, OFF(exec), 0, 0, 0 },
	{ "run", "exit_zero", T_STATUSES, OFF(exit_zero), 0, 0, 0 },
	{ "run", "init_only", T_BOOL, OFF(init_only), 0, 0, 0 },
	{ "health", "url", T_STR, OFF(health_url), 0, 0, K_URL },
	{ "health", "command", T_STR, OFF(health_command), 0, 0, 0 },
	{ "health", "interval_seconds", T_INT, OFF(health_interval_seconds), 1, 3600, 0 },
	{ "health", "timeout_seconds", T_INT, OFF(health_timeout_seconds), 1, 86400, 0 },
	{ "health", "after_upgrade_only", T_BOOL, OFF(health_after_upgrade_only), 0, 0, 0 },
	{ "health", "max_attempts", T_INT, OFF(health_max_attempts), 1, 1000, 0 },
	{ "backup", "paths", T_STR, OFF(backup_paths), 0, 0, 0 },
	{ "backup", "exclude", T_STR, OFF(backup_exclude), 0, 0, 0 },
	{ "backup", "dir", T_STR, OFF(backup_dir), 0, 0, 0 },
	{ "backup", "zstd_level", T_INT, OFF(backup_zstd_level), 1, 19, 0 },
	{ "backup", "threads", T_INT, OFF(backup_threads), 0, 64, 0 },
	{ "backup", "before_upgrade", T_BOOL, OFF(backup_before_upgrade), 0, 0, 0 },
	{ "backup", "max_bytes", T_INT, OFF(backup_max_bytes), 1, 1LL << 50, 0 },
	{ "backup", "max_members", T_INT, OFF(backup_max_members), 1, 100000000, 0 },
	{ "doctor", "checks_dir", T_STR, OFF(doctor_checks_dir), 0, 0, 0 },
	{ "app", "version", T_STR, OFF(app_version), 0, 0, 0 },
	{ "app", "version_env", T_STR, OFF(app_version_env), 0, 0, 0 },
	{ "app", "version_from_file", T_STR, OFF(app_version_from_file), 0, 0, 0 },
	{ "log", "level", T_LEVEL, OFF(log_level), 0, 0, 0 },
	{ "log", "format", T_FORMAT, OFF(log_format), 0, 0, 0 },
};

/* [migrations] ledger: auto, then the ledger shapes of ledger.c */
static const char *const ledgers[] = {
	"auto", "ferry", "golang-migrate", "dbmate", "goose", "flyway", "diesel", "sqlx",
};

/* Sections of DESIGN.md whose keys arrive with later features. */
static const char *const sections[] = {
	"database", "migrations", "snapshot", "run", "health",
	"backup", "doctor", "app", "log",
};
/* clang-format on */
#define NKEYS (sizeof(keys) / sizeof(keys[0]))
_Static_assert(NKEYS == CONFIG_NKEYS, "CONFIG_NKEYS is the key table's size");

/* A NAME_FILE holds one value, a line of text: more is a wrong path. */
#define ENV_FILE_MAX (64 * 1024)

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->wait_seconds = 30;
	c->maintenance_db = xstrdup("postgres");
	c->migrations_dir = xstrdup("/app/migrations");
	c->lock_timeout_seconds = 300;
	c->auto_upgrade = true;
	c->statement_lock_timeout = 5;
	c->migrations_ledger = ledgers[0];
	c->snapshot_keep = 1;
	c->grace_seconds = 10;
	c->health_interval_seconds = 2;
	c->health_timeout_seconds = 60;
	c->health_after_upgrade_only = true;
	c->health_max_attempts = 1;
	c->backup_zstd_level = 3;
	c->backup_threads = 1;
	c->backup_max_bytes = 1LL << 40;
	c->backup_max_members = 1000000;
	c->log_level = LOG_INFO;
	c->log_format = LOG_TEXT;
}

static void source_clear(struct config_source *src)
{
	free(src->name);
	free(src->path);
	memset(src, 0, sizeof(*src));
}

/* Key k's value now comes from origin: name (copied), path, line. */
static void source_set(struct config *c, const struct key *k, enum config_origin origin,
		       const char *name, const char *path, int line)
{
	struct config_source *src = &c->source[k - keys];

	source_clear(src);
	src->origin = origin;
	src->name = name ? xstrdup(name) : NULL;
	src->path = path ? xstrdup(path) : NULL;
	src->line = line;
}

void config_release(struct config *c)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].type == T_STR)
			free(*(char **)((char *)c + keys[i].offset));
		source_clear(&c->source[i]);
	}
	memset(c, 0, sizeof(*c));
}

bool config_parse_status_list(bool out[256], const char *value)
{
	bool tmp[256] = { false };
	const char *p = value;

	while (*p) {
		char num[16];
		size_t len;
		long long v;

		p += strspn(p, " \t");
		len = strcspn(p, ", \t");
		if (len == 0 || len >= sizeof(num))
			return false;
		memcpy(num, p, len);
		num[len] = '\0';
		if (!parse_ll(num, 0, 255, &v))
			return false;
		tmp[v] = true;
		p += len;
		p += strspn(p, " \t");
		if (*p == ',')
			p++;
		else if (*p)
			return false;
	}
	memcpy(out, tmp, sizeof(tmp));
	return true;
}

/* A migration's version; empty or 0 is zero (the highest shipped). */
static int set_version(struct version *v, const char *value, char *why, size_t whysize)
{
	if (!value[0]) {
		*v = VERSION_ZERO;
		return 0;
	}
	if (!version_parse(v, value, strlen(value))) {
		snprintf(why, whysize,
			 "expected a version: digits and dots, as 3, "
			 "20240101120000 or 1.2.3 (0: the highest shipped)");
		return -1;
	}
	return 0;
}

/* Sets one key from its text; on a bad value fills why and returns -1. */
static int set_value(struct config *c, const struct key *k, const char *value, char *why,
		     size_t whysize)
{
	void *field = (char *)c + k->offset;
	long long v;

	switch (k->type) {
	case T_STR:
		if (k->flags & K_NONEMPTY && !value[0]) {
			snprintf(why, whysize, "expected a path, not an empty value");
			return -1;
		}
		free(*(char **)field);
		*(char **)field = value[0] ? xstrdup(value) : NULL;
		return 0;
	case T_INT:
		if (!parse_ll(value, k->min, k->max, &v)) {
			snprintf(why, whysize,
				 "expected a whole number from %lld to %lld", k->min,
				 k->max);
			return -1;
		}
		*(long long *)field = v;
		return 0;
	case T_BOOL:
		if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") ||
		    !strcmp(value, "1") || !strcasecmp(value, "on"))
			*(bool *)field = true;
		else if (!strcasecmp(value, "false") || !strcasecmp(value, "no") ||
			 !strcmp(value, "0") || !strcasecmp(value, "off"))
			*(bool *)field = false;
		else {
			snprintf(why, whysize, "expected true or false");
			return -1;
		}
		return 0;
	case T_LEVEL:
		if (!strcasecmp(value, "error"))
			v = LOG_ERROR;
		else if (!strcasecmp(value, "warn") || !strcasecmp(value, "warning"))
			v = LOG_WARN;
		else if (!strcasecmp(value, "info"))
			v = LOG_INFO;
		else if (!strcasecmp(value, "debug"))
			v = LOG_DEBUG;
		else {
			snprintf(why, whysize, "expected error, warn, info or debug");
			return -1;
		}
		*(long long *)field = v;
		return 0;
	case T_FORMAT:
		if (!strcasecmp(value, "text"))
			v = LOG_TEXT;
		else if (!strcasecmp(value, "json"))
			v = LOG_JSON;
		else {
			snprintf(why, whysize, "expected text or json");
			return -1;
		}
		*(long long *)field = v;
		return 0;
	case T_STATUSES:
		if (!config_parse_status_list(field, value)) {
			snprintf(
				why, whysize,
				"expected a comma-separated list of exit statuses 0-255");
			return -1;
		}
		return 0;
	case T_VERSION:
		return set_version(field, value, why, whysize);
	case T_MODE:
		if (!strcasecmp(value, "in-place"))
			v = MODE_IN_PLACE;
		else if (!strcasecmp(value, "rebuild"))
			v = MODE_REBUILD;
		else if (!strcasecmp(value, "app"))
			v = MODE_APP;
		else {
			snprintf(why, whysize, "expected in-place, rebuild or app");
			return -1;
		}
		*(long long *)field = v;
		return 0;
	case T_LEDGER:
		for (size_t i = 0; i < sizeof(ledgers) / sizeof(ledgers[0]); i++)
			if (!strcasecmp(value, ledgers[i])) {
				*(const char **)field = ledgers[i];
				return 0;
			}
		snprintf(why, whysize,
			 "expected auto, ferry, golang-migrate, dbmate, goose, flyway, "
			 "diesel or sqlx");
		return -1;
	case T_MIGRATION_FORMAT:
		if (!strcasecmp(value, "auto")) {
			*(const char **)field = NULL;
			return 0;
		}
		if (!(*(const char **)field = migrations_format_name(value))) {
			snprintf(why, whysize,
				 "expected auto, ferry, golang-migrate, dbmate, goose, "
				 "flyway or diesel");
			return -1;
		}
		return 0;
	}
	return -1;
}

static const struct key *find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcasecmp(keys[i].section, section) &&
		    !strcasecmp(keys[i].name, name))
			return &keys[i];
	return NULL;
}

static bool known_section(const char *section)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (!strcasecmp(sections[i], section))
			return true;
	return false;
}

struct ini_ctx {
	struct config *c;
	FILE *f;
	const char *name; /* the file, for messages and sources */
	int line;	  /* lines read so far: the one inih is parsing */
	int msg_line;	  /* where msg was found */
	char msg[512];	  /* the first error found by the reader or the handler */
};

/* Claims the error message slot for the current line; false when taken. */
static bool first_error(struct ini_ctx *ctx)
{
	if (ctx->msg[0])
		return false;
	ctx->msg_line = ctx->line;
	return true;
}

/*
 * inih's line reader. Counting the lines here gives errors that inih does
 * not see their line number: a section with no key in it (inih only calls
 * the handler for keys), a line too long for inih's buffer (inih would
 * parse its tail as the next line) and a NUL byte (inih would stop the
 * line there; a file saved as UTF-16 is full of them).
 */
static char *read_line(char *buf, int size, void *stream)
{
	struct ini_ctx *ctx = stream;
	const char *p, *end;
	bool any = false, nul = false, longer = false;
	int n = 0;

	for (;;) {
		int ch = getc(ctx->f);

		if (ch == EOF)
			break;
		any = true;
		if (ch == '\n') {
			if (n < size - 1)
				buf[n++] = '\n';
			break;
		}
		nul |= ch == '\0';
		if (n < size - 1)
			buf[n++] = (char)ch;
		else
			longer = true;
	}
	if (!any)
		return NULL;
	buf[n] = '\0';
	ctx->line++;
	if (longer || nul) {
		if (first_error(ctx)) {
			if (longer)
				snprintf(ctx->msg, sizeof(ctx->msg),
					 "line longer than %d characters", size - 2);
			else
				snprintf(ctx->msg, sizeof(ctx->msg),
					 "a NUL byte in the line (a binary file, or "
					 "text saved as UTF-16?)");
		}
		buf[0] = '\0';
		return buf;
	}
	p = buf + strspn(buf, " \t\r");
	end = *p == '[' ? strchr(p, ']') : NULL;
	if (end) {
		char section[128];

		snprintf(section, sizeof(section), "%.*s", (int)(end - p - 1), p + 1);
		if (!known_section(section) && first_error(ctx))
			snprintf(ctx->msg, sizeof(ctx->msg), "unknown section [%s]",
				 section);
	}
	return buf;
}

static int on_ini_key(void *user, const char *section, const char *name,
		      const char *value)
{
	struct ini_ctx *ctx = user;
	const struct key *k;
	char why[200];

	if (ctx->msg[0])
		return 0;
	if (!section[0]) {
		first_error(ctx);
		snprintf(ctx->msg, sizeof(ctx->msg), "key '%s' outside of a [section]",
			 name);
		return 0;
	}
	if (!known_section(section)) {
		first_error(ctx);
		snprintf(ctx->msg, sizeof(ctx->msg), "unknown section [%s]", section);
		return 0;
	}
	k = find_key(section, name);
	if (!k) {
		first_error(ctx);
		snprintf(ctx->msg, sizeof(ctx->msg), "unknown key '%s' in [%s]", name,
			 section);
		return 0;
	}
	if (set_value(ctx->c, k, value, why, sizeof(why)) < 0) {
		char shown[256];

		first_error(ctx);
		/* never echo the value of a key that may hold a password, and
		 * redact the others: a URL pasted into the wrong key happens */
		if (k->flags & K_URL)
			snprintf(ctx->msg, sizeof(ctx->msg), "[%s] %s: %s", k->section,
				 k->name, why);
		else
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "[%s] %s: bad value '%s': %s", k->section, k->name,
				 redact_url(value, shown, sizeof(shown)), why);
		return 0;
	}
	source_set(ctx->c, k, ORIGIN_FILE, ctx->name, NULL, ctx->line);
	return 1;
}

/* Parses the INI text in f; name is the file named in messages. */
static int load_stream(struct config *c, FILE *f, const char *name)
{
	struct ini_ctx ctx = { .c = c, .f = f, .name = name };
	int rc = ini_parse_stream(read_line, &ctx, on_ini_key, &ctx);

	if (ferror(f))
		return error_errno("cannot read config file '%s'", name);
	if (rc == -2)
		return error("%s: out of memory while parsing", name);
	/* inih's rc is the first line it rejected, ours the first we did */
	if (ctx.msg[0] && (rc <= 0 || ctx.msg_line <= rc))
		return error("%s:%d: %s", name, ctx.msg_line, ctx.msg);
	if (rc > 0)
		return error("%s:%d: syntax error (expected [section] or key = value)",
			     name, rc);
	return 0;
}

int config_load(struct config *c, const char *path, bool required)
{
	FILE *f = fopen(path, "re");
	int rc;

	if (!f) {
		if (errno == ENOENT && !required)
			return 0;
		return error_errno("cannot read config file '%s'", path);
	}
	rc = load_stream(c, f, path);
	fclose(f);
	return rc;
}

int config_load_text(struct config *c, const char *name, const char *text, size_t len)
{
	FILE *f;
	int rc;

	if (len == 0)
		return 0; /* an empty file: nothing to set (fmemopen wants a size) */
	f = fmemopen((void *)text, len, "r");
	if (!f)
		return error_errno("cannot parse %s", name);
	rc = load_stream(c, f, name);
	fclose(f);
	return rc;
}

/* FERRY_RUN_GRACE_SECONDS -> "run", "grace_seconds" */
static void env_name(const struct key *k, char *buf, size_t size)
{
	size_t n = (size_t)snprintf(buf, size, "FERRY_%s_%s", k->section, k->name);

	for (size_t i = 0; i < n && i < size; i++)
		if (buf[i] >= 'a' && buf[i] <= 'z')
			buf[i] = (char)(buf[i] - 'a' + 'A');
}

/*
 * The value that the variable var (a NAME_FILE) names the file path of,
 * into a malloc'd *out: the content with one trailing "\n" or "\r\n"
 * removed, as docker-library's file_env (and Docker's secrets, written
 * with `echo`) have it. Only regular files (Kubernetes' symlinks lead to
 * one). Never logs the content.
 */
static int read_env_file(const char *var, const char *path, char **out)
{
	char *buf = xmalloc(ENV_FILE_MAX + 2);
	struct stat st;
	size_t n = 0;
	int fd, rc = -1;

	/* O_NONBLOCK: a FIFO with no writer must not hang the boot here */
	do
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		error_errno("%s: cannot read '%s'", var, path);
		goto out_free;
	}
	if (fstat(fd, &st) < 0) {
		error_errno("%s: cannot read '%s'", var, path);
		goto out_close;
	}
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		error_errno("%s: cannot read '%s'", var, path);
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) { /* secrets are files; a device never ends */
		error("%s: cannot read '%s': not a regular file", var, path);
		goto out_close;
	}
	while (n <= ENV_FILE_MAX) {
		ssize_t r = read(fd, buf + n, ENV_FILE_MAX + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			error_errno("%s: cannot read '%s'", var, path);
			goto out_close;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > ENV_FILE_MAX) {
		error("%s: '%s' is larger than %d KiB: not a file with one value", var,
		      path, ENV_FILE_MAX / 1024);
		goto out_close;
	}
	if (memchr(buf, '\0', n)) {
		error("%s: '%s' holds a NUL byte: not a text file with one value", var,
		      path);
		goto out_close;
	}
	if (n > 0 && buf[n - 1] == '\n') {
		n--;
		if (n > 0 && buf[n - 1] == '\r')
			n--;
	}
	buf[n] = '\0';
	rc = 0;
out_close:
	if (close(fd) < 0 && rc == 0)
		rc = error_errno("%s: cannot read '%s'", var, path);
out_free:
	if (rc == 0)
		*out = buf;
	else
		free(buf);
	return rc;
}

/* One setting found in the environment. */
struct env_value {
	char *value;	  /* malloc'd */
	char var[160];	  /* NAME, or NAME_FILE when the value came from a file */
	const char *path; /* with NAME_FILE: the file (the environment's string) */
};

/*
 * NAME's value, or the content of the file NAME_FILE names: 1 with ev
 * filled, 0 when neither is set, -1 logged. As in file_env, an empty
 * variable counts as unset where the other one is set; an empty NAME is
 * unset anyway when empty_is_unset.
 */
static int env_lookup(const char *name, bool empty_is_unset, struct env_value *ev)
{
	const char *v = getenv(name), *path;

	ev->value = NULL;
	ev->path = NULL;
	snprintf(ev->var, sizeof(ev->var), "%s_FILE", name);
	path = getenv(ev->var);
	if (path && !*path)
		path = NULL;
	if (v && *v && path)
		return error("both %s and %s are set: use one of them", name, ev->var);
	if (path) {
		ev->path = path;
		return read_env_file(ev->var, path, &ev->value) < 0 ? -1 : 1;
	}
	if (!v || (!*v && empty_is_unset))
		return 0;
	snprintf(ev->var, sizeof(ev->var), "%s", name);
	ev->value = xstrdup(v);
	return 1;
}

/* Key k from the variable name (or name_FILE); 0 when set or unset, -1 logged. */
static int apply_env(struct config *c, const struct key *k, const char *name,
		     bool empty_is_unset)
{
	struct env_value ev;
	char why[200], shown[256];
	int rc = env_lookup(name, empty_is_unset, &ev);

	if (rc <= 0)
		return rc;
	rc = set_value(c, k, ev.value, why, sizeof(why));
	if (rc == 0)
		source_set(c, k, ev.path ? ORIGIN_ENV_FILE : ORIGIN_ENV, ev.var, ev.path,
			   0);
	else if (ev.path) /* a file's content is a secret: never echoed */
		error("%s: bad value in '%s': %s", ev.var, ev.path, why);
	else if (k->flags & K_URL)
		error("%s: %s", ev.var, why);
	else
		error("%s: bad value '%s': %s", ev.var,
		      redact_url(ev.value, shown, sizeof(shown)), why);
	free(ev.value);
	return rc;
}

/* Is e[0, len) the variable of a key, FERRY_<SECTION>_<KEY>[_FILE]? */
static bool known_env(const char *e, size_t len)
{
	char name[128];

	for (size_t i = 0; i < NKEYS; i++) {
		size_t n;

		env_name(&keys[i], name, sizeof(name));
		n = strlen(name);
		if (len >= n && !strncmp(e, name, n) &&
		    (len == n || (len == n + 5 && !strncmp(e + n, "_FILE", 5))))
			return true;
	}
	return false;
}

/* A typo in a variable for a known section must not be a silent default. */
static int check_unknown_env(void)
{
	static const char config_file[] = "FERRY_CONFIG_FILE";
	extern char **environ;

	for (char **e = environ; *e; e++) {
		size_t len = strcspn(*e, "=");

		/* the _FILE convention misread: FERRY_CONFIG is a path already */
		if (len == strlen(config_file) && !strncmp(*e, config_file, len))
			return error("%s: not a setting: name the config file with "
				     "FERRY_CONFIG=PATH or -c PATH",
				     config_file);
		for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
			char prefix[64];
			size_t plen = (size_t)snprintf(prefix, sizeof(prefix),
						       "FERRY_%s_", sections[i]);
			bool file = len > plen + 5 && !strncmp(*e + len - 5, "_FILE", 5);

			if (len <= plen || strncasecmp(*e, prefix, plen) ||
			    known_env(*e, len))
				continue;
			if (file)
				return error("%.*s: unknown setting (no key '%.*s' in "
					     "[%s] to read from a file)",
					     (int)len, *e, (int)(len - plen - 5),
					     *e + plen, sections[i]);
			return error("%.*s: unknown setting (no key '%.*s' in [%s])",
				     (int)len, *e, (int)(len - plen), *e + plen,
				     sections[i]);
		}
	}
	return 0;
}

int config_load_env(struct config *c)
{
	char name[128];

	/* The conventional variable first, so FERRY_DATABASE_URL can override it. */
	if (apply_env(c, find_key("database", "url"), "DATABASE_URL", true) < 0)
		return -1;
	for (size_t i = 0; i < NKEYS; i++) {
		env_name(&keys[i], name, sizeof(name));
		if (apply_env(c, &keys[i], name, false) < 0)
			return -1;
	}
	return check_unknown_env();
}

/* The command-line options that set a key. */
static const struct {
	const char *option, *section, *name;
} option_keys[] = {
	{ "--database-url", "database", "url" },
	{ "--migrations", "migrations", "dir" },
};

int config_set_option(struct config *c, const char *option, const char *value)
{
	char why[200];

	for (size_t i = 0; i < sizeof(option_keys) / sizeof(option_keys[0]); i++) {
		const struct key *k;

		if (strcmp(option, option_keys[i].option))
			continue;
		k = find_key(option_keys[i].section, option_keys[i].name);
		/* the value is not echoed: --database-url may hold a password */
		if (set_value(c, k, value, why, sizeof(why)) < 0)
			return error("%s: %s", option, why);
		source_set(c, k, ORIGIN_OPTION, option, NULL, 0);
		return 0;
	}
	return error("no setting for option '%s'", option);
}

void config_set_verbosity(struct config *c, int verbosity)
{
	long long level = c->log_level + verbosity;

	if (level < LOG_ERROR)
		level = LOG_ERROR;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	if (level != c->log_level)
		source_set(c, find_key("log", "level"), ORIGIN_OPTION,
			   verbosity > 0 ? "-v" : "-q", NULL, 0);
	c->log_level = level;
}

/* "143,130" from the statuses that count as 0. */
static void status_list_text(const bool statuses[256], char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < 256 && n < size; i++)
		if (statuses[i])
			n += (size_t)snprintf(buf + n, size - n, "%s%d", n ? "," : "", i);
}

/* A string value as shown; a value from a NAME_FILE is a secret. */
static void string_text(const struct key *k, const char *v, enum config_origin origin,
			char *buf, size_t size)
{
	if (k->flags & K_URL)
		redact_url(v, buf, size);
	else if (origin == ORIGIN_ENV_FILE)
		snprintf(buf, size, "***");
	else
		snprintf(buf, size, "%s", v);
}

void config_item(const struct config *c, size_t i, struct config_item *it)
{
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	const struct key *k = &keys[i];
	const void *field = (const char *)c + k->offset;
	long long v;

	it->section = k->section;
	it->name = k->name;
	it->source = &c->source[i];
	it->kind = ITEM_STRING;
	it->text[0] = '\0';
	switch (k->type) {
	case T_STR:
		if (*(char *const *)field)
			string_text(k, *(char *const *)field, it->source->origin,
				    it->text, sizeof(it->text));
		else
			it->kind = ITEM_NULL;
		break;
	case T_INT:
		it->kind = ITEM_NUMBER;
		snprintf(it->text, sizeof(it->text), "%lld", *(const long long *)field);
		break;
	case T_BOOL:
		it->kind = ITEM_BOOL;
		snprintf(it->text, sizeof(it->text), "%s",
			 *(const bool *)field ? "true" : "false");
		break;
	case T_LEVEL:
		v = *(const long long *)field;
		snprintf(it->text, sizeof(it->text), "%s",
			 v >= LOG_ERROR && v <= LOG_DEBUG ? levels[v] : "?");
		break;
	case T_FORMAT:
		snprintf(it->text, sizeof(it->text), "%s",
			 *(const long long *)field == LOG_JSON ? "json" : "text");
		break;
	case T_STATUSES:
		status_list_text(field, it->text, sizeof(it->text));
		break;
	case T_VERSION:
		snprintf(it->text, sizeof(it->text), "%s", version_str(field));
		break;
	case T_MODE:
		v = *(const long long *)field;
		snprintf(it->text, sizeof(it->text), "%s",
			 v == MODE_REBUILD ? "rebuild"
			 : v == MODE_APP   ? "app"
					   : "in-place");
		break;
	case T_LEDGER:
		snprintf(it->text, sizeof(it->text), "%s", *(const char *const *)field);
		break;
	case T_MIGRATION_FORMAT:
		snprintf(it->text, sizeof(it->text), "%s",
			 *(const char *const *)field ? *(const char *const *)field
						     : "auto");
		break;
	}
}
