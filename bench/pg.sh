#!/bin/sh
# bench/pg.sh: PostgreSQL snapshots, on a throwaway server of its own.
#   pg-template   CREATE DATABASE ... STRATEGY FILE_COPY vs WAL_LOG (~200 MiB),
#                 and ferry snapshot when it takes the template path
#   pg-logical    ferry snapshot when another session is connected (logical,
#                 COPY + zstd) vs pg_dump -Fc and pg_dump | zstd
#   pg-batch      1000 small migrations vs psql -1 -f and dbmate
# Skipped cleanly when the server binaries are not installed.
BENCH_NAME=pg
. "$(dirname "$0")/lib.sh"

PGBIN=
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -rn); do
	if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/psql" ] && [ -x "$d/pg_dump" ]; then
		PGBIN=$d
		break
	fi
done
if [ -z "$PGBIN" ]; then
	skip pg-template "the PostgreSQL server is not installed (apt-get install postgresql)"
	skip pg-template-busy "the PostgreSQL server is not installed (apt-get install postgresql)"
	skip pg-logical "the PostgreSQL server is not installed (apt-get install postgresql)"
	skip pg-batch "the PostgreSQL server is not installed (apt-get install postgresql)"
	exit 0
fi
command -v python3 >/dev/null || { echo "bench: python3 is needed" >&2; exit 1; }

# The server must run as an unprivileged user: ourselves, or (as root)
# Debian's postgres user.
PGOSUSER=$(id -un)
if [ "$(id -u)" = 0 ]; then
	if id postgres >/dev/null 2>&1; then
		PGOSUSER=postgres
	else
		skip pg-template "running as root and there is no postgres user to run the server"
		skip pg-template-busy "running as root and there is no postgres user to run the server"
		skip pg-logical "running as root and there is no postgres user to run the server"
		skip pg-batch "running as root and there is no postgres user to run the server"
		exit 0
	fi
fi
as_pguser() {
	if [ "$PGOSUSER" = "$(id -un)" ]; then "$@"; else runuser -u "$PGOSUSER" -- "$@"; fi
}

if [ "$QUICK" = 1 ]; then
	MIB=40 BUSYMIB=16 tpl_rounds=3 log_rounds=2
else
	MIB=200 BUSYMIB=64 tpl_rounds=12 log_rounds=10
fi

# ---- a server of our own --------------------------------------------------------------
P=$T/pg
mkdir -p "$P/sock"
chown "$PGOSUSER" "$P" "$P/sock"
as_pguser "$PGBIN/initdb" -N -U postgres -A trust -E UTF8 --locale=C -D "$P/data" \
	>"$P/initdb.log" 2>&1 || { echo "bench: initdb failed: $(tail -5 "$P/initdb.log")" >&2; exit 1; }
# Durable settings (fsync on: snapshots are about writing to disk); no
# autovacuum, so that no worker is connected to appdb when ferry looks.
cat >>"$P/data/postgresql.conf" <<EOF
# ferry bench
listen_addresses = '127.0.0.1'
unix_socket_directories = '$P/sock'
autovacuum = off
password_encryption = 'scram-sha-256'
EOF
cat >"$P/data/pg_hba.conf" <<'EOF'
local   all  all                 trust
host    all  all  127.0.0.1/32   scram-sha-256
EOF
at_exit "as_pguser $PGBIN/pg_ctl -D $P/data -m immediate -w -t 30 stop >/dev/null 2>&1"
# a free port; another one if somebody takes it before the server starts
tries=0
while :; do
	PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	if as_pguser "$PGBIN/pg_ctl" -D "$P/data" -l "$P/server.log" -w -t 60 -o "-p $PORT" start \
		>"$P/pg_ctl.log" 2>&1; then
		break
	fi
	tries=$((tries + 1))
	if [ $tries -ge 3 ] || ! grep -q 'in use' "$P/server.log"; then
		echo "bench: the server did not start: $(cat "$P/pg_ctl.log") $(tail -5 "$P/server.log")" >&2
		exit 1
	fi
done

# pgsu SQL: as the superuser in the database postgres, over the socket
pgsu() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$P/sock" -p "$PORT" -U postgres -d postgres -c "$1"; }
PASS=bench-$$-secret
pgsu "CREATE ROLE app LOGIN CREATEDB PASSWORD '$PASS'" >/dev/null
pgsu "CREATE DATABASE appdb OWNER app" >/dev/null
URL="postgres://app:$PASS@127.0.0.1:$PORT/appdb"
BENCH_MASK=":$PASS@"

PM=$T/pg-migrations
mkdir -p "$PM"
cat >"$PM/0001_items.sql" <<'EOF'
CREATE TABLE items (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    created_at timestamptz NOT NULL,
    payload bytea
);
CREATE INDEX items_email ON items (email);
EOF
export FERRY_SNAPSHOT_DIR="$T/pg-snap" FERRY_DATABASE_STATE_DIR="$T/pg-state"
mkdir -p "$FERRY_SNAPSHOT_DIR" "$FERRY_DATABASE_STATE_DIR"
"$FERRY" migrate --database-url "$URL" --migrations "$PM" >"$T/pg-migrate.log" 2>&1 || {
	echo "bench: ferry migrate failed on a fresh PostgreSQL database:" >&2
	echo "  $FERRY migrate --database-url postgres://app:...@127.0.0.1:$PORT/appdb --migrations $PM" >&2
	cat "$T/pg-migrate.log" >&2
	exit 1
}
# ---- 1000 small migrations in one batch ----------------------------------------------
# (before appdb is filled: a quiet server)
PB=$T/pg-batch PBD=$T/pg-batch-dbmate
mkdir -p "$PB" "$PBD"
i=1
while [ $i -le 1000 ]; do
	body=$(printf "CREATE TABLE t%d (id bigint PRIMARY KEY, v text NOT NULL);\nINSERT INTO t%d VALUES (1, 'row %d');" $i $i $i)
	printf '%s\n' "$body" >"$PB/$(printf '%04d' $i)_t$i.sql"
	printf -- '-- migrate:up\n%s\n\n-- migrate:down\nDROP TABLE t%d;\n' "$body" $i \
		>"$PBD/$((20240101000000 + i))_t$i.sql"
	i=$((i + 1))
done
cat "$PB"/*.sql >"$T/pg-batch-all.sql"
BURL="postgres://app:$PASS@127.0.0.1:$PORT/batchdb"
brounds=10
[ "$QUICK" = 1 ] && brounds=2
bsetup="$PGBIN/psql -X -q -v ON_ERROR_STOP=1 -h $P/sock -p $PORT -U postgres -d postgres -c 'DROP DATABASE IF EXISTS batchdb' -c 'CREATE DATABASE batchdb OWNER app'"
bcount() { echo "test \"\$($PGBIN/psql -X -At -h $P/sock -p $PORT -U postgres -d batchdb -c 'SELECT count(*) FROM $1')\" = 1000"; }
dbmate_v=
[ -n "$DBMATE" ] && dbmate_v=$("$DBMATE" --version | sed 's/.*version //')
say "1000 migrations in one batch"
{
	echo "title PostgreSQL: 1000 small migrations onto an empty database"
	echo "rounds $brounds"
	echo "warmup 1"
	echo "minrounds 3"
	echo "maxtime 240"
	echo "ref psql -1 -f all.sql"
	echo "subject ferry migrate"
	echo "env PGPASSWORD=$PASS"
	echo "case ferry migrate"
	echo "setup $bsetup"
	echo "exec $FERRY migrate --database-url $BURL --migrations $PB"
	echo "check $(bcount ferry_migrations)"
	echo "case psql -1 -f all.sql"
	echo "setup $bsetup"
	echo "exec $PGBIN/psql -X -q -1 -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $PORT -U app -d batchdb -f $T/pg-batch-all.sql"
	echo "check test \"\$($PGBIN/psql -X -At -h $P/sock -p $PORT -U postgres -d batchdb -c 'SELECT v FROM t1000')\" = 'row 1000'"
	if [ -n "$DBMATE" ]; then
		echo "case dbmate $dbmate_v"
		echo "setup $bsetup"
		echo "exec $DBMATE --url $BURL?sslmode=disable --migrations-dir $PBD --no-dump-schema up"
		echo "check $(bcount schema_migrations)"
	fi
	echo "note Each migration: \`CREATE TABLE tN (id bigint PRIMARY KEY, v text NOT NULL)\` and one \`INSERT\`, fsync on, all three over TCP as the role app (scram-sha-256). ferry runs them in one transaction (all are transactional), pipelined: each round trip carries the ledger row of the migration before and the statements of the next one (libpq pipeline mode), one COMMIT at the end. \`psql -1 -f\` sends the 2000 statements one by one in one transaction, with no ledger. dbmate${dbmate_v:+ $dbmate_v} (bench/peers.sh) commits each migration with its ledger row on its own (1000 commits, each flushing the WAL).$([ -z "$DBMATE" ] && echo ' dbmate was not measured: bench/peers.sh could not install it (npm).') Setup (untimed) drops and creates the database."
} | ab pg-batch
pgsu "DROP DATABASE IF EXISTS batchdb" >/dev/null

# about 235 bytes a row with its two indexes, and 8 MiB of catalogs
ROWS=$(((MIB - 8) * 1048576 / 235))
say "filling appdb with $ROWS rows"
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$P/sock" -p "$PORT" -U app -d appdb >/dev/null <<EOF
INSERT INTO items (name, email, created_at, payload)
SELECT 'user ' || i, 'User.' || i || '@Example.com', '2024-01-01'::timestamptz + i * interval '1 minute',
       decode(md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text), 'hex')
FROM generate_series(1, $ROWS) AS i;
VACUUM ANALYZE items;
EOF
pgsu CHECKPOINT >/dev/null
DBSIZE=$(pgsu "SELECT pg_database_size('appdb')")
say "appdb is $(human "$DBSIZE")"

# ---- template copies ------------------------------------------------------------------
SUPSQL="$PGBIN/psql -X -q -v ON_ERROR_STOP=1 -h $P/sock -p $PORT -U postgres -d postgres"
FCLEAN="$FERRY cleanup --database-url $URL --migrations $PM"
if [ "$(pgsu 'SHOW server_version_num')" -lt 150000 ]; then
	skip pg-template "PostgreSQL $(pgsu 'SHOW server_version') has no STRATEGY for CREATE DATABASE (15 and later)"
	skip pg-template-busy "PostgreSQL $(pgsu 'SHOW server_version') has no STRATEGY for CREATE DATABASE (15 and later)"
else
	# WAL each strategy writes, once, outside the timed runs
	wal_of() {
		pgsu "DROP DATABASE IF EXISTS walprobe" >/dev/null 2>&1
		pgsu CHECKPOINT >/dev/null
		_a=$(pgsu "SELECT pg_current_wal_lsn()")
		pgsu "CREATE DATABASE walprobe TEMPLATE appdb STRATEGY $1" >/dev/null
		pgsu "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$_a')::bigint"
		pgsu "DROP DATABASE walprobe" >/dev/null
	}
	wal_fc=$(wal_of FILE_COPY)
	wal_wl=$(wal_of WAL_LOG)
	# the other database of a busy cluster: BUSYMIB MiB written just before
	pgsu "CREATE DATABASE busy" >/dev/null
	BUSYROWS=$((BUSYMIB * 1048576 / 240))
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$P/sock" -p "$PORT" -U postgres -d busy \
		-c "CREATE TABLE filler (i int, pad text)" >/dev/null
	BUSYSQL="$PGBIN/psql -X -q -v ON_ERROR_STOP=1 -h $P/sock -p $PORT -U postgres -d busy -c 'TRUNCATE filler' -c \"INSERT INTO filler SELECT i, repeat('x', 200) FROM generate_series(1, $BUSYROWS) i\""

	common="appdb: $(human "$DBSIZE") (one table of $ROWS rows, its primary key and one more index), PostgreSQL $(pgsu 'SHOW server_version'), default settings but autovacuum off, fsync on, shared_buffers $(pgsu 'SHOW shared_buffers'). FILE_COPY checkpoints and fsyncs the copied files within its own time; WAL_LOG's time includes writing and flushing its WAL, but the new database's data files are written back and fsynced by the next checkpoint, which is not timed. WAL written by one copy, measured once: FILE_COPY $(human "$wal_fc"), WAL_LOG $(human "$wal_wl") (a replica or WAL archive receives all of it)."

	# tpl_bench NAME TITLE EXTRA-SETUP NOTE
	tpl_bench() {
		say "$2"
		_pre="$SUPSQL -c 'DROP DATABASE IF EXISTS x' -c CHECKPOINT${3:+ && $3}"
		ab "$1" <<-EOF
		title $2
		rounds $tpl_rounds
		warmup 1
		minrounds 3
		maxtime 200
		ref STRATEGY WAL_LOG
		subject ferry snapshot (template)
		case STRATEGY FILE_COPY
		setup $_pre
		exec $SUPSQL -c "CREATE DATABASE x TEMPLATE appdb STRATEGY FILE_COPY"
		case STRATEGY WAL_LOG
		setup $_pre
		exec $SUPSQL -c "CREATE DATABASE x TEMPLATE appdb STRATEGY WAL_LOG"
		case ferry snapshot (template)
		setup $FCLEAN && $_pre
		exec $FERRY snapshot --database-url $URL --migrations $PM
		note $4 $common ferry's log line (first timed run): @HOW@
		EOF
		_how=$(grep -h 'snapshot written' "$RES/$1".*.stderr | head -1 | sed 's|.*snapshot written: [^ ]* ||')
		sed -i "s|@HOW@|\`$_how\`|" "$RES/$1.md"
		case $_how in
		*template*) ;;
		*) echo "bench: ferry snapshot did not take a template copy with nobody connected: $_how" >&2
		   echo "  $FERRY snapshot --database-url postgres://app:...@127.0.0.1:$PORT/appdb --migrations $PM" >&2
		   exit 1 ;;
		esac
	}
	tpl_bench pg-template "PostgreSQL template copy, $(human "$DBSIZE"), quiet server" "" \
		"Setup (untimed) drops the previous copy and runs CHECKPOINT: every run starts with no dirty buffer anywhere (FILE_COPY's best case)."
	tpl_bench pg-template-busy "PostgreSQL template copy, $(human "$DBSIZE"), $BUSYMIB MiB just written elsewhere" "$BUSYSQL" \
		"Setup (untimed) drops the previous copy, runs CHECKPOINT, then writes $BUSYMIB MiB into another database of the cluster (\`TRUNCATE\` and \`INSERT\` of $BUSYROWS rows), as a server that was busy until the upgrade: FILE_COPY's checkpoint writes and fsyncs those too, WAL_LOG leaves them to the next checkpoint."
	$FCLEAN >/dev/null 2>&1
	pgsu 'DROP DATABASE IF EXISTS x' >/dev/null 2>&1
fi

# ---- logical snapshots ------------------------------------------------------------------
# an old replica still connected to appdb: the template path is closed
"$PGBIN/psql" -X -q -h "$P/sock" -p "$PORT" -U app -d appdb \
	-c "SET application_name = 'old-replica'" -c "SELECT pg_sleep(86400)" >/dev/null 2>&1 &
holdpid=$!
at_exit "kill $holdpid 2>/dev/null"
i=0
until [ "$(pgsu "SELECT count(*) FROM pg_stat_activity WHERE datname = 'appdb' AND application_name = 'old-replica'")" = 1 ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "bench: the holding session did not connect" >&2; exit 1; }
	sleep 0.1
done

DUMP="$PGBIN/pg_dump -h 127.0.0.1 -p $PORT -U app"
snapfile=$FERRY_SNAPSHOT_DIR/appdb.pre-upgrade
say "logical snapshots of $(human "$DBSIZE")"
ab pg-logical <<EOF
title PostgreSQL logical snapshot, $(human "$DBSIZE") (another session connected)
rounds $log_rounds
warmup 1
minrounds 2
maxtime 240
ref pg_dump -Fc
subject ferry snapshot (logical)
env PGPASSWORD=$PASS
case ferry snapshot (logical)
setup $FCLEAN && sync
exec $FERRY snapshot --database-url $URL --migrations $PM
case pg_dump -Fc
setup rm -f $T/dump.fc && sync
exec $DUMP -Fc -f $T/dump.fc appdb
$(if command -v zstd >/dev/null; then
	echo "case pg_dump + zstd"
	echo "setup rm -f $T/dump.sql.zst && sync"
	echo "sh $DUMP appdb | zstd -q -3 -o $T/dump.sql.zst && sync $T/dump.sql.zst"
	echo "check test -s $T/dump.sql.zst"
fi)
note All three connect over TCP as the role app (scram-sha-256) while a session named old-replica stays connected to appdb. pg_dump fsyncs its -Fc file itself; zstd's output is fsynced with \`sync FILE\`; ferry fsyncs its file and directory. Sizes written: @SIZES@. ferry's log line (first timed run): @HOW@
EOF
how=$(grep -h 'snapshot written' "$RES/pg-logical".*.stderr | head -1 | sed 's|.*snapshot written: [^ ]* ||')
sizes="ferry $(human "$(stat -c %s "$snapfile")"), pg_dump -Fc $(human "$(stat -c %s "$T/dump.fc")")"
[ -f "$T/dump.sql.zst" ] && sizes="$sizes, pg_dump + zstd $(human "$(stat -c %s "$T/dump.sql.zst")")"
sed -i -e "s#@HOW@#\`$how\`#" -e "s#@SIZES@#$sizes#" "$RES/pg-logical.md"
case $how in
*logical*) ;;
*) echo "bench: ferry snapshot did not fall back to a logical snapshot with another session connected: $how" >&2
   exit 1 ;;
esac
kill "$holdpid" 2>/dev/null || true
