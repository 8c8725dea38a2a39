#!/bin/sh
# Promise 4 on PostgreSQL: several replicas boot at once, exactly one
# migrates (session advisory lock, polled), the others wait, say for whom,
# and find the database up to date.  The lock wait has a timeout (75).
# The database not up yet: ferry waits and proceeds, or gives up (69).
# A statement blocked behind another session's lock gives up after
# statement_lock_timeout (70, nothing changed).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
make_std_pg_migrations

mkdir -p "$TMP/k1" "$TMP/k3"
cat >"$TMP/k1/0001_events.sql" <<'EOF'
CREATE TABLE events (id bigserial PRIMARY KEY, note text NOT NULL);
EOF
cp "$TMP/k1/0001_events.sql" "$TMP/k3/"
cat >"$TMP/k3/0002_slow.sql" <<'EOF'
INSERT INTO events (note) VALUES ('migration 2 ran');
SELECT pg_sleep(1);
CREATE TABLE big AS SELECT x, md5(x::text) AS pad FROM generate_series(1, 20000) x;
EOF
cat >"$TMP/k3/0003_more.sql" <<'EOF'
INSERT INTO events (note) VALUES ('migration 3 ran');
EOF

# k1_appdb: appdb at version 1 of the k sets, with one event
k1_appdb() {
	pg_fresh_appdb
	pgf "$TMP/k1" migrate
	expect_status 0 "setup: version 1"
	psql_as app appdb "INSERT INTO events (note) VALUES ('before')" >/dev/null
}

# ---- 8 replicas boot at once ---------------------------------------------------------
k1_appdb
pids=
for i in 1 2 3 4 5 6 7 8; do
	"$FERRY" --database-url "$PGURL?application_name=replica$i" --migrations "$TMP/k3" \
		run -- true >"$TMP/conc$i.out" 2>"$TMP/conc$i.err" &
	pids="$pids $!"
done
at_exit "for p in $pids; do kill -9 \$p 2>/dev/null; done"
i=0
for p in $pids; do
	i=$((i + 1))
	wait_exit "$p" 60
	collect_bg "$TMP/conc$i" "replica $i"
	expect_status 0 "replica $i: ferry run -- true"
done
allerr=$(cat "$TMP"/conc?.err)
is "$(ledger_versions)" "1 2 3" "the ledger has each migration once"
is "$(qa "SELECT version, count(*) FROM ferry_migrations GROUP BY version HAVING count(*) > 1")" "" \
	"no version twice in the ledger"
is "$(qa "SELECT note || ':' || count(*) FROM events GROUP BY note ORDER BY note" | tr '\n' ' ')" \
	"before:1 migration 2 ran:1 migration 3 ran:1 " "each migration's INSERT ran exactly once"
is "$(qa 'SELECT count(*) FROM big')" 20000 "the slow migration's rows are there once"
is "$(printf '%s\n' "$allerr" | grep -c 'upgraded from 1 to 3')" 1 "exactly one replica upgraded"
is "$(printf '%s\n' "$allerr" | grep -c 'up to date')" 7 "the seven others found it up to date"
waiters=$(grep -l 'waiting for another ferry' "$TMP"/conc?.err | wc -l)
echo "# $waiters replicas logged that they waited"
like "$allerr" "waiting for another ferry" "at least one replica logged that it waited"
wline=$(printf '%s\n' "$allerr" | grep 'waiting for another ferry' | head -1)
like "$wline" "replica[1-8]" "the waiter names the holder's application_name"
like "$wline" "[^0-9a-z][0-9]{2,}[^0-9]" "and its pid"
echo "# waiter's line: $wline"
is "$(qa "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")" 0 "every advisory lock was released"

# ---- waiting polls: no ungranted lock, no open transaction -------------------------------
# A holder runs a slow no-transaction migration (CREATE INDEX CONCURRENTLY,
# which waits for every transaction that holds a snapshot); a second
# ferry waits meanwhile.  Blocking in pg_advisory_lock inside a
# transaction would deadlock them.
mkdir -p "$TMP/kc"
cp "$TMP/k3/"*.sql "$TMP/kc/"
cat >"$TMP/kc/0004_index.sql" <<'EOF'
-- ferry:no-transaction
SELECT pg_sleep(2);
CREATE INDEX CONCURRENTLY big_pad ON big (pad);
EOF
k1_appdb
URL="$PGURL?application_name=holder" pgf_bg "$TMP/holder" "$TMP/kc" migrate
holder=$bgpid
wait_for pg_true "SELECT count(*) >= 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
URL="$PGURL?application_name=waiter" FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=60 pgf_bg "$TMP/waiter" "$TMP/kc" migrate
waiter=$bgpid
ungranted=0 intx=0 samples=0
while ! exited "$waiter" && [ $samples -lt 40 ]; do
	samples=$((samples + 1))
	u=$(psql_su postgres "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
	t=$(psql_su postgres "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'waiter'
		AND (state LIKE 'idle in transaction%' OR wait_event_type = 'Lock')")
	ungranted=$((ungranted + u)) intx=$((intx + t))
	sleep 0.1
done
is "$ungranted" 0 "while a replica waits, no session waits on an advisory lock ($samples samples)"
is "$intx" 0 "the waiting replica holds no transaction open and waits on no lock"
wait_exit "$holder" 60
collect_bg "$TMP/holder" holder
expect_status 0 "the holder (CREATE INDEX CONCURRENTLY) finished"
wait_exit "$waiter" 60
collect_bg "$TMP/waiter" waiter
expect_status 0 "the waiter finished"
like "$err" "waiting for another ferry.*holder" "the waiter names the holder"
like "$err" "up to date" "and then found nothing to do"
is "$(ledger_versions)" "1 2 3 4" "the ledger is complete"
is "$(invalid_indexes)" "" "no INVALID index"

# ---- lock wait timeout -------------------------------------------------------------------
mkdir -p "$TMP/kslow"
cp "$TMP/k1/0001_events.sql" "$TMP/kslow/"
cat >"$TMP/kslow/0002_slower.sql" <<'EOF'
INSERT INTO events (note) VALUES ('slow migration ran');
SELECT pg_sleep(6);
EOF
k1_appdb
URL="$PGURL?application_name=slowpoke" pgf_bg "$TMP/slow" "$TMP/kslow" migrate
slow=$bgpid
wait_for pg_true "SELECT count(*) >= 1 FROM pg_stat_activity WHERE application_name = 'slowpoke'
	AND query LIKE '%pg_sleep%'"
FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=1 pgf "$TMP/kslow" migrate
expect_status 75 "lock wait timed out"
like "$err" "lock|another ferry" "says it is the lock"
like "$err" "slowpoke" "names the holder"
FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=1 pgf "$TMP/kslow" run -- touch "$TMP/server-ran"
expect_status 75 "ferry run: lock wait timed out"
check "the server was not started" test ! -e "$TMP/server-ran"
wait_exit "$slow" 60
collect_bg "$TMP/slow" slowpoke
expect_status 0 "the holder finished"
is "$(qa "SELECT count(*) FROM events WHERE note = 'slow migration ran'")" 1 "the migration ran once"

# ---- the database is not up yet ------------------------------------------------------------
v1_appdb
pg_stop
check "setup: the server is down" sh -c "! '$PGBIN/pg_isready' -q -h '$PG_SOCKDIR' -p $PGPORT"
FERRY_DATABASE_WAIT_SECONDS=30 pgf_bg "$TMP/late" "$TMP/p3" run -- true
late=$bgpid
wait_for grep -qi 'wait' "$TMP/late.err"
sleep 2
if exited "$late"; then fail "ferry is still waiting for the database" "it ended: $(cat "$TMP/late.err")"
else pass "ferry is still waiting for the database"; fi
pg_start
wait_exit "$late" 60
collect_bg "$TMP/late" "late database"
expect_status 0 "the database came up meanwhile: ferry proceeds"
like "$err" "[Ww]ait" "the log says it waited for the database"
like "$err" "127\.0\.0\.1" "naming the database"
is "$(ledger_versions)" "1 2 3" "and upgraded"

pg_stop
FERRY_DATABASE_WAIT_SECONDS=2 pgf_bg "$TMP/never" "$TMP/p3" migrate
never=$bgpid
wait_exit "$never" 60
collect_bg "$TMP/never" "never up"
expect_status 69 "never up (wait_seconds = 2)"
like "$err" "127\.0\.0\.1:$PGPORT" "names the URL"
like "$err" "[Cc]onnection refused|could not connect" "and the libpq error"
pg_start || echo "Bail out! cannot restart postgres"

# ---- a statement blocked behind another session's lock -----------------------------------------
v1_appdb
state=$(pg_state)
hold_connection "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE"
is "$(psql_su postgres "SELECT state FROM pg_stat_activity WHERE application_name = 'old-replica'")" \
	"idle in transaction" "setup: another session holds ACCESS EXCLUSIVE on users in an open transaction"
FERRY_MIGRATIONS_STATEMENT_LOCK_TIMEOUT=1 pgf_bg "$TMP/blocked" "$TMP/p3" migrate
blocked=$bgpid
wait_exit "$blocked" 80
collect_bg "$TMP/blocked" "lock timeout"
expect_status 70 "ALTER TABLE behind an ACCESS EXCLUSIVE lock: ferry gives up"
like "$err" "lock timeout|lock_timeout" "the log says lock timeout"
like "$err" "retr" "it retried"
like "$err" "0002_email" "names the migration"
like "$err" "still at version 1|rolled back" "and says nothing changed"
check "the other session was left alone" kill -0 "$holdpid"
kill_tree "$holdpid"
wait "$holdpid" 2>/dev/null
wait_for pg_true "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'old-replica'"
same_state "$(pg_state)" "$state" "nothing changed"
no_ferry_tables "statement lock timeout"
is "$(ledger_versions)" 1 "still at version 1"
pgf "$TMP/p3" migrate
expect_status 0 "without the other session, the upgrade goes through"

secret_never_shown
done_testing
