/*
 * pgsnapshot: PostgreSQL snapshots, the two kinds. A template copy
 * (CREATE DATABASE <db>_pre_upgrade TEMPLATE <db>) when the role may and no
 * other session is connected, restored by swapping the two databases'
 * names in one transaction; otherwise a logical snapshot file (pgdump.c),
 * restored in one transaction. Either way a crash during a restore changes
 * nothing and the next boot does it again. The file at the snapshot path
 * says which: a template marker, or the logical snapshot itself.
 */
#include "log.h"
#include "postgres.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The marker a template snapshot leaves at the snapshot path:
 * "FERRY-PG-TEMPLATE 1\n<db>_pre_upgrade\nversion <schema version>\n" */
static const char template_magic[] = "FERRY-PG-TEMPLATE 1\n";

enum snapshot_kind {
	SNAPSHOT_UNKNOWN,
	SNAPSHOT_TEMPLATE, /* a template marker */
	SNAPSHOT_LOGICAL,  /* a zstd frame; its end record is checked on replay */
};

/* What the first bytes of a snapshot file say. */
struct snapshot_head {
	enum snapshot_kind kind;
	char copy[sizeof(template_magic) + 300]; /* a template's database */
	struct version version;			 /* a template's */
	bool have_version;			 /* false: unknown */
};

/* Reads the head of the snapshot file at path: 0, or -1 with errno set. */
static int snapshot_head_read(const char *path, struct snapshot_head *h)
{
	char head[sizeof(template_magic) + 300] = "";
	const char *at;
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		int e;

		n = read(fd, head, sizeof(head) - 1);
		e = errno;
		close(fd);
		errno = e;
	}
	if (n < 0)
		return -1;
	memset(h, 0, sizeof(*h));
	if (strncmp(head, template_magic, sizeof(template_magic) - 1)) {
		if (n >= 4 && !memcmp(head, "\x28\xb5\x2f\xfd", 4))
			h->kind = SNAPSHOT_LOGICAL;
		return 0;
	}
	h->kind = SNAPSHOT_TEMPLATE;
	at = head + sizeof(template_magic) - 1;
	snprintf(h->copy, sizeof(h->copy), "%.*s", (int)strcspn(at, "\n"), at);
	at = strstr(head, "\nversion ");
	if (at)
		h->have_version =
			version_parse(&h->version, at + 9, strcspn(at + 9, "\n"));
	return 0;
}

/* "<db>_pre_upgrade" and "<db>_ferry_failed", quoted for SQL */
static char *db_ident(struct store *s, const char *suffix)
{
	char name[256];
	char *q;
	char *out;

	snprintf(name, sizeof(name), "%s%s", pg_priv(s)->dbname, suffix);
	q = PQescapeIdentifier(pg_priv(s)->maint, name, strlen(name));
	out = xstrdup(q ? q : "\"?\"");
	PQfreemem(q);
	return out;
}

/* Can a template copy be taken? If not, why says why not. */
static bool template_possible(struct store *s, char *why, size_t size)
{
	PGresult *r;
	bool ok = false;

	if (!pg_priv(s)->maint) {
		snprintf(why, size,
			 "no maintenance database ([database] maintenance_db)");
		return false;
	}
	if (strlen(pg_priv(s)->dbname) > 63 - strlen("_pre_upgrade")) {
		snprintf(why, size, "the database name is too long for a copy's name");
		return false;
	}
	r = pg_query(
		s, pg_conn(s),
		"SELECT r.rolcreatedb OR r.rolsuper, pg_has_role(d.datdba, 'USAGE') "
		"OR r.rolsuper, (SELECT count(*) FROM pg_stat_activity a WHERE "
		"a.datname = current_database() AND a.pid <> pg_backend_pid()), "
		"(SELECT string_agg(DISTINCT coalesce(nullif(a.application_name, ''), "
		"a.usename::text, 'a session'), ', ') FROM pg_stat_activity a WHERE "
		"a.datname = current_database() AND a.pid <> pg_backend_pid()) "
		"FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND "
		"d.datname = current_database()",
		0, NULL);
	if (!r || PQntuples(r) != 1)
		snprintf(why, size, "cannot tell: %.300s", s->err);
	else if (PQgetvalue(r, 0, 0)[0] != 't')
		snprintf(why, size, "role '%s' has no CREATEDB", PQuser(pg_conn(s)));
	else if (PQgetvalue(r, 0, 1)[0] != 't')
		snprintf(why, size, "role '%s' does not own the database",
			 PQuser(pg_conn(s)));
	else if (strcmp(PQgetvalue(r, 0, 2), "0"))
		snprintf(why, size,
			 "%s other session(s) are connected (%s), as in a "
			 "rolling update",
			 PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3));
	else
		ok = true;
	PQclear(r);
	return ok;
}

static int forget_journal_in_copy(struct store *s)
{
	char name[300];
	PGconn *c;
	int rc;

	snprintf(name, sizeof(name), "%s_pre_upgrade", pg_priv(s)->dbname);
	c = pg_connect_db(s, name, s->err, sizeof(s->err));
	if (!c)
		return -1;
	rc = pg_run(s, c, "DROP TABLE IF EXISTS " JOURNAL_TABLE, NULL);
	PQfinish(c);
	return rc;
}

/* Has the database a journal table of ferry's (which a copy would keep)?
 * When in doubt, yes. */
static bool has_journal(struct store *s)
{
	PGresult *r =
		pg_query(s, pg_conn(s),
			 "SELECT to_regclass('" JOURNAL_TABLE "') IS NOT NULL", 0, NULL);
	bool yes = !r || PQntuples(r) != 1 || PQgetvalue(r, 0, 0)[0] != 'f';

	PQclear(r);
	return yes;
}

static int template_snapshot(struct store *s, const char *path, char *why, size_t size)
{
	char *copy = db_ident(s, "_pre_upgrade"), *orig = db_ident(s, "");
	char *sql = NULL, text[400];
	int rc = -1, n;
	bool journal;

	/* FILE_COPY: one checkpoint and a file copy, instead of WAL-logging
	 * every block (bench/ measures both) */
	sql = xasprintf("CREATE DATABASE %s TEMPLATE %s%s", copy, orig,
			PQserverVersion(pg_priv(s)->maint) >= 150000
				? " STRATEGY FILE_COPY"
				: "");
	journal = has_journal(s);
	pg_disconnect(s); /* the template must have no session, ours included */
	{
		char *drop = xasprintf("DROP DATABASE IF EXISTS %s", copy);
		int d = pg_run(s, pg_priv(s)->maint, drop, NULL);

		free(drop);
		if (d < 0) {
			snprintf(why, size, "cannot drop the older copy: %.300s", s->err);
			goto out;
		}
	}
	if (pg_run(s, pg_priv(s)->maint, sql, NULL) < 0) {
		snprintf(why, size, "CREATE DATABASE failed: %.300s", s->err);
		goto out;
	}
	crash_point("snapshot:mid");
	/* the copy is the state before the upgrade: no journal of it (one
	 * more connection, with its authentication, only when there is one) */
	if (journal && forget_journal_in_copy(s) < 0) {
		snprintf(why, size, "cannot clean the copy: %.300s", s->err);
		goto out;
	}
	n = snprintf(text, sizeof(text), "%s%s_pre_upgrade\nversion %s\n", template_magic,
		     pg_priv(s)->dbname, version_str(&s->snapshot_version));
	if (write_file_atomic(path, text, (size_t)n, 0600) < 0) {
		snprintf(why, size, "cannot write '%s'", path);
		goto out;
	}
	rc = 0;
out:
	free(sql);
	free(copy);
	free(orig);
	if (pg_open(s) < 0)
		return -1;
	return rc;
}

int pg_snapshot(struct store *s, const char *path, struct snapshot_info *info)
{
	struct pg *p = pg_priv(s);
	char why[400];
	int rc;

	if (template_possible(s, why, sizeof(why))) {
		if (template_snapshot(s, path, why, sizeof(why)) == 0) {
			snprintf(info->how, sizeof(info->how),
				 "template database %.255s_pre_upgrade", p->dbname);
			info->is_file = false;
			return 0;
		}
		if (!s->db)
			return -1;
	}
	rc = pg_logical_snapshot(s, path);
	snprintf(info->how, sizeof(info->how),
		 "logical, DDL + COPY with zstd, because %.1000s", why);
	info->is_file = true;
	return rc;
}

static void end_late_sessions(struct store *s)
{
	const char *params[] = { pg_priv(s)->dbname };
	PGresult *r = pg_query(
		s, pg_priv(s)->maint,
		"SELECT string_agg(pid::text, ', '), count(pg_terminate_backend(pid)) "
		"FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
		1, params);

	if (r && strcmp(PQgetvalue(r, 0, 1), "0"))
		log_info(
			"restore: ended the sessions that connected to database '%s' during "
			"the upgrade (read-only; pid %s)",
			pg_priv(s)->dbname, PQgetvalue(r, 0, 0));
	PQclear(r);
}

static int template_restore(struct store *s, const char *copy_name)
{
	char *orig = db_ident(s, ""), *failed = db_ident(s, "_ferry_failed");
	char *copy = PQescapeIdentifier(pg_priv(s)->maint, copy_name, strlen(copy_name));
	char *drop_failed = xasprintf("DROP DATABASE IF EXISTS %s", failed);
	char *swap = xasprintf("ALTER DATABASE %s RENAME TO %s", orig, failed);
	char *swap2 = xasprintf("ALTER DATABASE %s RENAME TO %s", copy, orig);
	const char *params[] = { copy_name };
	double deadline = now_seconds() + 30;
	char sqlstate[6];
	PGresult *r;
	int rc = -1;

	r = pg_query(s, pg_priv(s)->maint, "SELECT 1 FROM pg_database WHERE datname = $1",
		     1, params);
	if (!r || PQntuples(r) != 1) {
		error("restore: the template copy %s does not exist", copy_name);
		PQclear(r);
		goto out;
	}
	PQclear(r);
	pg_disconnect(s);
	if (pg_run(s, pg_priv(s)->maint, drop_failed, NULL) < 0) {
		error("restore: %s", s->err);
		goto out;
	}
	/* both renames in one transaction: the name is never missing */
	for (;;) {
		if (pg_run(s, pg_priv(s)->maint, "BEGIN", sqlstate) == 0 &&
		    pg_run(s, pg_priv(s)->maint, swap, sqlstate) == 0 &&
		    pg_run(s, pg_priv(s)->maint, swap2, sqlstate) == 0) {
			crash_point("restore:mid");
			if (pg_run(s, pg_priv(s)->maint, "COMMIT", sqlstate) == 0)
				break;
		}
		pg_rollback(pg_priv(s)->maint);
		/* object_in_use: a session is connected; it may be leaving. While
		 * the upgrade holds writers out, every other session came during
		 * the window, read-only: ending it loses nothing */
		if (!strcmp(sqlstate, "55006") && pg_priv(s)->held)
			end_late_sessions(s);
		if (strcmp(sqlstate, "55006") || now_seconds() >= deadline) {
			error("restore: cannot swap in the copy: %s", s->err);
			goto out;
		}
		log_info("restore: waiting for the sessions on database '%s' to end (%s)",
			 pg_priv(s)->dbname, s->err);
		sleep(1);
	}
	if (pg_run(s, pg_priv(s)->maint, drop_failed, NULL) < 0)
		log_warn("could not drop %s, the database as the failed upgrade left it: "
			 "%s (`ferry cleanup` tries again)",
			 failed, s->err);
	rc = 0;
out:
	PQfreemem(copy);
	free(orig);
	free(failed);
	free(drop_failed);
	free(swap);
	free(swap2);
	if (pg_open(s) < 0)
		return -1;
	return rc;
}

int pg_restore(struct store *s, const char *path)
{
	struct snapshot_head h;

	if (pg_open(s) < 0)
		return -1;
	if (snapshot_head_read(path, &h) < 0)
		return error_errno("cannot read snapshot '%s'", path);
	if (h.kind != SNAPSHOT_TEMPLATE)
		return pg_logical_restore(s, path);
	if (!pg_priv(s)->maint)
		return error("restore: the snapshot is a template copy, which needs the "
			     "maintenance database ([database] maintenance_db)");
	if (template_restore(s, h.copy) < 0)
		return -1;
	/* the copy became the database: nothing is left to restore from */
	if (unlink(path) < 0 || fsync_dir_of(path) < 0)
		log_warn("cannot remove '%s': %s", path, strerror(errno));
	return 0;
}

void pg_cleanup(struct store *s)
{
	static const char *const suffixes[] = { "_pre_upgrade", "_ferry_failed" };

	pg_drop_doctor_leftovers(s);
	if (!pg_priv(s)->maint)
		return;
	for (size_t i = 0; i < 2; i++) {
		char *name = db_ident(s, suffixes[i]);
		char *sql = xasprintf("DROP DATABASE IF EXISTS %s", name);

		if (pg_run(s, pg_priv(s)->maint, sql, NULL) < 0)
			log_warn("cannot drop %s: %s", name, s->err);
		free(sql);
		free(name);
	}
}
bool pg_snapshot_usable(struct store *s, const char *path, char *why, size_t size)
{
	struct snapshot_head h;
	const char *params[1];
	PGresult *r;
	bool ok;

	if (snapshot_head_read(path, &h) < 0) {
		snprintf(why, size, "%s", strerror(errno));
		return false;
	}
	if (h.kind != SNAPSHOT_TEMPLATE) {
		ok = h.kind == SNAPSHOT_LOGICAL;
		if (!ok)
			snprintf(why, size, "not a ferry snapshot");
		return ok;
	}
	params[0] = h.copy;
	if (pg_open(s) < 0) {
		snprintf(why, size, "no connection");
		return false;
	}
	r = pg_query(s, pg_conn(s), "SELECT 1 FROM pg_database WHERE datname = $1", 1,
		     params);
	ok = r && PQntuples(r) == 1;
	if (!ok)
		snprintf(why, size, "its template database %s does not exist", params[0]);
	PQclear(r);
	return ok;
}

bool pg_snapshot_version(struct store *s, const char *path, struct version *v)
{
	struct snapshot_head h;

	(void)s;
	if (snapshot_head_read(path, &h) < 0)
		return false;
	if (h.kind == SNAPSHOT_TEMPLATE) {
		if (h.have_version)
			*v = h.version;
		return h.have_version;
	}
	return pg_logical_version(path, v);
}

/* A template copy as a store of its own, read-only; a logical file is 1. */
int pg_snapshot_open(struct store *s, const char *path, struct store *out, char *why,
		     size_t size)
{
	struct snapshot_head h;
	PGconn *c;

	memset(out, 0, sizeof(*out));
	if (snapshot_head_read(path, &h) < 0) {
		snprintf(why, size, "%s", strerror(errno));
		return -1;
	}
	if (h.kind == SNAPSHOT_LOGICAL)
		return 1;
	if (h.kind != SNAPSHOT_TEMPLATE) {
		snprintf(why, size, "not a ferry snapshot");
		return -1;
	}
	c = pg_connect_db(s, h.copy, why, size);
	if (!c)
		return -1;
	if (pg_run(s, c, "SET default_transaction_read_only = on", NULL) < 0) {
		snprintf(why, size, "%s", s->err);
		PQfinish(c);
		return -1;
	}
	out->ops = s->ops;
	out->url = xstrdup(s->url);
	out->url_redacted = xasprintf("the template copy %s", h.copy);
	out->path = xstrdup(path);
	out->db = c;
	snprintf(pg_priv(out)->dbname, sizeof(pg_priv(out)->dbname), "%.255s", h.copy);
	return 0;
}

/* A template copy that accepts a connection, or a logical file read
 * through to its end record. */
int pg_snapshot_verify(struct store *s, const char *path, char *why, size_t size)
{
	struct store copy;
	int rc = pg_snapshot_open(s, path, &copy, why, size);

	if (rc == 1)
		return pg_logical_verify(path, why, size);
	if (rc == 0)
		store_release(&copy);
	return rc;
}
