#!/bin/sh
# The database commands on SQLite: status [--json], version, migrate
# --dry-run, snapshot, rollback, cleanup, and run (upgrade then serve,
# auto_upgrade = false).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
make_std_migrations

# json EXPR: evaluates the Python expression EXPR on the JSON object in $out
# (as j); prints the result, or "invalid JSON".
json() {
	printf '%s' "$out" | python3 -c '
import json, sys
try:
    j = json.loads(sys.stdin.read())
except Exception as e:
    print("invalid JSON: %s" % e); sys.exit(0)
print(eval(sys.argv[1]))' "$1"
}

# ---- status ------------------------------------------------------------------
v1_db st
sum=$(filesum "$DB")
fy "$DB" "$TMP/m3" status
expect_status 0 "ferry status"
like "$out" "database version: 1" "status: database version"
like "$out" "image version: 3" "status: image version"
like "$out" "pending: 2" "status: pending count"
like "$out" "0002_email" "status: names a pending migration"
is "$(filesum "$DB")" "$sum" "status changes nothing"
check "status creates no snapshot" test ! -e "$DB.pre-upgrade"

fy "$DB" "$TMP/m3" status --json
expect_status 0 "ferry status --json"
is "$(printf '%s\n' "$out" | grep -c .)" 1 "--json: one line"
is "$(json 'j["database_version"]')" 1 "--json: database_version"
is "$(json 'j["image_version"]')" 3 "--json: image_version"
is "$(json 'j["pending"]')" "['0002_email', '0003_posts']" "--json: pending is the list of names"
is "$(json 'j["unknown"]')" "[]" "--json: unknown is an empty list"
is "$(json 'j["dirty"]')" "[]" "--json: dirty is an empty list"
is "$(json 'j["snapshot"]')" "None" "--json: no snapshot is null"
is "$(json 'j["journal"]')" "none" "--json: no journal is \"none\""

fy "$DB" "$TMP/m3" migrate
expect_status 0 "upgrade"
fy "$DB" "$TMP/m3" status --json
expect_status 0 "status --json after the upgrade"
is "$(json 'j["database_version"]')" 3 "--json: database_version 3"
is "$(json 'j["pending"]')" "[]" "--json: nothing pending"
is "$(json 'j["snapshot"]["path"]')" "$DB.pre-upgrade" "--json: snapshot.path"
is "$(json 'j["snapshot"]["bytes"]')" "$(stat -c %s "$DB.pre-upgrade")" "--json: snapshot.bytes"
is "$(json 'isinstance(j["snapshot"]["age_seconds"], (int, float)) and j["snapshot"]["age_seconds"] >= 0')" \
	True "--json: snapshot.age_seconds is a number"
fy "$DB" "$TMP/m3" status
like "$out" "database version: 3" "status text after the upgrade"
like "$out" "pending: 0" "nothing pending"
fy "$DB" "$TMP/m1" status --json
is "$(json 'j["unknown"]')" "['0002_email', '0003_posts']" "--json: applied migrations the image lacks are unknown"

v1_db stdirty
q "$DB" "INSERT INTO ferry_migrations (version, name, sha256, applied_at, duration_ms, dirty)
	VALUES (2, '0002_email', '$(filesum "$TMP/m3/0002_email.sql")', '2024-01-01T00:00:00Z', 5, 1)"
fy "$DB" "$TMP/m3" status --json
is "$(json 'j["dirty"]')" "['0002_email']" "--json: dirty lists the dirty migration"

# an interrupted upgrade shows in status; status itself changes nothing
v1_db stjournal
FERRY_TEST_CRASH_AT=migration:2:after-commit fy "$DB" "$TMP/m3nt" migrate
expect_status 137 "setup: an upgrade killed in phase migrating, after 0002 committed"
sum=$(filesum "$DB")
fy "$DB" "$TMP/m3nt" status --json
expect_status 0 "status --json with an interrupted upgrade"
is "$(json 'j["journal"]["phase"]')" migrating "--json: journal.phase"
is "$(json 'j["journal"]["from"]')" 1 "--json: journal.from"
is "$(json 'j["journal"]["to"]')" 3 "--json: journal.to"
fy "$DB" "$TMP/m3nt" status
expect_status 0 "status (text) with an interrupted upgrade"
like "$out" "journal: .*migrating" "the text says the journal is at migrating"
is "$(filesum "$DB")" "$sum" "status does not touch the database"
check "status leaves the journal for the next boot" test -e "$DBDIR/.ferry/journal"
fy "$DB" "$TMP/m3nt" migrate
expect_status 0 "the next migrate recovers and upgrades"
like "$err" "[Rr]estor" "it restored first"
is "$(ledger_versions "$DB")" "1 2 3" "then upgraded"

# ---- version -------------------------------------------------------------------
v1_db ver
fy "$DB" "$TMP/m3" version
expect_status 0 "ferry version with a database"
like "$(printf '%s\n' "$out" | head -1)" "^ferry [0-9]+\.[0-9]+\.[0-9]+" "first line: ferry X.Y.Z"
like "$out" "image schema version: 3" "the image schema version"
like "$out" "database schema version: 1" "the database schema version"

# ---- migrate --dry-run ----------------------------------------------------------------
v1_db dry
sum=$(filesum "$DB"); mt=$(mtime "$DB")
fy "$DB" "$TMP/m3" migrate --dry-run
expect_status 0 "migrate --dry-run"
like "$out" "0002_email" "the plan names 0002"
like "$out" "0003_posts" "the plan names 0003"
unlike "$out" "0001_users" "not the applied one"
is "$(filesum "$DB")" "$sum" "dry run: database unchanged"
is "$(mtime "$DB")" "$mt" "dry run: mtime unchanged"
is "$(files_in "$DBDIR")" "app.db" "dry run: no snapshot, no .ferry dir"
run_ferry migrate --dry-run --migrations "$TMP/m3" --database-url "sqlite://$DB"
expect_status 0 "options after --dry-run"

# ---- snapshot, rollback, cleanup --------------------------------------------------------
v1_db snap
before=$(dump "$DB")
fy "$DB" "$TMP/m3" snapshot
expect_status 0 "ferry snapshot"
check "writes app.db.pre-upgrade" test -f "$DB.pre-upgrade"
is "$(stat -c %a "$DB.pre-upgrade")" 600 "mode 0600"
cp "$DB.pre-upgrade" "$TMP/copy.db"
is "$(dump "$TMP/copy.db")" "$before" "it holds the database"
check "no journal left" test ! -e "$DBDIR/.ferry/journal"

fy "$DB" "$TMP/m3" migrate
expect_status 0 "upgrade 1 -> 3"
q "$DB" "INSERT INTO users (name, email) VALUES ('Late', 'late@example.com')"
fy "$DB" "$TMP/m3" rollback
expect_status 0 "ferry rollback"
is "$(dump "$DB")" "$before" "the database is back to the pre-upgrade snapshot"
is "$(q "$DB" 'PRAGMA integrity_check')" ok "and sound"
fy "$DB" "$TMP/m1" status
like "$out" "database version: 1" "status says version 1"
no_leftovers "$DBDIR" "rollback leaves no temp files"

# cleanup removes every snapshot
v1_db clean
for v in 2 3 4; do
	FERRY_SNAPSHOT_KEEP=3 FERRY_MIGRATIONS_TARGET_VERSION=$v fy "$DB" "$TMP/m4" migrate
done
is "$(files_in "$DBDIR" | grep -c pre-upgrade)" 3 "setup: three snapshots"
sum=$(filesum "$DB")
fy "$DB" "$TMP/m4" cleanup
expect_status 0 "ferry cleanup"
is "$(files_in "$DBDIR" | grep pre-upgrade)" "" "no snapshot is left"
is "$(filesum "$DB")" "$sum" "the database is untouched"
fy "$DB" "$TMP/m4" rollback
check "rollback without a snapshot fails (exit $rc)" test "$rc" != 0
like "$err" "snapshot" "and says there is no snapshot"
is "$(filesum "$DB")" "$sum" "the database is untouched"

# ---- run: upgrade, then the server sees the new schema ------------------------------------
v1_db run
fy "$DB" "$TMP/m3" run -- sh -c "sqlite3 '$DB' 'SELECT title FROM posts ORDER BY id'"
expect_status 0 "ferry run upgrades then runs the server"
is "$out" "hello from Ada
hello from Brian
hello from Chloe" "the server sees the new schema and data"
like "$err" "database upgraded from 1 to 3" "the log says it upgraded"
fy "$DB" "$TMP/m3" run -- sh -c 'exit 3'
expect_status 3 "up to date: run returns the server's status"
rm -rf "$DBDIR/.ferry" "$DB.pre-upgrade"
sum=$(filesum "$DB")
fy "$DB" "$TMP/m3" run -- true
expect_status 0 "run, up to date"
like "$err" "up to date" "says up to date"
is "$(files_in "$DBDIR")" "app.db" "run, up to date: no snapshot, no .ferry dir"
is "$(filesum "$DB")" "$sum" "run, up to date: database unchanged"

# ---- auto_upgrade = false ---------------------------------------------------------------
v1_db manual
sum=$(filesum "$DB")
FERRY_MIGRATIONS_AUTO_UPGRADE=false fy "$DB" "$TMP/m3" run -- touch "$TMP/served"
expect_status 75 "auto_upgrade=false with pending migrations: ferry run"
like "$err" "pending" "says there are pending migrations"
like "$err" "ferry migrate" "and to run ferry migrate"
check "the server was not started" test ! -e "$TMP/served"
is "$(filesum "$DB")" "$sum" "nothing changed"
check "no snapshot" test ! -e "$DB.pre-upgrade"
FERRY_MIGRATIONS_AUTO_UPGRADE=false fy "$DB" "$TMP/m3" migrate
expect_status 0 "auto_upgrade=false: ferry migrate still upgrades"
is "$(ledger_versions "$DB")" "1 2 3" "upgraded"
FERRY_MIGRATIONS_AUTO_UPGRADE=false fy "$DB" "$TMP/m3" run -- touch "$TMP/served"
expect_status 0 "auto_upgrade=false, up to date: ferry run starts the server"
check "the server ran" test -e "$TMP/served"
printf '[migrations]\nauto_upgrade = false\n' >"$TMP/manual.ini"
v1_db manual2
FERRY_CONFIG=$TMP/manual.ini fy "$DB" "$TMP/m3" run -- true
expect_status 75 "[migrations] auto_upgrade = false in the INI file"

done_testing
