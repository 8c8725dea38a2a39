/*
 * doctor: ferry doctor's checks, each a small function and one row of
 * checks[] below, run in order on a session opened without the lock; the
 * database is opened read-only. A check reports one line or more: ok,
 * warn or fail with what it found. The layers below log their failures;
 * a failing check is a line of the report, not an abort, so while a
 * check runs their error lines are caught (log_capture) and become its
 * detail.
 */
#include "doctor.h"
#include "exits.h"
#include "failures.h"
#include "json.h"
#include "log.h"
#include "rebuild.h"
#include "session.h"
#include "snapshot.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

struct doctor {
	struct session *s;
	bool deep, json;
	struct json js;
	int counts[3];
	bool db_open;	/* read-only */
	bool set_ok;	/* the image's migrations were read */
	bool have_plan; /* s->plan compares them */
	int lock;	/* state_lock_holder's answer */
	char lock_who[512];
	char err[1024]; /* the first error logged below while a check runs */
};

static const char *const status_names[] = { "ok", "warn", "fail" };

static void report(struct doctor *d, enum doctor_status st, const char *name,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void report(struct doctor *d, enum doctor_status st, const char *name,
		   const char *fmt, ...)
{
	char raw[8192], detail[4096], esc[6 * sizeof(detail)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* as in the log: a password that a driver's words hold is taken out */
	redact_text(raw, detail, sizeof(detail));
	d->counts[st]++;
	d->err[0] = '\0'; /* the next error caught is the next check's */
	if (d->json) {
		json_object(&d->js, NULL);
		json_str(&d->js, "name", name);
		json_str(&d->js, "status", status_names[st]);
		json_str(&d->js, "detail", detail);
		json_end(&d->js, '}');
		return;
	}
	escape_line(esc, sizeof(esc), detail, false);
	printf("%-6s%s: %s\n", status_names[st], name, esc);
}

/* Appends to a list in buf: ", " between items. */
static void add(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void add(char *buf, size_t size, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n && n + 2 < size)
		n += (size_t)snprintf(buf + n, size - n, ", ");
	va_start(ap, fmt);
	if (n < size)
		vsnprintf(buf + n, size - n, fmt, ap);
	va_end(ap);
}

static const char *age(time_t t, char *buf, size_t size)
{
	long long s = (long long)(time(NULL) - t);

	if (s < 120)
		snprintf(buf, size, "%lld s", s < 0 ? 0 : s);
	else if (s < 7200)
		snprintf(buf, size, "%lld min", s / 60);
	else if (s < 172800)
		snprintf(buf, size, "%lld h", s / 3600);
	else
		snprintf(buf, size, "%lld days", s / 86400);
	return buf;
}

/* ------------------------------------------------------------------ */
/* Queries whose rows are the findings, in each engine's words */

struct found {
	size_t n;
	char first[1024]; /* the first few, "; " between */
};

static int see_row(void *arg, int ncols, const char *const *v)
{
	struct found *f = arg;
	size_t len = strlen(f->first);

	if (f->n++ < 3 && ncols > 0 && len + 3 < sizeof(f->first))
		snprintf(f->first + len, sizeof(f->first) - len, "%s%s", len ? "; " : "",
			 v[0] ? v[0] : "NULL");
	return 0;
}

/* A check that is a query: no row is fine; rows give status. */
struct probe {
	const char *sql[SQL_DIALECTS]; /* NULL: not for this engine */
	enum doctor_status on_rows[SQL_DIALECTS];
	const char *ok[SQL_DIALECTS];
};

/* clang-format off */
static const struct probe quick_probe = {
	{ [SQL_SQLITE] = "SELECT quick_check FROM pragma_quick_check "
			 "WHERE quick_check <> 'ok'",
	  [SQL_POSTGRES] = "SELECT format('index %I is invalid (a CREATE INDEX "
			   "CONCURRENTLY that failed?)', c.relname) FROM pg_index i "
			   "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n "
			   "ON n.oid = c.relnamespace WHERE NOT i.indisvalid AND "
			   "n.nspname = current_schema()" },
	{ [SQL_SQLITE] = DOCTOR_FAIL, [SQL_POSTGRES] = DOCTOR_WARN },
	{ [SQL_SQLITE] = "PRAGMA quick_check found nothing",
	  [SQL_POSTGRES] = "no invalid index" },
};

static const struct probe integrity_probe = {
	{ [SQL_SQLITE] = "SELECT integrity_check FROM pragma_integrity_check "
			 "WHERE integrity_check <> 'ok'" },
	{ [SQL_SQLITE] = DOCTOR_FAIL },
	{ [SQL_SQLITE] = "PRAGMA integrity_check found nothing" },
};

static const struct probe foreign_key_probe = {
	{ [SQL_SQLITE] = "SELECT 'a row of ' || \"table\" || ' (rowid ' || "
			 "coalesce(rowid, '?') || ') references a missing row of ' || "
			 "parent FROM pragma_foreign_key_check",
	  [SQL_POSTGRES] = "SELECT format('constraint %I of table %I was never "
			   "validated (NOT VALID)', k.conname, c.relname) FROM "
			   "pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN "
			   "pg_namespace n ON n.oid = c.relnamespace WHERE NOT "
			   "k.convalidated AND n.nspname = current_schema()" },
	{ [SQL_SQLITE] = DOCTOR_FAIL, [SQL_POSTGRES] = DOCTOR_WARN },
	{ [SQL_SQLITE] = "PRAGMA foreign_key_check found nothing",
	  [SQL_POSTGRES] = "every constraint validated" },
};

static const char *const version_sql[SQL_DIALECTS] = {
	[SQL_SQLITE] = "SELECT 'SQLite ' || sqlite_version()",
	[SQL_POSTGRES] = "SELECT 'PostgreSQL ' || current_setting('server_version')",
};

static const char *const journal_mode_sql[SQL_DIALECTS] = {
	[SQL_SQLITE] = "PRAGMA journal_mode",
};
/* clang-format on */

static void run_probe(struct doctor *d, const char *name, const struct probe *p)
{
	struct store *st = &d->s->store;
	enum sql_dialect dialect = st->ops->dialect;
	struct found f = { 0 };

	if (!p->sql[dialect])
		return;
	if (st->ops->sql_query(st, p->sql[dialect], 0, NULL, see_row, &f) < 0)
		report(d, DOCTOR_FAIL, name, "%s", st->err);
	else if (f.n)
		report(d, p->on_rows[dialect], name, "%zu problem%s: %s%s", f.n,
		       f.n == 1 ? "" : "s", f.first, f.n > 3 ? "; ..." : "");
	else
		report(d, DOCTOR_OK, name, "%s", p->ok[dialect]);
}

struct value {
	char *buf;
	size_t size;
};

static int first_value(void *arg, int ncols, const char *const *v)
{
	struct value *x = arg;

	if (!x->buf[0] && ncols > 0 && v[0])
		snprintf(x->buf, x->size, "%s", v[0]);
	return 0;
}

/* The first column of the first row of sql into buf; -1 with s->err. */
static int query_value(struct store *st, const char *sql, char *buf, size_t size)
{
	struct value x = { buf, size };

	buf[0] = '\0';
	return st->ops->sql_query(st, sql, 0, NULL, first_value, &x);
}

/* ------------------------------------------------------------------ */
/* The checks */

static void check_database(struct doctor *d, const char *name)
{
	struct store *st = &d->s->store;
	char version[256];

	if (!d->s->db_exists) {
		report(d, DOCTOR_WARN, name,
		       "%s does not exist yet: the first `ferry migrate` or `ferry run` "
		       "creates it",
		       st->url_redacted);
		return;
	}
	if ((st->ops->open_read_only ? st->ops->open_read_only(st) : st->ops->open(st)) <
	    0) {
		report(d, DOCTOR_FAIL, name, "%s cannot be opened: %s", st->url_redacted,
		       d->err);
		return;
	}
	d->db_open = true;
	if (query_value(st, version_sql[st->ops->dialect], version, sizeof(version)) < 0)
		report(d, DOCTOR_FAIL, name, "%s: %s", st->url_redacted, st->err);
	else
		report(d, DOCTOR_OK, name, "%s: %s", st->url_redacted, version);
}

static void check_migrations(struct doctor *d, const char *name)
{
	struct session *s = d->s;
	const struct config *c = s->c;
	int rc;

	if (c->migrations_mode == MODE_APP) { /* README: "Apps that migrate themselves" */
		report(d, DOCTOR_OK, name,
		       "mode = app: the server's own, compiled in (none read from '%s')",
		       c->migrations_dir);
		return;
	}
	rc = c->migrations_mode == MODE_REBUILD
		     ? rebuild_load(&s->set, c->migrations_dir)
		     : migrations_load_as(&s->set, c->migrations_dir,
					  c->migrations_format);
	s->have_set = true; /* released by session_close, whatever was read */
	if (rc) {
		report(d, DOCTOR_FAIL, name, "%s", d->err);
		return;
	}
	if (!version_is_zero(&c->target_version) &&
	    !migrations_find(&s->set, &c->target_version)) {
		report(d, DOCTOR_FAIL, name,
		       "[migrations] target_version %s: no such migration in '%s'",
		       version_str(&c->target_version), c->migrations_dir);
		return;
	}
	for (size_t i = 0; i < s->set.n; i++) {
		const struct migration *m = &s->set.items[i];

		if (s->store.ops->check_migration &&
		    s->store.ops->check_migration(&s->store, m) < 0) {
			report(d, DOCTOR_FAIL, name, "%s", d->err);
			return;
		}
	}
	d->set_ok = true;
	/* the tools' ledgers read with the image's migrations (their names,
	 * golang-migrate's versions below the current one) */
	ledger_configure(&s->store, s->c->migrations_ledger, &s->set);
	report(d, DOCTOR_OK, name, "%zu in '%s' (%s format), up to version %s", s->set.n,
	       s->set.dir, s->set.format,
	       version_str(&s->set.items[s->set.n - 1].version));
}

/* The first names of the plan's pending migrations. */
static void pending_names(const struct plan *p, char *buf, size_t size)
{
	buf[0] = '\0';
	for (size_t i = 0; i < p->n_pending && i < 5; i++)
		add(buf, size, "%s", p->pending[i]->name);
	if (p->n_pending > 5)
		add(buf, size, "and %zu more", p->n_pending - 5);
}

/* Rows the image cannot account for: dirty, unknown, changed. */
static bool ledger_faults(struct doctor *d, char *buf, size_t size)
{
	const struct session *s = d->s;
	char dirty[1024] = "", unknown[1024] = "", changed[1024] = "";

	for (size_t i = 0; i < s->ledger.n; i++) {
		const struct ledger_row *r = &s->ledger.rows[i];
		const struct migration *m = migrations_find(&s->set, &r->version);

		if (r->dirty)
			add(dirty, sizeof(dirty), "%s", r->name);
		if (!m)
			add(unknown, sizeof(unknown), "%s (version %s)", r->name,
			    version_str(&r->version));
		else if (strcmp(m->sha256, r->sha256))
			add(changed, sizeof(changed),
			    "%s (sha256 %.12s applied, %.12s shipped)", m->name,
			    r->sha256, m->sha256);
	}
	snprintf(buf, size, "%s%s%s%s%s%s%s%s",
		 dirty[0] ? "dirty (ran outside a transaction and did not finish): " : "",
		 dirty, dirty[0] && (unknown[0] || changed[0]) ? "; " : "",
		 unknown[0] ? "not shipped by this image: " : "", unknown,
		 unknown[0] && changed[0] ? "; " : "",
		 changed[0] ? "changed after they were applied: " : "", changed);
	return buf[0] != '\0';
}

static void check_ledger(struct doctor *d, const char *name)
{
	struct session *s = d->s;
	const struct ledger *l = &s->ledger;
	struct plan *p = &s->plan;
	struct version top;
	char buf[3200];

	if (ledger_read(&s->store, &s->ledger) < 0) {
		report(d, DOCTOR_FAIL, name, "%s", d->err);
		return;
	}
	top = ledger_top(l);
	if (!d->set_ok) {
		report(d, DOCTOR_WARN, name,
		       "%zu applied (up to %s); not compared with the image, whose "
		       "migrations cannot be read",
		       l->n, version_str(&top));
		return;
	}
	plan_make(p, &s->set, l, true, &s->c->target_version, s->c->allow_out_of_order);
	d->have_plan = true;
	if (ledger_faults(d, buf, sizeof(buf)))
		report(d, DOCTOR_FAIL, name, "%s", buf);
	else if (p->kind == PLAN_REFUSE)
		report(d, DOCTOR_FAIL, name, "%s", p->why);
	else if (p->n_pending) {
		pending_names(p, buf, sizeof(buf));
		report(d, DOCTOR_WARN, name, "%zu applied (up to %s), %zu pending: %s",
		       l->n, version_str(&top), p->n_pending, buf);
	} else
		report(d, DOCTOR_OK, name, "%zu applied (up to %s), none pending", l->n,
		       version_str(&top));
}

static void check_lock(struct doctor *d, const char *name)
{
	d->lock = state_lock_holder(&d->s->state, d->lock_who, sizeof(d->lock_who));
	if (d->lock < 0)
		report(d, DOCTOR_WARN, name, "%s", d->err);
	else if (d->lock == 1)
		report(d, DOCTOR_WARN, name,
		       "held by %s: another ferry is migrating or changing the "
		       "database now",
		       d->lock_who);
	else
		report(d, d->lock ? DOCTOR_WARN : DOCTOR_OK, name, "%s", d->lock_who);
}

static void check_journal(struct doctor *d, const char *name)
{
	struct journal j;
	char what[160], *gone;

	if (journal_read(&d->s->state, &j) < 0) {
		report(d, DOCTOR_FAIL, name, "%s", d->err);
		return;
	}
	if (j.phase == PHASE_NONE) {
		report(d, DOCTOR_OK, name, "no unfinished upgrade");
		return;
	}
	if (j.kind == KIND_ROLLBACK)
		snprintf(what, sizeof(what), "a rollback (kind rollback)");
	else
		snprintf(what, sizeof(what), "%s from %s to %s (kind %s)",
			 j.kind == KIND_DOWNGRADE ? "a downgrade" : "an upgrade",
			 version_str(&j.from), version_str(&j.to), kind_name(j.kind));
	/* while it is written, or put back, a snapshot may be missing */
	gone = j.phase != PHASE_SNAPSHOTTING && j.phase != PHASE_RESTORING &&
			       j.snapshot[0] && !path_exists(j.snapshot)
		       ? xasprintf(" (its snapshot '%s' is missing)", j.snapshot)
		       : xstrdup("");
	if (d->lock == 1)
		report(d, DOCTOR_WARN, name, "%s is under way, in phase %s, by %s%s",
		       what, phase_name(j.phase), d->lock_who, gone);
	else
		report(d, DOCTOR_FAIL, name,
		       "%s was interrupted in phase %s%s: the next `ferry migrate` or "
		       "`ferry run` finishes or undoes it",
		       what, phase_name(j.phase), gone);
	free(gone);
}

static void check_failure(struct doctor *d, const char *name)
{
	struct failure f;
	char what[APP_IDENTITY_MAX + 64];
	int rc = failure_read(&d->s->state, &f);

	if (rc < 0)
		report(d, DOCTOR_FAIL, name, "%s", d->err);
	else if (rc == 0)
		report(d, DOCTOR_OK, name, "none");
	else
		report(d, DOCTOR_WARN, name,
		       "the upgrade %s failed (%lld attempt%s, last at %s): %s%s",
		       failure_what(&f, what, sizeof(what)), f.attempts,
		       f.attempts == 1 ? "" : "s", f.time, f.reason,
		       d->have_plan && failure_same(&f, &d->s->plan)
			       ? " (this image's upgrade: it is not tried again "
				 "until the image ships other migrations)"
			       : "");
}

/* The version the snapshot's own ledger is at: 0, 1 when it has no
 * database to read (a logical file), -1 with why. */
static int snapshot_ledger(struct doctor *d, const char *path, struct version *v,
			   char *why, size_t size)
{
	struct store *st = &d->s->store, snap;
	struct ledger l;
	int rc;

	if (!st->ops->snapshot_open)
		return 1;
	rc = st->ops->snapshot_open(st, path, &snap, why, size);
	if (rc)
		return rc;
	ledger_attach(&snap);
	if (ledger_read(&snap, &l) < 0) {
		snprintf(why, size, "%s", d->err);
		rc = -1;
	} else {
		*v = ledger_top(&l);
		ledger_release(&l);
	}
	store_release(&snap);
	return rc;
}

static void check_one_snapshot(struct doctor *d, const char *name, const char *path,
			       const struct stat *sb)
{
	struct store *st = &d->s->store;
	struct version claim, holds;
	bool claimed;
	char why[1024], old[32];
	int rc;

	if (st->ops->snapshot_usable &&
	    !st->ops->snapshot_usable(st, path, why, sizeof(why))) {
		report(d, DOCTOR_FAIL, name, "%s: %s", path, why);
		return;
	}
	claimed =
		st->ops->snapshot_version && st->ops->snapshot_version(st, path, &claim);
	rc = snapshot_ledger(d, path, &holds, why, sizeof(why));
	if (rc < 0) {
		report(d, DOCTOR_FAIL, name, "%s: %s", path, why);
		return;
	}
	if (rc == 0 && claimed && version_cmp(&claim, &holds)) {
		report(d, DOCTOR_FAIL, name,
		       "%s: says it is of version %s, but its ledger is at %s", path,
		       version_str(&claim), version_str(&holds));
		return;
	}
	if (rc == 1 && !claimed)
		report(d, DOCTOR_WARN, name,
		       "%s: its version cannot be read (taken %s ago)", path,
		       age(sb->st_mtime, old, sizeof(old)));
	else
		report(d, DOCTOR_OK, name, "%s: version %s, taken %s ago", path,
		       version_str(rc == 0 ? &holds : &claim),
		       age(sb->st_mtime, old, sizeof(old)));
}

/* Calls fn for each snapshot there is; how many. */
static int each_snapshot(struct doctor *d, const char *name,
			 void (*fn)(struct doctor *, const char *, const char *,
				    const struct stat *))
{
	int found = 0;

	/* .N beyond keep may be left from an earlier, larger keep */
	for (int i = 0; i < 100; i++) {
		char *path = snapshot_path(d->s->c, &d->s->store, i);
		struct stat sb;

		if (stat(path, &sb) == 0) {
			fn(d, name, path, &sb);
			found++;
		}
		free(path);
	}
	return found;
}

static void check_snapshots(struct doctor *d, const char *name)
{
	if (!each_snapshot(d, name, check_one_snapshot))
		report(d, DOCTOR_OK, name, "none");
}

static void verify_one_snapshot(struct doctor *d, const char *name, const char *path,
				const struct stat *sb)
{
	struct store *st = &d->s->store;
	char why[1024];

	(void)sb;
	if (st->ops->snapshot_verify(st, path, why, sizeof(why)) < 0)
		report(d, DOCTOR_FAIL, name, "%s: %s", path, why);
	else
		report(d, DOCTOR_OK, name, "%s: read through, whole", path);
}

static void check_snapshot_contents(struct doctor *d, const char *name)
{
	if (d->s->store.ops->snapshot_verify &&
	    !each_snapshot(d, name, verify_one_snapshot))
		report(d, DOCTOR_OK, name, "no snapshot");
}

/* statvfs of dir, or of the nearest directory above it that exists */
static int free_space(char **dir, unsigned long long *avail)
{
	struct statvfs vfs;

	while (statvfs(*dir, &vfs) < 0) {
		char *up;

		if (errno != ENOENT || !strcmp(*dir, "/"))
			return -1;
		up = dir_of(*dir);
		free(*dir);
		*dir = up;
	}
	*avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
	return 0;
}

static void check_space(struct doctor *d, const char *name)
{
	struct store *st = &d->s->store;
	char *snap = snapshot_path(d->s->c, st, 0), *dir = dir_of(snap), a[32], b[32];
	unsigned long long need, avail, margin;

	if (st->ops->size(st, &need) < 0)
		report(d, DOCTOR_WARN, name, "%s", d->err);
	else if (free_space(&dir, &avail) < 0)
		report(d, DOCTOR_WARN, name, "cannot check free space in '%s': %s", dir,
		       strerror(errno));
	else if ((margin = need + need / 20 + (1u << 16)) > avail)
		report(d, DOCTOR_WARN, name,
		       "%s free in '%s', less than the %s a snapshot of the database "
		       "needs: an upgrade could not snapshot it",
		       human_size(avail, a, sizeof(a)), dir,
		       human_size(margin, b, sizeof(b)));
	else
		report(d, DOCTOR_OK, name, "%s free in '%s'; a snapshot needs %s",
		       human_size(avail, a, sizeof(a)), dir,
		       human_size(margin, b, sizeof(b)));
	free(dir);
	free(snap);
}

static void check_privileges(struct doctor *d, const char *name)
{
	struct store *st = &d->s->store;
	char why[1024];

	if (!st->ops->privileges)
		return;
	if (st->ops->privileges(st, why, sizeof(why)))
		report(d, DOCTOR_FAIL, name, "%s", why);
	else
		report(d, DOCTOR_OK, name, "%s", why);
}

static void check_journal_mode(struct doctor *d, const char *name)
{
	struct store *st = &d->s->store;
	const char *sql = journal_mode_sql[st->ops->dialect];
	char mode[64];

	if (!sql)
		return;
	if (query_value(st, sql, mode, sizeof(mode)) < 0)
		report(d, DOCTOR_FAIL, name, "%s", st->err);
	else if (!strcmp(mode, "off") || !strcmp(mode, "memory"))
		report(d, DOCTOR_WARN, name,
		       "%s: a crash in the middle of a write can corrupt the database",
		       mode);
	else
		report(d, DOCTOR_OK, name, "%s", mode);
}

static void check_quick(struct doctor *d, const char *name)
{
	run_probe(d, name, &quick_probe);
}

static void check_integrity(struct doctor *d, const char *name)
{
	run_probe(d, name, &integrity_probe);
}

static void check_foreign_keys(struct doctor *d, const char *name)
{
	run_probe(d, name, &foreign_key_probe);
}

static void check_drift(struct doctor *d, const char *name)
{
	char detail[2048];
	enum doctor_status st;

	if (!d->set_ok) {
		report(d, DOCTOR_WARN, name,
		       "cannot check drift: the image's migrations cannot be read");
		return;
	}
	if (!d->have_plan || d->s->plan.kind == PLAN_REFUSE) {
		report(d, DOCTOR_WARN, name,
		       "cannot check drift: the ledger does not match the image's "
		       "migrations (see the ledger check)");
		return;
	}
	st = doctor_drift(d->s, detail, sizeof(detail));
	report(d, st, name, "%s", detail);
}

/* ------------------------------------------------------------------ */
/* The application's checks: [doctor] checks_dir/ *.sql, no row wanted */

static int sql_file(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return e->d_name[0] != '.' && n > 4 && !strcmp(e->d_name + n - 4, ".sql");
}

static void check_app(struct doctor *d, const char *name)
{
	const char *dir = d->s->c->doctor_checks_dir;
	struct dirent **files = NULL;
	int n;

	if (!d->s->store.ops->run_checks)
		return;
	if (!dir) {
		report(d, DOCTOR_OK, name, "none ([doctor] checks_dir is not set)");
		return;
	}
	n = scandir(dir, &files, sql_file, alphasort);
	if (n < 0) {
		report(d, DOCTOR_FAIL, name, "[doctor] checks_dir '%s': %s", dir,
		       strerror(errno));
		return;
	}
	if (n == 0)
		report(d, DOCTOR_OK, name, "none: no *.sql file in '%s'", dir);
	for (int i = 0; i < n; i++) {
		char detail[2048];
		enum doctor_status st = doctor_app_check(
			&d->s->store, dir, files[i]->d_name, detail, sizeof(detail));

		report(d, st, name, "%s", detail);
		free(files[i]);
	}
	free(files);
}

/* ------------------------------------------------------------------ */

enum {
	NEEDS_DB = 1 << 0, /* the database is open */
	DEEP = 1 << 1,	   /* only with --deep */
};

/* In this order: the lock before the journal, which it explains. */
static const struct check {
	const char *name;
	void (*run)(struct doctor *d, const char *name);
	unsigned needs;
} checks[] = {
	{ "database", check_database, 0 },
	{ "migrations", check_migrations, 0 },
	{ "ledger", check_ledger, NEEDS_DB },
	{ "lock", check_lock, 0 },
	{ "journal", check_journal, 0 },
	{ "last failure", check_failure, 0 },
	{ "snapshot", check_snapshots, 0 },
	{ "free space", check_space, NEEDS_DB },
	{ "privileges", check_privileges, NEEDS_DB },
	{ "journal mode", check_journal_mode, NEEDS_DB },
	{ "quick check", check_quick, NEEDS_DB },
	{ "integrity check", check_integrity, NEEDS_DB | DEEP },
	{ "foreign keys", check_foreign_keys, NEEDS_DB | DEEP },
	{ "snapshot contents", check_snapshot_contents, DEEP },
	{ "schema drift", check_drift, NEEDS_DB | DEEP },
	{ "app check", check_app, NEEDS_DB | DEEP },
};

int doctor_run(struct session *s, bool deep, bool json)
{
	struct doctor d = { .s = s, .deep = deep, .json = json };
	int *n = d.counts;

	if (json) {
		json_init(&d.js, stdout);
		json_object(&d.js, NULL);
		json_array(&d.js, "checks");
	}
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		const struct check *c = &checks[i];

		if (((c->needs & DEEP) && !deep) || ((c->needs & NEEDS_DB) && !d.db_open))
			continue;
		log_capture(d.err, sizeof(d.err));
		c->run(&d, c->name);
		log_capture(NULL, 0);
	}
	if (json) {
		json_end(&d.js, ']');
		json_int(&d.js, "ok", n[DOCTOR_OK]);
		json_int(&d.js, "warn", n[DOCTOR_WARN]);
		json_int(&d.js, "fail", n[DOCTOR_FAIL]);
		json_end(&d.js, '}');
	} else {
		printf("doctor: %d ok, %d warning%s, %d failure%s\n", n[DOCTOR_OK],
		       n[DOCTOR_WARN], n[DOCTOR_WARN] == 1 ? "" : "s", n[DOCTOR_FAIL],
		       n[DOCTOR_FAIL] == 1 ? "" : "s");
	}
	return n[DOCTOR_FAIL] ? EXIT_CHECK_FAILED : EXIT_OK;
}
