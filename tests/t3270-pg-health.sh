#!/bin/sh
# The health gate on PostgreSQL: even an all-transactional upgrade takes a
# snapshot when [health] is set (a committed transaction cannot be rolled
# back later); a release that never gets healthy, or exits first, is
# undone from it (70) and guarded (75); one that gets healthy is kept;
# ferry killed -9 in the window is undone at the next boot.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
. "$(dirname "$0")/health-lib.sh"

make_std_pg_migrations
export FERRY_HEALTH_URL=$HURL
RECORD() { cat "$FERRY_DATABASE_STATE_DIR/failed-upgrade" 2>/dev/null; }

# ---- never healthy: snapshot, undo, record, guard ------------------------------
v1_appdb
before=$(pg_state)
pgf "$TMP/p3" run -- "$NEVER"
expect_status 70 "never healthy: ferry exits 70"
unlike "$err" "in one transaction" "never healthy: not the one-transaction way (it cannot be undone later)"
like "$err" "snapshot written" "never healthy: a snapshot was taken"
like "$err" "not healthy within 4 s .*back at version 1" "never healthy: says why and where the database is"
is "$(pg_state)" "$before" "never healthy: the old schema and data, exactly"
like "$(RECORD)" "^attempts=1$" "never healthy: the failure is recorded"
sum=$(pg_state_sum)
pgf "$TMP/p3" run -- "$NEVER"
expect_status 75 "guard: the same upgrade is not tried again"
is "$(pg_state_sum)" "$sum" "guard: the database is untouched"
FERRY_RETRY_FAILED_UPGRADE=1 pgf "$TMP/p3" run -- "$NEVER"
expect_status 70 "guard: FERRY_RETRY_FAILED_UPGRADE=1 tries again"
like "$(RECORD)" "^attempts=2$" "guard: and counts the attempt"

# ---- a failing migration is guarded too ----------------------------------------
v1_appdb
mkdir -p "$TMP/pbad"
cp "$TMP/p3/"*.sql "$TMP/pbad/"
echo "INSERT INTO nosuchtable VALUES (1);" >"$TMP/pbad/0004_bad.sql"
FERRY_HEALTH_URL= pgf "$TMP/pbad" migrate
expect_status 70 "failing migration: 70"
FERRY_HEALTH_URL= pgf "$TMP/pbad" migrate
expect_status 75 "failing migration: not tried again"
is "$(db_version)" 1 "failing migration: still at 1"

# ---- healthy after a few seconds: kept --------------------------------------------
v1_appdb
pgf_bg "$TMP/late" "$TMP/p3" run -- "$HEALTHY_LATE"
check "healthy late: ferry says the server is healthy" wait_for has_text "$TMP/late.err" \
	"the server is healthy after [0-9.]+ s \(HTTP 200 OK\): the upgrade is kept"
is "$(db_version)" 3 "healthy late: the upgrade is committed"
is "$(psql_su appdb "SELECT count(*) FROM ferry_journal" 2>/dev/null || echo 0)" 0 \
	"healthy late: no journal left"
check "healthy late: the server keeps serving" http_ok "$HURL"
kill -TERM "$bgpid"
wait "$bgpid"
rc=$?
collect_bg "$TMP/late" "healthy late"
expect_status 143 "healthy late: the stop afterwards gives the server's status"
pgf "$TMP/p1" migrate
expect_status 65 "healthy late: the old image is refused as behind"

# ---- the server exits during the window ----------------------------------------------
v1_appdb
before=$(pg_state)
pgf "$TMP/p3" run -- "$EXITS"
expect_status 70 "exits: 70"
like "$err" "the server exited with status 3 before it was healthy" "exits: says so"
is "$(pg_state)" "$before" "exits: the old schema and data"

# ---- kill -9 of ferry (PID 1) in the window ----------------------------------------
v1_appdb
before=$(pg_state)
FERRY_HEALTH_TIMEOUT_SECONDS=300 start_bg unshare --pid --fork --mount-proc "$FERRY" \
	--database-url "$PGURL" --migrations "$TMP/p3" run -- "$NEVER"
check "kill -9: the upgrade waits for the gate" wait_for has_text "$TMP/.err" \
	"upgrade is kept once the server is healthy"
is "$(db_version)" 3 "kill -9: committed, not yet accepted"
kill -KILL "$(child_of "$bgpid")"
finish_bg
FERRY_HEALTH_URL= FERRY_MIGRATIONS_TARGET_VERSION=1 pgf "$TMP/p3" migrate
expect_status 0 "kill -9: the next boot resolves it"
like "$err" "interrupted \(phase applied\): restoring" "kill -9: by restoring the snapshot"
is "$(pg_state)" "$before" "kill -9: the old schema and data"

done_testing
