/*
 * unit: TAP tests for the parsers: config values, URL redaction, the
 * PostgreSQL statement splitter and its no-transaction detection,
 * checksum normalisation, versions and migration formats; and for the
 * plan.
 */
#include "config.h"
#include "exits.h"
#include "journal.h"
#include "log.h"
#include "migrations.h"
#include "pid1.h"
#include "plan.h"
#include "postgres.h"
#include "store.h"
#include "ledger.h"
#include "ledger_shape.h"
#include "util.h"
#include "version.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

static int n, failed;

static void ok(int cond, const char *what)
{
	n++;
	if (!cond)
		failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", n, what);
}

static void redacts(const char *url, const char *want)
{
	char buf[512], what[700];

	redact_url(url, buf, sizeof(buf));
	snprintf(what, sizeof(what), "redact %s -> %s (got %s)", url, want, buf);
	ok(!strcmp(buf, want), what);
}

/* splits sql and compares the statements, "|"-joined, with want */
static void splits(const char *sql, const char *want, const char *what)
{
	struct sql_statement *st;
	size_t count = pg_split(sql, &st);
	char got[1024] = "", msg[1400];

	for (size_t i = 0; i < count; i++) {
		char one[512];

		snprintf(one, sizeof(one), "%s%.*s@%d", i ? "|" : "", (int)st[i].len,
			 st[i].start, st[i].line);
		strncat(got, one, sizeof(got) - strlen(got) - 1);
	}
	free(st);
	snprintf(msg, sizeof(msg), "split %s (got %s)", what, got);
	ok(!strcmp(got, want), msg);
}

/* pg_split_check: want NULL for a complete script, else a text of why */
static void complete(const char *sql, const char *want, const char *what)
{
	char why[512] = "", msg[1200];
	int rc = pg_split_check(sql, why, sizeof(why));

	snprintf(msg, sizeof(msg), "%s: %s (got %s)", what, want ? want : "complete",
		 rc ? why : "complete");
	ok(want ? rc < 0 && strstr(why, want) : rc == 0, msg);
}

/* The versions of list ("1 1.1 1.10", space-separated) into out; how many. */
static size_t versions_of(const char *list, struct version *out, size_t max)
{
	size_t count = 0;

	while (*list && count < max) {
		size_t len = strcspn(list, " ");

		if (len && !version_parse(&out[count++], list, len))
			abort();
		list += len + (list[len] == ' ');
	}
	return count;
}

/*
 * plan_make on an image shipping the versions in shipped ("1 2 3", in
 * order) and a ledger holding those in applied, up to target ("": the
 * highest); want: the kind, the pending versions ("4 5") and for a
 * refusal a text of the reason. Migration 2 is named 0002_m, 1.2 1.2_m.
 */
static void plans(const char *shipped, const char *applied, const char *target,
		  enum plan_kind want_kind, const char *want_pending,
		  const char *want_why, const char *what)
{
	struct migration items[16] = { 0 };
	struct ledger_row rows[16] = { 0 };
	struct version vs[16], va[16], to = VERSION_ZERO;
	struct migration_set set = { .format = "ferry",
				     .dir = (char *)"m",
				     .items = items };
	struct ledger l = { .exists = true, .rows = rows };
	char names[16][64], pending[256] = "", msg[1400];
	struct plan p;

	set.n = versions_of(shipped, vs, 16);
	for (size_t i = 0; i < set.n; i++) {
		struct migration *m = &items[i];
		int pad = version_is_integer(&vs[i])
				  ? 4 - (int)strlen(version_str(&vs[i]))
				  : 0;

		snprintf(names[i], sizeof(names[0]), "%.*s%s_m", pad > 0 ? pad : 0,
			 "0000", version_str(&vs[i]));
		m->version = vs[i];
		m->name = m->path = names[i];
		memset(m->sha256, 'a', 64);
	}
	l.n = versions_of(applied, va, 16);
	for (size_t i = 0; i < l.n; i++) {
		rows[i].version = va[i];
		rows[i].name = (char *)"row";
		memset(rows[i].sha256, 'a', 64);
	}
	versions_of(target, &to, 1);
	plan_make(&p, &set, &l, true, &to, false);
	for (size_t i = 0; i < p.n_pending; i++) {
		size_t len = strlen(pending);
		snprintf(pending + len, sizeof(pending) - len, "%s%s", i ? " " : "",
			 version_str(&p.pending[i]->version));
	}
	snprintf(msg, sizeof(msg),
		 "plan %s: kind %d pending '%s' (got kind %d pending '%s' "
		 "why '%s')",
		 what, want_kind, want_pending, p.kind, pending, p.why);
	ok(p.kind == want_kind && !strcmp(pending, want_pending) &&
		   (!want_why || strstr(p.why, want_why)),
	   msg);
	plan_release(&p);
}

static void autocommit(const char *stmt, int want)
{
	char msg[300];

	snprintf(msg, sizeof(msg), "%s %s outside a transaction", stmt,
		 want ? "runs" : "does not run");
	ok(pg_needs_autocommit(stmt, strlen(stmt)) == want, msg);
}

/* A statement is not a C string: nothing past its length is read (ASan
 * catches it in `make asan`), an unclosed comment included. */
static void autocommit_bounded(const char *stmt, int want)
{
	size_t len = strlen(stmt);
	char *copy = xmalloc(len), msg[300];

	memcpy(copy, stmt, len);
	snprintf(msg, sizeof(msg), "'%s', not NUL-terminated: read within its length",
		 stmt);
	ok(pg_needs_autocommit(copy, len) == want, msg);
	free(copy);
}

/* url -> engine and (SQLite) path; want_engine NULL: refused */
static void parses(const char *url, const char *want_engine, const char *want_path)
{
	struct store st;
	char msg[600];
	int rc = store_init(&st, url);
	int good = want_engine ? rc == 0 && !strcmp(st.ops->engine, want_engine) &&
					 (!want_path || !strcmp(st.path, want_path))
			       : rc < 0;

	snprintf(msg, sizeof(msg), "database URL '%s' -> %s %s", url,
		 want_engine ? want_engine : "refused", want_path ? want_path : "");
	ok(good, msg);
	store_release(&st);
}

/* ---- pid1: the supervisor's hook, on real children ---- */

/* What a hook saw, and what it answers. */
struct hook_probe {
	int stop_at;	 /* the call of check that asks for the stop, 0: none */
	int checks;	 /* calls of check */
	pid_t child;	 /* the pid check was given */
	int exits;	 /* calls of exited */
	int exited_with; /* the status exited was given */
	int replace;	 /* the status exited returns */
	bool stopped;	 /* what exited was told about a stop */
};

static int probe_check(void *arg, pid_t child, int *status)
{
	struct hook_probe *p = arg;

	p->child = child;
	if (++p->checks != p->stop_at)
		return 0;
	*status = EXIT_UPGRADE_FAILED;
	return 1;
}

static int probe_exited(void *arg, int status, bool stopped)
{
	struct hook_probe *p = arg;

	p->exits++;
	p->exited_with = status;
	p->stopped = stopped;
	return p->replace;
}

/*
 * pid1_run as `ferry run` calls it, from this ordinary process: signals
 * blocked for the run only, stdin away from any terminal (the child would
 * take its foreground from us).
 */
static int supervise(struct hook_probe *p, char **argv)
{
	struct run_hook hook = { .interval_seconds = 0.01,
				 .check = probe_check,
				 .exited = probe_exited,
				 .arg = p };
	struct run_opts o = { .grace_seconds = 5, .hook = &hook };
	int in = dup(STDIN_FILENO), null = open("/dev/null", O_RDONLY);
	sigset_t saved;
	int rc;

	if (null >= 0 && dup2(null, STDIN_FILENO) < 0)
		perror("dup2");
	if (null >= 0)
		close(null);
	sigprocmask(SIG_SETMASK, NULL, &saved);
	pid1_block_signals();
	rc = pid1_run(&o, argv);
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (in >= 0 && dup2(in, STDIN_FILENO) < 0)
		perror("dup2");
	if (in >= 0)
		close(in);
	return rc;
}

static void pid1_hook_tests(void)
{
	char sleep_path[] = "/bin/sleep", thirty[] = "30", sh_path[] = "/bin/sh",
	     dash_c[] = "-c", exit3[] = "exit 3";
	char *sleeper[] = { sleep_path, thirty, NULL },
	     *exiter[] = { sh_path, dash_c, exit3, NULL };
	struct hook_probe p = { .stop_at = 3 };
	char msg[200];
	int rc;

	rc = supervise(&p, sleeper);
	snprintf(msg, sizeof(msg),
		 "pid1 hook: the check's stop returns its status (got %d)", rc);
	ok(rc == EXIT_UPGRADE_FAILED, msg);
	snprintf(msg, sizeof(msg),
		 "pid1 hook: check called 3 times, none after its stop (got %d)",
		 p.checks);
	ok(p.checks == 3, msg);
	ok(p.child > 0 && kill(p.child, 0) < 0 && errno == ESRCH,
	   "pid1 hook: the server it stopped is gone");
	ok(p.child > 0 && waitpid(p.child, NULL, WNOHANG) < 0 && errno == ECHILD,
	   "pid1 hook: and reaped");
	ok(p.exits == 0, "pid1 hook: exited is not called after the check's own stop");

	p = (struct hook_probe){ .replace = EXIT_DATA };
	rc = supervise(&p, exiter);
	snprintf(msg, sizeof(msg),
		 "pid1 hook: exited saw the server's status 3 (got %d, %d calls)",
		 p.exited_with, p.exits);
	ok(p.exits == 1 && p.exited_with == 3, msg);
	ok(!p.stopped, "pid1 hook: an exit of its own is not a stop that was asked for");
	snprintf(msg, sizeof(msg), "pid1 hook: exited's status is returned (got %d)", rc);
	ok(rc == EXIT_DATA, msg);
}

/* ---- end of pid1 ---- */

/* ---- versions and migration formats --------------------------------------------- */

/* a and b parse and compare as want (<0, 0, >0), the other way round too */
static void orders(const char *a, const char *b, int want)
{
	struct version x, y;
	char msg[300];
	int ab = 2, ba = 2;

	if (version_parse(&x, a, strlen(a)) && version_parse(&y, b, strlen(b))) {
		ab = version_cmp(&x, &y);
		ba = version_cmp(&y, &x);
	}
	snprintf(msg, sizeof(msg), "version %s %s %s (got %d, reversed %d)", a,
		 want < 0 ? "<"
		 : want	  ? ">"
			  : "==",
		 b, ab, ba);
	ok(ab != 2 && (ab > 0) - (ab < 0) == want && (ba > 0) - (ba < 0) == -want, msg);
}

/* len bytes of s parse to the canonical text want; want NULL: refused */
static void canonical(const char *s, size_t len, const char *want, const char *what)
{
	struct version v = VERSION_ZERO;
	bool parsed = version_parse(&v, s, len);
	char msg[300];

	snprintf(msg, sizeof(msg), "version %s -> %s (got %s)", what,
		 want ? want : "refused", parsed ? version_str(&v) : "refused");
	ok(want ? parsed && !strcmp(version_str(&v), want)
		: !parsed && version_is_zero(&v),
	   msg);
}

static void version_tests(void)
{
	char zeros[VERSION_INPUT_MAX + 2], digits[VERSION_TEXT_MAX + 2];
	struct version v, w;
	long long ll = -7;

	orders("1.1", "1.2", -1), orders("1.2", "1.10", -1), orders("1.1", "1.10", -1);
	orders("9", "10", -1), orders("20240101120000", "20240101120001", -1);
	orders("1", "1.1", -1), orders("1.9", "2", -1), orders("1.99", "2", -1);
	orders("0", "1", -1), orders("0", "0.1", -1), orders("1", "1.0.1", -1);
	orders("99999999999999999999999", "100000000000000000000000", -1);
	orders("0001", "1", 0), orders("1.0", "1", 0), orders("1.0.0", "1", 0);
	orders("01.002", "1.2", 0), orders("0", "0.0", 0), orders("000", "0", 0);
	orders("3.0.7", "3.0.6", 1);

	canonical("0003", 4, "3", "0003"), canonical("0", 1, "0", "0");
	canonical("0.0.0", 5, "0", "0.0.0"), canonical("1.02.0", 6, "1.2", "1.02.0");
	canonical("1.0.1", 5, "1.0.1", "1.0.1"), canonical("0.1", 3, "0.1", "0.1");
	canonical("20240101120000", 14, "20240101120000", "a timestamp");
	canonical("12", 1, "1", "the first byte of 12 (a length, no NUL needed)");
	canonical("", 0, NULL, "empty"), canonical(".", 1, NULL, "a dot");
	canonical("1.", 2, NULL, "a trailing dot"),
		canonical(".1", 2, NULL, "a leading dot");
	canonical("1..2", 4, NULL, "an empty segment"),
		canonical("1a", 2, NULL, "a letter");
	canonical("-1", 2, NULL, "a sign"), canonical(" 1", 2, NULL, "a space");
	canonical("1_2", 3, NULL, "an underscore"),
		canonical("1\0", 2, NULL, "a NUL byte");
	canonical("0x10", 4, NULL, "hex"), canonical(NULL, 1, NULL, "NULL");

	memset(zeros, '0', sizeof(zeros));
	canonical(zeros, VERSION_INPUT_MAX, "0", "255 zeros (the longest input)");
	zeros[VERSION_INPUT_MAX - 1] = '7';
	canonical(zeros, VERSION_INPUT_MAX, "7", "254 zeros and 7");
	canonical(zeros, VERSION_INPUT_MAX + 1, NULL, "256 bytes (too long)");
	memset(digits, '9', sizeof(digits));
	canonical(digits, VERSION_TEXT_MAX,
		  "99999999999999999999999999999999999999999999999",
		  "47 digits (the longest canonical text)");
	canonical(digits, VERSION_TEXT_MAX + 1, NULL, "48 digits (too long)");

	ok(version_parse(&v, "0000000000000000000003", 22) && version_to_ll(&v, &ll) &&
		   ll == 3,
	   "version 0000000000000000000003 as an integer: 3");
	ok(version_parse(&v, "999999999999999999", 18) && version_to_ll(&v, &ll) &&
		   ll == 999999999999999999LL,
	   "18 digits fit an integer");
	ll = -7;
	ok(version_parse(&v, "1000000000000000000", 19) && !version_to_ll(&v, &ll) &&
		   ll == -7,
	   "19 digits do not");
	ok(version_parse(&v, "1.2", 3) && !version_to_ll(&v, &ll) && ll == -7 &&
		   !version_is_integer(&v) && v.segments == 2,
	   "a dotted version is not an integer");
	ok(version_parse(&v, "1.0", 3) && version_is_integer(&v) &&
		   version_to_ll(&v, &ll) && ll == 1,
	   "1.0 is the integer 1");
	w = VERSION_ZERO;
	ok(version_is_zero(&w) && !strcmp(version_str(&w), "0") &&
		   version_to_ll(&w, &ll) && ll == 0 && version_parse(&v, "00", 2) &&
		   version_is_zero(&v) && !version_cmp(&v, &w),
	   "the zero version prints 0, is 0, and is what 00 parses to");
	ok(version_from_ll(&v, 42) && !strcmp(version_str(&v), "42") &&
		   version_from_ll(&w, 0) && version_is_zero(&w) &&
		   !version_from_ll(&w, -1) && version_is_zero(&w),
	   "from an integer: 42, 0; -1 refused");
}

/* Writes the files (name=content pairs, NULL-terminated; a name ending in
 * '/' is a directory) into dir, a fresh directory. */
static void write_files(char *dir, const char *const *files)
{
	if (!mkdtemp(dir))
		abort();
	for (size_t i = 0; files[i]; i += 2) {
		char *path = xasprintf("%s/%s", dir, files[i]);
		FILE *f;

		if (path[strlen(path) - 1] == '/') {
			if (mkdir(path, 0755) < 0)
				abort();
		} else if (!(f = fopen(path, "w")) || fputs(files[i + 1], f) < 0 ||
			   fclose(f)) {
			abort();
		}
		free(path);
	}
}

/* Removes what write_files() wrote, in reverse (files before their
 * directories), and dir. */
static void remove_files(const char *dir, const char *const *files)
{
	size_t count = 0;

	while (files[count])
		count += 2;
	while (count > 0) {
		char *path;

		count -= 2;
		path = xasprintf("%s/%s", dir, files[count]);
		if (remove(path) < 0)
			abort();
		free(path);
	}
	if (rmdir(dir) < 0)
		abort();
}

/* The format loads() forces: NULL for auto */
static const char *load_format;

/* Loads the files (see write_files): want is the status, want_log a text
 * of the one log line, want_format the format. */
static void loads(const char *const *files, int want, const char *want_log,
		  const char *want_format, const char *what)
{
	char dir[] = "/tmp/ferry-unit-XXXXXX", log[1024] = "", msg[1600];
	FILE *logf = tmpfile();
	struct migration_set set;
	int rc;

	if (!logf)
		abort();
	write_files(dir, files);
	log_set_fd(fileno(logf));
	rc = migrations_load_as(&set, dir, load_format);
	log_set_fd(2);
	rewind(logf);
	if (!fgets(log, sizeof(log), logf))
		log[0] = '\0';
	fclose(logf);
	snprintf(msg, sizeof(msg), "load %s: status %d (got %d, format %s, log '%.*s')",
		 what, want, rc, set.format ? set.format : "none",
		 (int)strcspn(log, "\n"), log);
	ok(rc == want && (!want_log || strstr(log, want_log)) &&
		   (!want_format || (set.format && !strcmp(set.format, want_format))),
	   msg);
	migrations_release(&set);
	remove_files(dir, files);
}

/*
 * Loads the files (they must load) and compares what each migration holds,
 * "|"-joined, with want: "VERSION:NAME up=UP down=DOWN", UP and DOWN the
 * SQL with '\n' as '/', "-" for no down part, "!" after one that runs
 * without a transaction; then the repeatables, "R:NAME up=UP".
 */
static void loads_parts(const char *const *files, const char *want, const char *what)
{
	char dir[] = "/tmp/ferry-unit-XXXXXX", got[2048] = "", msg[4200];
	struct migration_set set;
	int rc;

	write_files(dir, files);
	rc = migrations_load(&set, dir);
	for (size_t i = 0; rc == 0 && i < set.n; i++) {
		const struct migration *m = &set.items[i];
		char *one = xasprintf("%s%s:%s up=%s%s down=%s%s", i ? "|" : "",
				      version_str(&m->version), m->name, m->sql,
				      m->no_transaction ? "!" : "",
				      m->down_sql ? m->down_sql : "-",
				      m->down_no_transaction ? "!" : "");

		strncat(got, one, sizeof(got) - strlen(got) - 1);
		free(one);
	}
	for (size_t i = 0; rc == 0 && i < set.n_repeatables; i++) {
		char *one = xasprintf("|R:%s up=%s", set.repeatables[i].name,
				      set.repeatables[i].sql);

		strncat(got, one, sizeof(got) - strlen(got) - 1);
		free(one);
	}
	for (char *c = got; *c; c++)
		if (*c == '\n')
			*c = '/';
	snprintf(msg, sizeof(msg), "parts of %s: %s (got status %d, %s)", what, want, rc,
		 got);
	ok(rc == 0 && !strcmp(got, want), msg);
	migrations_release(&set);
	remove_files(dir, files);
}

static void format_tests(void)
{
	static const char *const ferry3[] = { "0001_a.sql",
					      "SELECT 1;\n",
					      "03_c.sql",
					      "-- ferry:no-transaction\nSELECT 3;\n",
					      "README.md",
					      "x",
					      "0002_b.sql~",
					      "x",
					      "0009_dir.sql/",
					      "",
					      NULL };
	static const char *const golang[] = { "000001_a.up.sql",
					      "SELECT 1;\n",
					      "000001_a.down.sql",
					      "SELECT 0;\n",
					      "junk.down.sql",
					      "",
					      "x.up.sql/",
					      "",
					      NULL };
	static const char *const mixed[] = { "000001_a.up.sql", "SELECT 1;\n",
					     "0002_b.sql", "SELECT 2;\n", NULL };
	static const char *const ferry_down[] = { "0001_a.sql", "SELECT 1;\n",
						  "0001_a.down.sql", "SELECT 0;\n",
						  NULL };
	static const char *const stray[] = { "000001_a.up.sql", "SELECT 1;\n",
					     "notes.sql", "SELECT 2;\n", NULL };
	static const char *const unnamed[] = { "0001_a.sql", "SELECT 1;\n", "abc.sql",
					       "x", NULL };
	static const char *const down_only[] = { "000002_b.down.sql", "SELECT 0;\n",
						 NULL };
	static const char *const dup[] = { "0001_a.sql", "SELECT 1;\n", "1_b.sql",
					   "SELECT 2;\n", NULL };
	static const char *const big[] = { "1000000000000000000_a.sql", "SELECT 1;\n",
					   NULL };
	static const char *const golang_downs[] = { "000001_a.up.sql",
						    "SELECT 1;\n",
						    "1_other_name.down.sql",
						    "SELECT 0;\r\n",
						    "000002_b.up.sql",
						    "SELECT 2;\n",
						    "000003_c.down.sql",
						    "",
						    "3_c.up.sql",
						    "SELECT 3;\n",
						    "000009_gone.down.sql",
						    "SELECT 9;\n",
						    NULL };
	static const char *const golang_two_downs[] = { "000001_a.up.sql",
							"SELECT 1;\n",
							"000001_a.down.sql",
							"SELECT 0;\n",
							"01_a.down.sql",
							"SELECT 0;\n",
							NULL };
	static const char *const dir_only[] = { "0001_a.up.sql/", "", "0002_b.sql",
						"SELECT 2;\n", NULL };

	loads(ferry3, 0, NULL, "ferry", "ferry files, other names ignored");
	loads(golang, 0, NULL, "golang-migrate", "golang-migrate, .down.sql skipped");
	loads(mixed, 65, "mixes two formats", NULL, "golang-migrate and ferry files");
	loads(ferry_down, 65, "mixes two formats", NULL, "ferry files and a .down.sql");
	loads(stray, 65,
	      "notes.sql': cannot read a version from the name (golang-migrate "
	      "format expects 000001_name.up.sql)",
	      NULL, "an unnamed .sql file, golang-migrate");
	loads(unnamed, 65,
	      "abc.sql': cannot read a version from the name (ferry format "
	      "expects 0001_name.sql)",
	      NULL, "an unnamed .sql file, ferry");
	loads(down_only, 78, "holds no migrations (no *.up.sql file)", NULL,
	      "only a .down.sql");
	loads(dup, 65, "have the same version 1", NULL, "0001 and 1");
	loads(big, 65, "cannot read a version", NULL, "19 digits");
	loads(dir_only, 0, NULL, "ferry", "a directory named like a golang-migrate file");
	loads(golang_two_downs, 65, "is a second down file for version 1", NULL,
	      "two .down.sql files of one version");
	loads_parts(golang_downs,
		    "1:000001_a up=SELECT 1;/ down=SELECT 0;/|"
		    "2:000002_b up=SELECT 2;/ down=-|3:3_c up=SELECT 3;/ down=",
		    "golang-migrate, down files by version");
	loads_parts(
		ferry3,
		"1:0001_a up=SELECT 1;/ down=-|3:03_c up=-- ferry:no-transaction/SELECT 3;/! down=-",
		"ferry files: no down part");
	{
		struct migration_set set;
		char dir[] = "/tmp/ferry-unit-XXXXXX", *p;
		struct version latest;
		FILE *f;
		int rc;

		if (!mkdtemp(dir))
			abort();
		p = xasprintf("%s/0042_x.sql", dir);
		if (!(f = fopen(p, "w")) ||
		    fputs("-- ferry:no-transaction\nVACUUM;\n", f) < 0 || fclose(f))
			abort();
		rc = migrations_load(&set, dir);
		latest = migrations_latest(&set);
		ok(rc == 0 && set.n == 1 &&
			   !strcmp(version_str(&set.items[0].version), "42") &&
			   set.items[0].no_transaction &&
			   !strcmp(set.items[0].name, "0042_x") &&
			   !strcmp(version_str(&latest), "42") &&
			   migrations_find(&set, &latest) == &set.items[0],
		   "0042_x.sql: version 42, its name, the directive");
		migrations_release(&set);
		unlink(p);
		rmdir(dir);
		free(p);
	}
}

/* ---- versions through the plan, the ledger and the journal ------------------------ */

/* Dotted versions order segment by segment, and 1.0 is 1, in the plan too. */
static void version_plan_tests(void)
{
	plans("1 1.1 1.2 1.10", "1 1.1 1.2", "", PLAN_UPGRADE, "1.10", NULL,
	      "dotted: at 1.2, only 1.10 is pending (1.10 > 1.2)");
	plans("1 1.1 1.2 1.10", "1 1.1 1.10", "", PLAN_REFUSE, "",
	      "the ledger has 1.10 but not 1.2 (1.2_m)",
	      "dotted: 1.10 without 1.2 is a hole");
	plans("1 1.1 1.2 1.10", "1", "1.2", PLAN_UPGRADE, "1.1 1.2", NULL,
	      "dotted target 1.2: 1.10 stays out");
	plans("1 1.1 1.2 1.10", "1 1.1 1.2 1.10", "1.2", PLAN_REFUSE, "",
	      "the database is at 1.10 but this image knows migrations up to 1.2",
	      "dotted: a ledger above the target is ahead");
	plans("1 2", "1.0", "", PLAN_UPGRADE, "2", NULL,
	      "a ledger row 1.0 is migration 1");
	plans("1 2", "1 2.0.1", "", PLAN_REFUSE, "",
	      "the database is at 2.0.1 but this image "
	      "knows migrations up to 2",
	      "2.0.1 is above 2: ahead of the image");
	plans("1 1.2 2", "1 1.1", "", PLAN_REFUSE, "1.2 2",
	      "the database has migration row "
	      "(version 1.1), which this image does not ship",
	      "1.1 is not 1.2 nor 1: unknown");
}

static struct version v_(const char *text)
{
	struct version v;

	if (!version_parse(&v, text, strlen(text)))
		abort();
	return v;
}

static void ledger_find_tests(void)
{
	struct ledger_row rows[3] = { { .version = v_("1") },
				      { .version = v_("1.10") },
				      { .version = v_("1.2") } };
	struct ledger l = { .exists = true, .rows = rows, .n = 3 }, empty = { 0 };
	struct migration items[2] = { { .version = v_("1") }, { .version = v_("1.2") } };
	struct migration_set set = { .items = items, .n = 2 };
	struct version v, top = ledger_top(&l), none = ledger_top(&empty);

	v = v_("1.0"),
	ok(ledger_find(&l, &v) == &rows[0], "ledger_find 1.0 finds the row of 1");
	v = v_("0001"), ok(ledger_find(&l, &v) == &rows[0], "ledger_find 0001 finds 1");
	v = v_("1.2.0"),
	ok(ledger_find(&l, &v) == &rows[2], "ledger_find 1.2.0 finds 1.2");
	v = v_("1.20"),
	ok(!ledger_find(&l, &v), "ledger_find 1.20 finds nothing (not 1.2)");
	v = v_("1.1"), ok(!ledger_find(&l, &v), "ledger_find 1.1 finds nothing");
	ok(!strcmp(version_str(&top), "1.10") && version_is_zero(&none),
	   "ledger_top: 1.10 of 1, 1.10, 1.2; zero of an empty ledger");
	v = v_("1.2.0"),
	ok(migrations_find(&set, &v) == &items[1], "migrations_find 1.2.0: 1.2");
	v = v_("1.0.0"),
	ok(migrations_find(&set, &v) == &items[0], "migrations_find 1.0.0: 1");
	v = v_("2"), ok(!migrations_find(&set, &v), "migrations_find 2: none");
}

/* ferry_migrations has an integer column: a version it cannot hold is refused
 * before any SQL (the fake backend has none to run). */
static void ledger_record_tests(void)
{
	static const struct store_ops fake = { .engine = "fake",
					       .dialect = SQL_POSTGRES };
	struct store st = { .ops = &fake };
	struct migration m = { .version = v_("1.2.3"), .name = (char *)"V1.2.3__x" };

	ledger_attach(&st);
	ok(st.recorder->record(&st, &m, 0, false) < 0 &&
		   !strcmp(st.err, "version 1.2.3 is not an integer: ferry's ledger "
				   "(ferry_migrations) keeps integer versions"),
	   "the ferry ledger refuses to record the dotted version 1.2.3");
	st.err[0] = '\0';
	ok(st.recorder->progress(&st, &m, 1) < 0 &&
		   strstr(st.err, "1.2.3 is not an integer"),
	   "and its statement progress");
	m.version = v_("1000000000000000000");
	ok(st.recorder->record(&st, &m, 0, true) < 0 &&
		   strstr(st.err, "version 1000000000000000000 has more than 18 digits"),
	   "and a 19-digit version");
}

/* A ledger whose version column holds what is no version: read refused, row named. */
static void ledger_read_tests(void)
{
	char dir[] = "/tmp/ferry-unit-XXXXXX", log[1024] = "", *db, *url;
	FILE *logf = tmpfile(), *f;
	struct store st;
	struct ledger l;
	int rc = -1;

	if (!mkdtemp(dir) || !logf)
		abort();
	db = xasprintf("%s/app.db", dir);
	url = xasprintf("sqlite://%s", db);
	if (!(f = fopen(db, "w")) || fclose(f)) /* an empty file: an empty database */
		abort();
	/* exists() resolves the path; an empty file is no database yet (0) */
	if (store_init(&st, url) == 0 && st.ops->exists(&st) == 0 &&
	    st.ops->open(&st) == 0 &&
	    st.ops->sql_exec(&st,
			     "CREATE TABLE ferry_migrations (version INTEGER PRIMARY "
			     "KEY, name TEXT, sha256 TEXT, applied_at TEXT, duration_ms "
			     "INTEGER, dirty INTEGER)",
			     0, NULL) == 0 &&
	    st.ops->sql_exec(&st,
			     "INSERT INTO ferry_migrations VALUES (10, '0010_j', 'a', "
			     "'b', 1, 0), (9, '0009_i', 'a', 'b', 1, 0)",
			     0, NULL) == 0) {
		ledger_attach(&st);
		rc = ledger_read(&st, &l);
		ok(rc == 0 && l.n == 2 && !strcmp(version_str(&l.rows[0].version), "9") &&
			   !strcmp(version_str(&l.rows[1].version), "10"),
		   "ledger_read: 9 before 10");
		ledger_release(&l);
		log_set_fd(fileno(logf));
		rc = st.ops->sql_exec(
			     &st,
			     "INSERT INTO ferry_migrations VALUES (-1, '0001_a', "
			     "'a', 'b', 1, 0)",
			     0, NULL)
			     ? -2
			     : ledger_read(&st, &l);
		log_set_fd(2);
	}
	rewind(logf);
	if (!fgets(log, sizeof(log), logf))
		log[0] = '\0';
	fclose(logf);
	ok(rc == -1 && strstr(log, "ferry_migrations: the row of migration '0001_a' has "
				   "version '-1', which is no version"),
	   "ledger_read refuses a row of version -1, naming it");
	store_release(&st);
	unlink(db);
	rmdir(dir);
	free(db);
	free(url);
}

/* journal_read(st) into *j after writing text to its file (NULL: as it is) */
static int journal_from(const struct state *st, const char *text, struct journal *j)
{
	FILE *f;

	if (text &&
	    (!(f = fopen(st->journal_path, "w")) || fputs(text, f) < 0 || fclose(f)))
		abort();
	return journal_read(st, j);
}

static void journal_tests(void)
{
	char dir[] = "/tmp/ferry-unit-XXXXXX", text[512] = "";
	struct journal j = { .kind = KIND_UPGRADE, .from = v_("1.2"), .to = v_("1.10") },
		       r;
	struct state st;
	FILE *f;
	size_t len = 0;

	if (!mkdtemp(dir))
		abort();
	state_init(&st, dir, NULL);
	snprintf(j.snapshot, sizeof(j.snapshot), "%s/app.db.pre-upgrade", dir);
	ok(journal_write(&st, &j, PHASE_SNAPSHOTTING) == 0 &&
		   journal_from(&st, NULL, &r) == 0 && r.kind == KIND_UPGRADE &&
		   r.phase == PHASE_SNAPSHOTTING &&
		   !strcmp(version_str(&r.from), "1.2") &&
		   !strcmp(version_str(&r.to), "1.10") && !strcmp(r.snapshot, j.snapshot),
	   "journal: an upgrade from 1.2 to 1.10 reads back");
	if ((f = fopen(st.journal_path, "r"))) {
		len = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
	}
	text[len] = '\0';
	ok(strstr(text, "\nfrom=1.2\nto=1.10\n") != NULL,
	   "journal: from=1.2 and to=1.10 as text");
	j = (struct journal){ .kind = KIND_UPGRADE, .from = v_("3"), .to = v_("5") };
	ok(journal_write(&st, &j, PHASE_SNAPSHOTTING) == 0 &&
		   journal_from(&st, NULL, &r) == 0 &&
		   (f = fopen(st.journal_path, "r")) &&
		   (len = fread(text, 1, sizeof(text) - 1, f)) && !fclose(f) &&
		   (text[len] = '\0', strstr(text, "phase=snapshotting\nfrom=3\nto=5\n")),
	   "journal: integer versions written as before (from=3, to=5)");
	ok(journal_from(&st,
			"kind=upgrade\nphase=migrating\nfrom=0003\nto=4\nsnapshot=x\n",
			&r) == 0 &&
		   r.phase == PHASE_MIGRATING && !strcmp(version_str(&r.from), "3") &&
		   !strcmp(version_str(&r.to), "4"),
	   "journal: an older integer journal reads (0003 is 3)");
	ok(journal_from(&st, "phase=restoring\nfrom=2\nto=2.0\nsnapshot=x\n", &r) == 0 &&
		   r.kind == KIND_ROLLBACK,
	   "journal: no kind, from == to (2 and 2.0): a rollback");
	ok(journal_from(&st, "kind=upgrade\nphase=done\nfrom=1.x\nto=-2\n", &r) == 0 &&
		   version_is_zero(&r.from) && version_is_zero(&r.to),
	   "journal: versions that do not parse read as zero, as before");
	journal_clear(&st);
	state_release(&st);
	rmdir(dir);
}

/* dbmate, goose, Flyway and diesel directories (format_tests: ferry's and
 * golang-migrate's) */
static void more_format_tests(void)
{
	static const char *const dbmate[] = {
		"20240101120000_a.sql",
		"-- a comment\n-- migrate:up\nCREATE TABLE t (x);\n\n"
		"-- migrate:down\nDROP TABLE t;\n",
		"20240102120000_b.sql",
		"--migrate:down transaction:false\nSELECT 0;\n"
		"-- migrate:up transaction:false\nVACUUM;\n",
		"20240103120000_c.sql",
		"-- migrate:up\nSELECT 3;\n",
		NULL
	};
	/* the fuzzer's find: the comment before a down-first file's marker
	 * stays (with the up part) */
	static const char *const dbmate_down_first[] = {
		"1_a.sql", "-- x\n-- migrate:down\nSELECT 0;\n-- migrate:up\nSELECT 1;\n",
		NULL
	};
	static const char *const dbmate_before[] = {
		"1_a.sql", "SELECT 0;\n-- migrate:up\nSELECT 1;\n", NULL
	};
	static const char *const dbmate_two[] = {
		"1_a.sql", "-- migrate:up\nSELECT 1;\n-- migrate:up\nSELECT 2;\n", NULL
	};
	static const char *const dbmate_no_up[] = { "1_a.sql",
						    "-- migrate:down\nSELECT 1;\n",
						    NULL };
	static const char *const goose[] = {
		"00001_a.sql",
		"-- +goose Up\nCREATE TABLE t (x);\n-- +goose StatementBegin\n"
		"CREATE TRIGGER g AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END;\n"
		"-- +goose StatementEnd\n-- +goose Down\nDROP TABLE t;\n",
		"20240101120000_b.sql",
		"-- +goose NO TRANSACTION\n-- +GOOSE UP\nVACUUM;\n", NULL
	};
	static const char *const goose_envsub[] = {
		"1_a.sql", "-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${X}';\n", NULL
	};
	static const char *const goose_open[] = {
		"1_a.sql",
		"-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n-- +goose Down\n",
		NULL
	};
	static const char *const goose_unknown[] = {
		"1_a.sql", "-- +goose Up\n-- +goose Sideways\nSELECT 1;\n", NULL
	};
	static const char *const goose_before[] = {
		"1_a.sql", "SELECT 0;\n-- +goose Up\nSELECT 1;\n", NULL
	};
	static const char *const flyway[] = { "V1.10__d.sql",
					      "SELECT 110;\n",
					      "V1_1__b.sql",
					      "SELECT 11;\n",
					      "V1__a.sql",
					      "SELECT 1;\n",
					      "V1.2__c.sql",
					      "SELECT 12;\n",
					      "R__views.sql",
					      "SELECT 'v';\n",
					      "R__a_b.sql",
					      "SELECT 'a';\n",
					      NULL };
	static const char *const flyway_dup[] = { "V1_1__b.sql", "SELECT 11;\n",
						  "V1.1__c.sql", "SELECT 11;\n", NULL };
	static const char *const flyway_undo[] = { "V1__a.sql", "SELECT 1;\n",
						   "U1__a.sql", "SELECT 0;\n", NULL };
	static const char *const flyway_conf[] = {
		"V1__a.sql",
		"SELECT 1;\n",
		"V2__b.sql",
		"VACUUM;\n",
		"V2__b.sql.conf",
		"# flyway\nencoding=UTF-8\nexecuteInTransaction = false\n",
		NULL
	};
	static const char *const flyway_bad_conf[] = { "V2__b.sql", "VACUUM;\n",
						       "V2__b.sql.conf",
						       "executeInTransaction=no\n",
						       NULL };
	static const char *const flyway_base[] = { "B2__all.sql", "SELECT 2;\n", NULL };
	static const char *const diesel[] = {
		"00000000000000_diesel_initial_setup/",
		"",
		"00000000000000_diesel_initial_setup/up.sql",
		"SELECT 0;\n",
		"00000000000000_diesel_initial_setup/down.sql",
		"SELECT -0;\n",
		"2024-01-01-120000_b/",
		"",
		"2024-01-01-120000_b/up.sql",
		"VACUUM;\n",
		"2024-01-01-120000_b/metadata.toml",
		"# diesel\nrun_in_transaction = false # no tx\n[other]\nx = \"y\"\n",
		"20240102120000_c/",
		"",
		"20240102120000_c/up.sql",
		"SELECT 3;\n",
		NULL
	};
	static const char *const diesel_bad_toml[] = {
		"2024-01-01-120000_b/",
		"",
		"2024-01-01-120000_b/up.sql",
		"SELECT 1;\n",
		"2024-01-01-120000_b/metadata.toml",
		"\nrun_in_transaction\n",
		NULL
	};
	static const char *const diesel_bad_value[] = {
		"2024-01-01-120000_b/",
		"",
		"2024-01-01-120000_b/up.sql",
		"SELECT 1;\n",
		"2024-01-01-120000_b/metadata.toml",
		"run_in_transaction = 0\n",
		NULL
	};
	static const char *const diesel_no_up[] = { "2024-01-01-120000_b/", "",
						    "2024-01-01-120000_b/down.sql",
						    "SELECT 1;\n", NULL };
	static const char *const dbmate_goose[] = { "1_a.sql",
						    "-- migrate:up\nSELECT 1;\n",
						    "2_b.sql",
						    "-- +goose Up\nSELECT 2;\n", NULL };
	static const char *const ferry1[] = { "0001_a.sql", "SELECT 1;\n", NULL };

	loads_parts(dbmate,
		    "20240101120000:20240101120000_a up=-- a comment/-- migrate:up/"
		    "CREATE TABLE t (x);// down=-- migrate:down/DROP TABLE t;/|"
		    "20240102120000:20240102120000_b up=-- migrate:up "
		    "transaction:false/VACUUM;/! down=--migrate:down "
		    "transaction:false/SELECT 0;/!|"
		    "20240103120000:20240103120000_c up=-- migrate:up/SELECT 3;/ down=-",
		    "dbmate: sections, either order, transaction:false");
	loads(dbmate, 0, NULL, "dbmate", "dbmate files");
	loads_parts(
		dbmate_down_first,
		"1:1_a up=-- x/-- migrate:up/SELECT 1;/ down=-- migrate:down/SELECT 0;/",
		"dbmate: a comment, then the down section first");
	loads(dbmate_before, 65, "1_a.sql' line 1: SQL before the first", NULL,
	      "dbmate: SQL before the marker");
	loads(dbmate_two, 65, "1_a.sql' line 3: a second '-- migrate:up'", NULL,
	      "dbmate: two up markers");
	loads(dbmate_no_up, 65, "1_a.sql' has no '-- migrate:up' section", NULL,
	      "dbmate: no up section");
	loads_parts(goose,
		    "1:00001_a up=-- +goose Up/CREATE TABLE t (x);/-- +goose "
		    "StatementBegin/CREATE TRIGGER g AFTER INSERT ON t BEGIN SELECT 1; "
		    "SELECT 2; END;/-- +goose StatementEnd/ down=-- +goose Down/DROP "
		    "TABLE t;/|20240101120000:20240101120000_b up=-- +goose NO "
		    "TRANSACTION/-- +GOOSE UP/VACUUM;/! down=-!",
		    "goose: sections, StatementBegin/End, NO TRANSACTION");
	loads(goose, 0, NULL, "goose", "goose files");
	loads(goose_envsub, 65, "1_a.sql' line 2: '-- +goose ENVSUB ON'", NULL,
	      "goose: ENVSUB ON refused");
	loads(goose_open, 65, "1_a.sql' line 2: '-- +goose StatementBegin' without", NULL,
	      "goose: StatementBegin not ended");
	loads(goose_unknown, 65, "line 2: an annotation goose does not know", NULL,
	      "goose: unknown annotation");
	loads(goose_before, 65, "line 1: SQL before '-- +goose Up'", NULL,
	      "goose: SQL before Up");
	loads_parts(flyway,
		    "1:V1__a up=SELECT 1;/ down=-|1.1:V1_1__b up=SELECT 11;/ down=-|"
		    "1.2:V1.2__c up=SELECT 12;/ down=-|1.10:V1.10__d up=SELECT 110;/ "
		    "down=-|R:a_b up=SELECT 'a';/|R:views up=SELECT 'v';/",
		    "Flyway: 1 < 1.1 (V1_1) < 1.2 < 1.10, repeatables by name");
	loads(flyway, 0, NULL, "flyway", "Flyway files");
	loads(flyway_dup, 65, "have the same version 1.1", NULL, "Flyway: V1_1 == V1.1");
	loads(flyway_undo, 65, "U1__a.sql' is a Flyway undo script", NULL,
	      "Flyway: undo refused");
	loads_parts(flyway_conf,
		    "1:V1__a up=SELECT 1;/ down=-|2:V2__b up=VACUUM;/! down=-",
		    "Flyway: executeInTransaction=false in V2__b.sql.conf");
	loads(flyway_bad_conf, 65,
	      "V2__b.sql.conf' line 1: executeInTransaction must be true or false", NULL,
	      "Flyway: executeInTransaction=no");
	loads(flyway_base, 65, "B2__all.sql' is a Flyway baseline script", NULL,
	      "Flyway: baseline refused");
	loads_parts(diesel,
		    "0:00000000000000_diesel_initial_setup up=SELECT 0;/ down=SELECT "
		    "-0;/|20240101120000:2024-01-01-120000_b up=VACUUM;/! down=-!|"
		    "20240102120000:20240102120000_c up=SELECT 3;/ down=-",
		    "diesel: up.sql, down.sql, metadata.toml");
	loads(diesel, 0, NULL, "diesel", "diesel directories");
	loads(diesel_bad_toml, 65, "metadata.toml' line 2: not a line of TOML", NULL,
	      "diesel: a malformed metadata.toml line");
	loads(diesel_bad_value, 65, "line 1: run_in_transaction must be true or false",
	      NULL, "diesel: run_in_transaction = 0");
	loads(diesel_no_up, 65, "up.sql': No such file", NULL, "diesel: no up.sql");
	loads(dbmate_goose, 65, "mixes two formats", NULL, "dbmate and goose files");
	load_format = "goose";
	loads(ferry1, 65, "[migrations] format = goose, but '", NULL,
	      "forced goose, a ferry file");
	loads(goose, 0, NULL, "goose", "forced goose, goose files");
	load_format = "dbmate";
	loads(goose, 65, "is a goose migration (dbmate expects 20240101120000_name.sql)",
	      NULL, "forced dbmate, goose files");
	load_format = "ferry";
	loads(dbmate, 0, NULL, "ferry", "forced ferry: a dbmate marker is a comment");
	load_format = "diesel";
	loads(ferry1, 65, "0001_a.sql' is a ferry migration", NULL,
	      "forced diesel, a ferry file");
	load_format = NULL;
	ok(migrations_format_name("Goose") &&
		   !strcmp(migrations_format_name("Goose"), "goose") &&
		   !migrations_format_name("auto") && !migrations_format_name("sqitch"),
	   "format names: Goose is goose; auto and sqitch are none");
}

int main(void)
{
	bool st[256];

	redacts("postgres://app:s3cret@db:5432/app", "postgres://app:***@db:5432/app");
	redacts("postgresql://app@db/app", "postgresql://app@db/app");
	redacts("postgres://u:p%40ss@h/d?sslmode=require",
		"postgres://u:***@h/d?sslmode=require");
	redacts("postgres://u:a@b@h/d", "postgres://u:***@h/d");
	redacts("postgres://h/d?user=u&password=pw&sslmode=disable",
		"postgres://h/d?user=u&password=***&sslmode=disable");
	redacts("host=db user=app password=s3cret dbname=app",
		"host=db user=app password=*** dbname=app");
	redacts("host=db password = 'it\\'s secret' dbname=app",
		"host=db password =*** dbname=app");
	redacts("sqlite:///data/app.db", "sqlite:///data/app.db");
	redacts("postgres://app:se#cr?et@db/app", "postgres://app:***@db/app");
	redacts("host=db PASSWORD=x sslpassword=y",
		"host=db PASSWORD=*** sslpassword=***");
	redacts("postgres://db/app?sslpassword=k", "postgres://db/app?sslpassword=***");
	redacts("/data/password=x.db", "/data/password=x.db");

	/* Flyway's checksum: CRC-32 of the lines without their ends, the BOM
	 * dropped; CRC-32("abc") is 0x352441c2 */
	ok(ledger_flyway_checksum("abc", 3) == 0x352441c2, "flyway checksum of one line");
	ok(ledger_flyway_checksum("a\nb\r\nc\n", 7) == 0x352441c2,
	   "flyway checksum: LF, CRLF and the last line end do not count");
	ok(ledger_flyway_checksum("\xEF\xBB\xBF"
				  "a\rbc",
				  7) == 0x352441c2,
	   "flyway checksum: BOM and CR dropped");
	ok(ledger_flyway_checksum("\xff", 1) == -16777216,
	   "flyway checksum: CRC-32 0xff000000 comes out negative, as Java's int");

	ok(config_parse_status_list(st, "143, 130") && st[143] && st[130] && !st[0],
	   "status list parses");
	ok(!config_parse_status_list(st, "256"), "status 256 refused");
	ok(!config_parse_status_list(st, "1,,2"), "empty list item refused");
	ok(!config_parse_status_list(st, "abc"), "word refused");

	parses("sqlite:///data/app.db", "sqlite", "/data/app.db");
	parses("sqlite:data/app.db", "sqlite", "data/app.db");
	parses("/data/app.db", "sqlite", "/data/app.db");
	parses("app.db", "sqlite", "app.db");
	parses("postgres://u:p@db:5432/app", "postgresql", NULL);
	parses("postgresql://db/app?sslmode=require", "postgresql", NULL);
	parses("host=db dbname=app user=u", "postgresql", NULL);
	parses("host=db nosuchoption=1", NULL, NULL);
	parses("mysql://db/app", NULL, NULL);
	parses("sqlite://", NULL, NULL);
	parses("sqlite:///data/app.db?mode=ro", NULL, NULL);

	splits("SELECT 1; SELECT 2;", "SELECT 1@1|SELECT 2@1", "two statements");
	splits("-- c; x\nSELECT ';' ; /* a; /* nested; */ b; */ SELECT 2",
	       "SELECT ';' @2|SELECT 2@2", "comments and strings");
	splits("CREATE FUNCTION f() RETURNS int AS $$ BEGIN x; RETURN 1; END $$ LANGUAGE plpgsql;\nSELECT 3",
	       "CREATE FUNCTION f() RETURNS int AS $$ BEGIN x; RETURN 1; END $$ LANGUAGE plpgsql@1|SELECT 3@2",
	       "dollar quotes");
	splits("SELECT $fn$ a $$; b $fn$; SELECT $1",
	       "SELECT $fn$ a $$; b $fn$@1|SELECT $1@1", "tagged dollar quotes, $1");
	splits("SELECT \"a;b\"\"\", E'it\\'s;', 'x'';y'; SELECT 2",
	       "SELECT \"a;b\"\"\", E'it\\'s;', 'x'';y'@1|SELECT 2@1",
	       "quoted identifiers, E'' and '' escapes");
	splits("CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN "
	       "true THEN 1 END; SELECT 2; END;\n\nSELECT 4;",
	       "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN "
	       "true THEN 1 END; SELECT 2; END@1|SELECT 4@3",
	       "BEGIN ATOMIC bodies");
	splits(" ; ;\n-- only a comment\n", "", "empty statements");
	splits("SELECT 1 -- no semicolon", "SELECT 1 -- no semicolon@1",
	       "last statement unterminated");
	splits("CREATE TABLE a (x int);\n/* CREATE TABLE b (y int);\nSELECT 1;",
	       "CREATE TABLE a (x int)@1|/* CREATE TABLE b (y int);\nSELECT 1;@2",
	       "an unclosed comment is kept for the server to refuse, not dropped");
	splits("SELECT 1; INSERT INTO t VALUES ('a;\nb);",
	       "SELECT 1@1|INSERT INTO t VALUES ('a;\nb);@1",
	       "an unclosed literal runs to the end of the file");
	splits("SELECT 1; /* a */ -- b\n", "SELECT 1@1",
	       "closed comments after the last statement");

	complete("SELECT 1; SELECT 2", NULL, "no semicolon at the end");
	complete("SELECT 1; -- the end", NULL, "a line comment at the end");
	complete("SELECT 1; /* a /* b */ c */", NULL,
		 "a nested comment closed at the end");
	complete("SELECT $$ '\" $$, E'\\'', 'it''s'", NULL, "quotes inside quotes");
	complete("SELECT 1;\n/* CREATE TABLE b (y int);", "line 2: a /* comment",
		 "an unclosed comment after the last statement");
	complete("SELECT 1; /* a /* b */ c", "line 1: a /* comment",
		 "an unclosed nested comment");
	complete("SELECT 1;\n\nINSERT INTO t VALUES ('x);\nSELECT 2;",
		 "line 3: a string literal", "an unclosed string literal");
	complete("SELECT 'x'';", "line 1: a string literal",
		 "a doubled quote at the end");
	complete("SELECT E'x\\';", "line 1: a string literal", "an escaped quote in E''");
	complete("SELECT \"a;", "line 1: a quoted identifier",
		 "an unclosed quoted identifier");
	complete("SELECT 1;\nCREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1 $$;",
		 "line 2: the dollar quote $fn$", "an unclosed dollar quote");
	complete("CREATE FUNCTION g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC SELECT 1;",
		 "line 2: a BEGIN ATOMIC body", "BEGIN ATOMIC without END");
	complete(
		"CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;",
		NULL, "BEGIN ATOMIC with its END");

	autocommit("CREATE INDEX CONCURRENTLY i ON t (a)", 1);
	autocommit_bounded("VACUUM /* an unclosed comment", 1);
	autocommit_bounded("/* unclosed", 0);
	autocommit("create unique index concurrently i on t (a)", 1);
	autocommit("/* x */ DROP INDEX CONCURRENTLY i", 1);
	autocommit("REINDEX (VERBOSE) TABLE CONCURRENTLY t", 1);
	autocommit("VACUUM ANALYZE t", 1);
	autocommit("CREATE INDEX i ON t (a)", 0);
	autocommit("SELECT 'CREATE INDEX CONCURRENTLY'", 0);
	autocommit("CREATE TABLE concurrently (a int)", 0);

	ok(pg_transaction_control("BEGIN", 5) && pg_transaction_control(" commit;", 8) &&
		   pg_transaction_control("START TRANSACTION", 17) &&
		   pg_transaction_control("END", 3) &&
		   !pg_transaction_control("ROLLBACK TO s", 13) &&
		   !pg_transaction_control("SAVEPOINT s", 11) &&
		   !pg_transaction_control("PREPARE q AS SELECT 1", 21) &&
		   !pg_transaction_control("CREATE TABLE begin_x (a int)", 28),
	   "BEGIN, COMMIT, START TRANSACTION, END are transaction control; savepoints are not");

	{
		char a[] = "\xEF\xBB\xBFSELECT 1;\r\nSELECT 2;\r\n",
		     b[] = "SELECT 1;\nSELECT 2;\n";
		char ha[65], hb[65];
		size_t la = migrations_normalise(a, strlen(a));
		size_t lb = migrations_normalise(b, strlen(b));

		sha256_hex(a, la, ha);
		sha256_hex(b, lb, hb);
		ok(!strcmp(ha, hb), "BOM and CRLF do not change the checksum");
		ok(!strcmp(hb,
			   "82efb67f3010c6eb7ead02e4f6d9550633dbc1407f99aa487468e7b2567aebbc"),
		   "checksum is the SHA-256 of the normalised text");
	}

	plans("1 2 3", "1", "", PLAN_UPGRADE, "2 3", NULL, "1 of 1..3: 2 and 3 pending");
	plans("1 2 3", "", "", PLAN_UPGRADE, "1 2 3", NULL,
	      "an empty ledger: all pending");
	plans("1 2 3", "1 2 3", "", PLAN_CURRENT, "", NULL, "all applied: current");
	plans("1 2 3", "1 3", "", PLAN_REFUSE, "", "the ledger has 3 but not 2 (0002_m)",
	      "{1,3} of 1..3: a hole, refused, nothing pending");
	plans("1 2 3", "2 3", "", PLAN_REFUSE, "", "the ledger has 2 but not 1 (0001_m)",
	      "{2,3} of 1..3: row 1 lost, refused");
	plans("1 2 3 4", "1 3", "", PLAN_REFUSE, "4", "the ledger has 3 but not 2",
	      "{1,3} of 1..4: refused; only 4, above 3, would be pending");
	plans("1 2 3 4 5", "1 3 5", "", PLAN_REFUSE, "",
	      "the ledger has 3 but not 2 (0002_m), "
	      "which the image ships before it (and 1 more version below 5)",
	      "{1,3,5} of 1..5: the lowest hole named, the other counted");
	plans("1 2 3 4", "1 2 3", "", PLAN_UPGRADE, "4", NULL, "1..3 of 1..4: 4 pending");
	plans("1 2 3 4 5", "1", "3", PLAN_UPGRADE, "2 3", NULL,
	      "target 3: only up to it");
	plans("1 2 3", "1 3", "2", PLAN_REFUSE, "", "the database is at 3",
	      "target below the highest applied: ahead");
	version_plan_tests();

	pid1_hook_tests();
	version_tests();
	format_tests();
	more_format_tests();
	ledger_find_tests();
	ledger_record_tests();
	ledger_read_tests();
	journal_tests();

	printf("1..%d\n", n);
	return failed != 0;
}
