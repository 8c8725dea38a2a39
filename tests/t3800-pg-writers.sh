#!/bin/sh
# PostgreSQL: other processes beside an upgrade that needs a snapshot (a
# migration outside a transaction: a restore would discard what they
# wrote).  From before the snapshot to the end, the database's
# default_transaction_read_only is on, so new sessions of others cannot
# write while ferry's own can; sessions already connected are waited for
# (lock_timeout_seconds), then refused with 75, nothing changed.  A writer
# that connects per row loses no committed row, whether the upgrade fails
# (restored) or succeeds.  A ferry killed mid-statement leaves its session
# running: the next ferry ends it before migrating.  A crash inside the
# window leaves writers out (loudly) until the next ferry's recovery.
# Transactional-only upgrades wait for nobody.  Block f has other ferries
# and late sessions beside a template restore.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
make_std_pg_migrations

# pnt: the users of p1, then a step outside a transaction
mkdir -p "$TMP/pnt"
cp "$TMP/p1/0001_users.sql" "$TMP/pnt/"
cat >"$TMP/pnt/0002_email.sql" <<'EOF'
-- ferry:no-transaction
ALTER TABLE users ADD COLUMN email text;
UPDATE users SET email = lower(name) || '@example.com';
EOF

# w1: the writer's table is part of version 1.  wslow: a slow step outside
# a transaction; wbad: then a failing one.  wsleep: a step that sleeps for
# 30 s in a statement of its own; wharm: a harmless 0002 instead.
mkdir -p "$TMP/w1" "$TMP/wslow" "$TMP/wbad" "$TMP/wsleep" "$TMP/wharm"
cat >"$TMP/w1/0001_base.sql" <<'EOF'
CREATE TABLE beside (id bigserial PRIMARY KEY, tag text NOT NULL UNIQUE);
CREATE TABLE facts (x integer NOT NULL);
INSERT INTO facts VALUES (1);
EOF
for d in wslow wbad wsleep wharm; do cp "$TMP/w1/0001_base.sql" "$TMP/$d/"; done
cat >"$TMP/wslow/0002_slow.sql" <<'EOF'
-- ferry:no-transaction
SELECT pg_sleep(2);
CREATE TABLE counted (n integer);
UPDATE facts SET x = x + 1;
EOF
cp "$TMP/wslow/0002_slow.sql" "$TMP/wbad/"
cat >"$TMP/wbad/0003_bad.sql" <<'EOF'
UPDATE facts SET x = 99;
INSERT INTO no_such_table VALUES (1);
EOF
cat >"$TMP/wsleep/0002_wait.sql" <<'EOF'
-- ferry:no-transaction
SELECT pg_sleep(30);
CREATE TABLE slept (n integer);
EOF
cat >"$TMP/wharm/0002_harmless.sql" <<'EOF'
CREATE TABLE harmless (n integer);
EOF

# w1_appdb: a fresh appdb at version 1 of the w sets, a few rows beside
w1_appdb() {
	pg_fresh_appdb
	"$FERRY" migrate --database-url "$PGURL" --migrations "$TMP/w1" \
		>"$TMP/.setup.out" 2>"$TMP/.setup.err" ||
		echo "# setup: first boot failed: $(cat "$TMP/.setup.err")"
	psql_as app appdb "INSERT INTO beside (tag) SELECT 'setup' || x FROM generate_series(1, 3) x" >/dev/null
	rm -rf "$FERRY_DATABASE_STATE_DIR"
	mkdir -p "$FERRY_DATABASE_STATE_DIR"
	drop_snapshots
}

# ro_default: default_transaction_read_only as a new session of app sees it
ro_default() { psql_as app appdb "SHOW default_transaction_read_only" 2>&1; }
# db_settings: how many per-database settings appdb has (ALTER DATABASE SET)
db_settings() {
	psql_su postgres "SELECT count(*) FROM pg_db_role_setting s
		JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = 'appdb'"
}
# writes_work DESC: a new session of another process can write again
writes_work() {
	is "$(ro_default)" off "$1: new sessions are not read-only"
	is "$(db_settings)" 0 "$1: appdb has no setting of ferry's left"
	_w=$(psql_as app appdb "CREATE TABLE IF NOT EXISTS probe (n integer); INSERT INTO probe VALUES (1)" 2>&1)
	is "$?" 0 "$1: a new session's INSERT succeeds${_w:+ ($_w)}"
	psql_as app appdb "DROP TABLE IF EXISTS probe" >/dev/null 2>&1
}
# writes_refused DESC [INSERT]: a new session of another process cannot
# write (INSERT defaults to one into facts)
writes_refused() {
	is "$(ro_default)" on "$1: new sessions start read-only"
	_w=$(psql_as app appdb "${2:-INSERT INTO facts VALUES (7)}" 2>&1)
	like "$_w" "cannot execute INSERT in a read-only transaction" "$1: a new session's INSERT fails"
}
# session_pid APPNAME: the backend pid of the session of that name on appdb
session_pid() {
	psql_su postgres "SELECT pid FROM pg_stat_activity WHERE datname = 'appdb'
		AND application_name = '$1'"
}
# end_hold: the hold_connection session ends, and is gone from the server
end_hold() {
	kill_tree "$holdpid"
	wait "$holdpid" 2>/dev/null
	wait_for pg_true "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'old-replica'"
}
# no_snapshot DESC: no snapshot database, no snapshot file
no_snapshot() {
	is "$(db_list)" appdb "$1: no snapshot database"
	is "$(ls -A "$FERRY_SNAPSHOT_DIR")" "" "$1: no snapshot file"
}

# ---- a. another session connected: waited for, then refused (75) -------------------
v1_appdb
state=$(pg_state)
hold_connection
hpid=$(session_pid old-replica)
check "a: the other session is connected (pid $hpid)" test -n "$hpid"
FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=2 pgf "$TMP/pnt" migrate
expect_status 75 "a: a no-transaction step with another session connected: try later"
like "$err" "waiting up to 2 s for the 1 other session\(s\) on database 'appdb' \(old-replica; pid $hpid\) to end" \
	"a: says whom it waits for, and for how long"
like "$err" "1 other session\(s\) are still connected to database 'appdb' \(old-replica; pid $hpid\): a migration that runs outside a transaction is undone by restoring a snapshot, which would discard what they write; nothing was changed" \
	"a: then refuses, naming the session and why"
is "$(printf '%s\n' "$err" | grep -c 'still connected')" 1 "a: the refusal is said once"
like "$err" "still connected to database 'appdb' .*nothing was changed.*start again" \
	"a: in one line, what to do included"
unlike "$err" "applied 0002" "a: no migration ran"
same_state "$(pg_state)" "$state" "a: the database is unchanged"
no_ferry_tables "a"
no_snapshot "a"
pgf "$TMP/pnt" status --json
is "$(json 'j["journal"]')" none "a: no journal left"
check "a: the other session was left alone" kill -0 "$holdpid"
writes_work "a: after the refusal"

# the same session beside a transactional upgrade: nothing is waited for
FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=2 pgf "$TMP/p3" migrate
expect_status 0 "a: a transactional upgrade with the other session connected"
unlike "$err" "waiting up to|still connected" "a: it waits for nobody"
like "$err" "in one transaction" "a: one transaction, no snapshot"
is "$(ledger_versions)" "1 2 3" "a: at version 3"
no_snapshot "a: transactional"
is "$(session_pid old-replica)" "$hpid" "a: the other session is still connected"
writes_work "a: after the transactional upgrade"
end_hold

# ---- b. the other session leaves during the wait: ferry proceeds -------------------
v1_appdb
hold_connection
hpid=$(session_pid old-replica)
FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=30 pgf_bg "$TMP/b" "$TMP/pnt" migrate
fpid=$bgpid
if wait_for grep -q "waiting up to 30 s" "$TMP/b.err"; then
	pass "b: ferry waits for the other session"
else
	fail "b: ferry waits for the other session" "$(cat "$TMP/b.err")"
fi
like "$(cat "$TMP/b.err")" "1 other session\(s\) on database 'appdb' \(old-replica; pid $hpid\)" \
	"b: names it"
writes_refused "b: while ferry waits" "INSERT INTO users (name) VALUES ('refused')"
sleep 1
end_hold
wait_exit "$fpid" 60
collect_bg "$TMP/b" "b: ferry after the wait"
expect_status 0 "b: the session left: ferry proceeds and upgrades"
unlike "$err" "still connected" "b: no refusal"
is "$(ledger_versions)" "1 2" "b: at version 2"
is "$(qa "SELECT count(*) FROM users WHERE email IS NOT NULL")" 3 "b: the step ran"
writes_work "b: after the upgrade"

# ---- c. a writer that connects per row beside a slow upgrade -----------------------
# writer LOG STOP ERR: one session per row until STOP exists; a row's
# id:tag is logged once psql said it committed.
writer() {
	_i=0
	while [ ! -e "$2" ]; do
		_i=$((_i + 1))
		if _row=$(psql_as app appdb "INSERT INTO beside (tag) VALUES ('w$_i') RETURNING id || ':' || tag" \
			2>>"$3"); then
			[ -n "$_row" ] && echo "$_row" >>"$1"
		fi
		sleep 0.05
	done
}
# logged: how many rows the writer saw committed so far
logged() { wc -l <"$TMP/$name.log" | tr -d ' '; }
logged_at_least() { [ "$(logged)" -ge "$1" ]; }
start_writer() {
	name=$1
	rm -f "$TMP/$name.stop"
	: >"$TMP/$name.log"
	: >"$TMP/$name.werr"
	writer "$TMP/$name.log" "$TMP/$name.stop" "$TMP/$name.werr" &
	wpid=$!
	at_exit "touch '$TMP/$name.stop'; kill_tree $wpid"
	wait_for logged_at_least 5 || echo "# $name: the writer did not start: $(cat "$TMP/$name.werr")"
}
# stop_writer: once it has committed a few more rows after ferry ended
stop_writer() {
	_before=$(logged)
	wait_for logged_at_least $((_before + 5))
	check "$name: the writer commits again after ferry ended ($(logged) rows)" \
		logged_at_least $((_before + 5))
	touch "$TMP/$name.stop"
	wait "$wpid"
}
# no_lost_rows: every row the writer saw committed is in the table
no_lost_rows() {
	sort "$TMP/$name.log" >"$TMP/$name.seen"
	qa "SELECT id || ':' || tag FROM beside" | sort >"$TMP/$name.have"
	lost=$(comm -23 "$TMP/$name.seen" "$TMP/$name.have" | wc -l | tr -d ' ')
	is "$lost" 0 "$name: none of the $(logged) rows the writer saw committed is lost"
}
# refused_some: the writer was kept out during the window
refused_some() {
	check "$name: some of the writer's inserts were refused ($(grep -c 'read-only transaction' "$TMP/$name.werr") times)" \
		grep -q "cannot execute INSERT in a read-only transaction" "$TMP/$name.werr"
}

for variant in template logical; do
	# a failing upgrade after a committed step: restored, no row lost
	name="c-fail-$variant"
	w1_appdb
	[ "$variant" = logical ] && psql_su postgres "ALTER ROLE app NOCREATEDB" >/dev/null
	start_writer "$name"
	FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=60 pgf "$TMP/wbad" migrate
	# the writer's sessions may make ferry fall back to a logical snapshot
	printf '%s\n' "$err" | grep 'snapshot written' | sed "s/^/# $name: /"
	expect_status 70 "$name: the upgrade fails after the slow step committed"
	like "$err" "0003_bad" "$name: names the failing migration"
	like "$err" "database restored from .*, still at version 1" "$name: the snapshot was restored"
	[ "$variant" = logical ] && like "$err" "logical" "$name: a logical snapshot"
	stop_writer
	refused_some
	no_lost_rows
	is "$(ledger_versions)" 1 "$name: back at version 1"
	is "$(qa 'SELECT x FROM facts')" 1 "$name: the old data"
	check "$name: no trace of 0002" test "$(qa "SELECT to_regclass('counted') IS NULL")" = t
	writes_work "$name"

	# a succeeding upgrade: no row lost either
	name="c-ok-$variant"
	w1_appdb
	[ "$variant" = logical ] && psql_su postgres "ALTER ROLE app NOCREATEDB" >/dev/null
	start_writer "$name"
	FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=60 pgf "$TMP/wslow" migrate
	expect_status 0 "$name: the slow upgrade succeeds"
	stop_writer
	refused_some
	no_lost_rows
	is "$(ledger_versions)" "1 2" "$name: at version 2"
	is "$(qa 'SELECT x FROM facts')" 2 "$name: the migrated data"
	writes_work "$name"
done

# ---- d. a ferry killed mid-statement: the next one ends its session -----------------
w1_appdb
pgf_bg "$TMP/d" "$TMP/wsleep" migrate
fpid=$bgpid
sleeping="datname = 'appdb' AND state = 'active' AND query LIKE '%pg_sleep(30)%'"
if wait_for pg_true "SELECT count(*) = 1 FROM pg_stat_activity WHERE $sleeping"; then
	pass "d: the migration's pg_sleep(30) runs"
else
	fail "d: the migration's pg_sleep(30) runs" "$(cat "$TMP/d.err")"
fi
orphan=$(psql_su postgres "SELECT pid FROM pg_stat_activity WHERE $sleeping")
kill -KILL "$fpid"
{ wait "$fpid"; } 2>/dev/null
is "$?" 137 "d: ferry was killed"
collect_bg "$TMP/d" "d: the killed ferry"
is "$(psql_su postgres "SELECT state FROM pg_stat_activity WHERE pid = '$orphan'")" active \
	"d: its statement still runs on the server (pid $orphan)"
writes_refused "d: after the kill"
pgf "$TMP/wharm" migrate
expect_status 0 "d: the next ferry recovers and upgrades"
like "$err" "a ferry that died left its session on database 'appdb' running \(pid $orphan, active for [0-9]+ s\): ending it before migrating" \
	"d: warns that it ends the dead ferry's session"
like "$err" "the sessions of the earlier ferry have ended" "d: then says they ended"
check "d: the orphan's session is gone when ferry finishes" \
	pg_true "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = '$orphan'"
is "$(ledger_versions)" "1 2" "d: at the new version"
is "$(qa 'SELECT name FROM ferry_migrations WHERE version = 2')" 0002_harmless "d: with the new image's 0002"
check "d: no trace of the killed step" test "$(qa "SELECT to_regclass('slept') IS NULL")" = t
is "$(qa 'SELECT count(*) FROM beside')" 3 "d: the old rows are there"
is "$(invalid_indexes)" "" "d: no INVALID index"
no_ferry_tables "d"
writes_work "d: after the recovery"

# ---- e. a crash inside the window: writers stay out until the next recovery ----------
for point in journal:snapshotted journal:migrating pg:statement:2:2; do
	d="e $point"
	w1_appdb
	FERRY_TEST_CRASH_AT=$point pgf "$TMP/wslow" migrate
	expect_status 137 "$d: ferry killed itself there"
	writes_refused "$d: after the crash"
	FERRY_MIGRATIONS_TARGET_VERSION=1 pgf "$TMP/wslow" migrate
	expect_status 0 "$d: the recovery boot"
	is "$(ledger_versions)" 1 "$d: the database is at version 1"
	is "$(qa 'SELECT x FROM facts'; qa 'SELECT count(*) FROM beside')" "1
3" "$d: with the old data"
	writes_work "$d: after the recovery"
	pgf "$TMP/wslow" migrate
	expect_status 0 "$d: then the upgrade"
	is "$(ledger_versions)" "1 2" "$d: at version 2"
	writes_work "$d: after the upgrade"
done

# ---- f. sessions beside ferry that it must not trip over --------------------------------
# A ferry waiting for the migration lock holds no session on the database
# itself, and one waiting in it (no maintenance database) carries a mark;
# sessions of other processes that connect during the window are
# read-only, and a template restore ends them rather than give up. (f1) a
# waiting replica with an application_name of its own is not waited for
# as if it were the old release; (f2) with the default name it does not
# block the rename of a template restore; (f3) neither does a session of
# another process that connected during the window, and writers are not
# let in after a failed restore.
mkdir -p "$TMP/pbad"
cp "$TMP/pnt/0001_users.sql" "$TMP/pbad/"
cat >"$TMP/pbad/0002_email.sql" <<'EOF'
-- ferry:no-transaction
SELECT pg_sleep(2);
ALTER TABLE users ADD COLUMN email text;
EOF
cat >"$TMP/pbad/0003_bad.sql" <<'EOF'
INSERT INTO no_such_table VALUES (1);
EOF
if :; then
	# f1: two replicas named in the URL, the old release still connected
	v1_appdb
	hold_connection
	FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=10 URL="$PGURL?application_name=replica1" \
		pgf_bg "$TMP/f1a" "$TMP/pnt" migrate
	fpid=$bgpid
	wait_for grep -q "waiting up to 10 s" "$TMP/f1a.err"
	FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=60 URL="$PGURL?application_name=replica2" \
		pgf_bg "$TMP/f1b" "$TMP/pnt" migrate
	f2pid=$bgpid
	wait_for grep -q "waiting for another ferry" "$TMP/f1b.err"
	end_hold
	wait_exit "$fpid" 60
	collect_bg "$TMP/f1a" "f1: replica1"
	expect_status 0 "f1: the old release left: replica1 upgrades"
	unlike "$err" "replica2" "f1: the replica that waits for the lock is not waited for"
	wait_exit "$f2pid" 90
	collect_bg "$TMP/f1b" "f1: replica2"
	expect_status 0 "f1: replica2 then finds nothing to do"
	like "$err" "up to date" "f1: up to date"
	is "$(ledger_versions)" "1 2" "f1: at version 2"
	writes_work "f1"

	# f2: a template restore while another replica waits for the lock
	v1_appdb
	state=$(pg_state)
	pgf_bg "$TMP/f2a" "$TMP/pbad" migrate
	fpid=$bgpid
	wait_for pg_true "SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = 'appdb'
		AND state = 'active' AND query LIKE '%pg_sleep(2)%'"
	pgf_bg "$TMP/f2b" "$TMP/pbad" migrate
	f2pid=$bgpid
	wait_for grep -q "waiting for another ferry" "$TMP/f2b.err"
	wait_exit "$fpid" 90
	collect_bg "$TMP/f2a" "f2: replica1"
	like "$err" "template database appdb_pre_upgrade" "f2: replica1 took a template copy"
	expect_status 70 "f2: replica1's failed upgrade is restored, another replica waiting"
	like "$err" "database restored from .*, still at version 1" "f2: restored"
	unlike "$err" "restore failed|cannot swap" "f2: the waiting replica did not block the restore"
	wait_exit "$f2pid" 90
	collect_bg "$TMP/f2b" "f2: replica2"
	check "f2: replica2 fails the same way or refuses to retry (exit $rc)" \
		test "$rc" = 70 -o "$rc" = 75
	same_state "$(pg_state)" "$state" "f2: the database is as before"
	writes_work "f2"

	# f3: the old release connects during the window (read-only, but
	# connected): a template restore cannot rename appdb while it is there;
	# and a write accepted once ferry has ended must survive the next boot
	v1_appdb
	pgf_bg "$TMP/f3" "$TMP/pbad" migrate
	fpid=$bgpid
	wait_for pg_true "SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = 'appdb'
		AND state = 'active' AND query LIKE '%pg_sleep(2)%'"
	hold_connection
	wait_exit "$fpid" 90
	collect_bg "$TMP/f3" "f3"
	expect_status 70 "f3: restored, though a session connected during the upgrade"
	row=$(psql_as app appdb "INSERT INTO users (name) VALUES ('after ferry') RETURNING id" 2>/dev/null)
	end_hold
	pgf "$TMP/p1" migrate
	expect_status 0 "f3: the next boot"
	is "$(db_version)" 1 "f3: at version 1"
	if [ -n "$row" ]; then
		is "$(qa "SELECT count(*) FROM users WHERE name = 'after ferry'")" 1 \
			"f3: the row written once ferry had ended is kept"
	else
		pass "f3: writes stayed refused until the database was restored"
	fi
	writes_work "f3"
fi

# ---- g. a role's own default_transaction_read_only would win: refused ------------------
v1_appdb
state=$(pg_state)
psql_su postgres "ALTER ROLE weak SET default_transaction_read_only = off" >/dev/null
pgf "$TMP/pnt" migrate
expect_status 78 "g: a role sets default_transaction_read_only itself: refused"
like "$err" "role\(s\) weak set default_transaction_read_only of their own" "g: names the role"
same_state "$(pg_state)" "$state" "g: database unchanged"
is "$(psql_as app appdb "SHOW default_transaction_read_only")" off "g: writers are not kept out"
psql_su postgres "ALTER ROLE weak RESET default_transaction_read_only" >/dev/null
pgf "$TMP/pnt" migrate
expect_status 0 "g: with the role's setting gone, the upgrade runs"

secret_never_shown
done_testing
