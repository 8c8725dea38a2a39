/*
 * pgsnapshot: PostgreSQL snapshots, the two kinds. A template copy
 * (CREATE DATABASE <db>_pre_upgrade TEMPLATE <db>) when the role may and no
 * other session is connected, restored by swapping the two databases'
 * names in one transaction; otherwise a logical snapshot file, restored in
 * one transaction. Either way a crash during a restore changes nothing and
 * the next boot does it again.
 */
#include "exits.h"
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
#include <zstd.h>

/* ------------------------------------------------------------------ */
/*
 * The logical snapshot: the schema ferry migrates (current_schema()) as
 * DDL made by the server's own pg_get_*def functions, and its data as
 * COPY text, in one zstd stream. Restoring drops the schema's objects and
 * replays the file in ONE transaction, so a crash midway changes nothing.
 * Object kinds it cannot rebuild are refused up front, before any write.
 *
 * File: "FERRY-PG-SNAPSHOT 1\n", a record "V <len>\n<schema version>\n",
 * records "S <len>\n<sql>\n" and "C <len>\n<copy statement>\n<rows>\\.\n",
 * then "E\n".
 */

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

struct zout {
	int fd;
	ZSTD_CCtx *cctx;
	char *buf;
	size_t cap;
};

static int zout_write(struct zout *z, const void *data, size_t len, ZSTD_EndDirective end)
{
	ZSTD_inBuffer in = { data, len, 0 };
	size_t left;

	do {
		ZSTD_outBuffer out = { z->buf, z->cap, 0 };

		left = ZSTD_compressStream2(z->cctx, &out, &in, end);
		if (ZSTD_isError(left)) {
			errno = EIO;
			return -1;
		}
		if (write_all(z->fd, z->buf, out.pos) < 0)
			return -1;
	} while (end == ZSTD_e_end ? left != 0 : in.pos < in.size);
	return 0;
}

static int zout_record(struct zout *z, char kind, const char *text)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "%c %zu\n", kind, strlen(text));

	if (zout_write(z, head, (size_t)n, ZSTD_e_continue) < 0 ||
	    zout_write(z, text, strlen(text), ZSTD_e_continue) < 0 ||
	    zout_write(z, "\n", 1, ZSTD_e_continue) < 0)
		return -1;
	return 0;
}

/* Writes one record per row of each query. */
static int dump_ddl(struct store *s, struct zout *z, const char *const *queries)
{
	for (; *queries; queries++) {
		PGresult *r = pg_query(s, pg_conn(s), *queries, 0, NULL);

		if (!r)
			return error("snapshot: reading the schema failed: %s", s->err);
		for (int i = 0; i < PQntuples(r); i++)
			if (zout_record(z, 'S', PQgetvalue(r, i, 0)) < 0) {
				PQclear(r);
				return error("snapshot: %s", strerror(errno));
			}
		PQclear(r);
	}
	return 0;
}

static int dump_data(struct store *s, struct zout *z, unsigned long long *rows)
{
	PGresult *tables = pg_query(s, pg_conn(s), copy_sql, 0, NULL);
	int rc = 0;

	if (!tables)
		return error("snapshot: listing tables failed: %s", s->err);
	for (int i = 0; i < PQntuples(tables) && rc == 0; i++) {
		PGresult *r;
		char *line;
		int len;

		if (zout_record(z, 'C', PQgetvalue(tables, i, 0)) < 0) {
			rc = error("snapshot: %s", strerror(errno));
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
		while ((len = PQgetCopyData(pg_conn(s), &line, 0)) > 0) {
			if (rc == 0 && zout_write(z, line, (size_t)len, ZSTD_e_continue) < 0)
				rc = error("snapshot: %s", strerror(errno));
			(*rows)++;
			PQfreemem(line);
		}
		while ((r = PQgetResult(pg_conn(s)))) {
			if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0)
				rc = error("snapshot: %s", PQresultErrorMessage(r));
			PQclear(r);
		}
		if (rc == 0 && zout_write(z, "\\.\n", 3, ZSTD_e_continue) < 0)
			rc = error("snapshot: %s", strerror(errno));
		crash_point("snapshot:mid");
	}
	PQclear(tables);
	return rc;
}

static int logical_snapshot(struct store *s, const char *path)
{
	static const char header[] = "FERRY-PG-SNAPSHOT 1\n";
	char *tmp = xasprintf("%s.tmp", path), ignored[6], version[32];
	struct zout z = { .fd = -1 };
	unsigned long long rows = 0;
	PGresult *r;
	int rc = -1;

	r = pg_query(s, pg_conn(s), unsupported_sql, 0, NULL);
	if (!r || PQntuples(r) > 0) {
		if (r)
			error("the logical snapshot cannot rebuild %s (and %d more "
			      "object%s): no snapshot, no upgrade", PQgetvalue(r, 0, 0),
			      PQntuples(r) - 1, PQntuples(r) == 2 ? "" : "s");
		else
			error("snapshot: %s", s->err);
		PQclear(r);
		goto out;
	}
	PQclear(r);
	unlink(tmp);
	z.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (z.fd < 0) {
		error("cannot write snapshot '%s': %s", tmp, strerror(errno));
		goto out;
	}
	z.cctx = ZSTD_createCCtx();
	z.cap = ZSTD_CStreamOutSize();
	z.buf = xmalloc(z.cap);
	ZSTD_CCtx_setParameter(z.cctx, ZSTD_c_compressionLevel, 3);
	/* one consistent view; ACCESS SHARE keeps DDL out while we read */
	if (pg_run(s, pg_conn(s), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", ignored) < 0) {
		error("snapshot: %s", s->err);
		goto out_unlink;
	}
	r = pg_query(s, pg_conn(s), "SELECT format('LOCK TABLE %s IN ACCESS SHARE MODE', "
		     "string_agg(format('%I.%I', n.nspname, c.relname), ', ')) FROM "
		     "pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
		     TABLES_WHERE " HAVING count(*) > 0", 0, NULL);
	if (!r || (PQntuples(r) > 0 && pg_run(s, pg_conn(s), PQgetvalue(r, 0, 0), ignored) < 0)) {
		error("snapshot: %s", s->err);
		PQclear(r);
		goto out_txn;
	}
	PQclear(r);
	snprintf(version, sizeof(version), "%lld", s->snapshot_version);
	if (zout_write(&z, header, sizeof(header) - 1, ZSTD_e_continue) < 0 ||
	    zout_record(&z, 'V', version) < 0 ||
	    dump_ddl(s, &z, ddl_before) < 0 || dump_data(s, &z, &rows) < 0 ||
	    dump_ddl(s, &z, ddl_after) < 0)
		goto out_txn;
	if (zout_write(&z, "E\n", 2, ZSTD_e_end) < 0 || fsync(z.fd) < 0) {
		error("cannot write snapshot '%s': %s", tmp, strerror(errno));
		goto out_txn;
	}
	rc = 0;
out_txn:
	pg_rollback(pg_conn(s));
out_unlink:
	if (z.fd >= 0 && close(z.fd) < 0 && rc == 0)
		rc = error("cannot write snapshot '%s': %s", tmp, strerror(errno));
	z.fd = -1;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = error("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
	if (rc == 0)
		rc = fsync_dir_of(path);
	if (rc < 0)
		unlink(tmp);
	else
		log_debug("snapshot: %llu rows", rows);
out:
	if (z.fd >= 0)
		close(z.fd);
	ZSTD_freeCCtx(z.cctx);
	free(z.buf);
	free(tmp);
	return rc;
}

struct zin {
	int fd;
	ZSTD_DCtx *dctx;
	char *ibuf;
	size_t icap;
	ZSTD_inBuffer in;
	char *obuf;
	size_t ocap, opos, olen;
};

/* Refills the decompressed buffer; 0 at the end of the file, -1 error. */
static int zin_fill(struct zin *z)
{
	for (;;) {
		ZSTD_outBuffer out = { z->obuf, z->ocap, 0 };
		size_t rc;

		if (z->in.pos == z->in.size) {
			ssize_t n = read(z->fd, z->ibuf, z->icap);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -1;
			if (n == 0)
				return 0;
			z->in.src = z->ibuf;
			z->in.size = (size_t)n;
			z->in.pos = 0;
		}
		rc = ZSTD_decompressStream(z->dctx, &out, &z->in);
		if (ZSTD_isError(rc)) {
			errno = EILSEQ;
			return -1;
		}
		if (out.pos > 0) {
			z->opos = 0;
			z->olen = out.pos;
			return 1;
		}
	}
}

/* Reads up to and including '\n' into *line; its length, 0 at the end. */
static ssize_t zin_line(struct zin *z, char **line, size_t *cap)
{
	size_t n = 0;

	for (;;) {
		char *nl;
		size_t take;

		if (z->opos == z->olen) {
			int f = zin_fill(z);

			if (f < 0)
				return -1;
			if (f == 0)
				break;
		}
		nl = memchr(z->obuf + z->opos, '\n', z->olen - z->opos);
		take = nl ? (size_t)(nl - (z->obuf + z->opos)) + 1 : z->olen - z->opos;
		if (n + take + 1 > *cap) {
			*cap = (n + take + 1) * 2;
			*line = xrealloc(*line, *cap);
		}
		memcpy(*line + n, z->obuf + z->opos, take);
		n += take;
		z->opos += take;
		if (nl)
			break;
	}
	if (*line)
		(*line)[n] = '\0';
	return (ssize_t)n;
}

/* Reads exactly len bytes and the newline after them into a new string. */
static char *zin_text(struct zin *z, size_t len)
{
	char *text = xmalloc(len + 2);
	size_t n = 0;

	while (n < len + 1) {
		size_t take;

		if (z->opos == z->olen && zin_fill(z) <= 0) {
			free(text);
			return NULL;
		}
		take = z->olen - z->opos < len + 1 - n ? z->olen - z->opos : len + 1 - n;
		memcpy(text + n, z->obuf + z->opos, take);
		n += take;
		z->opos += take;
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

static int restore_copy(struct store *s, struct zin *z, const char *stmt,
			char **line, size_t *cap)
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
	while ((n = zin_line(z, line, cap)) > 0) {
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
		PQclear(r);
	}
	return rc;
}

static int replay(struct store *s, struct zin *z)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = -1;

	n = zin_line(z, &line, &cap);
	if (n <= 0 || strcmp(line, "FERRY-PG-SNAPSHOT 1\n")) {
		error("restore: not a ferry PostgreSQL snapshot");
		goto out;
	}
	while ((n = zin_line(z, &line, &cap)) > 0) {
		long long len;
		char *text;

		if (!strcmp(line, "E\n")) {
			rc = 0;
			break;
		}
		line[strcspn(line, "\n")] = '\0';
		if ((line[0] != 'S' && line[0] != 'C' && line[0] != 'V') || line[1] != ' ' ||
		    !parse_ll(line + 2, 0, 1 << 30, &len) || !(text = zin_text(z, (size_t)len))) {
			error("restore: the snapshot is damaged");
			goto out;
		}
		if (line[0] == 'V') {
			free(text);
			continue;
		}
		if (line[0] == 'S' ? exec_sql(s, text) < 0 :
				     restore_copy(s, z, text, &line, &cap) < 0) {
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

static int logical_restore(struct store *s, const char *path)
{
	struct zin z = { .fd = -1 };
	PGresult *drops = NULL;
	int rc = -1;

	if (pg_open(s) < 0)
		return -1;
	z.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (z.fd < 0)
		return error("cannot read snapshot '%s': %s", path, strerror(errno));
	z.dctx = ZSTD_createDCtx();
	z.icap = ZSTD_DStreamInSize();
	z.ibuf = xmalloc(z.icap);
	z.ocap = ZSTD_DStreamOutSize();
	z.obuf = xmalloc(z.ocap);
	/* one transaction: a crash or an error in here changes nothing; the
	 * drops wait for other sessions' locks, but not forever */
	if (exec_sql(s, "BEGIN") < 0 || exec_sql(s, "SET LOCAL check_function_bodies = off") < 0 ||
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
	if (replay(s, &z) < 0)
		goto out;
	crash_point("restore:before-rename");
	if (exec_sql(s, "COMMIT") < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		pg_rollback(pg_conn(s));
	PQclear(drops);
	close(z.fd);
	ZSTD_freeDCtx(z.dctx);
	free(z.ibuf);
	free(z.obuf);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Template copies */

static const char template_magic[] = "FERRY-PG-TEMPLATE 1\n";

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
		snprintf(why, size, "no maintenance database ([database] maintenance_db)");
		return false;
	}
	if (strlen(pg_priv(s)->dbname) > 63 - strlen("_pre_upgrade")) {
		snprintf(why, size, "the database name is too long for a copy's name");
		return false;
	}
	r = pg_query(s, pg_conn(s),
		     "SELECT r.rolcreatedb OR r.rolsuper, pg_has_role(d.datdba, 'USAGE') "
		     "OR r.rolsuper, (SELECT count(*) FROM pg_stat_activity a WHERE "
		     "a.datname = current_database() AND a.pid <> pg_backend_pid()), "
		     "(SELECT string_agg(DISTINCT coalesce(nullif(a.application_name, ''), "
		     "a.usename::text, 'a session'), ', ') FROM pg_stat_activity a WHERE "
		     "a.datname = current_database() AND a.pid <> pg_backend_pid()) "
		     "FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND "
		     "d.datname = current_database()", 0, NULL);
	if (!r || PQntuples(r) != 1)
		snprintf(why, size, "cannot tell: %.300s", s->err);
	else if (PQgetvalue(r, 0, 0)[0] != 't')
		snprintf(why, size, "role '%s' has no CREATEDB", PQuser(pg_conn(s)));
	else if (PQgetvalue(r, 0, 1)[0] != 't')
		snprintf(why, size, "role '%s' does not own the database", PQuser(pg_conn(s)));
	else if (strcmp(PQgetvalue(r, 0, 2), "0"))
		snprintf(why, size, "%s other session(s) are connected (%s), as in a "
			 "rolling update", PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3));
	else
		ok = true;
	PQclear(r);
	return ok;
}

static int forget_journal_in_copy(struct store *s)
{
	static const char *const keys[] = { "connect_timeout", "dbname", "dbname",
					     "fallback_application_name", NULL };
	char name[300];
	const char *values[] = { "10", s->url, name, "ferry", NULL };
	PGconn *c;
	int rc;

	snprintf(name, sizeof(name), "%s_pre_upgrade", pg_priv(s)->dbname);
	c = PQconnectdbParams(keys, values, 1);
	if (!c || PQstatus(c) != CONNECTION_OK) {
		snprintf(s->err, sizeof(s->err), "%s", c ? PQerrorMessage(c) : "out of memory");
		PQfinish(c);
		return -1;
	}
	PQsetNoticeProcessor(c, pg_on_notice, NULL);
	rc = pg_run(s, c, "DROP TABLE IF EXISTS " JOURNAL_TABLE, NULL);
	PQfinish(c);
	return rc;
}

static int template_snapshot(struct store *s, const char *path, char *why, size_t size)
{
	char *copy = db_ident(s, "_pre_upgrade"), *orig = db_ident(s, "");
	char *sql = NULL, text[400];
	int rc = -1, n;

	/* FILE_COPY: one checkpoint and a file copy, instead of WAL-logging
	 * every block (bench/ measures both) */
	sql = xasprintf("CREATE DATABASE %s TEMPLATE %s%s", copy, orig,
			PQserverVersion(pg_priv(s)->maint) >= 150000 ? " STRATEGY FILE_COPY" : "");
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
	/* the copy is the state before the upgrade: no journal of it */
	if (forget_journal_in_copy(s) < 0) {
		snprintf(why, size, "cannot clean the copy: %.300s", s->err);
		goto out;
	}
	n = snprintf(text, sizeof(text), "%s%s_pre_upgrade\nversion %lld\n",
		     template_magic, pg_priv(s)->dbname, s->snapshot_version);
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
	rc = logical_snapshot(s, path);
	snprintf(info->how, sizeof(info->how), "logical, DDL + COPY with zstd, because %.1000s",
		 why);
	info->is_file = true;
	return rc;
}

static void end_late_sessions(struct store *s)
{
	const char *params[] = { pg_priv(s)->dbname };
	PGresult *r = pg_query(s, pg_priv(s)->maint,
			       "SELECT string_agg(pid::text, ', '), count(pg_terminate_backend(pid)) "
			       "FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
			       1, params);

	if (r && strcmp(PQgetvalue(r, 0, 1), "0"))
		log_info("restore: ended the sessions that connected to database '%s' during "
			 "the upgrade (read-only; pid %s)", pg_priv(s)->dbname,
			 PQgetvalue(r, 0, 0));
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
			 "%s (`ferry cleanup` tries again)", failed, s->err);
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
	char head[sizeof(template_magic) + 300] = "";
	ssize_t n = -1;
	int fd;

	if (pg_open(s) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, head, sizeof(head) - 1);
		close(fd);
	}
	if (n < 0)
		return error("cannot read snapshot '%s': %s", path, strerror(errno));
	head[n] = '\0';
	if (strncmp(head, template_magic, sizeof(template_magic) - 1))
		return logical_restore(s, path);
	if (!pg_priv(s)->maint)
		return error("restore: the snapshot is a template copy, which needs the "
			     "maintenance database ([database] maintenance_db)");
	head[strcspn(head, "\n") + 1 + strcspn(head + strcspn(head, "\n") + 1, "\n")] = '\0';
	if (template_restore(s, head + sizeof(template_magic) - 1) < 0)
		return -1;
	/* the copy became the database: nothing is left to restore from */
	if (unlink(path) < 0 || fsync_dir_of(path) < 0)
		log_warn("cannot remove '%s': %s", path, strerror(errno));
	return 0;
}

void pg_cleanup(struct store *s)
{
	static const char *const suffixes[] = { "_pre_upgrade", "_ferry_failed" };

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
	char head[sizeof(template_magic) + 300] = "";
	const char *params[1];
	PGresult *r;
	ssize_t n = -1;
	bool ok;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		n = read(fd, head, sizeof(head) - 1);
		close(fd);
	}
	if (n < 0) {
		snprintf(why, size, "%s", strerror(errno));
		return false;
	}
	head[n] = '\0';
	if (strncmp(head, template_magic, sizeof(template_magic) - 1)) {
		/* a logical snapshot: a zstd frame; its end record is checked on replay */
		ok = n >= 4 && !memcmp(head, "\x28\xb5\x2f\xfd", 4);
		if (!ok)
			snprintf(why, size, "not a ferry snapshot");
		return ok;
	}
	head[sizeof(template_magic) - 1 + strcspn(head + sizeof(template_magic) - 1, "\n")] = '\0';
	params[0] = head + sizeof(template_magic) - 1;
	if (pg_open(s) < 0) {
		snprintf(why, size, "no connection");
		return false;
	}
	r = pg_query(s, pg_conn(s), "SELECT 1 FROM pg_database WHERE datname = $1", 1, params);
	ok = r && PQntuples(r) == 1;
	if (!ok)
		snprintf(why, size, "its template database %s does not exist", params[0]);
	PQclear(r);
	return ok;
}

long long pg_snapshot_version(struct store *s, const char *path)
{
	char head[sizeof(template_magic) + 300] = "";
	struct zin z = { .fd = -1 };
	char *line = NULL;
	size_t cap = 0;
	long long v = -1;
	const char *at;
	ssize_t n;

	(void)s;
	z.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (z.fd < 0)
		return -1;
	n = read(z.fd, head, sizeof(head) - 1);
	if (n > 0 && !strncmp(head, template_magic, sizeof(template_magic) - 1)) {
		head[n] = '\0';
		at = strstr(head, "\nversion ");
		if (at) {
			char num[32];

			snprintf(num, sizeof(num), "%.*s", (int)strcspn(at + 9, "\n"), at + 9);
			if (!parse_ll(num, 0, 999999999999999999LL, &v))
				v = -1;
		}
		close(z.fd);
		return v;
	}
	/* a logical snapshot: the V record right after the header */
	lseek(z.fd, 0, SEEK_SET);
	z.dctx = ZSTD_createDCtx();
	z.icap = ZSTD_DStreamInSize();
	z.ibuf = xmalloc(z.icap);
	z.ocap = ZSTD_DStreamOutSize();
	z.obuf = xmalloc(z.ocap);
	if (zin_line(&z, &line, &cap) > 0 && !strcmp(line, "FERRY-PG-SNAPSHOT 1\n") &&
	    zin_line(&z, &line, &cap) > 0 && !strncmp(line, "V ", 2) &&
	    zin_line(&z, &line, &cap) > 0) {
		line[strcspn(line, "\n")] = '\0';
		if (!parse_ll(line, 0, 999999999999999999LL, &v))
			v = -1;
	}
	free(line);
	close(z.fd);
	ZSTD_freeDCtx(z.dctx);
	free(z.ibuf);
	free(z.obuf);
	return v;
}
