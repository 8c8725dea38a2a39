#!/bin/sh
# SQLite: another process writes while ferry upgrades (the old release of
# a rolling update, a cron job, `docker compose run` beside the service).
# From the snapshot to the end of verification nobody else commits: their
# writes wait (or fail busy, loudly); a failed upgrade rolls back without
# a restore when nothing was committed, and a restore writes into the live
# file (same inode), so that no row the writer saw committed is ever lost.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
command -v python3 >/dev/null && python3 -c 'import sqlite3' 2>/dev/null ||
	{ echo "1..0 # skip python3 with sqlite3 is needed for the writer"; exit 0; }
WRITER=$TESTS_DIR/helpers/sqlite-writer.py

mkdir -p "$TMP/w1" "$TMP/wslow" "$TMP/wbad" "$TMP/wbadnt"
cat >"$TMP/w1/0001_base.sql" <<'SQL'
CREATE TABLE beside (id INTEGER PRIMARY KEY, at REAL);
CREATE TABLE facts (x INTEGER);
INSERT INTO facts VALUES (1);
SQL
# computes for a while, so that the writer tries during the upgrade
cat >"$TMP/w1/slow.sql" <<'SQL'
CREATE TABLE counted (n INTEGER);
INSERT INTO counted SELECT count(*) FROM
    (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1500000) SELECT i FROM c);
UPDATE facts SET x = x + 1;
SQL
cp "$TMP/w1/0001_base.sql" "$TMP/wslow/"
cp "$TMP/w1/slow.sql" "$TMP/wslow/0002_slow.sql"
cp "$TMP/wslow/"*.sql "$TMP/wbad/"
printf 'UPDATE facts SET x = 99;\nINSERT INTO no_such_table VALUES (1);\n' >"$TMP/wbad/0003_bad.sql"
cp "$TMP/wbad/0001_base.sql" "$TMP/wbad/0003_bad.sql" "$TMP/wbadnt/"
{ echo '-- ferry:no-transaction'; cat "$TMP/w1/slow.sql"; } >"$TMP/wbadnt/0002_slow.sql"
rm "$TMP/w1/slow.sql"

# base NAME MODE: $DB at version 1 in journal mode MODE (delete or wal)
base() {
	new_db "$1"
	"$FERRY" migrate --database-url "sqlite://$DB" --migrations "$TMP/w1" >/dev/null 2>&1
	q "$DB" "PRAGMA journal_mode = $2" >/dev/null
	rm -rf "$DBDIR/.ferry"
}

# logged: how many rows the writer saw committed so far
logged() { wc -l <"$TMP/$name.log" | tr -d ' '; }
logged_at_least() { test "$(logged)" -ge "$1"; }

# start_writer NAME [--keep-open]: the writer on $DB, once it has committed a few rows
start_writer() {
	name=$1
	shift
	rm -f "$TMP/$name.stop" "$TMP/$name.log"
	: >"$TMP/$name.log"
	python3 "$WRITER" "$DB" "$TMP/$name.log" "$TMP/$name.stop" "$@" \
		>"$TMP/$name.wout" 2>"$TMP/$name.werr" &
	wpid=$!
	at_exit "touch '$TMP/$name.stop'"
	wait_for logged_at_least 5
}

# stop_writer: once it has committed a few more rows after ferry ended
stop_writer() {
	_before=$(logged)
	wait_for logged_at_least $((_before + 5))
	check "$name: the writer commits again after ferry ended ($(logged) rows)" \
		test "$(logged)" -ge $((_before + 5))
	touch "$TMP/$name.stop"
	wait "$wpid"
}

# no_lost_rows: every id the writer saw committed is in the database
no_lost_rows() {
	sort -n "$TMP/$name.log" >"$TMP/$name.seen"
	q "$DB" 'SELECT id FROM beside ORDER BY id' | sort -n >"$TMP/$name.have"
	lost=$(comm -23 "$TMP/$name.seen" "$TMP/$name.have" | wc -l | tr -d ' ')
	is "$lost" 0 "$name: none of the $(logged) rows the writer saw committed is lost"
	is "$(q "$DB" 'PRAGMA integrity_check')" ok "$name: integrity_check"
}

# ---- a failing transactional upgrade: rolled back, nothing restored ---------------
for mode in delete wal; do
	for how in "" --keep-open; do
		base "fail-$mode$how" "$mode"
		start_writer "fail-$mode$how" $how
		fy "$DB" "$TMP/wbad" migrate
		expect_status 70 "$name: the upgrade fails"
		like "$err" "rolled back: nothing was committed, the database is still at version 1" \
			"$name: rolled back, nothing committed"
		unlike "$err" "database restored" "$name: no restore"
		stop_writer
		no_lost_rows
		is "$(ledger_versions "$DB")" 1 "$name: still at version 1"
		is "$(q "$DB" 'SELECT x FROM facts')" 1 "$name: the old data"
	done
done

# ---- a successful upgrade with a writer beside it ---------------------------------
base ok-wal wal
start_writer ok-wal --keep-open
fy "$DB" "$TMP/wslow" migrate
expect_status 0 "$name: the upgrade succeeds"
like "$err" "open in process [0-9]+ too: it can read during the upgrade" \
	"$name: ferry says another process has the database open"
stop_writer
no_lost_rows
is "$(ledger_versions "$DB")" "1 2" "$name: at version 2"
is "$(q "$DB" 'SELECT x FROM facts')" 2 "$name: with the migrated data"

# ---- a failure after a commit: the restore writes into the live file ------------------
for mode in delete wal; do
	base "restore-$mode" "$mode"
	ino=$(stat -c %i "$DB")
	start_writer "restore-$mode"
	fy "$DB" "$TMP/wbadnt" migrate
	expect_status 70 "$name: the upgrade fails after 0002 committed"
	like "$err" "database restored from" "$name: the snapshot was restored"
	is "$(stat -c %i "$DB")" "$ino" "$name: into the same file (inode kept)"
	stop_writer
	no_lost_rows
	is "$(ledger_versions "$DB")" 1 "$name: back at version 1"
	is "$(q "$DB" 'SELECT x FROM facts')" 1 "$name: the old data"
	is "$(q "$DB" "SELECT count(*) FROM sqlite_master WHERE name = 'counted'")" 0 \
		"$name: no trace of 0002"
done

# ---- outside a transaction, a WAL database held open elsewhere: refused --------------
base held wal
start_writer held --keep-open
sum=$(q "$DB" 'SELECT x FROM facts'; ledger_versions "$DB")
FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=1 fy "$DB" "$TMP/wbadnt" migrate
expect_status 75 "$name: try later"
like "$err" "waiting up to 1 s for process $wpid to close" "$name: says what it waits for"
like "$err" "still open in process $wpid: a migration that runs outside a transaction needs the database to itself; nothing was changed" \
	"$name: then refuses, naming the process"
is "$(printf '%s\n' "$err" | grep -c 'still open in')" 1 "$name: in one line"
stop_writer
no_lost_rows
is "$(q "$DB" 'SELECT x FROM facts'; ledger_versions "$DB")" "$sum" "$name: nothing was changed"
check "$name: no journal left" test ! -e "$DBDIR/.ferry/journal"

# ---- a COMMIT inside a migration cannot end ferry's transaction -------------------
mkdir -p "$TMP/wcommit"
cp "$TMP/wslow/"*.sql "$TMP/wcommit/"
printf 'CREATE TABLE t3 (x INTEGER);\nCOMMIT;\nINSERT INTO t3 VALUES (1);\n' >"$TMP/wcommit/0003_commit.sql"
for mode in delete wal; do
	base "commit-$mode" "$mode"
	start_writer "commit-$mode"
	fy "$DB" "$TMP/wcommit" migrate
	expect_status 70 "$name: a migration with COMMIT fails"
	like "$err" "0003_commit failed: line 2: COMMIT inside a migration would end the transaction ferry runs it in" \
		"$name: says why, with the line"
	like "$err" "rolled back: nothing was committed" "$name: nothing was committed"
	stop_writer
	no_lost_rows
	is "$(ledger_versions "$DB")" 1 "$name: still at version 1"
done

# ---- a reader that keeps its lock past the commit: try later ------------------------
# (rollback-journal mode: the commit needs every reader gone; ferry waits
# its busy timeout, 10 s, then gives up with nothing changed)
base reader delete
name=reader
rm -f "$TMP/reader.ready"
python3 -c "
import sqlite3, time, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('BEGIN'); c.execute('SELECT count(*) FROM facts').fetchall()
open(sys.argv[2], 'w').close()
time.sleep(float(sys.argv[3]))
c.execute('COMMIT')
" "$DB" "$TMP/reader.ready" 13 &
rpid=$!
at_exit "kill $rpid 2>/dev/null"
wait_for test -e "$TMP/reader.ready"
sum=$(q "$DB" 'SELECT x FROM facts'; ledger_versions "$DB")
fy "$DB" "$TMP/wslow" migrate
wait "$rpid"
expect_status 75 "$name: a reader keeps its lock past the busy timeout: try later"
like "$err" "other processes kept reading .* start again later" "$name: says why"
like "$err" "rolled back: nothing was committed" "$name: and that nothing was committed"
is "$(q "$DB" 'SELECT x FROM facts'; ledger_versions "$DB")" "$sum" "$name: nothing was changed"

done_testing
