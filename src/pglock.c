/*
 * pglock: what keeps ferries and writers in line on PostgreSQL: the
 * migrator lock (a session-level advisory lock polled in the maintenance
 * database, with a mark for waiters and one for the migrator, so that a
 * dead ferry's statement still running is found and ended), the journal
 * in a table of its own, and the hold that keeps writers out while a
 * migration that commits on its own can still be undone.
 */
#include "postgres.h"
#include "exits.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Who holds the lock: "pid 123, application_name 'ferry'" */
static void lock_holder(struct store *s, char *buf, size_t size)
{
	unsigned long long key = (unsigned long long)pg_priv(s)->lock_key;
	char hi[24], lo[24];
	const char *params[] = { hi, lo };
	PGresult *r;

	snprintf(hi, sizeof(hi), "%llu", key >> 32);
	snprintf(lo, sizeof(lo), "%llu", key & 0xffffffffULL);
	snprintf(buf, size, "unknown pid");
	r = pg_query(s, pg_lock_conn(s),
		     "SELECT l.pid, coalesce(a.application_name, '') FROM pg_locks l "
		     "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
		     "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
		     "AND l.classid = $1::oid AND l.objid = $2::oid "
		     "AND l.database = (SELECT oid FROM pg_database "
		     "WHERE datname = current_database())",
		     2, params);
	if (r && PQntuples(r) > 0)
		snprintf(buf, size, "pid %s, application_name '%s'", PQgetvalue(r, 0, 0),
			 PQgetvalue(r, 0, 1));
	PQclear(r);
}

/* clang-format off */
/* The sessions holding the lock ($1, $2) or the migrator's mark ($3, $4),
 * in the database or the maintenance database ($5): the lock's first. */
static const char holders_sql[] =
	"SELECT l.classid = $1::oid AND l.objid = $2::oid, l.pid, "
	" coalesce(nullif(a.application_name, ''), a.usename::text, '?'), "
	" coalesce(a.state, '?'), "
	" coalesce(extract(epoch FROM now() - a.backend_start)::bigint, 0) "
	"FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
	"WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
	" AND ((l.classid = $1::oid AND l.objid = $2::oid) "
	"  OR (l.classid = $3::oid AND l.objid = $4::oid)) "
	" AND l.database IN (SELECT oid FROM pg_database "
	"  WHERE datname IN (current_database(), $5)) "
	"ORDER BY 1 DESC";
/* clang-format on */

int pg_lock_holder(struct store *s, char *who, size_t size)
{
	char hi[24], lo[24], mhi[24], mlo[24];
	const char *params[] = { hi, lo, mhi, mlo,
				 s->maintenance_db ? s->maintenance_db : "" };
	PGresult *r;
	int rc = 0;

	if (pg_open(s) < 0)
		return -1;
	pg_mark_params(s, hi, lo, 0);
	pg_mark_params(s, mhi, mlo, 1);
	r = pg_query(s, pg_conn(s), holders_sql, 5, params);
	if (!r)
		return -1;
	if (PQntuples(r) == 0) {
		snprintf(who, size, "free");
	} else if (PQgetvalue(r, 0, 0)[0] == 't') {
		snprintf(who, size, "session pid %s (%s, connected %s s ago)",
			 PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 4));
		rc = 1;
	} else {
		snprintf(
			who, size,
			"free, but the session of a ferry that died still runs (pid %s, "
			"%s, connected %s s ago): the next ferry to take the lock ends it",
			PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4));
		rc = 2;
	}
	PQclear(r);
	return rc;
}

/*
 * A ferry killed mid-statement leaves that statement running on the
 * server until it ends (a CREATE INDEX CONCURRENTLY may even commit). We
 * hold the lock now, so a session still named as the migrator is a dead
 * ferry's: it is ended, and gone, before anything else runs.
 */
static int end_orphans(struct store *s)
{
	char hi[24], lo[24];
	const char *params[] = { hi, lo, pg_priv(s)->dbname };
	static const char marked[] =
		"FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE "
		"l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND "
		"l.classid = $1::oid AND l.objid = $2::oid AND a.datname = $3 AND "
		"l.pid <> pg_backend_pid()";
	double deadline = now_seconds() + 60;
	PGconn *c = pg_lock_conn(s);
	bool said = false;
	char *list = xasprintf("SELECT l.pid, a.state, coalesce(extract(epoch FROM "
			       "now() - a.query_start)::bigint, 0) %s",
			       marked);
	char *end = xasprintf("SELECT pg_terminate_backend(l.pid) %s", marked);
	PGresult *r;
	int rc = -1;

	pg_mark_params(s, hi, lo, 1);
	for (;;) {
		r = pg_query(s, c, list, 3, params);
		if (!r) {
			error("cannot look for sessions of an earlier ferry: %s", s->err);
			goto out;
		}
		if (PQntuples(r) == 0)
			break;
		for (int i = 0; i < PQntuples(r) && !said; i++)
			log_warn(
				"a ferry that died left its session on database '%s' running "
				"(pid %s, %s for %s s): ending it before migrating",
				pg_priv(s)->dbname, PQgetvalue(r, i, 0),
				PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
		PQclear(r);
		said = true;
		if (now_seconds() > deadline) {
			store_fail(
				s, EXIT_TEMPFAIL,
				"the sessions an earlier ferry left on database '%s' did not end "
				"within 60 s: end them (pg_terminate_backend) and start again",
				pg_priv(s)->dbname);
			goto out;
		}
		PQclear(pg_query(s, c, end, 3, params));
		usleep(200000);
	}
	PQclear(r);
	if (said)
		log_info("the sessions of the earlier ferry have ended");
	rc = 0;
out:
	free(list);
	free(end);
	return rc;
}

struct pg_wait {
	struct store *s;
	long long timeout;
	bool waited;
	bool marked; /* this session holds the waiter's mark */
	bool peeked; /* saw the lock come free, did not take it (lock_peek) */
	double next_who;
};

/* The shared mark (key ^ 2) that says a session is only a waiting ferry. */
static void waiter_mark(struct store *s, bool on)
{
	char key[24];
	const char *params[] = { key };

	if (pg_priv(s)->maint)
		return;
	snprintf(key, sizeof(key), "%lld", pg_priv(s)->lock_key ^ 2);
	PQclear(pg_query(s, pg_lock_conn(s),
			 on ? "SELECT pg_advisory_lock_shared($1::bigint)"
			    : "SELECT pg_advisory_unlock_shared($1::bigint)",
			 1, params));
}

/*
 * One try, on a connection of its own: the maintenance database's, or
 * the database's (then marked as a waiter's). A waiting replica holds no
 * other connection, and it hangs up until its next try when the server
 * is short of free slots (fewer than 10 left to roles without SUPERUSER):
 * however many replicas boot at once, the one that migrates then finds a
 * slot for the second connection it needs (the database's), and waiters
 * never use up max_connections. With room to spare the connection stays
 * for the next try, which saves a login each time.
 */
static int lock_try(void *arg, char *who, size_t size)
{
	struct pg_wait *w = arg;
	struct store *s = w->s;
	char key[24];
	const char *params[] = { key };
	bool fresh = s->maintenance_db ? !pg_priv(s)->maint : !s->db, got, crowded;
	PGresult *r;

	if (s->maintenance_db ? pg_maint_connect(s) < 0 : pg_open(s) < 0)
		return -1;
	if (fresh && !pg_priv(s)->maint) {
		waiter_mark(s, true);
		w->marked = true;
	}
	snprintf(key, sizeof(key), "%lld", pg_priv(s)->lock_key);
	/* autocommit, one statement: the poll holds no snapshot. Once it
	 * waited, a lock_peek poll only looks whether the lock is free (a
	 * shared lock, at once let go): waiters do not queue for it */
	w->peeked = w->waited && s->lock_peek;
	r = pg_query(
		s, pg_lock_conn(s),
		w->peeked
			? "SELECT CASE WHEN pg_try_advisory_lock_shared($1::bigint) "
			  "THEN pg_advisory_unlock_shared($1::bigint) ELSE false END, "
			  "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
			  "'client backend') + 10 > current_setting('max_connections')"
			  "::int - current_setting('superuser_reserved_connections')::int"
			: "SELECT pg_try_advisory_lock($1::bigint), (SELECT count(*) "
			  "FROM pg_stat_activity WHERE backend_type = 'client backend') "
			  "+ 10 > current_setting('max_connections')::int - "
			  "current_setting('superuser_reserved_connections')::int",
		1, params);
	if (!r)
		return error("cannot take the migration lock: %s", s->err);
	got = PQgetvalue(r, 0, 0)[0] == 't';
	crowded = PQgetvalue(r, 0, 1)[0] == 't';
	PQclear(r);
	if (got)
		return 0;
	w->waited = true;
	/* who holds it, for the log line that is due every 10 s */
	if (now_seconds() >= w->next_who) {
		lock_holder(s, who, size);
		w->next_who = now_seconds() + 9;
	}
	if (w->timeout > 0 && crowded) {
		s->ops->close(s); /* not locked: every connection of ours ends */
		w->marked = false;
	}
	return 1;
}

static void lock_waiting(void *arg, const char *who, bool first)
{
	struct pg_wait *w = arg;

	(void)first;
	w->waited = true;
	log_info("waiting for another ferry (%s) that holds the migration lock of "
		 "database '%s' (up to %lld s)",
		 who, pg_priv(w->s)->dbname, w->timeout);
}

static void lock_gave_up(void *arg, const char *who, bool stopped)
{
	struct pg_wait *w = arg;

	(void)stopped;
	log_error("gave up waiting for the migration lock of database '%s' after %lld s "
		  "([migrations] lock_timeout_seconds): another ferry (%s) is still "
		  "migrating; try again later",
		  pg_priv(w->s)->dbname, w->timeout, who);
}

int pg_lock(struct store *s, long long timeout)
{
	struct pg_wait pw = { .s = s, .timeout = timeout };
	struct wait w = { .timeout = timeout,
			  .pause = 0.1,
			  .max_pause = 0.5,
			  .try_once = lock_try,
			  .waiting = lock_waiting,
			  .gave_up = lock_gave_up,
			  .arg = &pw };
	PGresult *r;
	int rc;

	rc = wait_for(&w);
	if (rc)
		return rc;
	if (pw.peeked) { /* free now, not taken: the caller looks again */
		s->lock_waited = true;
		if (pw.marked)
			waiter_mark(s, false);
		return 0;
	}
	pg_priv(s)->locked = true;
	s->lock_waited = pw.waited;
	if (pw.marked)
		waiter_mark(s, false);
	/* A transaction-pooling proxy hands each statement to some server
	 * session: the lock would not be ours for long. */
	r = pg_query(s, pg_lock_conn(s),
		     "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
		     "AND granted AND pid = pg_backend_pid()",
		     0, NULL);
	if (!r || !strcmp(PQgetvalue(r, 0, 0), "0")) {
		PQclear(r);
		return store_fail(
			s, EXIT_CONFIG,
			"the migration lock is not held by this connection's "
			"session: is %s a transaction-pooling proxy (PgBouncer "
			"pool_mode=transaction)? Connect ferry to PostgreSQL directly",
			s->url_redacted);
	}
	PQclear(r);
	if (pw.waited)
		log_info("got the migration lock");
	if (end_orphans(s) < 0)
		return -1;
	if (s->db)
		pg_session_setup(s);
	return 0;
}

/*
 * With the lock in the maintenance database, the session on the database
 * itself ends first, and is gone from the server, before the lock is let
 * go: the next ferry to take it finds no session of ours there (a template
 * copy needs none), and no replica is seen with two connections unless it
 * holds the lock.
 */
static void hang_up_database(struct store *s)
{
	char pid[24];
	const char *params[] = { pid };
	double deadline = now_seconds() + 2;
	PGresult *r;

	snprintf(pid, sizeof(pid), "%d", PQbackendPID(pg_conn(s)));
	pg_rollback(pg_conn(s));
	PQfinish(pg_conn(s));
	s->db = NULL;
	while (now_seconds() < deadline) {
		bool gone;

		r = pg_query(
			s, pg_priv(s)->maint,
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1::int",
			1, params);
		gone = !r || PQgetvalue(r, 0, 0)[0] == 't';
		PQclear(r);
		if (gone)
			return;
		usleep(2000);
	}
}

void pg_unlock(struct store *s)
{
	char key[24];
	const char *params[] = { key };
	PGresult *r;

	if (!s->priv || !pg_priv(s)->locked || !pg_lock_conn(s))
		return;
	if (s->db && pg_priv(s)->maint) {
		hang_up_database(s);
	} else if (s->db) {
		pg_rollback(pg_conn(s));
		snprintf(key, sizeof(key), "%lld", pg_priv(s)->lock_key ^ 1);
		PQclear(pg_query(s, pg_conn(s), "SELECT pg_advisory_unlock($1::bigint)",
				 1, params));
	}
	snprintf(key, sizeof(key), "%lld", pg_priv(s)->lock_key);
	r = pg_query(s, pg_lock_conn(s), "SELECT pg_advisory_unlock($1::bigint)", 1,
		     params);
	PQclear(r);
	pg_priv(s)->locked = false;
}

int pg_journal_load(struct store *s, char *buf, size_t size)
{
	PGresult *r;

	if (pg_open(s) < 0)
		return -1;
	buf[0] = '\0';
	r = pg_query(s, pg_conn(s), "SELECT to_regclass('" JOURNAL_TABLE "') IS NOT NULL",
		     0, NULL);
	if (!r)
		return error("cannot read the journal: %s", s->err);
	if (PQgetvalue(r, 0, 0)[0] != 't') {
		PQclear(r);
		return 0;
	}
	PQclear(r);
	r = pg_query(s, pg_conn(s), "SELECT body FROM " JOURNAL_TABLE " WHERE id = 1", 0,
		     NULL);
	if (!r)
		return error("cannot read the journal: %s", s->err);
	if (PQntuples(r) > 0)
		snprintf(buf, size, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

int pg_journal_save(struct store *s, const char *text)
{
	const char *params[] = { text };
	PGresult *r;

	if (pg_open(s) < 0)
		return -1;
	if (!text) {
		/* no trace left once the upgrade is over */
		r = pg_query(s, pg_conn(s), "DROP TABLE IF EXISTS " JOURNAL_TABLE, 0,
			     NULL);
	} else {
		if (pg_run(s, pg_conn(s),
			   "CREATE TABLE IF NOT EXISTS " JOURNAL_TABLE " (id integer "
			   "PRIMARY KEY CHECK (id = 1), body text NOT NULL)",
			   NULL) < 0)
			return error("cannot write the journal: %s", s->err);
		r = pg_query(s, pg_conn(s),
			     "INSERT INTO " JOURNAL_TABLE " (id, body) VALUES (1, $1) "
			     "ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
			     1, params);
	}
	if (!r)
		return error("cannot write the journal: %s", s->err);
	PQclear(r);
	return 0;
}

/* ALTER DATABASE <db> SET|RESET default_transaction_read_only */
static int read_only_default(struct store *s, bool on)
{
	char *db = PQescapeIdentifier(pg_conn(s), pg_priv(s)->dbname,
				      strlen(pg_priv(s)->dbname));
	char *sql = xasprintf("ALTER DATABASE %s %s default_transaction_read_only%s",
			      db ? db : "\"?\"", on ? "SET" : "RESET", on ? " = on" : "");
	int rc = pg_run(s, pg_conn(s), sql, NULL);

	PQfreemem(db);
	free(sql);
	return rc;
}

/* every client session but ours and the ferries waiting here */
static const char other_sessions[] =
	"SELECT count(*), coalesce(string_agg(DISTINCT coalesce(nullif(application_name, "
	"''), usename::text, '?'), ', '), ''), coalesce(string_agg(pid::text, ', '), '') "
	"FROM pg_stat_activity WHERE datname = current_database() AND pid <> "
	"pg_backend_pid() AND backend_type NOT IN ('autovacuum worker', "
	"'parallel worker', 'walsender') AND pid NOT IN "
	"(SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
	"objsubid = 1 AND classid = $1::oid AND objid = $2::oid)";

struct others {
	struct store *s;
	char count[24], names[256], pids[256];
};

static int others_try(void *arg, char *who, size_t size)
{
	struct others *o = arg;
	struct store *s = o->s;
	char hi[24], lo[24];
	const char *params[] = { hi, lo };
	PGresult *r;

	pg_mark_params(s, hi, lo, 2);
	r = pg_query(s, pg_conn(s), other_sessions, 2, params);
	if (!r)
		return error("cannot list the sessions on database '%s': %s",
			     pg_priv(s)->dbname, s->err);
	snprintf(o->count, sizeof(o->count), "%s", PQgetvalue(r, 0, 0));
	snprintf(o->names, sizeof(o->names), "%s", PQgetvalue(r, 0, 1));
	snprintf(o->pids, sizeof(o->pids), "%s", PQgetvalue(r, 0, 2));
	PQclear(r);
	snprintf(who, size, "%s", o->names);
	return strcmp(o->count, "0") ? 1 : 0;
}

static void others_waiting(void *arg, const char *who, bool first)
{
	struct others *o = arg;

	(void)who;
	(void)first;
	log_info("waiting up to %lld s for the %s other session(s) on database '%s' "
		 "(%s; pid %s) to end: new sessions are read-only until the upgrade is "
		 "over",
		 o->s->lock_timeout, o->count, pg_priv(o->s)->dbname, o->names, o->pids);
}

static void others_gave_up(void *arg, const char *who, bool stopped)
{
	struct others *o = arg;

	(void)who;
	(void)stopped;
	store_fail(
		o->s, EXIT_TEMPFAIL,
		"%s other session(s) are still connected to database '%s' (%s; pid %s): a "
		"migration that runs outside a transaction is undone by restoring a "
		"snapshot, which would discard what they write; nothing was changed: stop "
		"them (the old release?) and start again",
		o->count, pg_priv(o->s)->dbname, o->names, o->pids);
}

/* A role's own default_transaction_read_only would win over the database's. */
static int no_role_read_only(struct store *s)
{
	PGresult *r = pg_query(
		s, pg_conn(s),
		"SELECT coalesce(string_agg(DISTINCT "
		"r.rolname, ', '), '') FROM pg_db_role_setting d JOIN pg_roles r "
		"ON r.oid = d.setrole WHERE d.setdatabase IN (0, (SELECT oid FROM "
		"pg_database WHERE datname = current_database())) AND "
		"array_to_string(d.setconfig, ',') LIKE "
		"'%default\\_transaction\\_read\\_only%'",
		0, NULL);
	int rc = 0;

	if (!r)
		return error("cannot read the roles' settings: %s", s->err);
	if (PQgetvalue(r, 0, 0)[0]) {
		rc = store_fail(
			s, EXIT_CONFIG,
			"role(s) %s set default_transaction_read_only of their own, so "
			"their sessions could write while a migration that runs outside a "
			"transaction can still be undone (and their writes lost): ALTER "
			"ROLE ... RESET default_transaction_read_only; nothing was changed",
			PQgetvalue(r, 0, 0));
	}
	PQclear(r);
	return rc;
}

/*
 * A migration outside a transaction is undone by putting a snapshot back,
 * which would discard what others wrote meanwhile. So for that window
 * writers are kept out: new sessions start read-only (the database's
 * default_transaction_read_only, which unhold resets, or the next ferry
 * after a crash), and the sessions already there must leave first: ferry
 * waits for them up to the lock timeout, then refuses (75). Transactional
 * migrations run in one transaction and need none of this.
 */
int pg_hold(struct store *s, bool exclusive)
{
	struct others o = { .s = s };
	struct wait w = { .timeout = s->lock_timeout,
			  .pause = 0.2,
			  .try_once = others_try,
			  .waiting = others_waiting,
			  .gave_up = others_gave_up,
			  .arg = &o };

	if (!exclusive)
		return 0;
	if (pg_open(s) < 0 || no_role_read_only(s) < 0)
		return -1;
	if (read_only_default(s, true) < 0) {
		return store_fail(
			s, EXIT_NOPERM,
			"cannot keep writers out of database '%s' for the upgrade "
			"(ALTER DATABASE ... SET default_transaction_read_only: %s): a "
			"migration that runs outside a transaction needs it, so that "
			"undoing it loses no one's writes; the role must own the "
			"database; nothing was changed",
			pg_priv(s)->dbname, s->err);
	}
	pg_priv(s)->held = true;
	return wait_for(&w) == 0 ? 0 : -1;
}

/* Writers are welcome again; after a crash too (recovery calls it). */
void pg_unhold(struct store *s)
{
	if (pg_open(s) < 0)
		return;
	if (read_only_default(s, false) < 0 && pg_priv(s)->held)
		log_warn("cannot reset default_transaction_read_only of database '%s' "
			 "(%s): new sessions stay read-only until it is reset by hand",
			 pg_priv(s)->dbname, s->err);
	pg_priv(s)->held = false;
}
