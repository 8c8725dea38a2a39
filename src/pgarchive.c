/*
 * pgarchive: a backup archive's PostgreSQL database. The backup is the
 * logical dump (pgdump.c) written to whatever sink the caller gives; the
 * restore loads a dump into a new database beside the live one, then
 * swaps the two by renames in one transaction on the maintenance
 * database, so the name always points at a whole database. Nothing here
 * knows about archives, journals or files: restore.c drives the steps.
 */
#include "exits.h"
#include "log.h"
#include "postgres.h"
#include "store.h"
#include "util.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pg_archive_dump(struct store *s, struct dump_sink *out, unsigned long long *rows)
{
	if (pg_open(s) < 0 || pg_dump_check(s) < 0)
		return -1;
	return pg_dump_write(s, out, rows);
}

const char *pg_archive_name(struct store *s)
{
	return pg_priv(s)->dbname;
}

/* The connection that creates, renames and drops databases: never one to
 * the database itself, which a rename needs free of sessions */
static PGconn *admin(struct store *s)
{
	if (pg_maint_connect(s) < 0)
		return NULL;
	if (!pg_priv(s)->maint) {
		store_fail(s, EXIT_CONFIG,
			   "restore: --mode replace renames databases, which needs "
			   "[database] maintenance_db (a database to connect to "
			   "meanwhile)");
		return NULL;
	}
	return pg_priv(s)->maint;
}

static char *ident(PGconn *c, const char *name)
{
	char *q = PQescapeIdentifier(c, name, strlen(name));
	char *out = xstrdup(q ? q : "\"?\"");

	PQfreemem(q);
	return out;
}

/* 1 the database name exists, 0 not, -1 logged */
static int db_exists(struct store *s, PGconn *c, const char *name)
{
	const char *params[] = { name };
	PGresult *r =
		pg_query(s, c, "SELECT 1 FROM pg_database WHERE datname = $1", 1, params);
	int rc = r ? PQntuples(r) == 1 : -1;

	if (!r)
		error("restore: %s", s->err);
	PQclear(r);
	return rc;
}

int pg_archive_drop(struct store *s, const char *name)
{
	PGconn *c = admin(s);
	char *id, *sql;
	int rc;

	if (!c)
		return -1;
	id = ident(c, name);
	sql = xasprintf("DROP DATABASE IF EXISTS %s", id);
	rc = pg_run(s, c, sql, NULL);
	if (rc < 0)
		error("restore: cannot drop database %s: %s", id, s->err);
	free(sql);
	free(id);
	return rc;
}

/* CREATE DATABASE name like the live one: its owner, encoding and locale */
static int create_like(struct store *s, PGconn *c, const char *name)
{
	const char *params[] = { pg_priv(s)->dbname, name };
	PGresult *r = pg_query(
		s, c,
		"SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L LC_COLLATE %L "
		"LC_CTYPE %L TEMPLATE template0', $2::text, pg_get_userbyid(datdba), "
		"pg_encoding_to_char(encoding), datcollate, datctype) FROM pg_database "
		"WHERE datname = $1",
		2, params);
	int rc = -1;

	if (!r || PQntuples(r) != 1)
		error("restore: cannot read database '%s': %s", pg_priv(s)->dbname,
		      r ? "it does not exist" : s->err);
	else if (pg_run(s, c, PQgetvalue(r, 0, 0), NULL) < 0)
		error("restore: cannot create database '%s': %s", name, s->err);
	else
		rc = 0;
	PQclear(r);
	return rc;
}

int pg_archive_load(struct store *s, const char *name, struct dump_source *in,
		    unsigned long long *rows)
{
	PGconn *c = admin(s);
	struct store fresh = { 0 };
	char why[600];
	int rc = -1;

	if (!c || create_like(s, c, name) < 0)
		return -1;
	fresh.ops = s->ops;
	fresh.url = xstrdup(s->url);
	fresh.url_redacted = xasprintf("database %s", name);
	fresh.statement_lock_timeout = s->statement_lock_timeout;
	fresh.db = pg_connect_db(s, name, why, sizeof(why));
	snprintf(pg_priv(&fresh)->dbname, sizeof(pg_priv(&fresh)->dbname), "%s", name);
	if (!fresh.db)
		error("restore: %s", why);
	else if (pg_dump_replay(&fresh, in, rows) == 0)
		rc = 0;
	store_release(&fresh); /* closes the connection */
	if (rc < 0 && pg_archive_drop(s, name) < 0)
		log_warn("restore: drop database '%s' by hand", name);
	return rc;
}

/* Who else is connected to database name, for the message */
static void other_sessions(struct store *s, PGconn *c, const char *name, char *buf,
			   size_t size)
{
	const char *params[] = { name };
	PGresult *r = pg_query(
		s, c,
		"SELECT count(*), string_agg(format('pid %s %s', pid, coalesce(nullif("
		"application_name, ''), usename::text)), ', ') FROM pg_stat_activity "
		"WHERE datname = $1 AND pid <> pg_backend_pid()",
		1, params);

	snprintf(buf, size, "%s session(s): %.300s", r ? PQgetvalue(r, 0, 0) : "?",
		 r ? PQgetvalue(r, 0, 1) : s->err);
	PQclear(r);
}

/* Both renames in one transaction: 0, or -1 with sqlstate set */
static int rename_pair(struct store *s, PGconn *c, const char *staged, const char *target,
		       const char *old, bool have_target, char sqlstate[6])
{
	char *st = ident(c, staged), *tg = ident(c, target), *od = ident(c, old);
	char *r1 = xasprintf("ALTER DATABASE %s RENAME TO %s", tg, od);
	char *r2 = xasprintf("ALTER DATABASE %s RENAME TO %s", st, tg);
	int rc = -1;

	strcpy(sqlstate, "");
	if (pg_run(s, c, "BEGIN", sqlstate) == 0 &&
	    (!have_target || pg_run(s, c, r1, sqlstate) == 0) &&
	    pg_run(s, c, r2, sqlstate) == 0) {
		crash_point("restore-db-renamed");
		rc = pg_run(s, c, "COMMIT", sqlstate);
	}
	if (rc < 0)
		pg_rollback(c);
	free(st), free(tg), free(od), free(r1), free(r2);
	return rc;
}

int pg_archive_swap(struct store *s, const char *staged, const char *target,
		    const char *old)
{
	PGconn *c = admin(s);
	double deadline = now_seconds() + (double)s->lock_timeout;
	char sqlstate[6], who[400];
	int have_staged, have_target;

	if (!c || (have_staged = db_exists(s, c, staged)) < 0)
		return -1;
	if (!have_staged) /* swapped before a crash */
		return 0;
	if ((have_target = db_exists(s, c, target)) < 0)
		return -1;
	/* a leftover of an earlier restore; with the staged copy still there,
	 * the swap (one transaction) has not happened */
	if (pg_archive_drop(s, old) < 0)
		return -1;
	pg_disconnect(s); /* our own session would keep the name busy */
	while (rename_pair(s, c, staged, target, old, have_target == 1, sqlstate) < 0) {
		/* object_in_use: a session is connected to target; it may be
		 * leaving. Restoring under a running app would lose its writes:
		 * wait, then refuse, never end its sessions */
		if (strcmp(sqlstate, "55006"))
			return error("restore: cannot swap database '%s' in: %s", staged,
				     s->err);
		other_sessions(s, c, target, who, sizeof(who));
		if (now_seconds() >= deadline)
			return store_fail(
				s, EXIT_TEMPFAIL,
				"restore: database '%s' is in use (%s): stop the app's "
				"other instances and run the restore again "
				"([migrations] lock_timeout_seconds says how long to wait)",
				target, who);
		log_info("restore: waiting for the sessions on database '%s' to end (%s)",
			 target, who);
		sleep(1);
	}
	return 0;
}
