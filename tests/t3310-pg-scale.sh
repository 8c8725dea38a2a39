#!/bin/sh
# Many replicas, few connection slots (issue 13, scale): 30 replicas boot
# at the same instant against a server with max_connections = 20, most of
# whose slots are taken; one migration takes 3 s.  Every replica exits 0,
# exactly one applies the migration, "too many clients" is waited out
# (and said), and no replica holds more than one connection unless it
# holds the migration lock (sampled from pg_stat_activity meanwhile).
# Then with every slot taken: wait_seconds runs out (69, the real reason),
# or a slot comes free in time and ferry proceeds.
PG_EXTRA_CONF="max_connections = 20"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"

mkdir -p "$TMP/s1" "$TMP/s2" "$TMP/s3"
cat >"$TMP/s1/0001_effects.sql" <<'EOF'
CREATE TABLE side_effects (note text NOT NULL);
EOF
cp "$TMP/s1/0001_effects.sql" "$TMP/s2/"
cat >"$TMP/s2/0002_slow.sql" <<'EOF'
INSERT INTO side_effects (note) VALUES ('0002 ran');
SELECT pg_sleep(3);
EOF
cp "$TMP/s2/"*.sql "$TMP/s3/"
cat >"$TMP/s3/0003_more.sql" <<'EOF'
INSERT INTO side_effects (note) VALUES ('0003 ran');
EOF

# hog: one more idle session of role app (application_name hog), on the
# database postgres, until hogs_end.  The role app may use the slots
# beyond superuser_reserved_connections (3), that is 17 when no superuser
# is connected; a hog that finds none exits.
HOGS=
hog() {
	"$PGBIN/psql" -X -q -h "$PG_SOCKDIR" -p "$PGPORT" -U app \
		-d "dbname=postgres application_name=hog" -c "SELECT 1" \
		-c '\! exec sleep 600' >/dev/null 2>&1 &
	HOGS="$HOGS $!"
	at_exit "kill_tree $!"
}
hogs_gone() { [ "$(hogs_seen)" = 0 ]; }
hogs_seen() { psql_su postgres "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hog'"; }
# hogs N: N hog sessions in all (counting them takes a slot of the
# superuser's, which a hog starting meanwhile misses: it is started again)
hogs() {
	_tries=0
	while [ "$(hogs_seen)" -lt "$1" ] && [ $_tries -lt 50 ]; do
		_tries=$((_tries + 1))
		for _j in $(seq "$(hogs_seen)" $(($1 - 1))); do hog; done
		sleep 0.5
	done
}
hogs_end() {
	for _h in $HOGS; do kill_tree "$_h"; done
	HOGS=
	psql_su postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'hog'" >/dev/null
	wait_for hogs_gone
}

pg_fresh_appdb
pgf "$TMP/s1" migrate
expect_status 0 "setup: version 1"
is "$(psql_su postgres 'SHOW max_connections')" 20 "setup: the server has max_connections = 20"

# ---- 30 replicas at once, 5 free slots for them -----------------------------------------
hogs 12
is "$(hogs_seen)" 12 "setup: 12 of the role's 17 slots are taken"

# The monitor: samples, as the superuser, each replica's sessions and
# whether one of them holds an exclusive advisory lock (the migration
# lock, or the migrator's mark), until told to stop.
cat >"$TMP/monitor.sql" <<'EOF'
SELECT a.application_name, count(DISTINCT a.pid), bool_or(l.pid IS NOT NULL)
FROM pg_stat_activity a LEFT JOIN pg_locks l ON l.pid = a.pid
	AND l.locktype = 'advisory' AND l.granted AND l.mode = 'ExclusiveLock'
WHERE a.application_name LIKE 'rep%' GROUP BY 1
EOF
(
	while [ ! -e "$TMP/monitor.stop" ]; do
		"$PGBIN/psql" -X -q -At -h "$PG_SOCKDIR" -p "$PGPORT" -U postgres -d postgres \
			-f "$TMP/monitor.sql" >>"$TMP/samples" 2>/dev/null
		echo sample >>"$TMP/samples"
	done
) &
monitor=$!
at_exit "kill_tree $monitor"

# the barrier: every replica waits for one file, then execs ferry
pids=
for i in $(seq 1 30); do
	if [ "$i" -le 4 ]; then cmd="run -- true"; else cmd=migrate; fi
	(
		while [ ! -e "$TMP/go" ]; do sleep 0.01; done
		FERRY_DATABASE_WAIT_SECONDS=120 FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=120 \
			exec "$FERRY" --database-url "$PGURL?application_name=rep$i" \
			--migrations "$TMP/s2" $cmd
	) >"$TMP/rep$i.out" 2>"$TMP/rep$i.err" &
	pids="$pids $!"
	at_exit "kill_tree $!"
done
touch "$TMP/go"
i=0 bad=0
for p in $pids; do
	i=$((i + 1))
	wait_exit "$p" 150
	if [ "$rc" != 0 ]; then
		bad=$((bad + 1))
		echo "# replica $i: exit $rc: $(tail -3 "$TMP/rep$i.err")"
	fi
	collect_bg "$TMP/rep$i" "replica $i"
done
touch "$TMP/monitor.stop"
wait "$monitor"
is "$bad" 0 "all 30 replicas exited 0 (26 ferry migrate, 4 ferry run -- true)"
is "$(ledger_versions)" "1 2" "the ledger has the migration once"
is "$(qa "SELECT count(*) FROM side_effects WHERE note = '0002 ran'")" 1 \
	"the migration's INSERT ran exactly once"
allerr=$(cat "$TMP"/rep*.err)
is "$(printf '%s\n' "$allerr" | grep -c 'upgraded from 1 to 2')" 1 "exactly one replica upgraded"
is "$(printf '%s\n' "$allerr" | grep -c 'up to date')" 29 "the 29 others found it up to date"
is "$(printf '%s\n' "$allerr" | grep -c 'snapshot')" \
	"$(grep -l 'upgraded from 1 to 2' "$TMP"/rep*.err | xargs cat | grep -c 'snapshot')" \
	"only the replica that upgraded speaks of a snapshot"
like "$allerr" "no free connection slots \(too many clients\): waiting, [0-9]+ s left" \
	"a replica met a full server and said it waits (the retry path ran)"
echo "# $(grep -l 'too many clients' "$TMP"/rep*.err | wc -l) replicas waited for a slot"
samples=$(grep -c '^sample$' "$TMP/samples")
rows=$(grep -c '^rep' "$TMP/samples")
check "the monitor saw replicas connected ($samples samples, $rows rows)" test "$rows" -gt 0
waiting_max=$(awk -F'|' '$3 == "f" && $2 > m { m = $2 } END { print m + 0 }' "$TMP/samples")
locked_max=$(awk -F'|' '$3 == "t" && $2 > m { m = $2 } END { print m + 0 }' "$TMP/samples")
echo "# most connections of one replica: $waiting_max without the lock, $locked_max with it"
check "no replica without the lock ever held more than one connection" test "$waiting_max" -le 1
is "$(qa "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")" 0 "every advisory lock was released"
is "$(psql_su postgres "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'rep%'")" 0 \
	"no session of a replica is left"

# ---- every slot taken, wait_seconds too short -------------------------------------------------
hogs 17
is "$(hogs_seen)" 17 "setup: every slot of the role is taken"
state=$(pg_state)
FERRY_DATABASE_WAIT_SECONDS=2 pgf "$TMP/s3" migrate
expect_status 69 "no free slot within wait_seconds"
like "$err" "no free connection slots \(too many clients\) for 2 s \(\[database\] wait_seconds" \
	"the last line says the real reason and the key"
like "$err" "127\.0\.0\.1:$PGPORT/appdb" "and names the database"
like "$err" "remaining connection slots|too many clients" "with the server's own words"
is "$(printf '%s\n' "$err" | grep -c 'error')" 1 "one error line"
same_state "$(pg_state)" "$state" "nothing changed"

# ---- every slot taken, then one comes free in time ---------------------------------------------
FERRY_DATABASE_WAIT_SECONDS=120 pgf_bg "$TMP/late" "$TMP/s3" migrate
late=$bgpid
wait_for grep -q 'too many clients' "$TMP/late.err"
like "$(cat "$TMP/late.err")" "database postgres://app:[^@]*@127\.0\.0\.1:$PGPORT/appdb: the server has no free connection slots \(too many clients\): waiting, [0-9]+ s left" \
	"ferry says it waits for a slot, and how long it still may"
if exited "$late"; then fail "and it still waits" "it ended: $(cat "$TMP/late.err")"
else pass "and it still waits"; fi
hogs_end
wait_exit "$late" 150
collect_bg "$TMP/late" "late slot"
expect_status 0 "a slot came free: ferry proceeds"
is "$(ledger_versions)" "1 2 3" "and upgraded"
like "$err" "connected after" "the log says when it got a connection"

secret_never_shown
done_testing
