#!/bin/sh
# ferry doctor on SQLite: a healthy database is all ok (exit 0); each broken
# case fails the check it belongs to (exit 1): an edited migration, a dirty
# ledger row, a version the image does not ship, a corrupt file, an
# application check with rows, a damaged snapshot, a hand-made ALTER (schema
# drift), an interrupted upgrade. --json has the documented shape. Doctor
# writes nothing: the database, its directory and the state dir are the
# same before and after, and it never takes the migrator lock.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
make_std_migrations

json() {
	printf '%s' "$out" | python3 -c '
import json, sys
try:
    j = json.loads(sys.stdin.read())
except Exception as e:
    print("invalid JSON: %s" % e); sys.exit(0)
print(eval(sys.argv[1]))' "$1"
}

# line NAME: the line of check NAME in $out
line() { printf '%s\n' "$out" | grep -E "^(ok|warn|fail) +$1: " | head -1; }
# status_of NAME: ok, warn or fail, the status of check NAME
status_of() { line "$1" | cut -d' ' -f1; }

# snapshot of a directory: every file's name and checksum
tree_sum() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -d' ' -f1; }

# $TMP/mb: a users table and a bulk one, big enough to have pages in the
# middle; bulk_db NAME: a database ferry built from it, with a snapshot.
mkdir -p "$TMP/mb"
cp "$TMP/m1/0001_users.sql" "$TMP/mb/"
cat >"$TMP/mb/0002_bulk.sql" <<'EOF'
CREATE TABLE bulk (id INTEGER PRIMARY KEY, pad TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
INSERT INTO bulk (pad) SELECT hex(randomblob(200)) FROM n;
EOF
bulk_db() {
	new_db "$1"
	"$FERRY" migrate --database-url "sqlite://$DB" --migrations "$TMP/mb" \
		>"$TMP/.setup.out" 2>&1 &&
		"$FERRY" snapshot --database-url "sqlite://$DB" --migrations "$TMP/mb" \
			>"$TMP/.setup.out" 2>&1 ||
		{ echo "# setup: $(cat "$TMP/.setup.out")"; return 1; }
}

healthy_db() {
	new_db "$1"
	"$FERRY" migrate --database-url "sqlite://$DB" --migrations "$TMP/m3" \
		>"$TMP/.setup.out" 2>&1 || return 1
	seed_users "$DB"
	"$FERRY" snapshot --database-url "sqlite://$DB" --migrations "$TMP/m3" \
		>"$TMP/.setup.out" 2>&1
}

# ---- a healthy database ------------------------------------------------------
healthy_db ok
sum=$(filesum "$DB")
before=$(tree_sum "$DBDIR")
fy "$DB" "$TMP/m3" doctor
expect_status 0 "doctor on a healthy database"
unlike "$out" "^(warn|fail) " "healthy: no warning, no failure"
like "$out" "^ok    database: sqlite://$DB: SQLite 3\\." "healthy: the database line names the engine's version"
like "$out" "^ok    ledger: 3 applied \\(up to 3\\), none pending" "healthy: the ledger line"
like "$out" "^ok    migrations: 3 in " "healthy: the migrations line"
like "$out" "^ok    journal mode: delete" "healthy: the journal mode"
like "$out" "^ok    snapshot: $DB.pre-upgrade: version 3" "healthy: the snapshot and its version"
like "$out" "^doctor: [0-9]+ ok, 0 warnings, 0 failures$" "healthy: the summary line"
unlike "$out" "integrity check|schema drift" "without --deep: no deep check"

fy "$DB" "$TMP/m3" doctor --deep
expect_status 0 "doctor --deep on a healthy database"
unlike "$out" "^(warn|fail) " "deep, healthy: no warning, no failure"
like "$out" "^ok    integrity check: " "deep: integrity_check"
like "$out" "^ok    foreign keys: " "deep: foreign_key_check"
like "$out" "^ok    snapshot contents: $DB.pre-upgrade: read through" "deep: the snapshot read through"
like "$out" "^ok    schema drift: the schema is what the 3 applied migrations build" "deep: no drift"
is "$(filesum "$DB")" "$sum" "doctor changes nothing in the database file"
is "$(tree_sum "$DBDIR")" "$before" "doctor writes nothing beside it or in the state dir"

fy "$DB" "$TMP/m3" doctor --deep --json
expect_status 0 "doctor --json"
is "$(printf '%s\n' "$out" | grep -c .)" 1 "--json: one line"
is "$(json 'sorted(j.keys())')" "['checks', 'fail', 'ok', 'warn']" "--json: the members"
is "$(json 'all(sorted(c.keys()) == ["detail", "name", "status"] for c in j["checks"])')" True \
	"--json: each check has name, status and detail"
is "$(json 'all(c["status"] in ("ok", "warn", "fail") for c in j["checks"])')" True "--json: statuses"
is "$(json 'j["ok"] == len(j["checks"]) and j["warn"] == 0 and j["fail"] == 0')" True "--json: the counts"
is "$(json '[c["detail"] for c in j["checks"] if c["name"] == "ledger"][0]')" \
	"3 applied (up to 3), none pending" "--json: a check's detail"

# ---- the ledger against the image ---------------------------------------------
v1_db pend
fy "$DB" "$TMP/m3" doctor
expect_status 0 "pending migrations are a warning only"
like "$(line ledger)" "^warn  ledger: 1 applied \\(up to 1\\), 2 pending: 0002_email, 0003_posts" \
	"pending: warn, naming them"

healthy_db chg
mkdir -p "$TMP/mchg"
cp "$TMP/m3/"*.sql "$TMP/mchg/"
echo "-- edited after release" >>"$TMP/mchg/0002_email.sql"
fy "$DB" "$TMP/mchg" doctor
expect_status 1 "a changed migration file fails"
like "$(line ledger)" "^fail  ledger: changed after they were applied: 0002_email" "changed: the ledger check names it"

healthy_db dirty
q "$DB" "UPDATE ferry_migrations SET dirty = 1 WHERE version = 3"
fy "$DB" "$TMP/m3" doctor
expect_status 1 "a dirty ledger row fails"
like "$(line ledger)" "^fail  ledger: dirty .*0003_posts" "dirty: the ledger check names it"

healthy_db unknown
q "$DB" "INSERT INTO ferry_migrations VALUES (9, '0009_future', 'abc', '2024-01-01T00:00:00Z', 1, 0)"
fy "$DB" "$TMP/m3" doctor
expect_status 1 "a version the image does not ship fails"
like "$(line ledger)" "^fail  ledger: not shipped by this image: 0009_future \\(version 9\\)" \
	"unknown: the ledger check names it"

# ---- a corrupt file -------------------------------------------------------------
bulk_db corrupt
fy "$DB" "$TMP/mb" doctor --deep
expect_status 0 "setup: the bulk database is healthy"
pages=$(( $(stat -c %s "$DB") / 4096 ))
dd if=/dev/urandom of="$DB" bs=4096 seek=$((pages / 2)) count=1 conv=notrunc 2>/dev/null
sum=$(filesum "$DB")
fy "$DB" "$TMP/mb" doctor
expect_status 1 "a page overwritten in the middle fails"
is "$(status_of 'quick check')" fail "corrupt: the quick check fails"
is "$(filesum "$DB")" "$sum" "corrupt: doctor leaves the file as it was"

# ---- the application's checks (--deep) -------------------------------------------
healthy_db app
mkdir -p "$TMP/checks"
echo "SELECT id FROM users WHERE name IS NULL;" >"$TMP/checks/01_names.sql"
cat >"$TMP/checks/02_ada.sql" <<'EOF'
-- users called A-something, which this app does not allow
SELECT id, name FROM users WHERE name LIKE 'A%';
EOF
echo "DELETE FROM users;" >"$TMP/checks/03_writes.sql"
echo "not a check" >"$TMP/checks/README"
sum=$(filesum "$DB")
FERRY_DOCTOR_CHECKS_DIR=$TMP/checks fy "$DB" "$TMP/m3" doctor --deep
expect_status 1 "an application check with rows fails"
like "$out" "^ok    app check: 01_names.sql: no rows" "app check without rows: ok"
like "$out" "^fail  app check: 02_ada.sql returned 1 row: \\(1, Ada\\)" "app check with rows: fail, the file and its rows"
like "$out" "^fail  app check: 03_writes.sql: .*readonly" "an app check cannot write"
unlike "$out" "README" "only *.sql files are checks"
is "$(q "$DB" 'SELECT count(*) FROM users')" 3 "the writing check deleted nothing"
is "$(filesum "$DB")" "$sum" "app checks change nothing"
FERRY_DOCTOR_CHECKS_DIR=$TMP/checks fy "$DB" "$TMP/m3" doctor
unlike "$out" "app check" "app checks only with --deep"

# ---- snapshots -------------------------------------------------------------------
bulk_db snap
cp "$DB.pre-upgrade" "$TMP/snap.good"
pages=$(( $(stat -c %s "$DB.pre-upgrade") / 4096 ))
dd if=/dev/zero of="$DB.pre-upgrade" bs=4096 seek=$((pages / 2)) count=1 conv=notrunc 2>/dev/null
fy "$DB" "$TMP/mb" doctor --deep
expect_status 1 "a damaged snapshot fails --deep"
like "$(line 'snapshot contents')" "^fail  snapshot contents: $DB.pre-upgrade: fails quick_check" \
	"damaged snapshot: named, with what quick_check says"
check "doctor left no -shm or -wal beside the snapshot" test ! -e "$DB.pre-upgrade-shm" -a ! -e "$DB.pre-upgrade-wal"
head -c 10000 "$TMP/snap.good" >"$DB.pre-upgrade"
fy "$DB" "$TMP/mb" doctor
expect_status 1 "a truncated snapshot fails"
like "$(line snapshot)" "^fail  snapshot: $DB.pre-upgrade: truncated" "truncated snapshot: named"
rm -f "$DB.pre-upgrade"
fy "$DB" "$TMP/mb" doctor
expect_status 0 "no snapshot is fine"
like "$(line snapshot)" "^ok    snapshot: none" "no snapshot: ok none"

# ---- schema drift (--deep) -------------------------------------------------------
healthy_db drift
q "$DB" "ALTER TABLE users ADD COLUMN x INTEGER"
fy "$DB" "$TMP/m3" doctor
expect_status 0 "drift is a --deep check"
fy "$DB" "$TMP/m3" doctor --deep
expect_status 1 "a hand-made ALTER fails --deep"
like "$(line 'schema drift')" "^fail  schema drift: table users: column x not in the migrations" \
	"drift: the added column is named"
q "$DB" "CREATE TABLE extra (a); DROP INDEX users_name"
fy "$DB" "$TMP/m3" doctor --deep
like "$(line 'schema drift')" "table extra not in the migrations" "drift: a table of its own"
like "$(line 'schema drift')" "index users_name missing" "drift: a dropped index"

# ---- an interrupted upgrade, the lock ---------------------------------------------
v1_db crash
FERRY_TEST_CRASH_AT=journal:migrating fy "$DB" "$TMP/m3" migrate
check "setup: the upgrade was killed" test "$rc" -ne 0
check "setup: it left its journal" test -f "$DBDIR/.ferry/journal"
sum=$(filesum "$DB")
jsum=$(filesum "$DBDIR/.ferry/journal")
before=$(tree_sum "$DBDIR")
fy "$DB" "$TMP/m3" doctor
expect_status 1 "an unfinished upgrade fails"
like "$(line journal)" "^fail  journal: an upgrade from 1 to 3 \\(kind upgrade\\) was interrupted in phase migrating" \
	"unfinished: kind and phase named"
is "$(filesum "$DB")" "$sum" "unfinished: the database is left as it is"
is "$(filesum "$DBDIR/.ferry/journal")" "$jsum" "unfinished: the journal is left for the next boot"
is "$(tree_sum "$DBDIR")" "$before" "unfinished: nothing written beside the database"

# someone holds the lock: doctor says who, and does not wait for it
flock "$DBDIR/.ferry/lock" sh -c "echo \$\$ >'$DBDIR/.ferry/lock'; touch '$TMP/locked'; exec sleep 30" &
holder=$!
at_exit "kill_tree $holder"
wait_for test -e "$TMP/locked"
fy "$DB" "$TMP/m3" doctor
like "$(line lock)" "^warn  lock: held by pid [0-9]+" "a held lock: warn with its pid"
like "$(line journal)" "^warn  journal: an upgrade from 1 to 3 .* is under way" \
	"while the lock is held the journal is an upgrade under way"
kill_tree "$holder"
wait "$holder" 2>/dev/null
echo 999999 >"$DBDIR/.ferry/lock"
fy "$DB" "$TMP/m3" doctor
like "$(line lock)" "^ok    lock: free; the lock file names pid 999999, which has exited" \
	"a dead holder's pid file: ok, harmless"

# ---- failures that are lines, and errors that are not ------------------------------
healthy_db nomig
fy "$DB" "$TMP/no-such-dir" doctor
expect_status 1 "unreadable migrations are a failing check, not an abort"
like "$(line migrations)" "^fail  migrations: \\[migrations\\] dir '$TMP/no-such-dir'" "the migrations line says why"
like "$out" "^doctor: " "the summary still follows"
run_ferry --migrations "$TMP/m3" doctor
expect_status 78 "no database configured"
run_ferry help doctor
expect_status 0 "ferry help doctor"
like "$out" "doctor \\[--deep\\] \\[--json\\]" "the help shows the usage"

done_testing
