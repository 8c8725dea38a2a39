#!/bin/sh
# SQLite: ferry baseline on a database built by hand (then migrate applies
# only the newer versions) and its refusals; out-of-order versions refused
# by default and applied with [migrations] allow_out_of_order; Flyway's
# repeatables applied once, and again after a change.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
unset FERRY_MIGRATIONS_LEDGER FERRY_MIGRATIONS_ALLOW_OUT_OF_ORDER FERRY_MIGRATIONS_FORMAT
make_std_migrations

# ---- baseline on a database built by hand --------------------------------------------
new_db hand
q "$DB" "$(cat "$TMP/m3/0001_users.sql" "$TMP/m3/0002_email.sql")"
q "$DB" "INSERT INTO users (name, email) VALUES ('Ada', 'ada@example.com')"
sum=$(filesum "$DB")
fy "$DB" "$TMP/m3" migrate
expect_status 65 "a database with tables but no ledger: refused"
like "$err" 'ferry baseline --version V' "the refusal points to ferry baseline"
is "$(filesum "$DB")" "$sum" "refused: database unchanged"

fy "$DB" "$TMP/m3" baseline
expect_status 64 "baseline without --version: usage error"
fy "$DB" "$TMP/m3" baseline --version 7
expect_status 65 "baseline --version 7, not shipped: refused"
like "$err" "7 is not a version the image ships" "names the version"
is "$(filesum "$DB")" "$sum" "refused: database unchanged"

fy "$DB" "$TMP/m3" baseline --version 2
expect_status 0 "baseline --version 2"
like "$out" "0001_users \(version 1\)" "prints what it records: 1"
like "$out" "0002_email \(version 2\)" "prints what it records: 2"
unlike "$out" "0003" "and not 3"
is "$(q "$DB" 'SELECT version, name, sha256, dirty FROM ferry_migrations ORDER BY version' | tr '\n' ' ')" \
	"1|0001_users|$(filesum "$TMP/m3/0001_users.sql")|0 2|0002_email|$(filesum "$TMP/m3/0002_email.sql")|0 " \
	"the ledger has 1 and 2 with their checksums"
is "$(q "$DB" 'SELECT count(*) FROM users')" 1 "nothing ran: the data is as it was"
fy "$DB" "$TMP/m3" baseline --version 2
expect_status 65 "baseline again: the database already has a ledger"
like "$err" "already has a ledger" "says so"
fy "$DB" "$TMP/m3" migrate
expect_status 0 "migrate after the baseline"
like "$err" "applied 0003_posts" "applies 3"
unlike "$err" "applied 0001|applied 0002" "and only 3"
is "$(q "$DB" 'SELECT count(*) FROM posts')" 1 "3 ran on the data"

# baseline into the format's tool's ledger: golang-migrate
mkdir -p "$TMP/g"
for f in 0001_users 0002_email 0003_posts; do cp "$TMP/m3/$f.sql" "$TMP/g/00$f.up.sql"; done
new_db handgm
q "$DB" "$(cat "$TMP/m3/0001_users.sql")"
fy "$DB" "$TMP/g" baseline --version 1
expect_status 0 "baseline in golang-migrate's shape"
like "$out" "golang-migrate's ledger \(schema_migrations\)" "names the ledger it writes"
is "$(q "$DB" 'SELECT version, dirty FROM schema_migrations')" "1|0" "schema_migrations at 1, clean"
fy "$DB" "$TMP/g" migrate
expect_status 0 "migrate after it"
is "$(q "$DB" 'SELECT version, dirty FROM schema_migrations')" "3|0" "at 3"

# ---- out of order ----------------------------------------------------------------------
mkdir -p "$TMP/o13" "$TMP/o1234"
cp "$TMP/m3/0001_users.sql" "$TMP/m3/0003_posts.sql" "$TMP/o13/"
cp "$TMP/m4/"*.sql "$TMP/o1234/"
new_db order
fy "$DB" "$TMP/o13" migrate
expect_status 0 "setup: 1 and 3 applied"
q "$DB" "INSERT INTO users (name) VALUES ('Ada')"
sum=$(filesum "$DB")
fy "$DB" "$TMP/o1234" migrate
expect_status 65 "2 shipped below the applied 3: refused"
like "$err" "has 3 but not 2 \(0002_email\)" "names both versions"
like "$err" "allow_out_of_order" "names the key that allows it"
is "$(filesum "$DB")" "$sum" "refused: database unchanged"
FERRY_MIGRATIONS_ALLOW_OUT_OF_ORDER=true fy "$DB" "$TMP/o1234" migrate
expect_status 0 "allow_out_of_order = true: applied"
is "$(printf '%s\n' "$err" | sed -n 's/.*applied \(000[0-9]_[a-z]*\).*/\1/p' | tr '\n' ' ')" \
	"0002_email 0004_tags " "the hole first, then the newer one"
is "$(ledger_versions "$DB")" "1 2 3 4" "the ledger has every version"
is "$(q "$DB" 'SELECT email FROM users')" "ada@example.com" "2 ran on the data"
fy "$DB" "$TMP/o1234" migrate
expect_status 0 "then up to date"

# out of order in dbmate's shape (one row per version)
mkdir -p "$TMP/d13" "$TMP/d123"
cp "$TMP/m3/0001_users.sql" "$TMP/d13/20240101000000_users.sql"
cp "$TMP/m3/0003_posts.sql" "$TMP/d13/20240301000000_posts.sql"
cp "$TMP/d13/"*.sql "$TMP/d123/"
cp "$TMP/m3/0002_email.sql" "$TMP/d123/20240201000000_email.sql"
new_db dorder
FERRY_MIGRATIONS_LEDGER=dbmate fy "$DB" "$TMP/d13" migrate
expect_status 0 "dbmate: setup"
fy "$DB" "$TMP/d123" migrate
expect_status 65 "dbmate: out of order refused"
FERRY_MIGRATIONS_ALLOW_OUT_OF_ORDER=true fy "$DB" "$TMP/d123" migrate
expect_status 0 "dbmate: out of order allowed"
is "$(q "$DB" 'SELECT version FROM schema_migrations ORDER BY version' | tr '\n' ' ')" \
	"20240101000000 20240201000000 20240301000000 " "dbmate: the hole's row added"

# ---- Flyway repeatables -------------------------------------------------------------------
FW=$TMP/fw
mkdir -p "$FW"
printf 'CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n' >"$FW/V1__users.sql"
printf "INSERT INTO users (name) VALUES ('Ada');\n" >"$FW/V2__ada.sql"
cat >"$FW/R__user_names.sql" <<-'EOF'
	DROP VIEW IF EXISTS user_names;
	CREATE VIEW user_names AS SELECT name FROM users;
	CREATE TABLE IF NOT EXISTS rep_runs (n INTEGER);
	INSERT INTO rep_runs VALUES (1);
	EOF
for ledger in flyway ferry; do
	new_db "rep-$ledger"
	cp -r "$FW" "$TMP/fw-$ledger"
	FERRY_MIGRATIONS_LEDGER=$ledger fy "$DB" "$TMP/fw-$ledger" migrate
	expect_status 0 "$ledger: versioned migrations and a repeatable"
	like "$(printf '%s' "$err" | tr '\n' ' ')" "applied V2__ada.*applied user_names" "$ledger: the repeatable after the versioned ones"
	is "$(q "$DB" 'SELECT name FROM user_names')" Ada "$ledger: the repeatable ran"
	FERRY_MIGRATIONS_LEDGER=$ledger fy "$DB" "$TMP/fw-$ledger" migrate
	expect_status 0 "$ledger: again"
	is "$(q "$DB" 'SELECT count(*) FROM rep_runs')" 1 "$ledger: unchanged, it does not run again"
	sed -i 's/SELECT name FROM users/SELECT upper(name) AS name FROM users/' "$TMP/fw-$ledger/R__user_names.sql"
	FERRY_MIGRATIONS_LEDGER=$ledger fy "$DB" "$TMP/fw-$ledger" migrate
	expect_status 0 "$ledger: the repeatable changed"
	is "$(q "$DB" 'SELECT name FROM user_names')" ADA "$ledger: it ran again"
	is "$(q "$DB" 'SELECT count(*) FROM rep_runs')" 2 "$ledger: once more, not twice"
done
is "$(q "$TMP/rep-flyway/app.db" "SELECT installed_rank, quote(version), description, script FROM flyway_schema_history WHERE version IS NULL ORDER BY installed_rank" | tr '\n' ' ')" \
	"3|NULL|user names|R__user_names.sql 4|NULL|user names|R__user_names.sql " \
	"flyway: a row without version each time it ran, as Flyway writes them"
is "$(q "$TMP/rep-ferry/app.db" "SELECT name, sha256 FROM ferry_repeatables")" \
	"user_names|$(filesum "$TMP/fw-ferry/R__user_names.sql")" "ferry's ledger: the last checksum in ferry_repeatables"

# An empty tool ledger beside the app's tables (a first `migrate up` that
# failed, or a table made by hand) tracks nothing: refused with the
# baseline hint, then adopted into that same table.
mkdir -p "$TMP/m-gm"
echo 'CREATE TABLE users (x);' >"$TMP/m-gm/000001_a.up.sql"
echo 'CREATE TABLE posts (x);' >"$TMP/m-gm/000002_b.up.sql"
new_db emptyledger
sqlite3 "$DB" "CREATE TABLE users (x); INSERT INTO users VALUES ('kept');
	CREATE TABLE schema_migrations (version uint64, dirty bool);"
fy "$DB" "$TMP/m-gm" migrate
expect_status 65 "tables beside an empty schema_migrations"
like "$err" "an empty schema_migrations ledger.*ferry baseline --version V" \
	"the refusal says the ledger is empty and points to baseline"
fy "$DB" "$TMP/m-gm" baseline --version 1
expect_status 0 "baseline into the empty schema_migrations"
fy "$DB" "$TMP/m-gm" migrate
expect_status 0 "then the boot applies what comes after"
is "$(sqlite3 "$DB" 'SELECT version, dirty FROM schema_migrations')" "2|0" \
	"golang-migrate's ledger at 2, clean"
is "$(sqlite3 "$DB" 'SELECT x FROM users')" kept "the app's data is untouched"

# Flyway's own baseline (baselineOnMigrate, baselineVersion 1) with
# scripts that start at V2: the BASELINE row is a floor, not a migration
# the image must ship.
mkdir -p "$TMP/m-fw1" "$TMP/m-fwb"
echo 'CREATE TABLE t1 (x);' >"$TMP/m-fw1/V1__a.sql"
new_db fwddl
FERRY_MIGRATIONS_LEDGER=flyway fy "$DB" "$TMP/m-fw1" migrate
ddl=$(sqlite3 "$DB" .schema | grep -i flyway_schema_history)
echo 'CREATE TABLE t2 (x);' >"$TMP/m-fwb/V2__b.sql"
echo 'CREATE TABLE t3 (x);' >"$TMP/m-fwb/V3__c.sql"
new_db fwbase
sqlite3 "$DB" "$ddl CREATE TABLE legacy (x);
	INSERT INTO flyway_schema_history VALUES (1, '1', '<< Flyway Baseline >>', 'BASELINE',
	'<< Flyway Baseline >>', NULL, 'me', '2024-01-01 00:00:00.000', 0, 1);"
fy "$DB" "$TMP/m-fwb" migrate
expect_status 0 "a Flyway BASELINE row at 1, scripts from V2"
is "$(sqlite3 "$DB" "SELECT group_concat(version || ':' || type, ' ') FROM (SELECT * FROM flyway_schema_history ORDER BY installed_rank)")" \
	"1:BASELINE 2:SQL 3:SQL" "V2 and V3 applied after the baseline, in Flyway's shape"

# A failed row Flyway left (success = false): the refusal says how to
# repair, not to roll back to a snapshot ferry never took.
new_db fwfail
sqlite3 "$DB" "$ddl CREATE TABLE t2 (x);
	INSERT INTO flyway_schema_history VALUES (1, '2', 'b', 'SQL', 'V2__b.sql', NULL, 'me',
	'2024-01-01 00:00:00.000', 0, 0);"
fy "$DB" "$TMP/m-fwb" migrate
expect_status 65 "a failed Flyway row"
like "$err" "failed row for version 2.*flyway repair" "names the version and flyway repair"

# The same for a failed row sqlx left: named, with sqlx's way out.
mkdir -p "$TMP/m-sq"
echo 'CREATE TABLE s1 (x);' >"$TMP/m-sq/0001_s1.sql"
echo 'CREATE TABLE s2 (x);' >"$TMP/m-sq/0002_s2.sql"
new_db sqlxddl
FERRY_MIGRATIONS_LEDGER=sqlx fy "$DB" "$TMP/m-sq" migrate
expect_status 0 "a database with sqlx's ledger"
sqlite3 "$DB" "UPDATE _sqlx_migrations SET success = 0 WHERE version = 2"
fy "$DB" "$TMP/m-sq" migrate
expect_status 65 "a failed sqlx row"
like "$err" "_sqlx_migrations has a failed row for version 2.*DELETE FROM _sqlx_migrations WHERE version = 2" \
	"names the version and how to remove the row"

done_testing
