/*
 * sqcheck: what `ferry doctor` asks of SQLite, none of it a write: the
 * database opened read-only (query_only too), snapshots opened as
 * immutable files (ferry never changes one in place, so no -shm or lock is
 * needed, and none is left beside it), a scratch database in memory to
 * replay the migrations on, the schema as comparable rows, and the
 * application's checks run on the read-only connection.
 */
#include "log.h"
#include "sqlite.h"
#include "store.h"
#include "util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Read-only and query_only. A WAL database that nobody has open gets its
 * -wal and -shm back, as from any reader: SQLite's own files, not writes. */
int sq_open_read_only(struct store *s)
{
	char msg[512];

	if (sq_open_handle(s, s->path, SQLITE_OPEN_READONLY) < 0)
		return -1;
	/* the first read finds a file that is not a database */
	if (sq_exec(s, "PRAGMA query_only = 1", msg, sizeof(msg)) < 0 ||
	    sq_exec(s, "SELECT count(*) FROM sqlite_master", msg, sizeof(msg)) < 0) {
		error("database '%s' cannot be read: %s", s->path, msg);
		sq_close(s);
		return -1;
	}
	return 0;
}

/* "file:/path%20x?immutable=1": a URI, the path's special bytes escaped */
static char *immutable_uri(const char *path)
{
	size_t size = 3 * strlen(path) + 32, n;
	char *uri = xmalloc(size);

	n = (size_t)snprintf(uri, size, "file:");
	for (const char *p = path; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("/._-~", c))
			uri[n++] = (char)c;
		else
			n += (size_t)snprintf(uri + n, size - n, "%%%02X", c);
	}
	snprintf(uri + n, size - n, "?immutable=1");
	return uri;
}

/* The snapshot file as a store of its own, read-only, never locked. */
static int open_snapshot(struct store *s, const char *path, struct store *out, char *why,
			 size_t size)
{
	char *uri = immutable_uri(path);
	sqlite3 *db = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) !=
		    SQLITE_OK ||
	    sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) !=
		    SQLITE_OK) {
		snprintf(why, size, "cannot be read: %s",
			 db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		goto out;
	}
	out->ops = s->ops;
	out->url = xstrdup(path);
	out->url_redacted = xstrdup(path);
	out->path = xstrdup(path);
	out->busy_ms = s->busy_ms;
	out->db = db;
	rc = 0;
out:
	free(uri);
	return rc;
}

int sq_snapshot_open(struct store *s, const char *path, struct store *out, char *why,
		     size_t size)
{
	if (!sq_snapshot_usable(s, path, why, size))
		return -1;
	return open_snapshot(s, path, out, why, size);
}

int sq_snapshot_verify(struct store *s, const char *path, char *why, size_t size)
{
	struct store snap;
	char msg[512];
	int rc;

	if (sq_snapshot_open(s, path, &snap, why, size) < 0)
		return -1;
	rc = sq_quick_check(&snap, msg, sizeof(msg));
	if (rc < 0)
		snprintf(why, size, "fails quick_check: %s", msg);
	store_release(&snap);
	return rc;
}

int sq_scratch_open(struct store *s, struct store *out, char *why, size_t size)
{
	sqlite3 *db = NULL;

	memset(out, 0, sizeof(*out));
	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    NULL) != SQLITE_OK) {
		snprintf(why, size, "cannot open a database in memory: %s",
			 db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return -1;
	}
	sqlite3_extended_result_codes(db, 1);
	out->ops = s->ops;
	out->url = xstrdup(":memory:");
	out->url_redacted = xstrdup("a database in memory");
	out->path = xstrdup(":memory:");
	out->busy_ms = s->busy_ms;
	out->db = db;
	return 0;
}

void sq_scratch_drop(struct store *s, struct store *scratch)
{
	(void)s;
	store_release(scratch);
}

/* SQL text with its runs of blanks made one space, as two builds compare */
static char *squeeze(const char *sql)
{
	char *out = xmalloc(strlen(sql) + 1), *o = out;

	for (const char *p = sql; *p; p++) {
		bool blank = *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r';

		if (blank && (o == out || o[-1] == ' '))
			continue;
		*o++ = blank ? ' ' : *p;
	}
	while (o > out && o[-1] == ' ')
		o--;
	*o = '\0';
	return out;
}

struct schema_walk {
	store_row_fn row;
	void *arg;
};

static int schema_row(void *arg, int ncols, const char *const *v)
{
	struct schema_walk *w = arg;
	char *def;
	const char *row[3];
	int rc;

	if (ncols < 3)
		return -1;
	def = squeeze(v[2] ? v[2] : "");
	row[0] = v[0];
	row[1] = v[1];
	row[2] = def;
	rc = w->row(w->arg, 3, row);
	free(def);
	return rc;
}

/* clang-format off */
/* sqlite_master (type, name, tbl_name, sql), and each table's columns */
static const char schema_sql[] =
	"SELECT name, 'table ' || name, '' FROM sqlite_master "
	" WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
	"UNION ALL SELECT tbl_name, type || ' ' || name || "
	" CASE type WHEN 'table' THEN ': definition' ELSE '' END, sql "
	" FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
	" AND sql IS NOT NULL "
	"UNION ALL SELECT m.name, 'table ' || m.name || ': column ' || p.name, "
	" trim(p.type || CASE WHEN p.\"notnull\" THEN ' NOT NULL' ELSE '' END || "
	" coalesce(' DEFAULT ' || p.dflt_value, '') || "
	" CASE WHEN p.pk THEN ' PRIMARY KEY' ELSE '' END) "
	" FROM sqlite_master m JOIN pragma_table_info(m.name) p "
	" WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'";
/* clang-format on */

int sq_describe_schema(struct store *s, store_row_fn row, void *arg)
{
	struct schema_walk w = { row, arg };

	return s->ops->sql_query(s, schema_sql, 0, NULL, schema_row, &w);
}

/* A check may read, nothing else: no ATTACH (a file of its choosing), no
 * way back out of query_only. */
static int read_only_guard(void *arg, int action, const char *a, const char *b,
			   const char *c, const char *d)
{
	(void)arg;
	(void)b;
	(void)c;
	(void)d;
	if (action == SQLITE_ATTACH || action == SQLITE_DETACH ||
	    (action == SQLITE_PRAGMA && a && !sqlite3_stricmp(a, "query_only")))
		return SQLITE_DENY;
	return SQLITE_OK;
}

int sq_run_checks(struct store *s, const char *sql, store_row_fn row, void *arg)
{
	const char *tail = sql;
	int rc = 0;

	sqlite3_set_authorizer(handle(s), read_only_guard, NULL);
	while (rc == 0 && tail && *tail) {
		sqlite3_stmt *st = NULL;

		if (sqlite3_prepare_v2(handle(s), tail, -1, &st, &tail) != SQLITE_OK) {
			snprintf(s->err, sizeof(s->err), "%s", sqlite3_errmsg(handle(s)));
			rc = -1;
		} else if (st) {
			rc = sq_step_rows(s, st, row, arg) < 0 ? -1 : 0;
		}
		sqlite3_finalize(st);
	}
	sqlite3_set_authorizer(handle(s), NULL, NULL);
	/* whatever a check left open ends undone */
	if (!sqlite3_get_autocommit(handle(s)))
		sqlite3_exec(handle(s), "ROLLBACK", NULL, NULL, NULL);
	return rc;
}
