#!/bin/sh
# PostgreSQL: the ledgers of other tools (golang-migrate, dbmate, goose,
# Flyway, diesel, sqlx), each created with the tool's own schema and the
# rows the tool writes, adopted by ferry and kept written in that shape,
# row for row and type for type; golang-migrate migrations that alter
# schema_migrations; a dirty golang-migrate ledger recovered from ferry's
# snapshot and refused without one; two ledgers refused; edits after
# adoption refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
unset FERRY_MIGRATIONS_LEDGER FERRY_MIGRATIONS_ALLOW_OUT_OF_ORDER

qp() { psql_as app appdb "$1"; } # as the app's role, which owns the tables
# mkset DIR NAME1 NAME2 NAME3: users, email, posts in ferry's format
mkset() {
	mkdir -p "$1"
	printf 'CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL);\n' >"$1/$2.sql"
	printf -- "-- every user gets an address\nALTER TABLE users ADD COLUMN email text;\nUPDATE users SET email = lower(name) || '@example.com';\n" >"$1/$3.sql"
	printf 'CREATE TABLE posts (id bigserial PRIMARY KEY, user_id bigint REFERENCES users (id));\nINSERT INTO posts (user_id) SELECT id FROM users;\n' >"$1/$4.sql"
}
# base FIRST-FILE: a fresh appdb as the tool left it after its first migration
base() {
	pg_fresh_appdb
	qp "$(cat "$1")"
	qp "INSERT INTO users (name) VALUES ('Ada'), ('Brian')" >/dev/null
}
data_ok() {
	is "$(qa 'SELECT name, email FROM users ORDER BY id' | tr '\n' ' ')" \
		"Ada|ada@example.com Brian|brian@example.com " "$1: the data migrated"
	is "$(qa 'SELECT count(*) FROM posts')" 2 "$1: posts created"
}
columns() {
	qa "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position)
		FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '$1'"
}

# ---- golang-migrate -----------------------------------------------------------------
G=$TMP/g
mkdir -p "$G"
printf 'CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL);\n' >"$G/000001_users.up.sql"
printf 'DROP TABLE users;\n' >"$G/000001_users.down.sql"
printf -- "ALTER TABLE users ADD COLUMN email text;\nUPDATE users SET email = lower(name) || '@example.com';\n" >"$G/000002_email.up.sql"
printf 'CREATE TABLE posts (id bigserial PRIMARY KEY, user_id bigint REFERENCES users (id));\nINSERT INTO posts (user_id) SELECT id FROM users;\n' >"$G/000003_posts.up.sql"
GM_DDL='CREATE TABLE IF NOT EXISTS "schema_migrations" (version bigint not null primary key, dirty boolean not null)'

base "$G/000001_users.up.sql"
qp "$GM_DDL"
qp "INSERT INTO schema_migrations (version, dirty) VALUES (1, false)"
cols_before=$(columns schema_migrations)
pgf "$G" migrate
expect_status 0 "golang-migrate: adopted and upgraded"
is "$(qa 'SELECT version, pg_typeof(version), dirty, pg_typeof(dirty) FROM schema_migrations')" \
	"3|bigint|f|boolean" "golang-migrate: one row, version 3, clean, as migrate writes it"
is "$(columns schema_migrations)" "$cols_before" "golang-migrate: the table's columns unchanged"
check "golang-migrate: no ferry_migrations table" test "$(qa "SELECT to_regclass('ferry_migrations') IS NULL")" = t
is "$(qa 'SELECT version, sha256 FROM ferry_checksums ORDER BY version' | tr '\n' ' ')" \
	"1|$(filesum "$G/000001_users.up.sql") 2|$(filesum "$G/000002_email.up.sql") 3|$(filesum "$G/000003_posts.up.sql") " \
	"golang-migrate: checksums in the side table"
data_ok golang-migrate
pgf "$G" status
expect_status 0 "golang-migrate: status reads the ledger"
like "$out" "3 +000003_posts +applied" "golang-migrate: status shows 3 applied"

for f in 000001_users 000002_email; do
	cp -r "$G" "$TMP/gedit-$f"
	printf -- '-- edited\n' >>"$TMP/gedit-$f/$f.up.sql"
	state=$(pg_state)
	pgf "$TMP/gedit-$f" migrate
	expect_status 65 "golang-migrate: $f edited after adoption refused"
	like "$err" "$f.*changed after it was applied" "golang-migrate: names $f"
	same_state "$(pg_state)" "$state" "golang-migrate: edit of $f: database unchanged"
done

cp -r "$G" "$TMP/galter"
printf "ALTER TABLE schema_migrations ADD COLUMN applied_by text DEFAULT 'migrate';\n" >"$TMP/galter/000004_ledger_note.up.sql"
printf 'CREATE TABLE tags (id bigserial PRIMARY KEY);\n' >"$TMP/galter/000005_tags.up.sql"
printf 'ALTER TABLE schema_migrations DROP COLUMN applied_by;\n' >"$TMP/galter/000006_ledger_plain.up.sql"
FERRY_MIGRATIONS_TARGET_VERSION=5 pgf "$TMP/galter" migrate
expect_status 0 "golang-migrate: a migration adds a column to schema_migrations"
is "$(qa 'SELECT * FROM schema_migrations')" "5|f|migrate" "golang-migrate: row written with the added column's default"
pgf "$TMP/galter" migrate
expect_status 0 "golang-migrate: a migration drops that column again"
is "$(qa 'SELECT * FROM schema_migrations')" "6|f" "golang-migrate: row written in the plain shape"
is "$(columns schema_migrations)" "$cols_before" "golang-migrate: the table's columns as migrate made them"

# dirty=true from ferry's own crash in a no-transaction step: the snapshot restores it
mkset "$TMP/gnt" 0001_users 0002_email 0003_posts
{ echo '-- ferry:no-transaction'; cat "$TMP/gnt/0002_email.sql"; } >"$TMP/gnt/x" && mv "$TMP/gnt/x" "$TMP/gnt/0002_email.sql"
base "$TMP/gnt/0001_users.sql"
qp "$GM_DDL"
qp "INSERT INTO schema_migrations (version, dirty) VALUES (1, false)"
FERRY_TEST_CRASH_AT=pg:statement:2:1 pgf "$TMP/gnt" migrate
expect_status 137 "golang-migrate dirty: ferry killed in the no-transaction step"
is "$(qa 'SELECT version, dirty FROM schema_migrations')" "2|t" "golang-migrate dirty: dirty=true before the step, as migrate sets it"
pgf "$TMP/gnt" migrate
expect_status 0 "golang-migrate dirty: the next boot recovers from the snapshot and upgrades"
like "$err" "restor" "golang-migrate dirty: says it restored"
is "$(qa 'SELECT version, dirty FROM schema_migrations')" "3|f" "golang-migrate dirty: clean at 3"
data_ok "golang-migrate dirty"

base "$G/000001_users.up.sql"
qp "$GM_DDL"
qp "INSERT INTO schema_migrations (version, dirty) VALUES (2, true)"
state=$(pg_state)
pgf "$G" migrate
expect_status 65 "golang-migrate dirty without a snapshot: refused"
like "$err" "version 2 is dirty" "golang-migrate dirty: names the version"
like "$err" 'migrate force 2.*migrate force 1' "golang-migrate dirty: says what to run"
same_state "$(pg_state)" "$state" "golang-migrate dirty: database unchanged"

# two ledgers
base "$G/000001_users.up.sql"
qp "$GM_DDL"
qp "INSERT INTO schema_migrations (version, dirty) VALUES (1, false)"
qp "CREATE TABLE dbmate_like (x int)" # an app table: not a ledger
qp "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
qp "INSERT INTO __diesel_schema_migrations (version) VALUES ('1')" >/dev/null
state=$(pg_state)
pgf "$G" migrate
expect_status 65 "two ledgers: refused"
like "$err" "golang-migrate.*schema_migrations.*diesel.*__diesel_schema_migrations" "two ledgers: both named"
same_state "$(pg_state)" "$state" "two ledgers: database unchanged"
FERRY_MIGRATIONS_LEDGER=golang-migrate pgf "$G" migrate
expect_status 0 "two ledgers: [migrations] ledger = golang-migrate picks one"
is "$(qa 'SELECT version FROM schema_migrations')" 3 "two ledgers: golang-migrate's written"
is "$(qa 'SELECT count(*) FROM __diesel_schema_migrations')" 1 "two ledgers: diesel's left alone"

pg_fresh_appdb
pgf "$G" migrate
expect_status 0 "golang-migrate: a new database"
is "$(qa 'SELECT version, dirty FROM schema_migrations')" "3|f" "golang-migrate: a new database gets migrate's ledger"
is "$(columns schema_migrations)" "$cols_before" "golang-migrate: created with migrate's columns"

# ---- dbmate ----------------------------------------------------------------------
D=$TMP/d
mkset "$D" 20240101120000_users 20240102093000_email 20240103000000_posts
base "$D/20240101120000_users.sql"
qp 'create table if not exists "schema_migrations" (version varchar(128) primary key)'
qp "insert into schema_migrations (version) values ('20240101120000')" >/dev/null
pgf "$D" migrate
expect_status 0 "dbmate: adopted and upgraded"
is "$(qa 'SELECT version FROM schema_migrations ORDER BY version' | tr '\n' ' ')" \
	"20240101120000 20240102093000 20240103000000 " "dbmate: one row per version, as dbmate writes them"
is "$(columns schema_migrations)" "version character varying" "dbmate: the table's columns unchanged"
is "$(qa 'SELECT count(*) FROM ferry_checksums')" 3 "dbmate: checksums in the side table"
data_ok dbmate
printf -- '-- edited\n' >>"$D/20240102093000_email.sql"
pgf "$D" migrate
expect_status 65 "dbmate: a file edited after ferry applied it refused"

# ---- goose -------------------------------------------------------------------------
GO=$TMP/go
mkset "$GO" 00001_users 00002_email 00003_posts
base "$GO/00001_users.sql"
qp "CREATE TABLE goose_db_version (id serial NOT NULL, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NULL default now(), PRIMARY KEY(id))"
qp "INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (2, true), (2, false)" >/dev/null
pgf "$GO" migrate
expect_status 0 "goose: adopted (2 rolled back in its log) and upgraded"
is "$(qa 'SELECT id, version_id, is_applied, tstamp IS NOT NULL FROM goose_db_version ORDER BY id' | tr '\n' ' ')" \
	"1|0|t|t 2|1|t|t 3|2|t|t 4|2|f|t 5|2|t|t 6|3|t|t " "goose: rows appended as goose appends them"
is "$(columns goose_db_version)" "id integer, version_id bigint, is_applied boolean, tstamp timestamp without time zone" \
	"goose: the table's columns unchanged"
data_ok goose

# ---- Flyway ------------------------------------------------------------------------
FW=$TMP/fw
mkset "$FW" 1_users 2_email 3_posts
flyway_crc() {
	_u=$(tr -d '\r\n' <"$1" | gzip -c | tail -c8 | od -An -tu4 -N4 | tr -d ' ')
	[ "$_u" -ge 2147483648 ] && _u=$((_u - 4294967296))
	echo "$_u"
}
base "$FW/1_users.sql"
qp 'CREATE TABLE "public"."flyway_schema_history" (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL
);
ALTER TABLE "public"."flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank");
CREATE INDEX "flyway_schema_history_s_idx" ON "public"."flyway_schema_history" ("success");'
qp "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success)
	VALUES (1, '1', 'users', 'SQL', '1_users.sql', $(flyway_crc "$FW/1_users.sql"), 'app', 4, true)" >/dev/null
pgf "$FW" migrate
expect_status 0 "flyway: adopted and upgraded"
is "$(qa 'SELECT installed_rank, version, description, type, script, checksum, installed_by, execution_time >= 0, success FROM flyway_schema_history ORDER BY installed_rank' | tr '\n' ' ')" \
	"1|1|users|SQL|1_users.sql|$(flyway_crc "$FW/1_users.sql")|app|t|t 2|2|email|SQL|2_email.sql|$(flyway_crc "$FW/2_email.sql")|app|t|t 3|3|posts|SQL|3_posts.sql|$(flyway_crc "$FW/3_posts.sql")|app|t|t " \
	"flyway: rows as Flyway writes them, checksums as Flyway computes them, installed_by the role"
check "flyway: no side table" test "$(qa "SELECT to_regclass('ferry_checksums') IS NULL")" = t
data_ok flyway
cp -r "$FW" "$TMP/fwedit"
printf -- '-- edited\n' >>"$TMP/fwedit/1_users.sql"
pgf "$TMP/fwedit" migrate
expect_status 65 "flyway: a script whose CRC-32 differs from Flyway's row refused"

# ---- diesel ------------------------------------------------------------------------
DI=$TMP/di
mkset "$DI" 20240101120000_users 20240102120000_email 20240103120000_posts
base "$DI/20240101120000_users.sql"
qp "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
qp "INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101120000')" >/dev/null
pgf "$DI" migrate
expect_status 0 "diesel: adopted and upgraded"
is "$(qa 'SELECT version, run_on IS NOT NULL FROM __diesel_schema_migrations ORDER BY version' | tr '\n' ' ')" \
	"20240101120000|t 20240102120000|t 20240103120000|t " "diesel: one row per version, as diesel writes them"
is "$(columns __diesel_schema_migrations)" "version character varying, run_on timestamp without time zone" \
	"diesel: the table's columns unchanged"
data_ok diesel

# ---- sqlx ---------------------------------------------------------------------------
SX=$TMP/sx
mkset "$SX" 1_users 2_email 3_posts
sha384() { sha384sum <"$1" | cut -d' ' -f1; }
base "$SX/1_users.sql"
qp "CREATE TABLE IF NOT EXISTS _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)"
qp "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (1, 'users', TRUE, decode('$(sha384 "$SX/1_users.sql")', 'hex'), 1234567)" >/dev/null
pgf "$SX" migrate
expect_status 0 "sqlx: adopted and upgraded"
is "$(qa "SELECT version, description, success, encode(checksum, 'hex'), execution_time >= 0 FROM _sqlx_migrations ORDER BY version" | tr '\n' ' ')" \
	"1|users|t|$(sha384 "$SX/1_users.sql")|t 2|email|t|$(sha384 "$SX/2_email.sql")|t 3|posts|t|$(sha384 "$SX/3_posts.sql")|t " \
	"sqlx: rows as sqlx writes them, SHA-384 checksums"
data_ok sqlx
cp -r "$SX" "$TMP/sxedit"
printf -- '-- edited\n' >>"$TMP/sxedit/1_users.sql"
pgf "$TMP/sxedit" migrate
expect_status 65 "sqlx: a file whose SHA-384 differs from sqlx's row refused"

done_testing
