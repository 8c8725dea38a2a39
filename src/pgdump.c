/*
 * pgdump: the logical dump of a PostgreSQL schema and its replay. The
 * schema ferry migrates (current_schema()) as DDL made by the server's own
 * pg_get_*def functions, and its data as COPY text, written to a
 * dump_sink (dump.h): the logical snapshot file, or an archive member.
 * Restoring drops the schema's objects and replays the dump in ONE
 * transaction, so a crash midway changes nothing. Object kinds it cannot
 * rebuild are refused up front, before any write.
 *
 * Stream: "FERRY-PG-SNAPSHOT 1\n", a record "V <len>\n<schema version>\n",
 * records "S <len>\n<sql>\n" and "C <len>\n<copy statement>\n<rows>\\.\n",
 * then "E\n". The snapshot file is that stream in one zstd frame.
 */
#include "dump.h"
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

static const char header[] = "FERRY-PG-SNAPSHOT 1\n";

/* clang-format off */
#define IN_SCHEMA(ns) ns " = current_schema()"
#define NOT_EXT(oid)                                                        \
	"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.objid = " oid            \
	" AND e.deptype = 'e')"

static const char unsupported_sql[] =
	"SELECT kind || ' ' || name FROM ("
	" SELECT CASE c.relkind WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN "
	"  'foreign table' ELSE 'composite type' END AS kind, c.relname AS name "
	"  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	IN_SCHEMA("n.nspname") " AND c.relkind IN ('p', 'f', 'c') AND " NOT_EXT("c.oid")
	" UNION ALL SELECT 'domain or range type', t.typname FROM pg_type t JOIN "
	"  pg_namespace n ON n.oid = t.typnamespace WHERE " IN_SCHEMA("n.nspname")
	"  " "AND t.typtype IN ('d', 'r', 'm') AND " NOT_EXT("t.oid")
	" UNION ALL SELECT 'aggregate', p.proname FROM pg_proc p JOIN pg_namespace n "
	"  ON n.oid = p.pronamespace WHERE " IN_SCHEMA("n.nspname") " AND p.prokind IN "
	"  ('a', 'w') AND " NOT_EXT("p.oid")
	" UNION ALL SELECT 'inherited table', c.relname FROM pg_inherits i JOIN pg_class "
	"  c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	IN_SCHEMA("n.nspname")
	" UNION ALL SELECT 'row security policy', p.polname FROM pg_policy p JOIN "
	"  pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = "
	"  c.relnamespace WHERE " IN_SCHEMA("n.nspname")
	" UNION ALL SELECT 'rule', r.rulename FROM pg_rewrite r JOIN pg_class c ON "
	"  c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	IN_SCHEMA("n.nspname") " AND r.rulename <> '_RETURN'"
	") x";

#define TABLES_WHERE                                                        \
	IN_SCHEMA("n.nspname") " AND c.relkind = 'r' AND c.relname <> '"        \
	JOURNAL_TABLE "' AND " NOT_EXT("c.oid")

/* Queries whose rows are the statements that rebuild the schema, in order.
 * A NULL marks where the data goes. */
static const char *const ddl_before[] = {
	/* enum types */
	"SELECT format('CREATE TYPE %I.%I AS ENUM (%s)', n.nspname, t.typname, "
	"(SELECT coalesce(string_agg(quote_literal(e.enumlabel), ', ' ORDER BY "
	"e.enumsortorder), '') FROM pg_enum e WHERE e.enumtypid = t.oid)) FROM pg_type t "
	"JOIN pg_namespace n ON n.oid = t.typnamespace WHERE " IN_SCHEMA("n.nspname")
	" AND t.typtype = 'e' AND " NOT_EXT("t.oid") " ORDER BY t.oid",
	/* free-standing and serial sequences (identity ones come with tables) */
	"SELECT format('CREATE SEQUENCE %I.%I AS %s INCREMENT BY %s MINVALUE %s "
	"MAXVALUE %s START WITH %s CACHE %s%s', s.schemaname, s.sequencename, "
	"s.data_type, s.increment_by, s.min_value, s.max_value, s.start_value, "
	"s.cache_size, CASE WHEN s.cycle THEN ' CYCLE' ELSE '' END) FROM pg_sequences s "
	"JOIN pg_class c ON c.relname = s.sequencename AND c.relnamespace = "
	"current_schema()::regnamespace WHERE s.schemaname = current_schema() AND NOT "
	"EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND "
	"d.objid = c.oid AND d.deptype IN ('i', 'e')) ORDER BY c.oid",
	/* tables: columns, identity, generated columns, NOT NULL; no defaults
	 * yet, they may call functions created below */
	"SELECT format('CREATE %sTABLE %I.%I (%s)%s', CASE c.relpersistence WHEN 'u' "
	"THEN 'UNLOGGED ' ELSE '' END, n.nspname, c.relname, coalesce((SELECT "
	"string_agg(format('%I %s%s%s%s', a.attname, format_type(a.atttypid, "
	"a.atttypmod), CASE WHEN a.attcollation <> 0 AND a.attcollation <> "
	"ty.typcollation THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE "
	"'' END, CASE WHEN a.attidentity IN ('a', 'd') THEN format(' GENERATED %s AS "
	"IDENTITY (SEQUENCE NAME %I.%I START WITH %s INCREMENT BY %s MINVALUE %s "
	"MAXVALUE %s CACHE %s%s)', CASE a.attidentity WHEN 'a' THEN 'ALWAYS' ELSE 'BY "
	"DEFAULT' END, sn.nspname, sc.relname, q.seqstart, q.seqincrement, q.seqmin, "
	"q.seqmax, q.seqcache, CASE WHEN q.seqcycle THEN ' CYCLE' ELSE ' NO CYCLE' END) "
	"WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(ad.adbin, "
	"ad.adrelid) || ') STORED' ELSE '' END, CASE WHEN a.attnotnull THEN ' NOT "
	"NULL' ELSE '' END), ', ' ORDER BY a.attnum) FROM pg_attribute a JOIN pg_type "
	"ty ON ty.oid = a.atttypid LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid "
	"AND ad.adnum = a.attnum LEFT JOIN pg_depend d ON a.attidentity IN ('a', 'd') "
	"AND d.classid = 'pg_class'::regclass AND d.refobjid = a.attrelid AND "
	"d.refobjsubid = a.attnum AND d.deptype = 'i' LEFT JOIN pg_sequence q ON "
	"q.seqrelid = d.objid LEFT JOIN pg_class sc ON sc.oid = d.objid LEFT JOIN "
	"pg_namespace sn ON sn.oid = sc.relnamespace WHERE a.attrelid = c.oid AND "
	"a.attnum > 0 AND NOT a.attisdropped), ''), CASE WHEN c.reloptions IS NULL "
	"THEN '' ELSE ' WITH (' || array_to_string(c.reloptions, ', ') || ')' END) "
	"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	TABLES_WHERE " ORDER BY c.oid",
	/* functions and procedures */
	"SELECT pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid "
	"= p.pronamespace WHERE " IN_SCHEMA("n.nspname") " AND p.prokind IN ('f', "
	"'p') AND " NOT_EXT("p.oid") " ORDER BY p.oid",
	/* column defaults */
	"SELECT format('ALTER TABLE %I.%I ALTER COLUMN %I SET DEFAULT %s', n.nspname, "
	"c.relname, a.attname, pg_get_expr(ad.adbin, ad.adrelid)) FROM pg_attrdef ad "
	"JOIN pg_class c ON c.oid = ad.adrelid JOIN pg_namespace n ON n.oid = "
	"c.relnamespace JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = "
	"ad.adnum WHERE " TABLES_WHERE " AND a.attgenerated = '' ORDER BY c.oid, "
	"a.attnum",
	/* views and materialized views (filled at the end), in creation order */
	"SELECT format('CREATE %sVIEW %I.%I%s AS %s%s', CASE c.relkind WHEN 'm' THEN "
	"'MATERIALIZED ' ELSE '' END, n.nspname, c.relname, CASE WHEN c.reloptions IS "
	"NULL THEN '' ELSE ' WITH (' || array_to_string(c.reloptions, ', ') || ')' END, "
	"rtrim(pg_get_viewdef(c.oid), ';'), CASE c.relkind WHEN 'm' THEN ' WITH NO DATA' "
	"ELSE '' END) FROM pg_class c "
	"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE " IN_SCHEMA("n.nspname")
	" AND c.relkind IN ('v', 'm') AND " NOT_EXT("c.oid") " ORDER BY c.oid",
	NULL,
};

static const char *const ddl_after[] = {
	/* constraints after the data; foreign keys last */
	"SELECT format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', n.nspname, c.relname, "
	"k.conname, pg_get_constraintdef(k.oid)) FROM pg_constraint k JOIN pg_class c "
	"ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	TABLES_WHERE " AND k.contype IN ('p', 'u', 'x', 'c', 'f') AND k.conislocal "
	"ORDER BY k.contype = 'f', k.oid",
	/* indexes that no constraint made; an INVALID one is not rebuilt */
	"SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid "
	"= i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	IN_SCHEMA("n.nspname") " AND c.relkind IN ('r', 'm') AND c.relname <> '"
	JOURNAL_TABLE "' AND " NOT_EXT("c.oid") " AND i.indisvalid AND NOT EXISTS "
	"(SELECT 1 FROM pg_constraint k "
	"WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x')) ORDER BY "
	"i.indexrelid",
	/* triggers, once the data is in */
	"SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = "
	"t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	IN_SCHEMA("n.nspname") " AND NOT t.tgisinternal AND " NOT_EXT("c.oid")
	" ORDER BY t.oid",
	/* serial sequences belong to their column again */
	"SELECT format('ALTER SEQUENCE %I.%I OWNED BY %I.%I.%I', sn.nspname, s.relname, "
	"tn.nspname, t.relname, a.attname) FROM pg_depend d JOIN pg_class s ON s.oid = "
	"d.objid AND s.relkind = 'S' JOIN pg_namespace sn ON sn.oid = s.relnamespace "
	"JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = "
	"t.relnamespace JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = "
	"d.refobjsubid WHERE d.classid = 'pg_class'::regclass AND d.refclassid = "
	"'pg_class'::regclass AND d.deptype = 'a' AND sn.nspname = current_schema()",
	/* every sequence where it was */
	"SELECT CASE WHEN t.relname IS NULL OR d.deptype = 'a' THEN "
	"format('SELECT setval(%L, %s, %s)', format('%I.%I', s.schemaname, "
	"s.sequencename), coalesce(s.last_value, s.start_value), (s.last_value IS NOT "
	"NULL)::text) ELSE format('SELECT setval(pg_get_serial_sequence(%L, %L), %s, %s)', "
	"format('%I.%I', tn.nspname, t.relname), a.attname, coalesce(s.last_value, "
	"s.start_value), (s.last_value IS NOT NULL)::text) END FROM pg_sequences s JOIN "
	"pg_class sc ON sc.relname = s.sequencename AND sc.relnamespace = "
	"current_schema()::regnamespace LEFT JOIN pg_depend d ON d.classid = "
	"'pg_class'::regclass AND d.objid = sc.oid AND d.refclassid = "
	"'pg_class'::regclass AND d.deptype IN ('a', 'i') LEFT JOIN pg_class t ON t.oid "
	"= d.refobjid LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace LEFT JOIN "
	"pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid WHERE "
	"s.schemaname = current_schema() AND " NOT_EXT("sc.oid"),
	/* materialized views that held rows hold them again */
	"SELECT format('REFRESH MATERIALIZED VIEW %I.%I', n.nspname, c.relname) FROM "
	"pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	IN_SCHEMA("n.nspname") " AND c.relkind = 'm' AND c.relispopulated AND "
	NOT_EXT("c.oid") " ORDER BY c.oid",
	/* owners other than the restoring role */
	"SELECT format('ALTER %s %I.%I OWNER TO %I', CASE c.relkind WHEN 'v' THEN "
	"'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' "
	"END, n.nspname, c.relname, pg_get_userbyid(c.relowner)) FROM pg_class c JOIN "
	"pg_namespace n ON n.oid = c.relnamespace WHERE " IN_SCHEMA("n.nspname")
	" AND c.relkind IN ('r', 'v', 'm', 'S') AND c.relname <> '" JOURNAL_TABLE "' "
	"AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user) AND "
	NOT_EXT("c.oid") " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = "
	"c.oid AND d.deptype IN ('i', 'a'))",
	"SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, "
	"pg_get_userbyid(p.proowner)) FROM pg_proc p JOIN pg_namespace n ON n.oid = "
	"p.pronamespace WHERE " IN_SCHEMA("n.nspname") " AND p.prokind IN ('f', 'p') "
	"AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user) AND "
	NOT_EXT("p.oid"),
	/* privileges granted to others, on relations, columns and routines */
	"SELECT format('GRANT %s ON %s %I.%I TO %s%s', a.privilege_type, CASE "
	"c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, n.nspname, c.relname, "
	"CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid("
	"a.grantee)) END, CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' "
	"END) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, "
	"aclexplode(c.relacl) a WHERE " IN_SCHEMA("n.nspname") " AND c.relkind IN "
	"('r', 'v', 'm', 'S') AND c.relname <> '" JOURNAL_TABLE "' AND a.grantee <> "
	"c.relowner AND " NOT_EXT("c.oid"),
	"SELECT format('GRANT %s (%I) ON TABLE %I.%I TO %s%s', a.privilege_type, "
	"t.attname, n.nspname, c.relname, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE "
	"quote_ident(pg_get_userbyid(a.grantee)) END, CASE WHEN a.is_grantable THEN "
	"' WITH GRANT OPTION' ELSE '' END) FROM pg_attribute t JOIN pg_class c ON "
	"c.oid = t.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace, "
	"aclexplode(t.attacl) a WHERE " TABLES_WHERE " AND t.attacl IS NOT NULL AND "
	"a.grantee <> c.relowner",
	"SELECT format('REVOKE EXECUTE ON ROUTINE %s FROM PUBLIC', p.oid::regprocedure) "
	"FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE "
	IN_SCHEMA("n.nspname") " AND p.prokind IN ('f', 'p') AND p.proacl IS NOT NULL "
	"AND NOT EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0) AND "
	NOT_EXT("p.oid"),
	"SELECT format('GRANT EXECUTE ON ROUTINE %s TO %s%s', p.oid::regprocedure, "
	"quote_ident(pg_get_userbyid(a.grantee)), CASE WHEN a.is_grantable THEN ' WITH "
	"GRANT OPTION' ELSE '' END) FROM pg_proc p JOIN pg_namespace n ON n.oid = "
	"p.pronamespace, aclexplode(p.proacl) a WHERE " IN_SCHEMA("n.nspname")
	" AND p.prokind IN ('f', 'p') AND a.grantee NOT IN (0, p.proowner) AND "
	NOT_EXT("p.oid"),
	/* comments */
	"SELECT format('COMMENT ON %s IS %L', CASE WHEN d.objsubid > 0 THEN "
	"format('COLUMN %I.%I.%I', n.nspname, c.relname, (SELECT t.attname FROM "
	"pg_attribute t WHERE t.attrelid = c.oid AND t.attnum = d.objsubid)) ELSE "
	"format('%s %I.%I', CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN "
	"'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'i' THEN 'INDEX' ELSE 'TABLE' "
	"END, n.nspname, c.relname) END, d.description) FROM pg_description d JOIN "
	"pg_class c ON d.classoid = 'pg_class'::regclass AND c.oid = d.objoid JOIN "
	"pg_namespace n ON n.oid = c.relnamespace WHERE " IN_SCHEMA("n.nspname")
	" AND c.relkind IN ('r', 'v', 'm', 'S', 'i') AND c.relname <> '" JOURNAL_TABLE
	"' AND " NOT_EXT("c.oid"),
	"SELECT format('COMMENT ON ROUTINE %s IS %L', p.oid::regprocedure, "
	"d.description) FROM pg_description d JOIN pg_proc p ON d.classoid = "
	"'pg_proc'::regclass AND p.oid = d.objoid JOIN pg_namespace n ON n.oid = "
	"p.pronamespace WHERE " IN_SCHEMA("n.nspname") " AND " NOT_EXT("p.oid"),
	"SELECT format('COMMENT ON TYPE %s IS %L', t.oid::regtype, d.description) FROM "
	"pg_description d JOIN pg_type t ON d.classoid = 'pg_type'::regclass AND t.oid "
	"= d.objoid JOIN pg_namespace n ON n.oid = t.typnamespace WHERE "
	IN_SCHEMA("n.nspname") " AND t.typtype = 'e' AND " NOT_EXT("t.oid"),
	"SELECT format('COMMENT ON %s %I ON %I.%I IS %L', CASE d.classoid WHEN "
	"'pg_constraint'::regclass THEN 'CONSTRAINT' ELSE 'TRIGGER' END, coalesce(k.conname, "
	"g.tgname), n.nspname, c.relname, d.description) FROM pg_description d LEFT "
	"JOIN pg_constraint k ON d.classoid = 'pg_constraint'::regclass AND k.oid = "
	"d.objoid LEFT JOIN pg_trigger g ON d.classoid = 'pg_trigger'::regclass AND "
	"g.oid = d.objoid JOIN pg_class c ON c.oid = coalesce(k.conrelid, g.tgrelid) "
	"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE " TABLES_WHERE,
	NULL,
};

static const char copy_sql[] =
	"SELECT format('COPY %I.%I (%s) FROM STDIN', n.nspname, c.relname, "
	"string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)), format('COPY "
	"%I.%I (%s) TO STDOUT', n.nspname, c.relname, string_agg(quote_ident(a.attname), "
	"', ' ORDER BY a.attnum)) FROM pg_class c JOIN pg_namespace n ON n.oid = "
	"c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND "
	"NOT a.attisdropped AND a.attgenerated = '' WHERE " TABLES_WHERE
	" GROUP BY n.nspname, c.relname, c.oid ORDER BY c.oid";

/* What a restore removes first: everything the snapshot may rebuild. */
static const char drop_sql[] =
	"SELECT stmt FROM ("
	" SELECT CASE c.relkind WHEN 'v' THEN 1 WHEN 'm' THEN 1 WHEN 'S' THEN 3 ELSE 2 "
	"  END AS o, c.oid, format('DROP %s IF EXISTS %I.%I CASCADE', CASE "
	"  c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' "
	"  THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, n.nspname, "
	"  c.relname) AS stmt FROM pg_class c JOIN pg_namespace n ON n.oid = "
	"  c.relnamespace WHERE " IN_SCHEMA("n.nspname") " AND c.relkind IN ('v', 'm', "
	"  'r', 'p', 'f', 'S') AND c.relname <> '" JOURNAL_TABLE "' AND "
	NOT_EXT("c.oid") " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE "
	"  d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'i')"
	" UNION ALL SELECT 4, p.oid, format('DROP ROUTINE IF EXISTS %s CASCADE', "
	"  p.oid::regprocedure) FROM pg_proc p JOIN pg_namespace n ON n.oid = "
	"  p.pronamespace WHERE " IN_SCHEMA("n.nspname") " AND p.prokind IN ('f', 'p') "
	"  AND " NOT_EXT("p.oid")
	" UNION ALL SELECT 5, t.oid, format('DROP TYPE IF EXISTS %I.%I CASCADE', "
	"  n.nspname, t.typname) FROM pg_type t JOIN pg_namespace n ON n.oid = "
	"  t.typnamespace LEFT JOIN pg_class c ON c.oid = t.typrelid WHERE "
	IN_SCHEMA("n.nspname") " AND (t.typtype IN ('e', 'd', 'r') OR c.relkind = "
	"  'c') AND " NOT_EXT("t.oid")
	") x ORDER BY o, oid";

/* One consistent view: ACCESS SHARE on every table keeps DDL out. */
static const char lock_sql[] =
	"SELECT format('LOCK TABLE %s IN ACCESS SHARE MODE', "
	"string_agg(format('%I.%I', n.nspname, c.relname), ', ')) FROM "
	"pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
	TABLES_WHERE " HAVING count(*) > 0";
/* clang-format on */

/* ------------------------------------------------------------------ */
/* Writing */

/* One record: "<kind> <length>\n<text>\n". */
static int put_record(struct dump_sink *out, char kind, const char *text)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "%c %zu\n", kind, strlen(text));

	if (dump_sink_write(out, head, (size_t)n) < 0 ||
	    dump_sink_write(out, text, strlen(text)) < 0 ||
	    dump_sink_write(out, "\n", 1) < 0)
		return -1;
	return 0;
}

/* Writes one record per row of each query. */
static int dump_ddl(struct store *s, struct dump_sink *out, const char *const *queries)
{
	for (; *queries; queries++) {
		PGresult *r = pg_query(s, pg_conn(s), *queries, 0, NULL);

		if (!r)
			return error("snapshot: reading the schema failed: %s", s->err);
		for (int i = 0; i < PQntuples(r); i++)
			if (put_record(out, 'S', PQgetvalue(r, i, 0)) < 0) {
				PQclear(r);
				return error_errno("snapshot");
			}
		PQclear(r);
	}
	return 0;
}

/* Once COPY ... TO STDOUT runs: its rows, then the end-of-data line. */
static int dump_rows(struct store *s, struct dump_sink *out, unsigned long long *rows)
{
	PGresult *r;
	char *line;
	int len, rc = 0;

	while ((len = PQgetCopyData(pg_conn(s), &line, 0)) > 0) {
		if (rc == 0 && dump_sink_write(out, line, (size_t)len) < 0)
			rc = error_errno("snapshot");
		(*rows)++;
		PQfreemem(line);
	}
	while ((r = PQgetResult(pg_conn(s)))) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0)
			rc = error("snapshot: %s", PQresultErrorMessage(r));
		PQclear(r);
	}
	if (rc == 0 && dump_sink_write(out, "\\.\n", 3) < 0)
		rc = error_errno("snapshot");
	return rc;
}

static int dump_data(struct store *s, struct dump_sink *out, unsigned long long *rows)
{
	PGresult *tables = pg_query(s, pg_conn(s), copy_sql, 0, NULL);
	int rc = 0;

	if (!tables)
		return error("snapshot: listing tables failed: %s", s->err);
	for (int i = 0; i < PQntuples(tables) && rc == 0; i++) {
		PGresult *r;

		if (put_record(out, 'C', PQgetvalue(tables, i, 0)) < 0) {
			rc = error_errno("snapshot");
			break;
		}
		r = PQexec(pg_conn(s), PQgetvalue(tables, i, 1));
		if (PQresultStatus(r) != PGRES_COPY_OUT) {
			rc = error("snapshot: %s: %s", PQgetvalue(tables, i, 1),
				   PQresultErrorMessage(r));
			PQclear(r);
			break;
		}
		PQclear(r);
		rc = dump_rows(s, out, rows);
		crash_point("snapshot:mid");
	}
	PQclear(tables);
	return rc;
}

int pg_dump_check(struct store *s)
{
	PGresult *r = pg_query(s, pg_conn(s), unsupported_sql, 0, NULL);
	int rc = -1;

	if (!r)
		return error("snapshot: %s", s->err);
	if (PQntuples(r) > 0)
		error("the logical snapshot cannot rebuild %s (and %d more object%s): no "
		      "snapshot, no upgrade",
		      PQgetvalue(r, 0, 0), PQntuples(r) - 1,
		      PQntuples(r) == 2 ? "" : "s");
	else
		rc = 0;
	PQclear(r);
	return rc;
}

int pg_dump_write(struct store *s, struct dump_sink *out, unsigned long long *rows)
{
	char ignored[6];
	PGresult *r;
	int rc = -1;

	/* one consistent view; lock_sql keeps DDL out while we read */
	if (pg_run(s, pg_conn(s), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
		   ignored) < 0)
		return error("snapshot: %s", s->err);
	r = pg_query(s, pg_conn(s), lock_sql, 0, NULL);
	if (!r || (PQntuples(r) > 0 &&
		   pg_run(s, pg_conn(s), PQgetvalue(r, 0, 0), ignored) < 0)) {
		error("snapshot: %s", s->err);
		PQclear(r);
		goto out_rollback;
	}
	PQclear(r);
	if (dump_sink_write(out, header, sizeof(header) - 1) < 0 ||
	    put_record(out, 'V', version_str(&s->snapshot_version)) < 0) {
		error_errno("snapshot");
		goto out_rollback;
	}
	if (dump_ddl(s, out, ddl_before) < 0 || dump_data(s, out, rows) < 0 ||
	    dump_ddl(s, out, ddl_after) < 0)
		goto out_rollback;
	if (dump_sink_write(out, "E\n", 2) < 0) {
		error_errno("snapshot");
		goto out_rollback;
	}
	rc = 0;
out_rollback:
	pg_rollback(pg_conn(s));
	return rc;
}

int pg_logical_snapshot(struct store *s, const char *path)
{
	char *tmp = xasprintf("%s.tmp", path);
	unsigned long long rows = 0;
	struct dump_sink *out;
	int fd, rc = -1;

	if (pg_dump_check(s) < 0)
		goto out;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		error_errno("cannot write snapshot '%s'", tmp);
		goto out;
	}
	out = dump_sink_zstd_file(fd);
	if (pg_dump_write(s, out, &rows) < 0) {
		dump_sink_abort(out);
		goto out_unlink;
	}
	if (dump_sink_close(out) < 0) {
		error_errno("cannot write snapshot '%s'", tmp);
		goto out_unlink;
	}
	if (rename(tmp, path) < 0) {
		error_errno("cannot rename '%s' to '%s'", tmp, path);
		goto out_unlink;
	}
	if (fsync_dir_of(path) < 0)
		goto out_unlink;
	log_debug("snapshot: %llu rows", rows);
	rc = 0;
out_unlink:
	if (rc < 0)
		unlink(tmp);
out:
	free(tmp);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Reading */

/* A dump_source read by lines and by lengths. */
struct reader {
	struct dump_source *in;
	const char *buf;
	size_t pos, len;
	unsigned long long rows; /* the server's count of rows copied in */
};

/* Refills the buffer; 0 at the end of the dump, -1 error. */
static int reader_fill(struct reader *r)
{
	const void *data;
	ssize_t n = dump_source_read(r->in, &data);

	if (n <= 0)
		return (int)n;
	r->buf = data;
	r->pos = 0;
	r->len = (size_t)n;
	return 1;
}

/* Reads up to and including '\n' into *line; its length, 0 at the end. */
static ssize_t read_line(struct reader *r, char **line, size_t *cap)
{
	size_t n = 0;

	for (;;) {
		const char *nl;
		size_t take;

		if (r->pos == r->len) {
			int f = reader_fill(r);

			if (f < 0)
				return -1;
			if (f == 0)
				break;
		}
		nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
		take = nl ? (size_t)(nl - (r->buf + r->pos)) + 1 : r->len - r->pos;
		if (n + take + 1 > *cap) {
			*cap = (n + take + 1) * 2;
			*line = xrealloc(*line, *cap);
		}
		memcpy(*line + n, r->buf + r->pos, take);
		n += take;
		r->pos += take;
		if (nl)
			break;
	}
	if (*line)
		(*line)[n] = '\0';
	return (ssize_t)n;
}

/* Reads exactly len bytes and the newline after them into a new string. */
static char *read_text(struct reader *r, size_t len)
{
	char *text = xmalloc(len + 2);
	size_t n = 0;

	while (n < len + 1) {
		size_t take;

		if (r->pos == r->len && reader_fill(r) <= 0) {
			free(text);
			return NULL;
		}
		take = r->len - r->pos < len + 1 - n ? r->len - r->pos : len + 1 - n;
		memcpy(text + n, r->buf + r->pos, take);
		n += take;
		r->pos += take;
	}
	text[len] = '\0';
	return text;
}

static int exec_sql(struct store *s, const char *sql)
{
	char ignored[6];

	if (pg_run(s, pg_conn(s), sql, ignored) < 0)
		return error("restore: %s: %.200s", s->err, sql);
	return 0;
}

static int restore_copy(struct store *s, struct reader *in, const char *stmt, char **line,
			size_t *cap)
{
	PGresult *r = PQexec(pg_conn(s), stmt);
	ssize_t n;
	int rc = 0;

	if (PQresultStatus(r) != PGRES_COPY_IN) {
		error("restore: %s: %s", stmt, PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	PQclear(r);
	while ((n = read_line(in, line, cap)) > 0) {
		if (!strcmp(*line, "\\.\n"))
			break;
		if (PQputCopyData(pg_conn(s), *line, (int)n) != 1) {
			rc = error("restore: %s", PQerrorMessage(pg_conn(s)));
			break;
		}
	}
	if (n <= 0 && rc == 0)
		rc = error("restore: the snapshot ends in the middle of its data");
	PQputCopyEnd(pg_conn(s), rc ? "ferry: bad snapshot" : NULL);
	while ((r = PQgetResult(pg_conn(s)))) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0)
			rc = error("restore: %s: %s", stmt, PQresultErrorMessage(r));
		else if (PQresultStatus(r) == PGRES_COMMAND_OK)
			in->rows += strtoull(PQcmdTuples(r), NULL, 10);
		PQclear(r);
	}
	return rc;
}

static int replay(struct store *s, struct reader *in)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = -1;

	n = read_line(in, &line, &cap);
	if (n <= 0 || strcmp(line, header)) {
		error("restore: not a ferry PostgreSQL snapshot");
		goto out;
	}
	while ((n = read_line(in, &line, &cap)) > 0) {
		long long len;
		char *text;

		if (!strcmp(line, "E\n")) {
			rc = 0;
			break;
		}
		line[strcspn(line, "\n")] = '\0';
		if ((line[0] != 'S' && line[0] != 'C' && line[0] != 'V') ||
		    line[1] != ' ' || !parse_ll(line + 2, 0, 1 << 30, &len) ||
		    !(text = read_text(in, (size_t)len))) {
			error("restore: the snapshot is damaged");
			goto out;
		}
		if (line[0] == 'V') {
			free(text);
			continue;
		}
		if (line[0] == 'S' ? exec_sql(s, text) < 0
				   : restore_copy(s, in, text, &line, &cap) < 0) {
			free(text);
			goto out;
		}
		free(text);
	}
	if (rc < 0)
		error("restore: the snapshot is incomplete (no end record)");
out:
	free(line);
	return rc;
}

int pg_dump_replay(struct store *s, struct dump_source *in, unsigned long long *rows)
{
	struct reader r = { .in = in };
	PGresult *drops = NULL;
	int rc = -1;

	/* one transaction: a crash or an error in here changes nothing; the
	 * drops wait for other sessions' locks, but not forever */
	if (exec_sql(s, "BEGIN") < 0 ||
	    exec_sql(s, "SET LOCAL check_function_bodies = off") < 0 ||
	    exec_sql(s, "SET LOCAL lock_timeout = '60s'") < 0)
		goto out;
	drops = pg_query(s, pg_conn(s), drop_sql, 0, NULL);
	if (!drops) {
		error("restore: %s", s->err);
		goto out;
	}
	for (int i = 0; i < PQntuples(drops); i++)
		if (exec_sql(s, PQgetvalue(drops, i, 0)) < 0)
			goto out;
	crash_point("restore:mid");
	if (replay(s, &r) < 0)
		goto out;
	crash_point("restore:before-rename");
	if (exec_sql(s, "COMMIT") < 0)
		goto out;
	if (rows)
		*rows = r.rows;
	rc = 0;
out:
	if (rc < 0)
		pg_rollback(pg_conn(s));
	PQclear(drops);
	return rc;
}

int pg_logical_restore(struct store *s, const char *path)
{
	struct dump_source *in;
	int fd, rc;

	if (pg_open(s) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_errno("cannot read snapshot '%s'", path);
	in = dump_source_zstd_file(fd);
	rc = pg_dump_replay(s, in, NULL);
	dump_source_close(in);
	return rc;
}

bool pg_logical_version(const char *path, struct version *v)
{
	struct reader r = { .in = NULL };
	char *line = NULL;
	size_t cap = 0;
	bool known = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	r.in = dump_source_zstd_file(fd);
	/* the V record right after the header */
	if (read_line(&r, &line, &cap) > 0 && !strcmp(line, header) &&
	    read_line(&r, &line, &cap) > 0 && !strncmp(line, "V ", 2) &&
	    read_line(&r, &line, &cap) > 0) {
		known = version_parse(v, line, strcspn(line, "\n"));
	}
	free(line);
	dump_source_close(r.in);
	return known;
}

/* Skips the rows of a COPY record, up to its "\." line; -1 at the end. */
static int skip_rows(struct reader *r, char **line, size_t *cap)
{
	ssize_t n;

	while ((n = read_line(r, line, cap)) > 0)
		if (!strcmp(*line, "\\.\n"))
			return 0;
	return -1;
}

int pg_logical_verify(const char *path, char *why, size_t size)
{
	struct reader r = { .in = NULL };
	char *line = NULL, *text;
	size_t cap = 0, records = 0;
	long long len;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;

	if (fd < 0) {
		snprintf(why, size, "%s", strerror(errno));
		return -1;
	}
	r.in = dump_source_zstd_file(fd);
	n = read_line(&r, &line, &cap);
	if (n <= 0 || strcmp(line, header)) {
		snprintf(why, size, "%s",
			 n < 0 ? strerror(errno) : "not a ferry PostgreSQL snapshot");
		goto out;
	}
	while ((n = read_line(&r, &line, &cap)) > 0) {
		if (!strcmp(line, "E\n")) {
			rc = 0;
			goto out;
		}
		line[strcspn(line, "\n")] = '\0';
		snprintf(why, size, "damaged at record %zu", records + 1);
		if ((line[0] != 'S' && line[0] != 'C' && line[0] != 'V') ||
		    line[1] != ' ' || !parse_ll(line + 2, 0, 1 << 30, &len) ||
		    !(text = read_text(&r, (size_t)len)))
			goto out;
		free(text);
		records++;
		if (line[0] == 'C' && skip_rows(&r, &line, &cap) < 0) {
			snprintf(why, size, "ends inside the data of record %zu",
				 records);
			goto out;
		}
	}
	if (n < 0)
		snprintf(why, size, "cannot be read after record %zu: %s", records,
			 strerror(errno));
	else
		snprintf(why, size, "incomplete: no end record after %zu records",
			 records);
out:
	free(line);
	dump_source_close(r.in);
	return rc;
}
