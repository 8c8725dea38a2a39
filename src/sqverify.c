/*
 * sqverify: the integrity check after an upgrade, limited to what the
 * upgrade wrote. Before the snapshot the whole file passed quick_check;
 * inside the held transaction only the b-trees a migration writes change
 * (foreign keys are off, so nothing cascades; triggers are seen through
 * the authorizer like any statement). Checking those tables with their
 * indexes, sqlite_schema and the ledger finds what the whole pass would
 * find in them, at the cost of what was written instead of the size of
 * the database. A write that can reach other pages (a DROP returns pages
 * to the freelist, VACUUM, REINDEX, ANALYZE, a pragma, auto_vacuum moving
 * pages, a migration outside the transaction) asks for the whole pass.
 */
#include "log.h"
#include "sqlite.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* auto_vacuum moves pages of any table at a commit */
static bool auto_vacuum_on(struct store *s)
{
	sqlite3_stmt *st = NULL;
	bool on = true;

	if (sqlite3_prepare_v2(handle(s), "PRAGMA main.auto_vacuum", -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		on = sqlite3_column_int(st, 0) != 0;
	sqlite3_finalize(st);
	return on;
}

static bool has_table(struct store *s, const char *name)
{
	sqlite3_stmt *st = NULL;
	bool yes = true; /* if in doubt, checked (and found missing: all) */

	if (sqlite3_prepare_v2(handle(s),
			       "SELECT 1 FROM main.sqlite_schema WHERE type = 'table' "
			       "AND name = ?1",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) == SQLITE_OK)
		yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return yes;
}

void sq_written_reset(struct sq *p, bool all)
{
	for (size_t i = 0; i < p->n_written; i++)
		free(p->written[i]);
	free(p->written);
	p->written = NULL;
	p->n_written = 0;
	p->written_all = all;
}

static void note(struct sq *p, const char *table)
{
	if (!table || p->written_all)
		return;
	for (size_t i = 0; i < p->n_written; i++)
		if (!sqlite3_stricmp(p->written[i], table))
			return;
	if (p->n_written == 64) { /* many tables: the whole pass is as cheap */
		p->written_all = true;
		return;
	}
	p->written = xrealloc(p->written, (p->n_written + 1) * sizeof(*p->written));
	p->written[p->n_written++] = xstrdup(table);
}

/* pragmas that change no page but the header's, or none */
static bool harmless_pragma(const char *name)
{
	static const char *const ok[] = { "foreign_keys",	"user_version",
					  "application_id",	"foreign_key_check",
					  "table_info",		"table_xinfo",
					  "index_list",		"index_info",
					  "defer_foreign_keys", "legacy_alter_table",
					  "recursive_triggers", NULL };

	for (size_t i = 0; name && ok[i]; i++)
		if (!sqlite3_stricmp(name, ok[i]))
			return true;
	return false;
}

/* What the authorizer sees a migration do (a, b as sqlite3_set_authorizer
 * passes them; db: the schema, "main" for the database itself). */
void sq_written_note(struct sq *p, int action, const char *a, const char *b,
		     const char *db)
{
	/* a pragma's schema is the prefix written (temp.x): many act on the
	 * whole connection whatever it says */
	if (action == SQLITE_PRAGMA) {
		if (!harmless_pragma(a))
			p->written_all = true;
		return;
	}
	if (db && sqlite3_stricmp(db, "main"))
		return; /* temp or attached: not the database being upgraded */
	switch (action) {
	case SQLITE_INSERT:
	case SQLITE_UPDATE:
	case SQLITE_DELETE:
	case SQLITE_CREATE_TABLE:
		note(p, a);
		break;
	case SQLITE_CREATE_INDEX:
		note(p, b);
		break;
	case SQLITE_ALTER_TABLE: /* a: the schema, b: the table */
		if (a && sqlite3_stricmp(a, "main"))
			return;
		note(p, b);
		break;
	case SQLITE_READ:
	case SQLITE_SELECT:
	case SQLITE_FUNCTION:
	case SQLITE_RECURSIVE:
	case SQLITE_SAVEPOINT:
	case SQLITE_TRANSACTION:
	case SQLITE_CREATE_VIEW:
	case SQLITE_CREATE_TRIGGER:
		break; /* nothing, or sqlite_schema only */
	default:       /* drops, VACUUM, REINDEX, ANALYZE, virtual tables, ATTACH ... */
		p->written_all = true;
	}
}

/*
 * quick_check of what the held migrations wrote (ledger: the ledger's
 * table), or of the whole file when that is needed or cheaper; 0, or -1
 * with msg saying what it found.
 */
int sq_written_check(struct store *s, const char *ledger, char *msg, size_t size)
{
	struct sq *p = sq_priv(s);
	int rc = 0;

	if (p->written_all || !p->held || auto_vacuum_on(s)) {
		log_debug("integrity check after the upgrade: the whole file");
		return sq_quick_check(s, msg, size);
	}
	note(p, "sqlite_schema");
	note(p, ledger);
	/* AUTOINCREMENT's counters change without an authorizer call */
	if (has_table(s, "sqlite_sequence"))
		note(p, "sqlite_sequence");
	if (p->written_all) { /* those three took it past the cheap bound */
		log_debug("integrity check after the upgrade: the whole file");
		return sq_quick_check(s, msg, size);
	}
	log_debug("integrity check after the upgrade: the %zu b-tree(s) it wrote, "
		  "first '%s'",
		  p->n_written, p->written[0]);
	for (size_t i = 0; rc == 0 && i < p->n_written; i++) {
		char *sql = sqlite3_mprintf("PRAGMA main.quick_check(%Q)", p->written[i]);

		/* a table renamed or dropped since: the whole pass instead */
		rc = sq_pragma_ok(s, sql, msg, size);
		sqlite3_free(sql);
		if (rc < 0 && strstr(msg, "no such table")) {
			log_debug("integrity check after the upgrade: '%s' is gone, "
				  "so the whole file",
				  p->written[i]);
			return sq_quick_check(s, msg, size);
		}
	}
	return rc;
}
