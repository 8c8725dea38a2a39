#!/bin/sh
# The health gate on SQLite: an upgrade is kept only once the new server is
# healthy; a release that never is, or exits first, is stopped and its
# upgrade undone from the snapshot (70), and the crash-loop guard keeps the
# same upgrade from being tried at every restart (75). ferry health alone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
. "$(dirname "$0")/health-lib.sh"

make_std_migrations
export FERRY_HEALTH_URL=$HURL
RECORD() { cat "$DBDIR/.ferry/failed-upgrade" 2>/dev/null; }

# ---- a release that never gets healthy --------------------------------------
v1_db never
before=$(dump "$DB")
fy "$DB" "$TMP/m3" run -- "$NEVER"
expect_status 70 "never healthy: ferry exits 70"
like "$err" "upgrade is kept once the server is healthy" "never healthy: the upgrade waited for the gate"
like "$err" "not healthy within 4 s .*last probe: Connection refused" \
	"never healthy: says why, with the probe's last answer"
like "$err" "restored from $DB\.pre-upgrade, back at version 1.*Pin the previous image tag" \
	"never healthy: says the database is back at 1 and what to do"
is "$(dump "$DB")" "$before" "never healthy: the old version with the old data, exactly"
like "$(RECORD)" "^from=1$" "never healthy: the failure is recorded (from)"
like "$(RECORD)" "^to=3$" "never healthy: (to)"
like "$(RECORD)" "^attempts=1$" "never healthy: (attempts)"
like "$(RECORD)" "^reason=not healthy within 4 s" "never healthy: (reason)"
like "$(RECORD)" "^probe=Connection refused$" "never healthy: (the last probe)"
check "never healthy: no journal left" test ! -e "$DBDIR/.ferry/journal"

# the next boot of the same image leaves the database alone
sum=$(filesum "$DB")
fy "$DB" "$TMP/m3" run -- "$NEVER"
expect_status 75 "guard: the same upgrade is not tried again"
like "$err" "upgrade from 1 to 3 failed 1 time already .*untouched at version 1.*FERRY_RETRY_FAILED_UPGRADE=1" \
	"guard: says so, and how to retry"
is "$(filesum "$DB")" "$sum" "guard: the database file is untouched"
# an image with other migrations is a new upgrade
FERRY_HEALTH_URL= fy "$DB" "$TMP/m4" migrate
expect_status 0 "guard: other migrations are a new upgrade, tried"
is "$(db_version "$DB")" 4 "guard: the new upgrade went through"

# FERRY_RETRY_FAILED_UPGRADE=1 tries again (and counts the attempts)
v1_db retry
fy "$DB" "$TMP/m3" run -- "$NEVER"
FERRY_RETRY_FAILED_UPGRADE=1 fy "$DB" "$TMP/m3" run -- "$NEVER"
expect_status 70 "retry: tried again, failed again"
like "$err" "failed before .*trying it again \(FERRY_RETRY_FAILED_UPGRADE=1\)" "retry: says so"
like "$(RECORD)" "^attempts=2$" "retry: two attempts recorded"
FERRY_HEALTH_MAX_ATTEMPTS=3 fy "$DB" "$TMP/m3" run -- "$NEVER"
expect_status 70 "max_attempts = 3: a third attempt is made"
fy "$DB" "$TMP/m3" cleanup --failures
expect_status 0 "cleanup --failures"
like "$err" "forgot the failed upgrade from 1 to 3 \(3 attempts" "cleanup --failures: says what it forgot"
check "cleanup --failures: the record is gone" test ! -e "$DBDIR/.ferry/failed-upgrade"
check "cleanup --failures: the snapshot stays" test -f "$DB.pre-upgrade"

# ---- a failing migration is guarded the same way -----------------------------
v1_db badmig
mkdir -p "$TMP/mbad"
cp "$TMP/m3/"*.sql "$TMP/mbad/"
echo "INSERT INTO nosuchtable VALUES (1);" >"$TMP/mbad/0004_bad.sql"
FERRY_HEALTH_URL= fy "$DB" "$TMP/mbad" migrate
expect_status 70 "failing migration: 70"
like "$(RECORD)" "^reason=migration 0004_bad failed" "failing migration: recorded with its reason"
FERRY_HEALTH_URL= fy "$DB" "$TMP/mbad" migrate
expect_status 75 "failing migration: the next boot does not try it again"
is "$(db_version "$DB")" 1 "failing migration: still at 1"
FERRY_HEALTH_URL= FERRY_RETRY_FAILED_UPGRADE=1 fy "$DB" "$TMP/mbad" migrate
expect_status 70 "failing migration: tried again when asked"

# ---- a release that becomes healthy after a few seconds ------------------------
v1_db late
start_bg "$FERRY" --database-url "sqlite://$DB" --migrations "$TMP/m3" run -- "$HEALTHY_LATE"
check "healthy late: ferry says the server is healthy" wait_for has_text "$TMP/.err" \
	"the server is healthy after [0-9.]+ s \(HTTP 200 OK\): the upgrade is kept"
is "$(db_version "$DB")" 3 "healthy late: the upgrade is committed"
check "healthy late: the journal is cleared" test ! -e "$DBDIR/.ferry/journal"
check "healthy late: the snapshot is kept" test -f "$DB.pre-upgrade"
check "healthy late: the server keeps serving" http_ok "$HURL"
run_ferry --database-url "sqlite://$DB" --migrations "$TMP/m3" snapshot
expect_status 0 "healthy late: once kept, the lock is free again (ferry snapshot runs)"
kill -TERM "$bgpid"
finish_bg
expect_status 143 "healthy late: a stop afterwards gives the server's status"
is "$(db_version "$DB")" 3 "healthy late: still at 3 after the stop"
fy "$DB" "$TMP/m1" migrate
expect_status 65 "healthy late: the old image is refused as behind"

# ---- a release whose server exits during the health window ---------------------
v1_db exits
before=$(dump "$DB")
fy "$DB" "$TMP/m3" run -- "$EXITS"
expect_status 70 "exits: 70"
like "$err" "the server exited with status 3 before it was healthy" "exits: says so"
is "$(dump "$DB")" "$before" "exits: the old version with the old data"

# ---- docker stop during the health window: undone, not counted as a failure ------
v1_db stopped
before=$(dump "$DB")
FERRY_HEALTH_TIMEOUT_SECONDS=300 start_bg "$FERRY" --database-url "sqlite://$DB" \
	--migrations "$TMP/m3" run -- "$NEVER"
check "stopped: the upgrade waits for the gate" wait_for has_text "$TMP/.err" \
	"upgrade is kept once the server is healthy"
kill -TERM "$bgpid"
finish_bg
expect_status 143 "stopped: the server's status"
like "$err" "stopped before it was found healthy: the upgrade is undone" "stopped: says so"
is "$(dump "$DB")" "$before" "stopped: the old version with the old data"
check "stopped: no failure recorded (not the release's fault)" test ! -e "$DBDIR/.ferry/failed-upgrade"

# ---- kill -9 of ferry (PID 1) during the health window -------------------------
v1_db kill9
before=$(dump "$DB")
FERRY_HEALTH_TIMEOUT_SECONDS=300 start_bg unshare --pid --fork --mount-proc "$FERRY" \
	--database-url "sqlite://$DB" --migrations "$TMP/m3" run -- "$NEVER"
check "kill -9: the upgrade waits for the gate" wait_for has_text "$TMP/.err" \
	"upgrade is kept once the server is healthy"
is "$(db_version "$DB")" 3 "kill -9: committed, not yet accepted"
kill -KILL "$(child_of "$bgpid")"
finish_bg
FERRY_HEALTH_URL= FERRY_MIGRATIONS_TARGET_VERSION=1 fy "$DB" "$TMP/m3" migrate
expect_status 0 "kill -9: the next boot resolves it"
like "$err" "interrupted \(phase applied\): restoring" "kill -9: by restoring the snapshot"
is "$(dump "$DB")" "$before" "kill -9: the old version with the old data"

# ---- a crash right after the commit, before the gate said yes --------------------
v1_db committed
before=$(dump "$DB")
FERRY_TEST_CRASH_AT=upgrade:committed fy "$DB" "$TMP/m3" run -- "$NEVER"
expect_status 137 "committed: killed right after the commit"
like "$(cat "$DBDIR/.ferry/journal")" "^phase=applied$" "committed: the journal says applied, not done"
FERRY_HEALTH_URL= FERRY_MIGRATIONS_TARGET_VERSION=1 fy "$DB" "$TMP/m3" migrate
like "$err" "interrupted \(phase applied\): restoring" "committed: the next boot undoes the unverified upgrade"
is "$(dump "$DB")" "$before" "committed: the old version with the old data"

# ---- boots without an upgrade are not probed (after_upgrade_only) --------------
fy "$DB" "$TMP/m1" run -- sh -c 'sleep 2'
expect_status 0 "no upgrade: the server's status"
unlike "$err" "healthy" "no upgrade: no probe, no verdict (after_upgrade_only = true)"
FERRY_HEALTH_AFTER_UPGRADE_ONLY=false FERRY_HEALTH_TIMEOUT_SECONDS=1 fy "$DB" "$TMP/m1" run -- sh -c 'sleep 3'
expect_status 0 "after_upgrade_only = false: nothing to undo, the server's status"
like "$err" "warning: the server is not healthy within 1 s" "after_upgrade_only = false: the outcome is logged"

# ---- ferry health ---------------------------------------------------------------
start_bg sh -c "cd '$TMP/www' && exec python3 -m http.server $HPORT --bind 127.0.0.1 2>/dev/null"
srv=$bgpid
wait_for http_ok "$HURL"
run_ferry health
expect_status 0 "ferry health: a healthy server, [health] url"
like "$out" "^healthy: HTTP 200" "ferry health: says so"
run_ferry health "http://127.0.0.1:$HPORT/missing"
expect_status 1 "ferry health URL: a 404 is unhealthy"
like "$out" "^unhealthy: HTTP 404" "ferry health URL: says what it got"
kill_tree "$srv"
FERRY_HEALTH_URL= FERRY_HEALTH_COMMAND="sh -c exit" run_ferry health
expect_status 0 "ferry health: a command that exits 0"
FERRY_HEALTH_URL= FERRY_HEALTH_COMMAND="false" run_ferry health
expect_status 1 "ferry health: a command that fails"
FERRY_HEALTH_URL= FERRY_HEALTH_COMMAND="sh -c 'test \"a  b\" = \"a  b\" && exit 0'" run_ferry health
expect_status 0 "ferry health: a quoted sh -c command"
FERRY_HEALTH_URL= FERRY_HEALTH_COMMAND="sh -c 'exit 0" fy "$DB" "$TMP/m3" run -- true
expect_status 78 "run: an unclosed quote in [health] command is refused"
run_ferry health "http://admin:s3cret@127.0.0.1:$HPORT/health"
expect_status 78 "ferry health: a URL with a password is refused"
unlike "$err$out" "s3cret" "ferry health: and the password is not shown"
run_ferry health http://192.0.2.1/health
expect_status 78 "ferry health: a non-loopback host is refused"
like "$err" "not a loopback address" "ferry health: says why"
FERRY_HEALTH_URL=http://example.com/ fy "$DB" "$TMP/m3" run -- true
expect_status 78 "run: a bad [health] url is refused before any database work"

done_testing
