/*
 * config: one table lists every key with its type and default, so the INI
 * reader, the environment overlay and the reference ferry.ini cannot drift
 * apart. Unknown sections and keys are errors, never silently ignored.
 */
#include "config.h"
#include "util.h"

#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum type { T_STR, T_INT, T_BOOL, T_LEVEL, T_FORMAT, T_STATUSES, T_VERSION };

struct key {
	const char *section, *name;
	enum type type;
	size_t offset;
	long long min, max;
};

#define OFF(f) offsetof(struct config, f)
/* clang-format off */
static const struct key keys[] = {
	{ "database", "url", T_STR, OFF(database_url), 0, 0 },
	{ "database", "wait_seconds", T_INT, OFF(wait_seconds), 0, 86400 },
	{ "database", "state_dir", T_STR, OFF(state_dir), 0, 0 },
	{ "database", "maintenance_db", T_STR, OFF(maintenance_db), 0, 0 },
	{ "migrations", "dir", T_STR, OFF(migrations_dir), 0, 0 },
	{ "migrations", "lock_timeout_seconds", T_INT, OFF(lock_timeout_seconds), 0, 86400 },
	{ "migrations", "auto_upgrade", T_BOOL, OFF(auto_upgrade), 0, 0 },
	{ "migrations", "statement_lock_timeout", T_INT, OFF(statement_lock_timeout), 1, 3600 },
	{ "migrations", "target_version", T_VERSION, OFF(target_version), 0, 0 },
	{ "snapshot", "dir", T_STR, OFF(snapshot_dir), 0, 0 },
	{ "snapshot", "keep", T_INT, OFF(snapshot_keep), 1, 100 },
	{ "run", "user", T_STR, OFF(run_user), 0, 0 },
	{ "run", "grace_seconds", T_INT, OFF(grace_seconds), 0, 3600 },
	{ "run", "signal_group", T_BOOL, OFF(signal_group), 0, 0 },
	{ "run", "exec", T_BOOL, OFF(exec), 0, 0 },
	{ "run", "exit_zero", T_STATUSES, OFF(exit_zero), 0, 0 },
	{ "health", "url", T_STR, OFF(health_url), 0, 0 },
	{ "health", "command", T_STR, OFF(health_command), 0, 0 },
	{ "health", "interval_seconds", T_INT, OFF(health_interval_seconds), 1, 3600 },
	{ "health", "timeout_seconds", T_INT, OFF(health_timeout_seconds), 1, 86400 },
	{ "health", "after_upgrade_only", T_BOOL, OFF(health_after_upgrade_only), 0, 0 },
	{ "health", "max_attempts", T_INT, OFF(health_max_attempts), 1, 1000 },
	{ "backup", "paths", T_STR, OFF(backup_paths), 0, 0 },
	{ "backup", "exclude", T_STR, OFF(backup_exclude), 0, 0 },
	{ "backup", "dir", T_STR, OFF(backup_dir), 0, 0 },
	{ "backup", "zstd_level", T_INT, OFF(backup_zstd_level), 1, 19 },
	{ "backup", "threads", T_INT, OFF(backup_threads), 0, 64 },
	{ "backup", "before_upgrade", T_BOOL, OFF(backup_before_upgrade), 0, 0 },
	{ "backup", "max_bytes", T_INT, OFF(backup_max_bytes), 1, 1LL << 50 },
	{ "backup", "max_members", T_INT, OFF(backup_max_members), 1, 100000000 },
	{ "doctor", "checks_dir", T_STR, OFF(doctor_checks_dir), 0, 0 },
	{ "log", "level", T_LEVEL, OFF(log_level), 0, 0 },
	{ "log", "format", T_FORMAT, OFF(log_format), 0, 0 },
};

/* Sections of DESIGN.md whose keys arrive with later features. */
static const char *const sections[] = {
	"database", "migrations", "snapshot", "run", "health",
	"backup", "doctor", "app", "log",
};
/* clang-format on */

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->wait_seconds = 30;
	c->maintenance_db = xstrdup("postgres");
	c->migrations_dir = xstrdup("/app/migrations");
	c->lock_timeout_seconds = 300;
	c->auto_upgrade = true;
	c->statement_lock_timeout = 5;
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

void config_release(struct config *c)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].type == T_STR)
			free(*(char **)((char *)c + keys[i].offset));
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
	}
	return -1;
}

static const struct key *find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
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
	int line;      /* lines read so far: the one inih is parsing */
	int msg_line;  /* where msg was found */
	char msg[512]; /* the first error found by the reader or the handler */
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
		if (k->offset == OFF(database_url))
			snprintf(ctx->msg, sizeof(ctx->msg), "[%s] %s: %s", k->section,
				 k->name, why);
		else
			snprintf(ctx->msg, sizeof(ctx->msg),
				 "[%s] %s: bad value '%s': %s", k->section, k->name,
				 redact_url(value, shown, sizeof(shown)), why);
		return 0;
	}
	return 1;
}

/* Parses the INI text in f; name is the file named in messages. */
static int load_stream(struct config *c, FILE *f, const char *name)
{
	struct ini_ctx ctx = { .c = c, .f = f };
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

int config_load_env(struct config *c)
{
	extern char **environ;
	char name[128], why[200];
	char shown[256];
	const char *v;

	/* The conventional variable first, so FERRY_DATABASE_URL can override it. */
	v = getenv("DATABASE_URL");
	if (v && *v)
		set_value(c, find_key("database", "url"), v, why, sizeof(why));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		env_name(&keys[i], name, sizeof(name));
		v = getenv(name);
		if (!v)
			continue;
		if (set_value(c, &keys[i], v, why, sizeof(why)) < 0) {
			if (keys[i].offset == OFF(database_url))
				return error("%s: %s", name, why);
			return error("%s: bad value '%s': %s", name,
				     redact_url(v, shown, sizeof(shown)), why);
		}
	}
	/* A typo in a variable for a known section must not be a silent default. */
	for (char **e = environ; *e; e++) {
		for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
			char prefix[64];
			size_t plen = (size_t)snprintf(prefix, sizeof(prefix),
						       "FERRY_%s_", sections[i]);
			size_t len = strcspn(*e, "=");

			if (len <= plen || strncasecmp(*e, prefix, plen))
				continue;
			bool known = false;
			for (size_t j = 0; j < sizeof(keys) / sizeof(keys[0]); j++) {
				env_name(&keys[j], name, sizeof(name));
				if (strlen(name) == len && !strncmp(*e, name, len))
					known = true;
			}
			if (!known)
				return error(
					"%.*s: unknown setting (no key '%.*s' in [%s])",
					(int)len, *e, (int)(len - plen), *e + plen,
					sections[i]);
		}
	}
	return 0;
}
