#!/bin/sh
# [migrations] mode = app on PostgreSQL: the demo server that migrates
# itself (helpers/selfmigrating-app.py, through psql) against a real
# server. The identity lives in appdb's ferry_app; the same identity takes
# no snapshot; another one is snapshotted, migrated by the server's command
# and recorded, or restored when the command fails; the health gate
# decides without a command; a crash mid-upgrade is undone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
. "$(dirname "$0")/health-lib.sh"

APP=$TESTS_DIR/helpers/selfmigrating-app.py
export FERRY_MIGRATIONS_MODE=app FERRY_APP_VERSION_ENV=APP_VERSION APP_PORT=$HPORT
export FERRY_MIGRATIONS_COMMAND="python3 $APP migrate"
export APP_PSQL="$PGBIN/psql -h $PG_SOCKDIR -p $PGPORT -U app -d appdb"
unset FERRY_APP_VERSION FERRY_APP_VERSION_FROM_FILE APP_UNHEALTHY APP_DB

# ap VERSION ARGS...: ferry against appdb with the image at VERSION
ap() {
	_v=$1
	shift
	APP_VERSION=$_v run_ferry --database-url "$PGURL" "$@"
	no_secret "ferry $*" "$TMP/.out" "$TMP/.err"
}
identity() { qa 'SELECT identity FROM ferry_app'; }
schema() { qa 'SELECT max(version) FROM app_schema'; }
no_snapshot() {
	is "$(db_list)" "appdb" "$1: no snapshot database"
	check "$1: no snapshot file" test ! -e "$(snapshot_file)"
}
# wait_long CMD...: wait_for, three times over: a python server starting
# on a loaded machine (a readiness wait, not a timing assertion)
wait_long() { wait_for "$@" || wait_for "$@" || wait_for "$@"; }
RECORD() { cat "$FERRY_DATABASE_STATE_DIR/failed-upgrade" 2>/dev/null; }

# ---- first boot: appdb exists, but holds no table ------------------------------
pg_fresh_appdb
ap 1.0 migrate
expect_status 0 "first boot: the server's migrate command ran"
like "$err" "new database, the image is '1\.0' — no snapshot needed" "first boot: no snapshot of an empty database"
is "$(identity)" "1.0" "first boot: the identity is recorded in appdb"
is "$(schema)" 1 "first boot: the app migrated itself"
no_snapshot "first boot"
qa "INSERT INTO notes (id, body) VALUES (1, 'one'), (2, 'two')" >/dev/null

# ---- the same identity: no snapshot, nothing changed ------------------------------
sum=$(pg_state_sum)
ap 1.0 run -- /bin/true
expect_status 0 "same identity: the server ran"
like "$err" "app identity '1\.0' is the one recorded at the last healthy boot" "same identity: says nothing is to do"
unlike "$out$err" "running the server's migrations" "same identity: the command did not run"
no_snapshot "same identity"
is "$(pg_state_sum)" "$sum" "same identity: appdb is unchanged"

# ---- status -------------------------------------------------------------------------
ap 2.0 status --json
is "$(printf '%s\n' "$out" | python3 "$TESTS_DIR/helpers/status-shape.py")" ok "status --json: the documented shape"
is "$(json 'j["app"]["recorded"] + " " + j["app"]["current"]')" "1.0 2.0" "status --json: both identities"
ap 2.0 status
like "$out" "^app identity: 1\.0 recorded at .*, the image is '2\.0'$" "status: both identities"

# ---- another identity: snapshot, command, recorded -----------------------------------
ap 2.0 migrate
expect_status 0 "new identity: upgraded"
like "$err" "snapshot written" "new identity: a snapshot was taken first"
is "$(identity)" "2.0" "new identity: recorded"
is "$(qa 'SELECT body, author FROM notes ORDER BY id' | tr '\n' ' ')" "one|someone two|someone " \
	"new identity: the server's migration ran on the data"
is "$(ferry_tables)" "ferry_app ferry_app_pkey" "new identity: no journal left, only the record"

# ---- a failing self-migration is restored --------------------------------------------
before=$(pg_state)
ap 3.0-broken migrate
expect_status 70 "failing command: 70"
like "$err" "\[migrations\] command 'python3 [^']*selfmigrating-app.py migrate' failed with status 1 — database restored from .*, back at app identity 2\.0" \
	"failing command: names the command, its status, the restore"
same_state "$(pg_state)" "$before" "failing command: appdb is exactly as before (pg_dump)"
if table_exists tags; then fail "failing command: no tags table" "it is there"; else pass "failing command: no tags table"; fi

# ---- the guard is keyed by identity ------------------------------------------------
sum=$(pg_state_sum)
ap 3.0-broken migrate
expect_status 75 "guard: the same identity is not tried again"
is "$(pg_state_sum)" "$sum" "guard: appdb untouched"
ap 2.1 migrate
expect_status 0 "guard: the fixed identity is not blocked"
is "$(identity)" "2.1" "guard: the fixed identity recorded"

# ---- no command: the health gate decides -------------------------------------------
export FERRY_HEALTH_URL=$HURL
before=$(pg_state)
APP_UNHEALTHY=1 FERRY_MIGRATIONS_COMMAND= ap 2.2 run -- python3 "$APP" serve
expect_status 70 "gate, unhealthy: 70"
like "$err" "the server with app identity '2\.2' was not healthy .*back at app identity 2\.1" "gate, unhealthy: restored"
same_state "$(pg_state)" "$before" "gate, unhealthy: what the server wrote is undone"
APP_VERSION=2.3 FERRY_HEALTH_TIMEOUT_SECONDS=60 FERRY_MIGRATIONS_COMMAND= start_bg "$FERRY" --database-url "$PGURL" run -- python3 "$APP" serve
check "gate, healthy: the upgrade is kept" wait_long has_text "$TMP/.err" "the server is healthy after .*: the upgrade is kept"
is "$(identity)" "2.3" "gate, healthy: recorded once healthy"
kill -TERM "$bgpid"
finish_bg
no_secret "gate, healthy" "$TMP/.out" "$TMP/.err"
is "$(qa 'SELECT version FROM boots')" "2.3" "gate, healthy: what the server wrote is kept"
unset FERRY_HEALTH_URL

# ---- a crash after the command is undone at the next boot ----------------------------
before=$(pg_state)
FERRY_TEST_CRASH_AT=app:migrated ap 3.0 migrate
expect_status 137 "crash after the command: ferry killed itself there"
ap 2.3 migrate
expect_status 0 "crash: the next boot (the old image) recovers"
like "$err" "interrupted \(phase migrating\): restoring the database" "crash: says it restores"
same_state "$(pg_state)" "$before" "crash: appdb is exactly as before the upgrade"
is "$(ferry_tables)" "ferry_app ferry_app_pkey" "crash: no journal left"

secret_never_shown
done_testing
