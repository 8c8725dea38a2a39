#!/bin/sh
# SQLite: the ledgers of other tools (golang-migrate, dbmate, goose,
# Flyway, diesel, sqlx), each created with the tool's own schema and the
# rows the tool writes, adopted by ferry and kept written in that shape,
# row for row; golang-migrate migrations that alter schema_migrations;
# a dirty golang-migrate ledger recovered from ferry's snapshot and
# refused without one; two ledgers refused; edits after adoption refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
unset FERRY_MIGRATIONS_LEDGER FERRY_MIGRATIONS_ALLOW_OUT_OF_ORDER

# mkset DIR NAME1 NAME2 NAME3: three migrations (users, email, posts) in DIR
# under the names given (without .sql), ferry's format
mkset() {
	mkdir -p "$1"
	printf 'CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n' >"$1/$2.sql"
	printf -- '-- every user gets an address\nALTER TABLE users ADD COLUMN email TEXT;\nUPDATE users SET email = lower(name) || %s;\n' \
		"'@example.com'" >"$1/$3.sql"
	printf 'CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id));\nINSERT INTO posts (user_id) SELECT id FROM users;\n' >"$1/$4.sql"
}
# base DB FIRST-FILE: the database as the tool left it after its first migration
base() {
	new_db "$1"
	q "$DB" "$(cat "$2")"
	q "$DB" "INSERT INTO users (name) VALUES ('Ada'), ('Brian')"
}
data_ok() { # data_ok DESC: the three migrations ran on the data
	is "$(q "$DB" 'SELECT name, email FROM users ORDER BY id' | tr '\n' ' ')" \
		"Ada|ada@example.com Brian|brian@example.com " "$1: the data migrated"
	is "$(q "$DB" 'SELECT count(*) FROM posts')" 2 "$1: posts created"
}
columns() { q "$DB" "SELECT group_concat(name || ' ' || type, ', ') FROM pragma_table_info('$1')"; }

# ---- golang-migrate -----------------------------------------------------------------
G=$TMP/g
mkdir -p "$G"
printf 'CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n' >"$G/000001_users.up.sql"
printf 'DROP TABLE users;\n' >"$G/000001_users.down.sql"
printf -- "ALTER TABLE users ADD COLUMN email TEXT;\nUPDATE users SET email = lower(name) || '@example.com';\n" >"$G/000002_email.up.sql"
printf 'CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id));\nINSERT INTO posts (user_id) SELECT id FROM users;\n' >"$G/000003_posts.up.sql"
GM_DDL='CREATE TABLE IF NOT EXISTS schema_migrations (version uint64,dirty bool); CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations (version);'

base gm "$G/000001_users.up.sql"
q "$DB" "$GM_DDL INSERT INTO schema_migrations (version, dirty) VALUES (1, 0);"
cols_before=$(columns schema_migrations)
fy "$DB" "$G" migrate
expect_status 0 "golang-migrate: adopted and upgraded"
is "$(q "$DB" 'SELECT version, typeof(version), dirty, typeof(dirty) FROM schema_migrations')" \
	"3|integer|0|integer" "golang-migrate: one row, version 3, clean, as migrate writes it"
is "$(columns schema_migrations)" "$cols_before" "golang-migrate: the table's columns unchanged"
is "$(q "$DB" "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'schema_migrations'")" \
	version_unique "golang-migrate: its unique index kept"
check "golang-migrate: no ferry_migrations table" test -z "$(q "$DB" "SELECT name FROM sqlite_master WHERE name = 'ferry_migrations'")"
is "$(q "$DB" 'SELECT version, sha256 FROM ferry_checksums ORDER BY version' | tr '\n' ' ')" \
	"1|$(filesum "$G/000001_users.up.sql") 2|$(filesum "$G/000002_email.up.sql") 3|$(filesum "$G/000003_posts.up.sql") " \
	"golang-migrate: checksums in the side table (1, applied by migrate, recorded at the write)"
data_ok golang-migrate
fy "$DB" "$G" status
expect_status 0 "golang-migrate: status reads the ledger"
like "$out" "3 +000003_posts +applied" "golang-migrate: status shows 3 applied"
fy "$DB" "$G" doctor --deep
expect_status 0 "golang-migrate: doctor --deep: ledger and drift fine"
like "$out" "ledger: 3 applied" "golang-migrate: doctor reads migrate's ledger"
like "$out" "schema drift: the schema is what the 3 applied" "golang-migrate: drift leaves the ledger tables out"

# checksum change after adoption: refused, for a version migrate applied and one ferry applied
for f in 000001_users 000002_email; do
	cp -r "$G" "$TMP/gedit-$f"
	printf -- '-- edited\n' >>"$TMP/gedit-$f/$f.up.sql"
	sum=$(filesum "$DB")
	fy "$DB" "$TMP/gedit-$f" migrate
	expect_status 65 "golang-migrate: $f edited after adoption refused"
	like "$err" "$f.*changed after it was applied" "golang-migrate: names $f"
	is "$(filesum "$DB")" "$sum" "golang-migrate: edit of $f: database unchanged"
done

# migrations that alter schema_migrations itself: a column added, then dropped
cp -r "$G" "$TMP/galter"
printf "ALTER TABLE schema_migrations ADD COLUMN applied_by TEXT DEFAULT 'migrate';\n" >"$TMP/galter/000004_ledger_note.up.sql"
printf 'CREATE TABLE tags (id INTEGER PRIMARY KEY);\n' >"$TMP/galter/000005_tags.up.sql"
printf 'ALTER TABLE schema_migrations DROP COLUMN applied_by;\n' >"$TMP/galter/000006_ledger_plain.up.sql"
FERRY_MIGRATIONS_TARGET_VERSION=5 fy "$DB" "$TMP/galter" migrate
expect_status 0 "golang-migrate: a migration adds a column to schema_migrations"
is "$(q "$DB" 'SELECT * FROM schema_migrations')" "5|0|migrate" "golang-migrate: row written with the added column's default"
fy "$DB" "$TMP/galter" migrate
expect_status 0 "golang-migrate: a migration drops that column again"
is "$(q "$DB" 'SELECT * FROM schema_migrations')" "6|0" "golang-migrate: row written in the plain shape"
is "$(columns schema_migrations)" "$cols_before" "golang-migrate: the table's columns as migrate made them"

# dirty=true from ferry's own crash in a no-transaction step (ferry's
# format, for its directive): the snapshot restores it
mkset "$TMP/gnt" 0001_users 0002_email 0003_posts
{ echo '-- ferry:no-transaction'; cat "$TMP/gnt/0002_email.sql"; } >"$TMP/gnt/x" && mv "$TMP/gnt/x" "$TMP/gnt/0002_email.sql"
base gmdirty "$TMP/gnt/0001_users.sql"
q "$DB" "$GM_DDL INSERT INTO schema_migrations (version, dirty) VALUES (1, 0);"
FERRY_TEST_CRASH_AT=migration:2:dirty fy "$DB" "$TMP/gnt" migrate
expect_status 137 "golang-migrate dirty: ferry killed in the no-transaction step"
is "$(q "$DB" 'SELECT version, dirty FROM schema_migrations')" "2|1" "golang-migrate dirty: dirty=true before the step, as migrate sets it"
fy "$DB" "$TMP/gnt" migrate
expect_status 0 "golang-migrate dirty: the next boot recovers from the snapshot and upgrades"
like "$err" "restor" "golang-migrate dirty: says it restored"
is "$(q "$DB" 'SELECT version, dirty FROM schema_migrations')" "3|0" "golang-migrate dirty: clean at 3"
data_ok "golang-migrate dirty"

# dirty=true left by migrate itself: no snapshot of ferry's, refused with what to run
base gmdirty2 "$G/000001_users.up.sql"
q "$DB" "$GM_DDL INSERT INTO schema_migrations (version, dirty) VALUES (2, 1);"
sum=$(filesum "$DB")
fy "$DB" "$G" migrate
expect_status 65 "golang-migrate dirty without a snapshot: refused"
like "$err" "version 2 is dirty" "golang-migrate dirty: names the version"
like "$err" 'migrate force 2.*migrate force 1' "golang-migrate dirty: says what to run"
is "$(filesum "$DB")" "$sum" "golang-migrate dirty: database unchanged"

# two ledgers: refused naming both, unless [migrations] ledger says which
base two "$G/000001_users.up.sql"
q "$DB" "$GM_DDL INSERT INTO schema_migrations (version, dirty) VALUES (1, 0);"
q "$DB" "CREATE TABLE goose_db_version (id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL, is_applied INTEGER NOT NULL, tstamp TIMESTAMP DEFAULT (datetime('now')));
	INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1), (1, 1);"
sum=$(filesum "$DB")
fy "$DB" "$G" migrate
expect_status 65 "two ledgers: refused"
like "$err" "golang-migrate.*schema_migrations.*goose.*goose_db_version" "two ledgers: both named"
like "$err" "\[migrations\] ledger" "two ledgers: says which key decides"
is "$(filesum "$DB")" "$sum" "two ledgers: database unchanged"
FERRY_MIGRATIONS_LEDGER=golang-migrate fy "$DB" "$G" migrate
expect_status 0 "two ledgers: [migrations] ledger = golang-migrate picks one"
is "$(q "$DB" 'SELECT version FROM schema_migrations')" 3 "two ledgers: golang-migrate's written"
is "$(q "$DB" 'SELECT count(*) FROM goose_db_version')" 2 "two ledgers: goose's left alone"

# a new database with golang-migrate's format: golang-migrate's ledger
new_db gmnew
fy "$DB" "$G" migrate
expect_status 0 "golang-migrate: a new database"
is "$(q "$DB" 'SELECT version, dirty FROM schema_migrations')" "3|0" "golang-migrate: a new database gets migrate's ledger"
is "$(columns schema_migrations)" "$cols_before" "golang-migrate: created with migrate's columns"

# downgrade on migrate's ledger: the previous version becomes current, as
# `migrate down` leaves it, and the side table forgets the undone ones
printf 'ALTER TABLE users DROP COLUMN email;\n' >"$G/000002_email.down.sql"
printf 'DROP TABLE posts;\n' >"$G/000003_posts.down.sql"
fy "$DB" "$G" downgrade --to 1
expect_status 0 "golang-migrate: downgrade --to 1"
is "$(q "$DB" 'SELECT version, dirty FROM schema_migrations')" "1|0" "golang-migrate: schema_migrations at 1, clean"
is "$(q "$DB" 'SELECT version FROM ferry_checksums ORDER BY version' | tr '\n' ' ')" "1 " \
	"golang-migrate: the side table forgot 2 and 3"
fy "$DB" "$G" downgrade --to 0
expect_status 0 "golang-migrate: downgrade --to 0"
is "$(q "$DB" 'SELECT count(*) FROM schema_migrations')" 0 "golang-migrate: no row at all, migrate's no version"
rm -f "$G/000002_email.down.sql" "$G/000003_posts.down.sql"

# ---- dbmate ----------------------------------------------------------------------
D=$TMP/d
mkset "$D" 20240101120000_users 20240102093000_email 20240103000000_posts
base dbmate "$D/20240101120000_users.sql"
q "$DB" "create table if not exists schema_migrations (version varchar(128) primary key);
	insert into schema_migrations (version) values ('20240101120000');"
fy "$DB" "$D" migrate
expect_status 0 "dbmate: adopted and upgraded"
is "$(q "$DB" 'SELECT version, typeof(version) FROM schema_migrations ORDER BY version' | tr '\n' ' ')" \
	"20240101120000|text 20240102093000|text 20240103000000|text " "dbmate: one text row per version, as dbmate writes them"
is "$(columns schema_migrations)" "version varchar(128)" "dbmate: the table's columns unchanged"
is "$(q "$DB" 'SELECT count(*) FROM ferry_checksums')" 3 "dbmate: checksums in the side table"
data_ok dbmate
printf -- '-- edited\n' >>"$D/20240102093000_email.sql"
fy "$DB" "$D" migrate
expect_status 65 "dbmate: a file edited after ferry applied it refused"

# ---- goose -------------------------------------------------------------------------
GO=$TMP/go
mkset "$GO" 00001_users 00002_email 00003_posts
GOOSE_DDL="CREATE TABLE goose_db_version (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		version_id INTEGER NOT NULL,
		is_applied INTEGER NOT NULL,
		tstamp TIMESTAMP DEFAULT (datetime('now'))
	);"
base goose "$GO/00001_users.sql"
# goose's log: 1 and 2 applied, then 2 rolled back (old goose: is_applied false)
q "$DB" "$GOOSE_DDL INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1), (1, 1), (2, 1), (2, 0);"
fy "$DB" "$GO" migrate
expect_status 0 "goose: adopted (2 rolled back in its log) and upgraded"
is "$(q "$DB" 'SELECT id, version_id, typeof(version_id), is_applied, typeof(is_applied) FROM goose_db_version ORDER BY id' | tr '\n' ' ')" \
	"1|0|integer|1|integer 2|1|integer|1|integer 3|2|integer|1|integer 4|2|integer|0|integer 5|2|integer|1|integer 6|3|integer|1|integer " \
	"goose: rows appended as goose appends them"
like "$(q "$DB" 'SELECT tstamp FROM goose_db_version WHERE id = 6')" '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$' \
	"goose: tstamp as goose's default writes it"
data_ok goose
new_db goosenew
FERRY_MIGRATIONS_LEDGER=goose fy "$DB" "$GO" migrate
expect_status 0 "goose: a new database with [migrations] ledger = goose"
is "$(q "$DB" 'SELECT version_id, is_applied FROM goose_db_version ORDER BY id' | tr '\n' ' ')" \
	"0|1 1|1 2|1 3|1 " "goose: created with goose's version 0 row"

# ---- Flyway ------------------------------------------------------------------------
FW=$TMP/fw
mkset "$FW" 1_users 2_email 3_posts
# Flyway's checksum: CRC-32 of the lines without their ends, signed
flyway_crc() {
	_u=$(tr -d '\r\n' <"$1" | gzip -c | tail -c8 | od -An -tu4 -N4 | tr -d ' ')
	[ "$_u" -ge 2147483648 ] && _u=$((_u - 4294967296))
	echo "$_u"
}
FW_DDL='CREATE TABLE "flyway_schema_history" (
    "installed_rank" INT NOT NULL PRIMARY KEY,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INT,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TEXT NOT NULL DEFAULT (strftime('"'"'%Y-%m-%d %H:%M:%f'"'"','"'"'now'"'"')),
    "execution_time" INT NOT NULL,
    "success" BOOLEAN NOT NULL
);
CREATE INDEX "flyway_schema_history_s_idx" ON "flyway_schema_history" ("success");'
base flyway "$FW/1_users.sql"
q "$DB" "$FW_DDL INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success)
	VALUES (1, '1', 'users', 'SQL', '1_users.sql', $(flyway_crc "$FW/1_users.sql"), '', 4, 1);"
fy "$DB" "$FW" migrate
expect_status 0 "flyway: adopted and upgraded"
is "$(q "$DB" 'SELECT installed_rank, version, description, type, script, checksum, typeof(checksum), installed_by, typeof(execution_time), success, typeof(success) FROM flyway_schema_history ORDER BY installed_rank' | tr '\n' ' ')" \
	"1|1|users|SQL|1_users.sql|$(flyway_crc "$FW/1_users.sql")|integer||integer|1|integer 2|2|email|SQL|2_email.sql|$(flyway_crc "$FW/2_email.sql")|integer||integer|1|integer 3|3|posts|SQL|3_posts.sql|$(flyway_crc "$FW/3_posts.sql")|integer||integer|1|integer " \
	"flyway: rows as Flyway writes them, checksums as Flyway computes them"
like "$(q "$DB" 'SELECT installed_on FROM flyway_schema_history WHERE installed_rank = 3')" \
	'^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}$' "flyway: installed_on as Flyway's default writes it"
check "flyway: no side table (Flyway keeps its checksums)" test -z "$(q "$DB" "SELECT name FROM sqlite_master WHERE name = 'ferry_checksums'")"
data_ok flyway
cp -r "$FW" "$TMP/fwedit"
printf -- '-- edited\n' >>"$TMP/fwedit/1_users.sql"
fy "$DB" "$TMP/fwedit" migrate
expect_status 65 "flyway: a script whose CRC-32 differs from Flyway's row refused"
like "$err" "1_users.*changed after it was applied" "flyway: names the script"
# CRLF line ends do not change Flyway's checksum
cp -r "$FW" "$TMP/fwcrlf"
sed 's/$/\r/' "$FW/1_users.sql" >"$TMP/fwcrlf/1_users.sql"
fy "$DB" "$TMP/fwcrlf" migrate
expect_status 0 "flyway: the same script with CRLF line ends is the same checksum"

# ---- diesel ------------------------------------------------------------------------
DI=$TMP/di
mkset "$DI" 20240101120000_users 20240102120000_email 20240103120000_posts
base diesel "$DI/20240101120000_users.sql"
q "$DB" "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
	INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101120000');"
fy "$DB" "$DI" migrate
expect_status 0 "diesel: adopted and upgraded"
is "$(q "$DB" 'SELECT version, typeof(version) FROM __diesel_schema_migrations ORDER BY version' | tr '\n' ' ')" \
	"20240101120000|text 20240102120000|text 20240103120000|text " "diesel: one row per version, as diesel writes them"
like "$(q "$DB" "SELECT run_on FROM __diesel_schema_migrations WHERE version = '20240103120000'")" \
	'^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$' "diesel: run_on as CURRENT_TIMESTAMP writes it"
data_ok diesel

# ---- sqlx ---------------------------------------------------------------------------
SX=$TMP/sx
mkset "$SX" 1_users 2_email 3_posts
sha384() { sha384sum <"$1" | cut -d' ' -f1 | tr a-f A-F; }
base sqlx "$SX/1_users.sql"
q "$DB" "CREATE TABLE IF NOT EXISTS _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);
	INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (1, 'users', TRUE, X'$(sha384 "$SX/1_users.sql")', 1234567);"
fy "$DB" "$SX" migrate
expect_status 0 "sqlx: adopted and upgraded"
is "$(q "$DB" 'SELECT version, typeof(version), description, success, hex(checksum), typeof(checksum), typeof(execution_time) FROM _sqlx_migrations ORDER BY version' | tr '\n' ' ')" \
	"1|integer|users|1|$(sha384 "$SX/1_users.sql")|blob|integer 2|integer|email|1|$(sha384 "$SX/2_email.sql")|blob|integer 3|integer|posts|1|$(sha384 "$SX/3_posts.sql")|blob|integer " \
	"sqlx: rows as sqlx writes them, SHA-384 checksums"
data_ok sqlx
cp -r "$SX" "$TMP/sxedit"
printf -- '-- edited\n' >>"$TMP/sxedit/1_users.sql"
fy "$DB" "$TMP/sxedit" migrate
expect_status 65 "sqlx: a file whose SHA-384 differs from sqlx's row refused"

# ---- the key ------------------------------------------------------------------------
FERRY_MIGRATIONS_LEDGER=liquibase fy "$DB" "$SX" migrate
expect_status 78 "an unknown [migrations] ledger is a configuration error"
like "$err" "FERRY_MIGRATIONS_LEDGER.*expected auto, ferry, golang-migrate" "names the variable and the choices"

done_testing
