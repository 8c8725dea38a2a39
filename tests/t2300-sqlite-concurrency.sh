#!/bin/sh
# Promise 4: several replicas boot at once, exactly one migrates, the
# others wait and then find the database up to date.  And the lock wait
# has a timeout (exit 75, nothing changed).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"

SLOW_ROWS=${SLOW_ROWS:-600000}
mkdir -p "$TMP/k1" "$TMP/k3"
cat >"$TMP/k1/0001_events.sql" <<'EOF'
CREATE TABLE events (id INTEGER, note TEXT);
EOF
cp "$TMP/k1/0001_events.sql" "$TMP/k3/"
cat >"$TMP/k3/0002_slow.sql" <<EOF
INSERT INTO events (note) VALUES ('migration 2 ran');
CREATE TABLE big (x INTEGER, pad TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $SLOW_ROWS)
INSERT INTO big SELECT x, hex(randomblob(16)) FROM c;
CREATE INDEX big_pad ON big(pad);
EOF
cat >"$TMP/k3/0003_more.sql" <<'EOF'
INSERT INTO events (note) VALUES ('migration 3 ran');
EOF

# ---- 8 concurrent ferry migrate ------------------------------------------------
new_db conc
fy "$DB" "$TMP/k1" migrate
expect_status 0 "setup: version 1"
q "$DB" "INSERT INTO events (note) VALUES ('before')"
pids=
for i in 1 2 3 4 5 6 7 8; do
	"$FERRY" migrate --database-url "sqlite://$DB" --migrations "$TMP/k3" \
		>"$TMP/conc$i.out" 2>"$TMP/conc$i.err" &
	pids="$pids $!"
done
at_exit "for p in $pids; do kill -9 \$p 2>/dev/null; done"
i=0
for p in $pids; do
	i=$((i + 1))
	wait "$p"
	rc=$?
	cp "$TMP/conc$i.err" "$TMP/.err"
	expect_status 0 "concurrent ferry migrate #$i"
done
allerr=$(cat "$TMP"/conc?.err)
is "$(ledger_versions "$DB")" "1 2 3" "the ledger has each migration once"
is "$(q "$DB" "SELECT note, count(*) FROM events GROUP BY note ORDER BY note" | tr '\n' ' ')" \
	"before|1 migration 2 ran|1 migration 3 ran|1 " "each migration's INSERT ran exactly once"
is "$(q "$DB" 'SELECT count(*) FROM big')" "$SLOW_ROWS" "the slow migration's rows are there once"
is "$(printf '%s\n' "$allerr" | grep -c 'database upgraded from 1 to 3')" 1 "exactly one ferry upgraded"
like "$allerr" "waiting" "at least one ferry logged that it was waiting"
is "$(printf '%s\n' "$allerr" | grep -c 'up to date')" 7 "the seven others found it up to date"
no_leftovers "$DBDIR" "no temp files, no journal"

# ---- lock wait timeout -----------------------------------------------------------------
new_db locked
fy "$DB" "$TMP/k1" migrate
expect_status 0 "setup: version 1"
mkdir -p "$DBDIR/.ferry"
flock "$DBDIR/.ferry/lock" sleep 30 &
holder=$!
at_exit "kill_tree $holder"
wait_for sh -c "! flock -n '$DBDIR/.ferry/lock' true"
sum=$(filesum "$DB")
FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=1 fy "$DB" "$TMP/k3" migrate
expect_status 75 "lock wait timed out"
like "$err" "lock" "says it is the lock"
is "$(filesum "$DB")" "$sum" "lock timeout: database unchanged"
check "lock timeout: no snapshot" test ! -e "$DB.pre-upgrade"
check "lock timeout: no journal" test ! -e "$DBDIR/.ferry/journal"

FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=1 fy "$DB" "$TMP/k3" run -- touch "$TMP/server-ran"
expect_status 75 "ferry run: lock wait timed out"
check "the server was not started" test ! -e "$TMP/server-ran"

# rollback refuses while another holds the lock
cp "$DB" "$DB.pre-upgrade" # a snapshot to roll back to (made by hand: the lock is taken)
chmod 600 "$DB.pre-upgrade"
q "$DB" "INSERT INTO events (note) VALUES ('after the snapshot')"
sum=$(filesum "$DB")
FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=1 fy "$DB" "$TMP/k3" rollback
expect_status 75 "ferry rollback while another ferry holds the lock"
is "$(filesum "$DB")" "$sum" "rollback: database unchanged"

kill_tree $holder; wait $holder 2>/dev/null
FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=1 fy "$DB" "$TMP/k3" migrate
expect_status 0 "once the lock is free, the upgrade runs"
is "$(ledger_versions "$DB")" "1 2 3" "upgraded"

done_testing
