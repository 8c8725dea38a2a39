/*
 * sqrebuild: rebuild mode on SQLite. Two files beside the database: a
 * staging copy of the old data (<db>.rebuild-staging, through the backup
 * API) that the transforms change, and the fresh database built from
 * schema.sql (<db>.rebuild-new), into which every table and column the
 * two share is copied through ATTACH. The old file is only read; the
 * fresh one takes its place with one rename.
 */
#include "sqlite.h"
#include "exits.h"
#include "log.h"
#include "migrations.h"
#include "rebuild.h"
#include "util.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STAGING ".rebuild-staging"
#define FRESH	".rebuild-new"

/* The fresh database's triggers, set aside while the data is copied in. */
struct triggers {
	char **create, **drop;
	size_t n;
};

static int unlink_with_sidecars(const char *path)
{
	return sq_unlink_files(path, false);
}

static void discard_staging(struct store *s)
{
	char *st = xasprintf("%s" STAGING, s->path);

	unlink_with_sidecars(st);
	free(st);
}

void sq_rebuild_discard(struct store *s)
{
	char *nw = xasprintf("%s" FRESH, s->path);

	discard_staging(s);
	unlink_with_sidecars(nw);
	free(nw);
}

/* A second connection, to a file of the build: a store of its own. */
static int open_side(struct store *s, struct store *out, const char *suffix)
{
	char msg[512];

	*out = *s;
	out->db = NULL;
	out->path = xasprintf("%s%s", s->path, suffix);
	if (unlink_with_sidecars(out->path) < 0 ||
	    sq_open_handle(out, out->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) <
		    0) {
		snprintf(s->err, sizeof(s->err), "cannot create '%s'", out->path);
		return -1;
	}
	/* a crash throws these files away: no need to make them durable */
	if (sq_exec(out, "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF", msg,
		    sizeof(msg)) < 0) {
		snprintf(s->err, sizeof(s->err), "'%s': %s", out->path, msg);
		return -1;
	}
	return 0;
}

static void close_side(struct store *side)
{
	if (side->db && sqlite3_close(handle(side)) != SQLITE_OK)
		log_warn("closing '%s': %s", side->path, sqlite3_errmsg(handle(side)));
	side->db = NULL;
	free(side->path);
	side->path = NULL;
}

/* The old data, read through the held connection, into the staging file. */
static int copy_old(struct store *s, struct store *stage)
{
	sqlite3_backup *b = sqlite3_backup_init(handle(stage), "main", handle(s), "main");
	int rc;

	if (!b) {
		snprintf(s->err, sizeof(s->err), "cannot copy '%s' to '%s': %s", s->path,
			 stage->path, sqlite3_errmsg(handle(stage)));
		return -1;
	}
	rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		snprintf(s->err, sizeof(s->err), "cannot copy '%s' to '%s': %s", s->path,
			 stage->path, sqlite3_errstr(rc));
		return -1;
	}
	crash_point("rebuild:staged");
	return 0;
}

static int run_transforms(struct store *s, struct store *stage,
			  const struct rebuild_job *job)
{
	char msg[768];

	for (size_t i = 0; i < job->n_steps; i++) {
		const struct transform *t = job->steps[i];
		double t0 = now_seconds();

		if (sq_exec(stage, t->sql, msg, sizeof(msg)) < 0) {
			snprintf(s->err, sizeof(s->err), "transform '%s' failed: %s",
				 t->path, msg);
			return -1;
		}
		log_info("rebuild: transform %s-%s ran on the staging copy (%.0f ms)",
			 version_str(&t->from), version_str(&t->to),
			 (now_seconds() - t0) * 1000);
		crash_point("rebuild:transformed");
	}
	return 0;
}

/* Collects and drops the triggers, so that copying fires none. */
static int set_triggers_aside(struct store *s, struct store *fresh, struct triggers *tr)
{
	sqlite3_stmt *st = NULL;
	char msg[512];
	int rc;

	if (sqlite3_prepare_v2(handle(fresh),
			       "SELECT name, sql FROM sqlite_master WHERE type = "
			       "'trigger' ORDER BY rowid",
			       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char *drop = sqlite3_mprintf("DROP TRIGGER \"%w\"",
					     sqlite3_column_text(st, 0));

		tr->create = xrealloc(tr->create, (tr->n + 1) * sizeof(char *));
		tr->drop = xrealloc(tr->drop, (tr->n + 1) * sizeof(char *));
		tr->create[tr->n] = xstrdup((const char *)sqlite3_column_text(st, 1));
		tr->drop[tr->n++] = xstrdup(drop ? drop : "");
		sqlite3_free(drop);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	/* dropped once the read of sqlite_master is over */
	for (size_t i = 0; i < tr->n; i++)
		if (sq_exec(fresh, tr->drop[i], msg, sizeof(msg)) < 0) {
			snprintf(s->err, sizeof(s->err), "schema.sql: %s", msg);
			return -1;
		}
	return 0;
fail:
	snprintf(s->err, sizeof(s->err), "schema.sql: %s", sqlite3_errmsg(handle(fresh)));
	sqlite3_finalize(st);
	return -1;
}

/* Creates them again (when ok) and forgets them. */
static int put_triggers_back(struct store *s, struct store *fresh, struct triggers *tr,
			     bool ok)
{
	char msg[512];
	int rc = 0;

	for (size_t i = 0; ok && rc == 0 && i < tr->n; i++)
		if (sq_exec(fresh, tr->create[i], msg, sizeof(msg)) < 0) {
			snprintf(s->err, sizeof(s->err),
				 "cannot create a trigger again: %s", msg);
			rc = -1;
		}
	for (size_t i = 0; i < tr->n; i++) {
		free(tr->create[i]);
		free(tr->drop[i]);
	}
	free(tr->create);
	free(tr->drop);
	memset(tr, 0, sizeof(*tr));
	return rc;
}

/* "a", "b" of the columns table has in both main and old; NULL: none */
static char *common_columns(struct store *fresh, const char *table)
{
	sqlite3_stmt *st = NULL;
	char *list = NULL;

	if (sqlite3_prepare_v2(handle(fresh),
			       "SELECT n.name FROM pragma_table_info(?1, 'main') n "
			       "JOIN pragma_table_info(?1, 'old') o ON o.name = n.name "
			       "ORDER BY n.cid",
			       -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		char *q = sqlite3_mprintf("\"%w\"", sqlite3_column_text(st, 0));
		char *more = xasprintf("%s%s%s", list ? list : "", list ? ", " : "",
				       q ? q : "");

		sqlite3_free(q);
		free(list);
		list = more;
	}
	sqlite3_finalize(st);
	return list;
}

/* "email = 'a@b'" for the old row's primary key (not a rowid alias); NULL
 * for none */
static char *primary_key(struct store *fresh, const char *table, long long rowid)
{
	sqlite3_stmt *st = NULL;
	char *expr = NULL, *sql, *out = NULL;

	if (sqlite3_prepare_v2(
		    handle(fresh),
		    "SELECT group_concat(printf('%Q || '' = '' || quote(%w)', "
		    "name, name), ' || '', '' || ') FROM (SELECT name FROM "
		    "pragma_table_info(?1, 'old') WHERE pk > 0 AND lower(type) <> "
		    "'integer' ORDER BY pk)",
		    -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		expr = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (!expr)
		return NULL;
	sql = sqlite3_mprintf("SELECT %s FROM old.\"%w\" WHERE rowid = %lld", expr, table,
			      rowid);
	if (sql && sqlite3_prepare_v2(handle(fresh), sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_free(sql);
	free(expr);
	return out;
}

/*
 * The bulk copy of a table failed on a constraint: find the first row of
 * the old table that the new one refuses, to name it. The failed INSERT
 * left nothing behind (statement rollback).
 */
static void name_the_row(struct store *s, struct store *fresh, const char *table,
			 const char *cols, const char *why)
{
	char *sql = sqlite3_mprintf("SELECT rowid FROM old.\"%w\" ORDER BY rowid", table);
	char *one = sqlite3_mprintf("INSERT INTO main.\"%w\" (%s) SELECT %s FROM "
				    "old.\"%w\" WHERE rowid = ?1",
				    table, cols, cols, table);
	sqlite3_stmt *rows = NULL, *ins = NULL;
	long long bad = -1;

	snprintf(s->err, sizeof(s->err),
		 "table '%s': a row of the old data is refused: %s", table, why);
	if (!sql || !one ||
	    sqlite3_prepare_v2(handle(fresh), sql, -1, &rows, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(handle(fresh), one, -1, &ins, NULL) != SQLITE_OK)
		goto out; /* WITHOUT ROWID: the table is named, not the row */
	while (bad < 0 && sqlite3_step(rows) == SQLITE_ROW) {
		long long id = sqlite3_column_int64(rows, 0);

		sqlite3_bind_int64(ins, 1, id);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			char *pk, refused[512];

			bad = id;
			snprintf(refused, sizeof(refused), "%s",
				 sqlite3_errmsg(handle(fresh)));
			sqlite3_reset(ins);
			pk = primary_key(fresh, table, id);
			snprintf(s->err, sizeof(s->err),
				 "table '%s', row with rowid %lld%s%.200s%s: %s: the new "
				 "schema refuses it; fix the data in a transform",
				 table, bad, pk ? " (" : "", pk ? pk : "", pk ? ")" : "",
				 refused);
			free(pk);
		}
		sqlite3_reset(ins);
	}
out:
	sqlite3_finalize(rows);
	sqlite3_finalize(ins);
	sqlite3_free(sql);
	sqlite3_free(one);
}

/* One table present in both: its common columns; 0 or -1 with s->err. */
static int copy_table(struct store *s, struct store *fresh, const char *table)
{
	char *cols = common_columns(fresh, table), *sql;
	char msg[512];
	int rc = 0;

	if (!cols) {
		log_info("rebuild: %s 0 rows (no column in common with the old "
			 "table)",
			 table);
		return 0;
	}
	sql = sqlite3_mprintf("INSERT INTO main.\"%w\" (%s) SELECT %s FROM old.\"%w\"",
			      table, cols, cols, table);
	if (!sql || sq_exec(fresh, sql, msg, sizeof(msg)) < 0) {
		if ((sqlite3_errcode(handle(fresh)) & 0xff) == SQLITE_CONSTRAINT)
			name_the_row(s, fresh, table, cols, msg);
		else
			snprintf(s->err, sizeof(s->err), "copying table '%s': %s", table,
				 sql ? msg : "out of memory");
		rc = -1;
	} else {
		long long n = (long long)sqlite3_changes64(handle(fresh));

		log_info("rebuild: %s %lld row%s", table, n, n == 1 ? "" : "s");
	}
	sqlite3_free(sql);
	free(cols);
	return rc;
}

/* AUTOINCREMENT counters go on from where the old tables left them. */
static int copy_sequences(struct store *fresh, char *msg, size_t size)
{
	static const char *const sql =
		"UPDATE main.sqlite_sequence SET seq = max(seq, (SELECT o.seq FROM "
		"old.sqlite_sequence o WHERE o.name = main.sqlite_sequence.name)) WHERE "
		"name IN (SELECT name FROM old.sqlite_sequence);"
		"INSERT INTO main.sqlite_sequence (name, seq) SELECT o.name, o.seq FROM "
		"old.sqlite_sequence o WHERE o.name NOT IN (SELECT name FROM "
		"main.sqlite_sequence) AND o.name IN (SELECT name FROM main.sqlite_master "
		"WHERE type = 'table' AND sql LIKE '%AUTOINCREMENT%')";
	sqlite3_stmt *st = NULL;
	bool both;

	if (sqlite3_prepare_v2(handle(fresh),
			       "SELECT (SELECT count(*) FROM main.sqlite_master WHERE "
			       "name = 'sqlite_sequence') + (SELECT count(*) FROM "
			       "old.sqlite_master WHERE name = 'sqlite_sequence')",
			       -1, &st, NULL) != SQLITE_OK)
		return snprintf(msg, size, "%s", sqlite3_errmsg(handle(fresh))), -1;
	both = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 2;
	sqlite3_finalize(st);
	return both ? sq_exec(fresh, sql, msg, size) : 0;
}

struct tables {
	char **names;
	size_t n;
};

static int add_name(void *arg, int ncols, const char *const *v)
{
	struct tables *t = arg;

	(void)ncols;
	t->names = xrealloc(t->names, (t->n + 1) * sizeof(*t->names));
	t->names[t->n++] = xstrdup(v[0]);
	return 0;
}

static void tables_release(struct tables *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->names[i]);
	free(t->names);
	memset(t, 0, sizeof(*t));
}

/* The tables of schema (main or old) but SQLite's and the ledger's. */
static int list_of(struct store *s, struct store *db, const char *schema,
		   struct tables *t)
{
	char *sql = sqlite3_mprintf("SELECT name FROM \"%w\".sqlite_master WHERE type = "
				    "'table' AND name NOT LIKE 'sqlite_%%' AND name <> "
				    "%Q ORDER BY name",
				    schema, s->recorder->table);
	int rc = -1;

	if (sql)
		rc = s->ops->sql_query(db, sql, 0, NULL, add_name, t);
	if (rc < 0)
		snprintf(s->err, sizeof(s->err), "listing the tables: %.900s",
			 sql ? db->err : "out of memory");
	sqlite3_free(sql);
	return rc;
}

static bool listed(const struct tables *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->names[i], name))
			return true;
	return false;
}

/* Every table of the new schema that the old data has, in one transaction;
 * foreign keys are off while rows arrive in any order, checked after. */
static int copy_all(struct store *s, struct store *fresh, const char *staging)
{
	struct tables mine = { 0 }, old = { 0 };
	char msg[512], *attach = sqlite3_mprintf("ATTACH %Q AS old", staging);
	int rc = -1;

	if (!attach || sq_exec(fresh, attach, msg, sizeof(msg)) < 0) {
		snprintf(s->err, sizeof(s->err), "cannot attach '%s': %s", staging,
			 attach ? msg : "out of memory");
		goto out;
	}
	if (list_of(s, fresh, "main", &mine) < 0 || list_of(s, fresh, "old", &old) < 0)
		goto detach;
	if (sq_exec(fresh, "PRAGMA foreign_keys = OFF; BEGIN", msg, sizeof(msg)) < 0)
		goto fail;
	for (size_t i = 0; i < mine.n; i++)
		if (!listed(&old, mine.names[i]))
			log_info("rebuild: %s is new: starts empty", mine.names[i]);
		else if (copy_table(s, fresh, mine.names[i]) < 0)
			goto rollback;
	for (size_t i = 0; i < old.n; i++)
		if (!listed(&mine, old.names[i]))
			log_info("rebuild: %s is not in schema.sql: not copied",
				 old.names[i]);
	if (copy_sequences(fresh, msg, sizeof(msg)) < 0 ||
	    sq_exec(fresh, "COMMIT", msg, sizeof(msg)) < 0)
		goto fail;
	crash_point("rebuild:copied");
	rc = 0;
	goto detach;
fail:
	snprintf(s->err, sizeof(s->err), "copying the data: %s", msg);
rollback:
	sq_exec(fresh, "ROLLBACK", msg, sizeof(msg));
detach:
	sq_exec(fresh, "DETACH old", msg, sizeof(msg));
out:
	tables_release(&mine);
	tables_release(&old);
	sqlite3_free(attach);
	return rc;
}

/* The ledger starts afresh: one row, the schema's version. */
static int write_ledger(struct store *s, struct store *fresh, const struct migration *m,
			long long ms)
{
	if (fresh->recorder->prepare(fresh) < 0 ||
	    fresh->recorder->record(fresh, m, ms, false) < 0) {
		snprintf(s->err, sizeof(s->err), "ledger: %.900s", fresh->err);
		return -1;
	}
	return 0;
}

static int first_row_ok(struct store *fresh, const char *sql, char *msg, size_t size)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(handle(fresh), sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(msg, size, "%s", sqlite3_errmsg(handle(fresh)));
		return -1;
	}
	switch (sqlite3_step(st)) {
	case SQLITE_DONE:
		rc = 0;
		break;
	case SQLITE_ROW:
		if (sqlite3_column_count(st) == 1 &&
		    !strcmp((const char *)sqlite3_column_text(st, 0), "ok"))
			rc = 0;
		else if (sqlite3_column_count(st) == 1)
			snprintf(msg, size, "integrity check: %s",
				 (const char *)sqlite3_column_text(st, 0));
		else
			snprintf(msg, size,
				 "foreign key violation: table '%s', row with rowid "
				 "%lld, references a missing row of '%s'",
				 (const char *)sqlite3_column_text(st, 0),
				 (long long)sqlite3_column_int64(st, 1),
				 (const char *)sqlite3_column_text(st, 2));
		break;
	default:
		snprintf(msg, size, "%s", sqlite3_errmsg(handle(fresh)));
	}
	sqlite3_finalize(st);
	return rc;
}

/* integrity and foreign keys of the fresh database, then its journal mode
 * as the old one had it (WAL stays WAL) */
static int verify_fresh(struct store *s, struct store *fresh)
{
	char msg[512];
	bool wal = false;
	sqlite3_stmt *st = NULL;

	if (first_row_ok(fresh, "PRAGMA integrity_check", msg, sizeof(msg)) < 0 ||
	    first_row_ok(fresh, "PRAGMA foreign_key_check", msg, sizeof(msg)) < 0) {
		snprintf(s->err, sizeof(s->err),
			 "verification of the rebuilt database: %s", msg);
		return -1;
	}
	if (sqlite3_prepare_v2(handle(s), "PRAGMA journal_mode", -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		wal = !strcmp((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	if (sq_exec(fresh,
		    wal ? "PRAGMA journal_mode = WAL" : "PRAGMA journal_mode = DELETE",
		    msg, sizeof(msg)) < 0) {
		snprintf(s->err, sizeof(s->err), "'%s': %s", fresh->path, msg);
		return -1;
	}
	return 0;
}

/* schema.sql on the fresh file, the old data copied in, verified */
static int build_fresh(struct store *s, struct store *fresh, const char *staging,
		       const struct rebuild_job *job)
{
	struct triggers tr = { 0 };
	double t0 = now_seconds();
	char msg[768];
	int rc;

	if (sq_exec(fresh, job->schema->sql, msg, sizeof(msg)) < 0) {
		snprintf(s->err, sizeof(s->err), "'%s' failed: %s", job->schema->path,
			 msg);
		return -1;
	}
	rc = set_triggers_aside(s, fresh, &tr);
	if (rc == 0)
		rc = copy_all(s, fresh, staging);
	if (put_triggers_back(s, fresh, &tr, rc == 0) < 0)
		rc = -1;
	if (rc == 0)
		rc = write_ledger(s, fresh, job->schema,
				  (long long)((now_seconds() - t0) * 1000));
	if (rc == 0)
		rc = verify_fresh(s, fresh);
	return rc;
}

/* A full disk, no memory, an I/O error: the environment's failure, not the
 * release's (the crash-loop guard does not count it). */
static void mark_transient(struct store *s, struct store *side)
{
	int code = side->db ? sqlite3_errcode(handle(side)) & 0xff : SQLITE_OK;

	if (code == SQLITE_FULL || code == SQLITE_IOERR || code == SQLITE_NOMEM ||
	    code == SQLITE_BUSY)
		s->transient = true;
}

int sq_rebuild_build(struct store *s, const struct rebuild_job *job)
{
	struct store stage = { 0 }, fresh = { 0 };
	int rc = -1;

	s->err[0] = '\0';
	if (open_side(s, &stage, STAGING) < 0 || copy_old(s, &stage) < 0 ||
	    run_transforms(s, &stage, job) < 0)
		goto out;
	close_side(&stage); /* the fresh one attaches the file */
	stage.path = xasprintf("%s" STAGING, s->path);
	if (open_side(s, &fresh, FRESH) < 0 ||
	    build_fresh(s, &fresh, stage.path, job) < 0)
		goto out;
	close_side(&fresh);
	rc = 0;
out:
	if (rc < 0) {
		mark_transient(s, &stage);
		mark_transient(s, &fresh);
	}
	close_side(&stage);
	close_side(&fresh);
	discard_staging(s);
	if (rc < 0)
		sq_rebuild_discard(s);
	return rc;
}

/* The old file's owner and mode for the new one: the server's user keeps
 * writing to it. */
static int like_old(const char *fresh, const char *old)
{
	struct stat st;

	if (stat(old, &st) < 0)
		return error_errno("cannot read '%s'", old);
	if (chmod(fresh, st.st_mode & 07777) < 0)
		return error_errno("cannot set the mode of '%s'", fresh);
	if (geteuid() == 0 && chown(fresh, st.st_uid, st.st_gid) < 0)
		return error_errno("cannot give '%s' to the owner of '%s'", fresh, old);
	return 0;
}

/* Everything of the old database in its file: its -wal must not be
 * replayed onto the new one. */
static int checkpoint_old(struct store *s)
{
	sqlite3_stmt *st = NULL;
	bool ok = false;

	if (sqlite3_prepare_v2(handle(s), "PRAGMA wal_checkpoint(TRUNCATE)", -1, &st,
			       NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		ok = sqlite3_column_int(st, 0) == 0;
	sqlite3_finalize(st);
	if (!ok)
		return error("cannot checkpoint '%s' before the swap: %s", s->path,
			     sqlite3_errmsg(handle(s)));
	return 0;
}

/*
 * One rename puts the new database in place. The held connection (in
 * locking_mode EXCLUSIVE, so nobody else had the file open) checkpoints
 * and closes first; its empty -wal and -shm go before the rename, a crash
 * in between leaving the old database whole.
 */
int sq_rebuild_swap(struct store *s)
{
	char *fresh = xasprintf("%s" FRESH, s->path);
	int rc = -1;

	if (checkpoint_old(s) < 0)
		goto out;
	sq_close(s);
	if (like_old(fresh, s->path) < 0 || fsync_path(fresh) < 0)
		goto out;
	crash_point("rebuild:before-swap");
	if (sq_unlink_files(s->path, true) < 0)
		goto out;
	if (rename(fresh, s->path) < 0) {
		error_errno("cannot move '%s' to '%s'", fresh, s->path);
		goto out;
	}
	rc = fsync_dir_of(s->path);
out:
	free(fresh);
	return rc;
}
