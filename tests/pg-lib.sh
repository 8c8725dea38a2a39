# tests/pg-lib.sh: a real PostgreSQL server for the PostgreSQL tests (t3*).
# Source it after lib.sh.  It is not a test script itself.
#
# Sourcing it initdb's a fresh cluster into $TMP/pg as an unprivileged user
# (the Debian `postgres` user, or a dedicated one created when absent),
# starts it on 127.0.0.1 at a free port ($PGPORT, NOT exported: libpq must
# get every setting from ferry's URL) and on the socket dir $PG_SOCKDIR, and
# stops it at exit.  Authentication: trust over the socket, scram-sha-256
# over TCP, so a URL's password is really used.
#
# Fixtures: role `app` (LOGIN, CREATEDB, password $APP_PASSWORD) owns the
# database `appdb`; role `weak` (password $WEAK_PASSWORD) may connect to
# appdb but has no CREATE on any schema.  $PGURL, $PGKV, $WEAKURL are the
# ways to reach them.  Without the server binaries the script is skipped.
# $PG_EXTRA_CONF, set before sourcing, is appended to postgresql.conf
# (e.g. "max_connections = 20").

# ---- the server binaries ----------------------------------------------------------
PGBIN=
for _d in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -rn); do
	if [ -x "$_d/initdb" ] && [ -x "$_d/postgres" ] && [ -x "$_d/pg_ctl" ] && [ -x "$_d/psql" ]; then
		PGBIN=$_d
		break
	fi
done
if [ -z "$PGBIN" ]; then
	echo "1..0 # SKIP postgresql not installed"
	exit 0
fi

# Settings a test environment must not inherit: ferry's, and libpq's own
# (a PGPASSWORD or PGHOST from outside would hide a URL that ferry ignores).
unset FERRY_MIGRATIONS_DIR FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS \
	FERRY_MIGRATIONS_AUTO_UPGRADE FERRY_MIGRATIONS_TARGET_VERSION \
	FERRY_MIGRATIONS_STATEMENT_LOCK_TIMEOUT FERRY_DATABASE_WAIT_SECONDS \
	FERRY_SNAPSHOT_DIR FERRY_SNAPSHOT_KEEP FERRY_DATABASE_STATE_DIR \
	FERRY_TEST_CRASH_AT FERRY_DATABASE_URL FERRY_LOG_LEVEL FERRY_LOG_FORMAT \
	PGHOST PGHOSTADDR PGPORT PGUSER PGPASSWORD PGDATABASE PGSERVICE \
	PGSERVICEFILE PGAPPNAME PGOPTIONS PGSSLMODE PGCONNECT_TIMEOUT PGTARGETSESSIONATTRS
export PGPASSFILE=$TMP/no-such-pgpass   # never read the host's ~/.pgpass

# Where ferry keeps its state and logical snapshots in these tests.
export FERRY_DATABASE_STATE_DIR=$TMP/state
export FERRY_SNAPSHOT_DIR=$TMP/snap
mkdir -p "$FERRY_DATABASE_STATE_DIR" "$FERRY_SNAPSHOT_DIR"

APP_PASSWORD=Sup3rSecret
WEAK_PASSWORD=W3akPassw0rd
PGDIR=$TMP/pg
PGDATA_DIR=$PGDIR/data
PG_SOCKDIR=$TMP/sock
PGLOG=$PGDIR/server.log

# ---- the unprivileged user that runs the server ----------------------------------------
PGOSUSER=$(id -un)
if [ "$(id -u)" = 0 ]; then
	if id postgres >/dev/null 2>&1; then
		PGOSUSER=postgres
	else
		id ferrypg >/dev/null 2>&1 ||
			useradd --system --no-create-home --home-dir /nonexistent \
				--shell /usr/sbin/nologin ferrypg >/dev/null 2>&1 ||
			{ echo "1..0 # SKIP cannot create a user to run postgres"; exit 0; }
		PGOSUSER=ferrypg
	fi
fi

# as_pguser CMD...: CMD as the server's OS user.
as_pguser() {
	if [ "$PGOSUSER" = "$(id -un)" ]; then "$@"
	else runuser -u "$PGOSUSER" -- "$@"; fi
}

_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- start, stop ------------------------------------------------------------------
unset PGPORT
PGPORT=

pg_init() {
	mkdir -p "$PGDIR" "$PG_SOCKDIR"
	chown "$PGOSUSER" "$PGDIR" "$PG_SOCKDIR"
	chmod 755 "$PG_SOCKDIR"
	if ! as_pguser "$PGBIN/initdb" -N -U postgres -A trust -E UTF8 --locale=C \
		-D "$PGDATA_DIR" >"$PGDIR/initdb.log" 2>&1; then
		echo "Bail out! initdb failed: $(tail -5 "$PGDIR/initdb.log")"
		exit 1
	fi
	cat >>"$PGDATA_DIR/postgresql.conf" <<-EOF
	# ferry tests
	listen_addresses = '127.0.0.1'
	unix_socket_directories = '$PG_SOCKDIR'
	fsync = off
	synchronous_commit = off
	full_page_writes = off
	max_connections = 60
	shared_buffers = 16MB
	password_encryption = 'scram-sha-256'
	log_line_prefix = '%m [%p] %q%u@%d/%a '
	${PG_EXTRA_CONF:-}
	EOF
	cat >"$PGDATA_DIR/pg_hba.conf" <<-'EOF'
	# ferry tests: trust on the socket, passwords over TCP
	local   all  all                 trust
	host    all  all  127.0.0.1/32   scram-sha-256
	host    all  all  ::1/128        scram-sha-256
	EOF
}

# pg_start: starts the server (on $PGPORT once chosen); fails if it cannot.
pg_start() {
	_tries=0
	while :; do
		if [ -z "$PGPORT" ]; then
			PGPORT=$(_free_port)
			echo "port = $PGPORT" >>"$PGDATA_DIR/postgresql.conf"
			_fresh_port=1
		else
			_fresh_port=0
		fi
		if as_pguser "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGLOG" -w -t 30 start \
			>"$PGDIR/pg_ctl.log" 2>&1; then
			return 0
		fi
		_tries=$((_tries + 1))
		# a port taken between the choice and the start: choose again
		if [ "$_fresh_port" = 1 ] && [ $_tries -lt 3 ] && grep -q 'in use' "$PGLOG" 2>/dev/null; then
			PGPORT=
			continue
		fi
		echo "# pg_start failed: $(cat "$PGDIR/pg_ctl.log") $(tail -5 "$PGLOG" 2>/dev/null)"
		return 1
	done
}

# pg_stop: fast shutdown (sessions are ended, the server stops cleanly).
pg_stop() {
	as_pguser "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 30 stop >"$PGDIR/pg_ctl.log" 2>&1
}

pg_restart() { pg_stop && pg_start; }

# pg_running: the server answers.
pg_running() { "$PGBIN/pg_isready" -q -h "$PG_SOCKDIR" -p "$PGPORT"; }

_pg_teardown() {
	[ -f "$PGDATA_DIR/postmaster.pid" ] || return 0
	as_pguser "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w -t 10 stop >/dev/null 2>&1 && return 0
	_pm=$(head -1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null)
	[ -n "$_pm" ] && kill -KILL "$_pm" 2>/dev/null
	return 0
}

# ---- SQL as a role -----------------------------------------------------------------
# psql_as ROLE DB SQL: runs SQL over the socket (trust) as ROLE in DB;
# prints the rows unaligned, fields separated by |.  Status of psql.
psql_as() {
	"$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PG_SOCKDIR" -p "$PGPORT" \
		-U "$1" -d "$2" -c "$3"
}
# psql_su DB SQL: as the superuser.
psql_su() { psql_as postgres "$1" "$2"; }
# pg_true SQL: SQL (in the postgres database) returns true.
pg_true() { [ "$(psql_su postgres "$1" 2>/dev/null)" = t ]; }
# qa SQL: one query in appdb as the superuser.
qa() { psql_as postgres appdb "$1"; }

# ---- fixtures -----------------------------------------------------------------------
PGURL=
PGKV=
WEAKURL=
pg_fixtures() {
	psql_su postgres "CREATE ROLE app LOGIN CREATEDB PASSWORD '$APP_PASSWORD'" >/dev/null &&
		psql_su postgres "CREATE ROLE weak LOGIN PASSWORD '$WEAK_PASSWORD'" >/dev/null &&
		psql_su postgres "CREATE DATABASE appdb OWNER app" >/dev/null &&
		psql_su postgres "GRANT CONNECT ON DATABASE appdb TO weak" >/dev/null || return 1
	PGURL="postgres://app:$APP_PASSWORD@127.0.0.1:$PGPORT/appdb"
	PGKV="host=$PG_SOCKDIR port=$PGPORT dbname=appdb user=app"
	WEAKURL="postgres://weak:$WEAK_PASSWORD@127.0.0.1:$PGPORT/appdb"
}

# pg_fresh_appdb [TEMPLATE]: appdb dropped (with every database named
# appdb_*, ferry's snapshots and leftovers) and created again, empty or as
# a copy of the database TEMPLATE; role app back to CREATEDB; ferry's state
# and snapshot dirs emptied.
pg_fresh_appdb() {
	"$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PG_SOCKDIR" -p "$PGPORT" -U postgres -d postgres \
		>/dev/null <<-EOF
	SELECT format('DROP DATABASE %I WITH (FORCE)', datname) FROM pg_database
		WHERE datname = 'appdb' OR datname LIKE 'appdb\\_%' \gexec
	ALTER ROLE app CREATEDB;
	CREATE DATABASE appdb OWNER app${1:+ TEMPLATE "$1"};
	GRANT CONNECT ON DATABASE appdb TO weak;
	EOF
	_rc=$?
	rm -rf "$FERRY_DATABASE_STATE_DIR" "$FERRY_SNAPSHOT_DIR"
	mkdir -p "$FERRY_DATABASE_STATE_DIR" "$FERRY_SNAPSHOT_DIR"
	return $_rc
}

# pg_save_as NAME: a copy of appdb as the database NAME (a reference state
# that pg_fresh_appdb NAME brings back; nobody may be connected to appdb).
pg_save_as() {
	psql_su postgres "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null 2>&1
	psql_su postgres "CREATE DATABASE \"$1\" OWNER app TEMPLATE appdb" >/dev/null
}

# db_list: the databases of the cluster other than the built-in ones.
db_list() {
	psql_su postgres "SELECT datname FROM pg_database
		WHERE datname NOT IN ('postgres', 'template0', 'template1') ORDER BY 1" | tr '\n' ' ' | sed 's/ $//'
}

# ---- observing a database -----------------------------------------------------------
# pg_state [DB]: the whole database as pg_dump prints it (schema, data,
# sequences' values, grants, comments), less what differs between two runs of the same
# upgrade (the ledger's applied_at and duration_ms, pg_dump's random
# \restrict key); then the ledger's version, name, sha256, dirty.
# A journal table of ferry's (public.ferry_journal) is left out here and
# checked on its own by ferry_tables.
pg_state() {
	"$PGBIN/pg_dump" -h "$PG_SOCKDIR" -p "$PGPORT" -U postgres --no-owner \
		--exclude-table-data='ferry_migrations' \
		--exclude-table='ferry_journal' -d "${1:-appdb}" 2>&1 |
		grep -Ev '^\\(un)?restrict '
	echo "-- ledger"
	psql_su "${1:-appdb}" 'SELECT version, name, sha256, dirty FROM ferry_migrations ORDER BY version' 2>&1
}
# same_state GOT EXPECTED DESC: like is, for pg_state texts; a failure
# shows the diff (expected -> got), not the whole dumps.
same_state() {
	if [ "$1" = "$2" ]; then pass "$3"; return 0; fi
	printf '%s\n' "$2" >"$TMP/.expected-state"
	printf '%s\n' "$1" >"$TMP/.got-state"
	fail "$3" "pg_dump differs (diff expected got):" \
		"$(diff "$TMP/.expected-state" "$TMP/.got-state" | head -40)"
}
pg_state_sum() { pg_state "$@" | sha256sum | cut -d' ' -f1; }

# pg_data [DB]: pg_dump --data-only (the ledger's rows less their times).
pg_data() {
	"$PGBIN/pg_dump" -h "$PG_SOCKDIR" -p "$PGPORT" -U postgres --data-only \
		--exclude-table-data='ferry_migrations' --exclude-table='ferry_journal' -d "${1:-appdb}" 2>&1 |
		grep -Ev '^\\(un)?restrict '
	psql_su "${1:-appdb}" 'SELECT version, name, sha256, dirty FROM ferry_migrations ORDER BY version' 2>&1
}

# ferry_tables [DB]: relations named ferry* in DB other than the ledger
# (a journal kept in the app's database: a restore would erase it, and it
# changes the app's schema)
ferry_tables() {
	psql_su "${1:-appdb}" "SELECT string_agg(oid::regclass::text, ' ' ORDER BY relname) FROM pg_class
		WHERE relname LIKE 'ferry%' AND relname NOT LIKE 'ferry\_migrations%'
		AND relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)"
}
# no_ferry_tables DESC: a test that appdb holds no table of ferry's but the ledger
no_ferry_tables() { is "$(ferry_tables)" "" "$1: no table of ferry's in appdb but the ledger"; }

# ledger_versions [DB]: "1 2 3"
ledger_versions() {
	psql_su "${1:-appdb}" 'SELECT version FROM ferry_migrations ORDER BY version' 2>/dev/null |
		tr '\n' ' ' | sed 's/ $//'
}
db_version() { psql_su "${1:-appdb}" 'SELECT coalesce(max(version), 0) FROM ferry_migrations' 2>/dev/null; }
# table_exists NAME [DB]
table_exists() {
	[ "$(psql_su "${2:-appdb}" "SELECT to_regclass('public.$1') IS NOT NULL")" = t ]
}
# invalid_indexes [DB]: names of INVALID indexes (left by a failed concurrent build)
invalid_indexes() {
	psql_su "${1:-appdb}" "SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid ORDER BY 1" |
		tr '\n' ' ' | sed 's/ $//'
}
# snapshot_file: where the logical snapshot of appdb goes
snapshot_file() { echo "$FERRY_SNAPSHOT_DIR/appdb.pre-upgrade"; }
filesum() { sha256sum <"$1" | cut -d' ' -f1; }

# json EXPR: evaluates the Python expression EXPR on the JSON object in $out
# (as j); prints the result, or "invalid JSON".
json() {
	printf '%s' "$out" | python3 -c '
import json, sys
try:
    j = json.loads(sys.stdin.read())
except Exception as e:
    print("invalid JSON: %s" % e); sys.exit(0)
try:
    print(eval(sys.argv[1]))
except Exception as e:
    print("%s: %s" % (type(e).__name__, e))' "$1"
}

# ---- running ferry against the server ---------------------------------------------------
# Every run's stdout and stderr are checked for the password: a leak is
# a failed test at once; secret_never_shown sums up at the end.
_pg_runs=0
_pg_leaks=0

# no_secret FILE-OR-TEXT-DESC FILE...: fails when a file holds a password.
no_secret() {
	_what=$1; shift
	_pg_runs=$((_pg_runs + 1))
	if cat "$@" 2>/dev/null | grep -qF -e "$APP_PASSWORD" -e "$WEAK_PASSWORD"; then
		_pg_leaks=$((_pg_leaks + 1))
		fail "the password does not appear in the output ($_what)" \
			"$(cat "$@" | grep -F -e "$APP_PASSWORD" -e "$WEAK_PASSWORD" | head -5)"
	fi
}

# secret_never_shown: one test that sums up the password checks.
secret_never_shown() {
	if [ "$_pg_leaks" = 0 ]; then
		pass "no password in the output of any of the $_pg_runs ferry runs"
	else
		fail "no password in the output of any ferry run" "$_pg_leaks of $_pg_runs runs leaked it"
	fi
}

# pgf MIGDIR ARGS...: run_ferry ARGS with --database-url $URL (default
# $PGURL) and --migrations MIGDIR; $out $err $rc like run_ferry.
pgf() {
	_mig=$1
	shift
	run_ferry --database-url "${URL:-$PGURL}" --migrations "$_mig" "$@"
	no_secret "ferry $*" "$TMP/.out" "$TMP/.err"
}

# pgf_bg OUTPREFIX MIGDIR ARGS...: ferry in the background, its output in
# OUTPREFIX.out / .err; its pid in $bgpid (killed at exit if still there).
pgf_bg() {
	_pre=$1 _mig=$2
	shift 2
	: >"$_pre.out" # now, not in the child: see start_bg
	: >"$_pre.err"
	"$FERRY" --database-url "${URL:-$PGURL}" --migrations "$_mig" "$@" \
		>"$_pre.out" 2>"$_pre.err" &
	bgpid=$!
	at_exit "kill_tree $bgpid"
}

# collect_bg PREFIX DESC: the output of a background ferry (pgf_bg PREFIX)
# into $out and $err (and $TMP/.out, $TMP/.err for expect_status), checked
# for sanitizer reports and for the password.
collect_bg() {
	cp "$1.out" "$TMP/.out"
	cp "$1.err" "$TMP/.err"
	out=$(cat "$TMP/.out"); err=$(cat "$TMP/.err")
	_check_crash
	no_secret "$2" "$TMP/.out" "$TMP/.err"
}

# wait_exit PID [SECONDS]: waits (default 60 s) for PID, a child of this
# shell, to end; sets $rc (124 and kills it when it did not end).
wait_exit() {
	_i=0 _max=$((${2:-60} * 20))
	while ! exited "$1"; do
		_i=$((_i + 1))
		if [ $_i -ge $_max ]; then kill_tree "$1"; wait "$1" 2>/dev/null; rc=124; return 1; fi
		sleep 0.05
	done
	wait "$1"
	rc=$?
}

# hold_connection [SQL]: another session connected to appdb (an old
# replica during a rolling update, application_name old-replica, as the
# role app): runs SQL (e.g. "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE
# MODE"), then stays connected, idle (or idle in transaction), until it is
# killed; its pid in $holdpid.  Returns once SQL has run.
hold_connection() {
	rm -f "$TMP/hold.ready"
	"$PGBIN/psql" -X -q -h "$PG_SOCKDIR" -p "$PGPORT" -U app -d appdb \
		-v ON_ERROR_STOP=1 -c "SET application_name = 'old-replica'" -c "${1:-SELECT 1}" \
		-c "\\! touch $TMP/hold.ready" -c '\! exec sleep 120' >"$TMP/hold.out" 2>&1 &
	holdpid=$!
	at_exit "kill_tree $holdpid"
	wait_for test -e "$TMP/hold.ready" ||
		echo "# hold_connection: not ready: $(cat "$TMP/hold.out")"
}

# ---- the standard migration sets ------------------------------------------------------
# $TMP/p1: 0001 only; $TMP/p3: 0001..0003; $TMP/p4: 0001..0004, each later
# set with byte-identical copies of the earlier files.
make_std_pg_migrations() {
	mkdir -p "$TMP/p1" "$TMP/p3" "$TMP/p4"
	cat >"$TMP/p1/0001_users.sql" <<-'EOF'
	CREATE TABLE users (
	    id bigserial PRIMARY KEY,
	    name text NOT NULL
	);
	CREATE INDEX users_name ON users (name);
	EOF
	cp "$TMP/p1/0001_users.sql" "$TMP/p3/"
	cat >"$TMP/p3/0002_email.sql" <<-'EOF'
	-- every user gets an address
	ALTER TABLE users ADD COLUMN email text;
	UPDATE users SET email = lower(name) || '@example.com';
	EOF
	cat >"$TMP/p3/0003_posts.sql" <<-'EOF'
	CREATE TABLE posts (
	    id bigserial PRIMARY KEY,
	    user_id bigint NOT NULL REFERENCES users (id),
	    title text NOT NULL
	);
	INSERT INTO posts (user_id, title) SELECT id, 'hello from ' || name FROM users ORDER BY id;
	EOF
	cp "$TMP/p3/"*.sql "$TMP/p4/"
	cat >"$TMP/p4/0004_tags.sql" <<-'EOF'
	CREATE TABLE tags (id bigserial PRIMARY KEY, label text UNIQUE);
	INSERT INTO tags (label) VALUES ('news'), ('misc');
	EOF
}

# v1_appdb: a fresh appdb brought to version 1 by ferry ($TMP/p1) plus
# three users; state and snapshot dirs emptied.
v1_appdb() {
	pg_fresh_appdb || return 1
	"$FERRY" migrate --database-url "$PGURL" --migrations "$TMP/p1" \
		>"$TMP/.setup.out" 2>"$TMP/.setup.err" ||
		{ echo "# setup: ferry first boot failed: $(cat "$TMP/.setup.err")"; return 1; }
	psql_as app appdb "INSERT INTO users (name) VALUES ('Ada'), ('Brian'), ('Chloe')" >/dev/null
	rm -rf "$FERRY_DATABASE_STATE_DIR"
	mkdir -p "$FERRY_DATABASE_STATE_DIR"
	drop_snapshots
}

# drop_snapshots: no snapshot database (appdb_*), an empty snapshot dir.
drop_snapshots() {
	printf '%s\n' "SELECT format('DROP DATABASE %I WITH (FORCE)', datname) FROM pg_database
		WHERE datname LIKE 'appdb\\_%' \\gexec" |
		"$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PG_SOCKDIR" -p "$PGPORT" -U postgres -d postgres >/dev/null
	rm -rf "$FERRY_SNAPSHOT_DIR"
	mkdir -p "$FERRY_SNAPSHOT_DIR"
}

# A server must not outlive its script: on a signal (prove interrupted, a
# closed pipe) exit, so that lib.sh's EXIT trap stops it.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# ---- bring it up ------------------------------------------------------------------------
pg_init
at_exit _pg_teardown
pg_start || { echo "Bail out! cannot start postgres"; exit 1; }
pg_fixtures || { echo "Bail out! cannot create the fixtures"; exit 1; }
