#!/bin/sh
# ferry doctor on PostgreSQL: a healthy database is all ok (exit 0); each
# broken case fails the check it belongs to (exit 1): an edited migration, a
# dirty ledger row, a version the image does not ship, an application check
# with rows (and one that tries to write), a missing template copy, a cut
# logical snapshot, a hand-made ALTER (schema drift, replayed on a scratch
# database that is dropped after), an interrupted upgrade. The lock's holder
# is named, and so is the session of a ferry that died. --json has the
# documented shape. Doctor changes nothing: pg_dump, the databases, the
# settings and ferry's files are the same before and after.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
make_std_pg_migrations

# line NAME: the line of check NAME in $out
line() { printf '%s\n' "$out" | grep -E "^(ok|warn|fail) +$1: " | head -1; }

# what doctor must leave alone: the database, the cluster's databases and
# settings, ferry's state and snapshot files
tree_sum() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs -r sha256sum) | sha256sum | cut -d' ' -f1; }
everything() {
	pg_state
	db_list
	psql_su postgres "SELECT coalesce(string_agg(array_to_string(setconfig, ','), ';'), '') FROM pg_db_role_setting"
	qa "SELECT coalesce(string_agg(body, ''), 'no journal') FROM ferry_journal" 2>/dev/null || echo "no journal table"
	tree_sum "$FERRY_DATABASE_STATE_DIR"
	tree_sum "$FERRY_SNAPSHOT_DIR"
}

# The migrator lock's key (pglock.c: FNV-1a of ferry:<db>:ferry_migrations)
# and the migrator's mark (the key ^ 1), as signed bigints.
lock_key() {
	python3 -c '
import sys
h = 0xcbf29ce484222325
for b in b"ferry:appdb:ferry_migrations":
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
h ^= int(sys.argv[1])
print(h - (1 << 64) if h >= 1 << 63 else h)' "${1:-0}"
}

# hold_in DB SQL: a session in DB that ran SQL and stays; its pid in $holdpid
hold_in() {
	rm -f "$TMP/held"
	"$PGBIN/psql" -X -q -h "$PG_SOCKDIR" -p "$PGPORT" -U app -d "$1" -v ON_ERROR_STOP=1 \
		-c "SET application_name = 'holder'" -c "$2" -c "\\! touch $TMP/held" \
		-c '\! exec sleep 60' >"$TMP/hold.out" 2>&1 &
	holdpid=$!
	at_exit "kill_tree $holdpid"
	wait_for test -e "$TMP/held" || echo "# hold_in: $(cat "$TMP/hold.out")"
}
unhold() { kill_tree "$holdpid"; wait "$holdpid" 2>/dev/null; }

# v3: appdb at version 3 with three users, and a template snapshot
v3_appdb() {
	v1_appdb || return 1
	"$FERRY" migrate --database-url "$PGURL" --migrations "$TMP/p3" >"$TMP/.setup.out" 2>&1 &&
		"$FERRY" snapshot --database-url "$PGURL" --migrations "$TMP/p3" >"$TMP/.setup.out" 2>&1 ||
		{ echo "# setup: $(cat "$TMP/.setup.out")"; return 1; }
}

# ---- a healthy database ------------------------------------------------------
v3_appdb
before=$(everything)
pgf "$TMP/p3" doctor
expect_status 0 "doctor on a healthy database"
unlike "$out" "^(warn|fail) " "healthy: no warning, no failure"
like "$(line database)" "^ok    database: postgres://app:[^@]*@127\\.0\\.0\\.1:$PGPORT/appdb: PostgreSQL [0-9]" \
	"healthy: the server's version, the URL without its password"
like "$(line ledger)" "^ok    ledger: 3 applied \\(up to 3\\), none pending" "healthy: the ledger"
like "$(line privileges)" "^ok    privileges: role 'app' may create in schema 'public'" "healthy: the privileges"
like "$(line lock)" "^ok    lock: free" "healthy: the lock is free"
like "$(line snapshot)" "^ok    snapshot: $FERRY_SNAPSHOT_DIR/appdb.pre-upgrade: version 3" "healthy: the template snapshot, its version"
like "$out" "^doctor: [0-9]+ ok, 0 warnings, 0 failures$" "healthy: the summary"

pgf "$TMP/p3" doctor --deep
expect_status 0 "doctor --deep on a healthy database"
unlike "$out" "^(warn|fail) " "deep, healthy: no warning, no failure"
like "$(line 'schema drift')" "^ok    schema drift: the schema is what the 3 applied migrations build" "deep: no drift"
like "$(line 'snapshot contents')" "^ok    snapshot contents: .*appdb.pre-upgrade: read through" "deep: the template copy"
same_state "$(everything)" "$before" "doctor --deep changes nothing (database, databases, settings, files)"
unlike "$(db_list)" "ferry_doctor" "the scratch database is gone"

pgf "$TMP/p3" doctor --deep --json
expect_status 0 "doctor --json"
is "$(printf '%s\n' "$out" | grep -c .)" 1 "--json: one line"
is "$(json 'sorted(j.keys())')" "['checks', 'fail', 'ok', 'warn']" "--json: the members"
is "$(json 'all(sorted(c.keys()) == ["detail", "name", "status"] for c in j["checks"])')" True \
	"--json: each check has name, status and detail"
is "$(json 'j["ok"] == len(j["checks"]) and j["warn"] == 0 and j["fail"] == 0')" True "--json: the counts"

# ---- the ledger against the image ---------------------------------------------
mkdir -p "$TMP/pchg"
cp "$TMP/p3/"*.sql "$TMP/pchg/"
echo "-- edited after release" >>"$TMP/pchg/0003_posts.sql"
pgf "$TMP/pchg" doctor
expect_status 1 "a changed migration file fails"
like "$(line ledger)" "^fail  ledger: changed after they were applied: 0003_posts" "changed: named"

qa "UPDATE ferry_migrations SET dirty = true WHERE version = 3" >/dev/null
pgf "$TMP/p3" doctor
expect_status 1 "a dirty ledger row fails"
like "$(line ledger)" "^fail  ledger: dirty .*0003_posts" "dirty: named"
qa "UPDATE ferry_migrations SET dirty = false WHERE version = 3" >/dev/null

qa "INSERT INTO ferry_migrations (version, name, sha256) VALUES (9, '0009_future', 'abc')" >/dev/null
pgf "$TMP/p3" doctor
expect_status 1 "a version the image does not ship fails"
like "$(line ledger)" "^fail  ledger: not shipped by this image: 0009_future \\(version 9\\)" "unknown: named"
qa "DELETE FROM ferry_migrations WHERE version = 9" >/dev/null

pgf "$TMP/p4" doctor
expect_status 0 "a pending migration is a warning"
like "$(line ledger)" "^warn  ledger: 3 applied \\(up to 3\\), 1 pending: 0004_tags" "pending: named"

# ---- the application's checks --------------------------------------------------
mkdir -p "$TMP/checks"
echo "SELECT id FROM users WHERE name IS NULL" >"$TMP/checks/01_names.sql"
echo "SELECT id, name FROM users WHERE name LIKE 'A%';" >"$TMP/checks/02_ada.sql"
echo "DELETE FROM users;" >"$TMP/checks/03_delete.sql"
printf 'SET TRANSACTION READ WRITE;\nDELETE FROM users;\n' >"$TMP/checks/04_read_write.sql"
printf 'SELECT 1 WHERE false;\nCOMMIT;\nDELETE FROM users;\n' >"$TMP/checks/05_commit.sql"
before=$(everything)
FERRY_DOCTOR_CHECKS_DIR=$TMP/checks pgf "$TMP/p3" doctor --deep
expect_status 1 "an application check with rows fails"
like "$out" "^ok    app check: 01_names.sql: no rows" "app check without rows: ok"
like "$out" "^fail  app check: 02_ada.sql returned 1 row: \\(1, Ada\\)" "app check with rows: the file and its rows"
like "$out" "^fail  app check: 03_delete.sql: .*read-only transaction" "a check cannot write"
like "$out" "^fail  app check: 04_read_write.sql: " "nor make its transaction read-write"
like "$out" "^fail  app check: 05_commit.sql: line 2: a check must not control its transaction" \
	"nor end its transaction"
is "$(qa 'SELECT count(*) FROM users')" 3 "the users are all there"
same_state "$(everything)" "$before" "app checks change nothing"

# ---- snapshots ------------------------------------------------------------------
psql_su postgres "DROP DATABASE appdb_pre_upgrade" >/dev/null
pgf "$TMP/p3" doctor
expect_status 1 "a template snapshot whose copy is gone fails"
like "$(line snapshot)" "^fail  snapshot: .*appdb.pre-upgrade: its template database appdb_pre_upgrade does not exist" \
	"missing copy: named"
drop_snapshots

# a logical snapshot: the role may not create databases (which also
# leaves drift unchecked, a warning)
psql_su postgres "ALTER ROLE app NOCREATEDB" >/dev/null
"$FERRY" snapshot --database-url "$PGURL" --migrations "$TMP/p3" >"$TMP/.setup.out" 2>&1
like "$(cat "$TMP/.setup.out")" "logical" "setup: a logical snapshot"
pgf "$TMP/p3" doctor --deep
expect_status 0 "a whole logical snapshot, drift unchecked: exit 0"
like "$(line snapshot)" "^ok    snapshot: .*appdb.pre-upgrade: version 3" "logical: its recorded version"
like "$(line 'snapshot contents')" "^ok    snapshot contents: .*read through" "logical: read through"
like "$(line 'schema drift')" "^warn  schema drift: cannot check drift: .*permission denied to create database" \
	"no CREATEDB: drift is a warning"
snap=$(snapshot_file)
head -c $(( $(stat -c %s "$snap") / 2 )) "$snap" >"$TMP/half" && cat "$TMP/half" >"$snap"
pgf "$TMP/p3" doctor --deep
expect_status 1 "a cut logical snapshot fails --deep"
like "$(line 'snapshot contents')" "^fail  snapshot contents: $snap: " "cut snapshot: named"
psql_su postgres "ALTER ROLE app CREATEDB" >/dev/null
drop_snapshots

# ---- schema drift --------------------------------------------------------------
qa "ALTER TABLE users ADD COLUMN x integer" >/dev/null
pgf "$TMP/p3" doctor --deep
expect_status 1 "a hand-made ALTER fails --deep"
like "$(line 'schema drift')" "^fail  schema drift: table users: column x not in the migrations" "drift: the column named"
qa "ALTER TABLE users DROP COLUMN x; DROP INDEX users_name; CREATE TABLE extra (a int)" >/dev/null
pgf "$TMP/p3" doctor --deep
like "$(line 'schema drift')" "index users_name missing" "drift: a dropped index"
like "$(line 'schema drift')" "table extra not in the migrations" "drift: a table of its own"
unlike "$(db_list)" "ferry_doctor" "the scratch database is dropped after"

# ---- the lock ------------------------------------------------------------------
v3_appdb
hold_in postgres "SELECT pg_advisory_lock($(lock_key 0))"
pgf "$TMP/p3" doctor
expect_status 0 "a held lock is a warning"
like "$(line lock)" "^warn  lock: held by session pid [0-9]+ \\(holder" "held: the holder's session named"
unhold
hold_in appdb "SELECT pg_advisory_lock($(lock_key 1))"
pgf "$TMP/p3" doctor
like "$(line lock)" "^warn  lock: free, but the session of a ferry that died still runs \\(pid [0-9]+" \
	"a dead migrator's session: named"
unhold

# ---- an interrupted upgrade --------------------------------------------------------
v1_appdb
mkdir -p "$TMP/pnt"
cp "$TMP/p3/"*.sql "$TMP/pnt/"
{ echo '-- ferry:no-transaction'; cat "$TMP/p3/0002_email.sql"; } >"$TMP/pnt/0002_email.sql"
FERRY_TEST_CRASH_AT=journal:migrating pgf "$TMP/pnt" migrate
check "setup: the upgrade was killed" test "$rc" -ne 0
before=$(everything)
pgf "$TMP/pnt" doctor
expect_status 1 "an unfinished upgrade fails"
like "$(line journal)" "^fail  journal: an upgrade from 1 to 3 \\(kind upgrade\\) was interrupted in phase migrating" \
	"unfinished: kind and phase named"
same_state "$(everything)" "$before" "unfinished: doctor leaves the journal and the database alone"
pgf "$TMP/pnt" migrate
expect_status 0 "setup: the next migrate resolves it"

# ---- errors that are not checks ------------------------------------------------------
URL=$WEAKURL pgf "$TMP/p3" doctor
expect_status 1 "a role without privileges fails"
like "$(line privileges)" "^fail  privileges: role 'weak' lacks CREATE on schema 'public'" "the missing privilege is named"
FERRY_DATABASE_WAIT_SECONDS=0 URL="postgres://app:$APP_PASSWORD@127.0.0.1:1/appdb" pgf "$TMP/p3" doctor
expect_status 69 "an unreachable database is 69, as for every command"

# ---- a doctor killed mid drift check: ferry cleanup drops its scratch database ---
psql_su postgres "CREATE DATABASE appdb_ferry_doctor_99999 OWNER app" >/dev/null
psql_su postgres "CREATE DATABASE appdb_ferry_doctor_x OWNER app" >/dev/null
pgf "$TMP/p3" cleanup
expect_status 0 "cleanup after a killed doctor"
like "$err" "removed appdb_ferry_doctor_99999, the scratch database of a doctor" "cleanup: says what it removed"
unlike "$(db_list)" "appdb_ferry_doctor_99999" "cleanup: the leftover scratch database is gone"
like "$(db_list)" "appdb_ferry_doctor_x" "cleanup: a database that only looks alike stays"
psql_su postgres "DROP DATABASE appdb_ferry_doctor_x" >/dev/null

secret_never_shown
done_testing
