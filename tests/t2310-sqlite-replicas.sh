#!/bin/sh
# Many replicas on one SQLite file (a shared volume; issue 13, scale): 50
# `ferry migrate` behind a barrier start at the same instant; one slow
# migration.  All exit 0, exactly one applies it (ledger, and the row the
# migration inserts), only it snapshots, the 49 others find the database
# up to date; nothing is left behind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"

N=50
SLOW_ROWS=${SLOW_ROWS:-400000}
mkdir -p "$TMP/k1" "$TMP/k2"
cat >"$TMP/k1/0001_effects.sql" <<'EOF2'
CREATE TABLE side_effects (note TEXT NOT NULL);
EOF2
cp "$TMP/k1/0001_effects.sql" "$TMP/k2/"
cat >"$TMP/k2/0002_slow.sql" <<EOF2
INSERT INTO side_effects (note) VALUES ('0002 ran');
CREATE TABLE big (x INTEGER, pad TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $SLOW_ROWS)
INSERT INTO big SELECT x, hex(randomblob(16)) FROM c;
CREATE INDEX big_pad ON big(pad);
EOF2

new_db replicas
fy "$DB" "$TMP/k1" migrate
expect_status 0 "setup: version 1"

# the barrier: every replica waits for one file, then execs ferry
pids=
for i in $(seq 1 $N); do
	(
		while [ ! -e "$TMP/go" ]; do sleep 0.01; done
		FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=300 exec "$FERRY" migrate \
			--database-url "sqlite://$DB" --migrations "$TMP/k2"
	) >"$TMP/rep$i.out" 2>"$TMP/rep$i.err" &
	pids="$pids $!"
	at_exit "kill_tree $!"
done
touch "$TMP/go"
i=0 bad=0
for p in $pids; do
	i=$((i + 1))
	wait "$p"
	rc=$?
	if [ "$rc" != 0 ]; then
		bad=$((bad + 1))
		echo "# replica $i: exit $rc: $(tail -3 "$TMP/rep$i.err")"
	fi
	cp "$TMP/rep$i.err" "$TMP/.err"
	_check_crash
done
is "$bad" 0 "all $N replicas exited 0"
is "$(ledger_versions "$DB")" "1 2" "the ledger has the migration once"
is "$(q "$DB" "SELECT count(*) FROM side_effects WHERE note = '0002 ran'")" 1 \
	"the migration's INSERT ran exactly once"
is "$(q "$DB" 'SELECT count(*) FROM big')" "$SLOW_ROWS" "its rows are there once"
allerr=$(cat "$TMP"/rep*.err)
is "$(printf '%s\n' "$allerr" | grep -c 'upgraded from 1 to 2')" 1 "exactly one replica upgraded"
is "$(printf '%s\n' "$allerr" | grep -c 'up to date')" $((N - 1)) "the $((N - 1)) others found it up to date"
is "$(grep -L 'upgraded from 1 to 2' "$TMP"/rep*.err | xargs -r grep -l 'snapshot' | wc -l)" 0 \
	"no replica but the one that upgraded speaks of a snapshot"
echo "# $(grep -l 'waiting' "$TMP"/rep*.err | wc -l) replicas logged that they waited"
is "$(q "$DB" 'PRAGMA integrity_check')" ok "the database is sound"
no_leftovers "$DBDIR" "no temp files, no journal"
done_testing
