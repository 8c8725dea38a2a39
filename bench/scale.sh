#!/bin/sh
# bench/scale.sh: many replicas booting at the same instant (issue 13,
# target 6), on a throwaway server of its own with max_connections = 100.
#   scale   N = 50 and N = 200 replicas (a few of them `ferry run -- true`,
#           the rest `ferry migrate`) released by one barrier against one
#           migration that takes 3 s (pg_sleep): failures, how many applied
#           it, when the last replica was done against the migration's time
#           + 2 s, and the most connections one replica held without the
#           migration lock (pg_stat_activity sampled meanwhile); then N = 50
#           ferry migrate on one SQLite file.
# Skipped cleanly when the server binaries are not installed.
BENCH_NAME=scale
. "$(dirname "$0")/lib.sh"

PGBIN=
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -rn); do
	[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/psql" ] && { PGBIN=$d; break; }
done
if [ -z "$PGBIN" ]; then
	skip scale "the PostgreSQL server is not installed (apt-get install postgresql)"
	exit 0
fi
PGOSUSER=$(id -un)
if [ "$(id -u)" = 0 ]; then
	id postgres >/dev/null 2>&1 || {
		skip scale "running as root and there is no postgres user to run the server"
		exit 0
	}
	PGOSUSER=postgres
fi
runpg() { if [ "$PGOSUSER" = "$(id -un)" ]; then "$@"; else runuser -u "$PGOSUSER" -- "$@"; fi; }

if [ "$QUICK" = 1 ]; then SIZES="20 50" SQ=20; else SIZES="50 200" SQ=50; fi
SLEEP=3

# ---- the server: max_connections = 100, fsync on, scram over TCP ------------------------
S=$T/scale-pg
mkdir -p "$S/sock"
chown "$PGOSUSER" "$S" "$S/sock"
runpg "$PGBIN/initdb" -N -U postgres -A trust -E UTF8 --locale=C -D "$S/data" >"$S/initdb.log" 2>&1 ||
	{ echo "bench: initdb failed: $(tail -5 "$S/initdb.log")" >&2; exit 1; }
printf '%s\n' "listen_addresses = '127.0.0.1'" "unix_socket_directories = '$S/sock'" \
	"max_connections = 100" "password_encryption = 'scram-sha-256'" >>"$S/data/postgresql.conf"
printf '%s\n' "local all all trust" "host all all 127.0.0.1/32 scram-sha-256" >"$S/data/pg_hba.conf"
at_exit "runpg $PGBIN/pg_ctl -D $S/data -m immediate -w -t 30 stop >/dev/null 2>&1"
for attempt in 1 2 3; do
	PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	runpg "$PGBIN/pg_ctl" -D "$S/data" -l "$S/server.log" -w -t 60 -o "-p $PORT" start \
		>"$S/pg_ctl.log" 2>&1 && break
	[ $attempt = 3 ] && { echo "bench: the server did not start: $(tail -5 "$S/server.log")" >&2; exit 1; }
done
su_sql() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$S/sock" -p "$PORT" -U postgres -d "${2:-postgres}" -c "$1"; }
PASS=scale-$$-secret
su_sql "CREATE ROLE app LOGIN CREATEDB PASSWORD '$PASS'" >/dev/null
URL="postgres://app:$PASS@127.0.0.1:$PORT/appdb"

M1=$T/scale-m1 M2=$T/scale-m2
mkdir -p "$M1" "$M2"
echo "CREATE TABLE side_effects (note text NOT NULL);" >"$M1/0001_effects.sql"
cp "$M1/0001_effects.sql" "$M2/"
printf '%s\n' "INSERT INTO side_effects (note) VALUES ('0002 ran');" "SELECT pg_sleep($SLEEP);" \
	>"$M2/0002_slow.sql"
export FERRY_DATABASE_WAIT_SECONDS=300 FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=300

# release N DIR CMD-BUILDER: N replicas behind one barrier; each writes
# DIR/I.end ("status end-time") and DIR/I.err; prints the barrier's time.
# The builder prints replica I's command line.
release() {
	_n=$1 _d=$2 _b=$3
	rm -rf "$_d"
	mkdir -p "$_d"
	_pids=
	for _i in $(seq 1 "$_n"); do
		_cmd=$($_b "$_i")
		(
			: >"$_d/$_i.ready"
			while [ ! -e "$_d/go" ]; do sleep 0.01; done
			sh -c "$_cmd" >/dev/null 2>"$_d/$_i.err"
			echo "$? $(date +%s.%N)" >"$_d/$_i.end"
		) &
		_pids="$_pids $!"
	done
	while [ "$(ls "$_d" | grep -c 'ready$')" -lt "$_n" ]; do sleep 0.1; done
	date +%s.%N >"$_d/t0"
	touch "$_d/go"
	for _p in $_pids; do wait "$_p"; done
}

# a row of the table: N, failed, applied, last done, migration + 2 s, ...
pg_replica() {
	if [ "$1" -le 4 ]; then _k="run -- true"; else _k=migrate; fi
	echo "$FERRY --database-url '$URL?application_name=rep$1' --migrations $M2 $_k"
}
row() { # row LABEL DIR APPLIED MIGRATION-SECONDS MAXWAIT MAXLOCKED SLOTWAITS
	_fail=$(cat "$2"/*.end | awk '$1 != 0' | wc -l)
	_last=$(cat "$2"/*.end | awk -v t0="$(cat "$2/t0")" '$2 - t0 > m { m = $2 - t0 } END { printf "%.2f", m }')
	_target=$(awk -v m="$4" 'BEGIN { printf "%.2f", m + 2 }')
	_met=no
	awk -v a="$_last" -v b="$_target" 'BEGIN { exit !(a <= b) }' && _met=yes
	echo "| $1 | $_fail | $3 | $_last s | $4 s | $_target s ($_met) | $5 | $6 | $7 |"
}

{
	echo "| replicas | failed | applied the migration | last replica done | the migration | target: migration + 2 s | most connections of a waiting replica | of the lock holder | replicas that waited for a slot |"
	echo "|---|---|---|---|---|---|---|---|---|"
} >"$RES/scale.md"

cat >"$T/monitor.sql" <<'EOF'
SELECT count(DISTINCT a.pid), bool_or(l.pid IS NOT NULL)
FROM pg_stat_activity a LEFT JOIN pg_locks l ON l.pid = a.pid
	AND l.locktype = 'advisory' AND l.granted AND l.mode = 'ExclusiveLock'
WHERE a.application_name LIKE 'rep%' GROUP BY a.application_name
EOF
for n in $SIZES; do
	say "PostgreSQL, $n replicas"
	su_sql "DROP DATABASE IF EXISTS appdb" >/dev/null
	su_sql "CREATE DATABASE appdb OWNER app" >/dev/null
	rm -rf "$T/scale-state" "$T/scale-snap"
	export FERRY_DATABASE_STATE_DIR=$T/scale-state FERRY_SNAPSHOT_DIR=$T/scale-snap
	mkdir -p "$FERRY_DATABASE_STATE_DIR" "$FERRY_SNAPSHOT_DIR"
	"$FERRY" migrate --database-url "$URL" --migrations "$M1" >"$T/scale-setup.log" 2>&1 ||
		{ echo "bench: setup failed: $(cat "$T/scale-setup.log")" >&2; exit 1; }
	D=$T/scale-pg-$n
	rm -f "$T/monitor.out" "$T/monitor.stop"
	(
		while [ ! -e "$T/monitor.stop" ]; do
			"$PGBIN/psql" -X -q -At -h "$S/sock" -p "$PORT" -U postgres -d postgres \
				-f "$T/monitor.sql" >>"$T/monitor.out" 2>/dev/null
		done
	) &
	mon=$!
	release "$n" "$D" pg_replica
	touch "$T/monitor.stop"
	wait "$mon" 2>/dev/null || true
	applied=$(su_sql "SELECT count(*) FROM side_effects WHERE note = '0002 ran'" appdb)
	mig=$(su_sql "SELECT round(duration_ms / 1000.0, 2) FROM ferry_migrations WHERE version = 2" appdb)
	maxw=$(awk -F'|' '$2 == "f" && $1 > m { m = $1 } END { print m + 0 }' "$T/monitor.out")
	maxl=$(awk -F'|' '$2 == "t" && $1 > m { m = $1 } END { print m + 0 }' "$T/monitor.out")
	slot=$(grep -l 'too many clients' "$D"/*.err | wc -l)
	row "PostgreSQL, $n" "$D" "$applied" "${mig:-?}" "$maxw" "$maxl" "$slot" >>"$RES/scale.md"
	failed=$(cat "$D"/*.end | awk '$1 != 0' | wc -l)
	[ "$failed" = 0 ] || for f in "$D"/*.end; do
		[ "$(cut -d' ' -f1 "$f")" = 0 ] || { say "a replica failed: $(tail -2 "${f%.end}.err")"; break; }
	done
done

# ---- SQLite: N replicas on one file -------------------------------------------------------
say "SQLite, $SQ replicas on one file"
L=$T/scale-sqlite
rm -rf "$L"
mkdir -p "$L/m1" "$L/m2"
echo "CREATE TABLE side_effects (note TEXT NOT NULL);" >"$L/m1/0001_effects.sql"
cp "$L/m1/0001_effects.sql" "$L/m2/"
cat >"$L/m2/0002_slow.sql" <<'EOF'
INSERT INTO side_effects (note) VALUES ('0002 ran');
CREATE TABLE big (x INTEGER, pad TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1500000)
INSERT INTO big SELECT x, hex(randomblob(16)) FROM c;
EOF
unset FERRY_DATABASE_STATE_DIR FERRY_SNAPSHOT_DIR
"$FERRY" migrate --database-url "sqlite://$L/app.db" --migrations "$L/m1" >"$T/scale-setup.log" 2>&1 ||
	{ echo "bench: setup failed: $(cat "$T/scale-setup.log")" >&2; exit 1; }
sq_replica() { echo "$FERRY migrate --database-url sqlite://$L/app.db --migrations $L/m2"; }
release "$SQ" "$L/run" sq_replica
applied=$(sqlite3 "$L/app.db" "SELECT count(*) FROM side_effects WHERE note = '0002 ran'" 2>/dev/null || echo '?')
mig=$(sqlite3 "$L/app.db" "SELECT round(duration_ms / 1000.0, 2) FROM ferry_migrations WHERE version = 2" 2>/dev/null || echo '?')
row "SQLite, $SQ on one file" "$L/run" "$applied" "${mig:-?}" "n/a" "n/a" "n/a" >>"$RES/scale.md"
echo >>"$RES/scale.md"
echo "Server: PostgreSQL $(su_sql 'SHOW server_version'), max_connections = 100 (97 for a role without SUPERUSER), fsync on; ferry connects over TCP with a password (scram-sha-256). Each replica is one process; the N of a row are started behind a barrier file and released at once. The migration's own time is the ledger's duration_ms; \"last replica done\" is from the barrier to the exit of the last one." >>"$RES/scale.md"
cat "$RES/scale.md" >&2
