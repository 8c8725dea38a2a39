#!/bin/sh
# SQLite: WAL readers and the files around the database.  A WAL database read by
# other processes while ferry migrates (their close must not checkpoint
# and delete the WAL under ferry); a damaged snapshot is never restored
# over an intact database; a restored or created database keeps its owner
# and mode; a create ignores stale sidecars of an older database; a
# read-only boot writes nothing, not even a checkpoint.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
make_std_migrations

# ---- 1. WAL: readers that come and go during the upgrade ------------------------------
# Each migration computes for a moment (and writes one row, so that no
# autocheckpoint hides a lost WAL), so that readers get to open and close
# the database while ferry is between migrations.  Old ferry dropped its
# POSIX locks on the file after the snapshot: a reader's close then found
# itself the last connection, checkpointed and deleted the WAL under
# ferry, and the later commits went to a deleted file (ledger 1 2 while
# ferry said "upgraded from 1 to 4").
mkdir -p "$TMP/mw" "$TMP/mw1"
printf 'CREATE TABLE t1 (x INTEGER);\nINSERT INTO t1 VALUES (1);\n' >"$TMP/mw1/0001_base.sql"
cp "$TMP/mw1/0001_base.sql" "$TMP/mw/"
for v in 2 3 4; do
	cat >"$TMP/mw/000${v}_t$v.sql" <<-EOF
	CREATE TABLE t$v (x INTEGER, n INTEGER);
	INSERT INTO t$v SELECT $v, count(*) FROM
	    (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1000000) SELECT i FROM c);
	EOF
done

applied_2() { grep -q 'applied 0002_t2' "$TMP/.err"; }

raced=0
for round in 1 2 3; do
	new_db "wal$round"
	"$FERRY" migrate --database-url "sqlite://$DB" --migrations "$TMP/mw1" >/dev/null 2>&1
	q "$DB" 'PRAGMA journal_mode = WAL' >/dev/null
	is "$(q "$DB" 'PRAGMA journal_mode')" wal "wal round $round: setup: a WAL-mode database at version 1"
	rm -rf "$DBDIR/.ferry"

	rdpid=
	start_bg "$FERRY" migrate --database-url "sqlite://$DB" --migrations "$TMP/mw"
	# migration 0002 has committed: ferry logs it after the commit
	if wait_for applied_2; then
		# a short reader that closes, then one that stays open
		q "$DB" 'SELECT count(*) FROM ferry_migrations' >/dev/null 2>&1
		(echo 'BEGIN; SELECT count(*) FROM ferry_migrations;'; sleep 5) | sqlite3 "$DB" >/dev/null 2>&1 &
		rdpid=$!
		at_exit "kill_tree $rdpid"
		wait_for test -s "$DB-shm"
		if exited "$bgpid"; then
			echo "# wal round $round: ferry had finished before the readers came"
		else
			raced=$((raced + 1))
		fi
	else
		echo "# wal round $round: ferry never logged 0002 applied: $(cat "$TMP/.err")"
	fi
	finish_bg
	expect_status 0 "wal round $round: the upgrade with readers coming and going"
	like "$err" 'upgraded from 1 to 4' "wal round $round: ferry says upgraded from 1 to 4"
	# while the open reader is still there
	is "$(ledger_versions "$DB")" "1 2 3 4" "wal round $round: the ledger holds 1..4"
	is "$(q "$DB" "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master WHERE name GLOB 't[0-9]' ORDER BY name)")" \
		"t1 t2 t3 t4" "wal round $round: the tables of 0002..0004 exist"
	is "$(q "$DB" 'SELECT (SELECT x FROM t3) || (SELECT x FROM t4)')" 34 \
		"wal round $round: with their rows"
	[ -n "$rdpid" ] && { kill_tree "$rdpid"; wait "$rdpid" 2>/dev/null; }
	is "$(ledger_versions "$DB")" "1 2 3 4" "wal round $round: the ledger holds 1..4 once the reader is gone"
	is "$(q "$DB" 'PRAGMA integrity_check')" ok "wal round $round: integrity_check"
done
check "wal: in at least one round the readers came while ferry was still migrating ($raced of 3)" \
	test "$raced" -ge 1

# same_dump DB EXPECTED-DUMP DESC: DB's .dump is EXPECTED-DUMP; a failure
# shows the start of the diff (lines cut short: the data is random blobs).
same_dump() {
	_got=$(dump "$1" 2>&1)
	if [ "$_got" = "$2" ]; then pass "$3"; return 0; fi
	fail "$3" ".dump differs (diff expected got, lines cut):" \
		"$(printf '%s\n' "$2" >"$TMP/.dump-exp"; printf '%s\n' "$_got" >"$TMP/.dump-got"
		   diff "$TMP/.dump-exp" "$TMP/.dump-got" | cut -c1-120 | head -20)"
}

# ---- 2. a damaged snapshot is not restored over the database --------------------------
v1_db damaged
q "$DB" "CREATE TABLE filler (b BLOB); INSERT INTO filler SELECT randomblob(1000) FROM
	(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200) SELECT i FROM c);"
before=$(dump "$DB")
cp "$DB" "$TMP/damaged-good.db"
# (a crash before anything committed needs no snapshot at all: t2200)
FERRY_TEST_CRASH_AT=migration:2:after-commit fy "$DB" "$TMP/m3nt" migrate
expect_status 137 "damaged: setup: ferry killed after 0002 (no transaction) committed"
check "damaged: setup: the snapshot exists" test -f "$DB.pre-upgrade"
check "damaged: setup: the journal exists" test -f "$DBDIR/.ferry/journal"
check "damaged: setup: the snapshot is larger than 8 KiB" test "$(stat -c %s "$DB.pre-upgrade")" -gt 8192
truncate -s 8192 "$DB.pre-upgrade"
before=$(dump "$DB") # as the crash left it: never replaced by a damaged copy
fy "$DB" "$TMP/m3nt" migrate
expect_status 74 "damaged snapshot: the next boot refuses to restore"
like "$err" "snapshot" "damaged snapshot: the message is about the snapshot"
like "$err" "$DB\.pre-upgrade" "damaged snapshot: and names it"
like "$err" "left as it is|left as is|left untouched|not replaced|unchanged|not touched" \
	"damaged snapshot: and says the database was left as it is"
same_dump "$DB" "$before" "damaged snapshot: the database .dump is identical to what the crash left"
is "$(q "$DB" 'PRAGMA integrity_check')" ok "damaged snapshot: the database passes integrity_check"
fy "$DB" "$TMP/m3nt" migrate
check "damaged snapshot: a second boot still refuses (exit $rc)" test "$rc" != 0
same_dump "$DB" "$before" "damaged snapshot: still identical after a second boot"
# the operator puts a good snapshot back: recovery, then the upgrade
cp "$TMP/damaged-good.db" "$DB.pre-upgrade"
fy "$DB" "$TMP/m3nt" migrate
expect_status 0 "damaged snapshot: with a good snapshot back in place, a boot upgrades"
is "$(ledger_versions "$DB")" "1 2 3" "damaged snapshot: to version 3"
is "$(q "$DB" 'SELECT count(*) FROM filler')" 200 "damaged snapshot: the data is there"
# the other way out: the journal and the bad snapshot deleted
v1_db damaged2
before=$(dump "$DB")
FERRY_TEST_CRASH_AT=migration:2:after-commit fy "$DB" "$TMP/m3nt" migrate
expect_status 137 "damaged (2): setup: ferry killed after 0002 committed"
truncate -s 8192 "$DB.pre-upgrade"
before=$(dump "$DB")
fy "$DB" "$TMP/m3nt" migrate
expect_status 74 "damaged (2): refused"
same_dump "$DB" "$before" "damaged (2): database identical"
rm -f "$DBDIR/.ferry/journal" "$DB.pre-upgrade"
fy "$DB" "$TMP/m3nt" migrate
expect_status 0 "damaged (2): journal and bad snapshot deleted: a boot upgrades"
is "$(ledger_versions "$DB")" "1 2 3" "damaged (2): to version 3"

# ---- 3. owner and mode are kept ---------------------------------------------------------
mkdir -p "$TMP/mbad"
# 0002 runs outside a transaction: it commits, so the failure of 0003
# needs the snapshot back
cp "$TMP/m3/0001_users.sql" "$TMP/m3nt/0002_email.sql" "$TMP/mbad/"
cat >"$TMP/mbad/0003_bad.sql" <<'EOF'
CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);
INSERT INTO no_such_table VALUES (1);
EOF
v1_db owned
chown nobody:nogroup "$DBDIR" "$DB"
chmod 0644 "$DB"
fy "$DB" "$TMP/mbad" migrate
expect_status 70 "owned by nobody: a failing migration is restored"
like "$err" "restored" "owned by nobody: says restored"
is "$(stat -c '%U:%G %a' "$DB")" "nobody:nogroup 644" \
	"owned by nobody: the restored file is still nobody's, mode 0644"
is "$(ledger_versions "$DB")" 1 "owned by nobody: still at version 1"
FERRY_RUN_USER=nobody fy "$DB" "$TMP/m1" run -- \
	sh -c "sqlite3 '$DB' \"INSERT INTO users (name) VALUES ('Nobody')\""
expect_status 0 "owned by nobody: after the restore, the server running as nobody writes"
unlike "$err" "readonly|read-only|unable to open" "owned by nobody: no read-only error"
is "$(q "$DB" "SELECT count(*) FROM users WHERE name = 'Nobody'")" 1 "owned by nobody: the row is there"
# an upgrade that succeeds keeps the owner too
fy "$DB" "$TMP/m3" migrate
expect_status 0 "owned by nobody: an upgrade"
is "$(stat -c '%U:%G %a' "$DB")" "nobody:nogroup 644" "owned by nobody: the upgraded file is still nobody's, 0644"
# a fresh create in a directory owned by nobody
new_db created
chown nobody:nogroup "$DBDIR"
FERRY_RUN_USER=nobody fy "$DB" "$TMP/m1" run -- \
	sh -c "sqlite3 '$DB' \"INSERT INTO users (name) VALUES ('Nobody')\""
expect_status 0 "created in nobody's directory: the server running as nobody writes"
unlike "$err" "readonly|read-only|unable to open" "created: no read-only error"
is "$(q "$DB" "SELECT count(*) FROM users WHERE name = 'Nobody'")" 1 "created: the row is there"
is "$(stat -c %U "$DB")" nobody "created: the database file is nobody's"

# ---- 4. a create ignores stale sidecars of an older database ---------------------------
# an older database's WAL with frames (table old), copied while its
# connection was open
new_db staleold
q "$DB" 'PRAGMA journal_mode = WAL' 'PRAGMA wal_autocheckpoint = 0' \
	'CREATE TABLE old (x INTEGER)' 'INSERT INTO old VALUES (42)' \
	".shell cp '$DB-wal' '$TMP/stale.db-wal'" >/dev/null
check "stale: setup: the copied WAL has frames" test "$(stat -c %s "$TMP/stale.db-wal")" -gt 32
new_db stale
cp "$TMP/stale.db-wal" "$DB-wal"
fy "$DB" "$TMP/m3" migrate
expect_status 0 "stale -wal: the database is created"
is "$(ledger_versions "$DB")" "1 2 3" "stale -wal: the ledger is there"
is "$(q "$DB" "SELECT count(*) FROM sqlite_master WHERE name IN ('users', 'posts')")" 2 \
	"stale -wal: the migrations' tables are there"
is "$(q "$DB" "SELECT count(*) FROM sqlite_master WHERE name = 'old'")" 0 "stale -wal: no table old"
is "$(q "$DB" 'PRAGMA integrity_check')" ok "stale -wal: integrity_check"
fy "$DB" "$TMP/m3" migrate
expect_status 0 "stale -wal: the next boot"
like "$err" "up to date" "stale -wal: finds it up to date"

# ---- 5. read-only boots write nothing ----------------------------------------------------
v1_db ro
q "$DB" 'PRAGMA journal_mode = WAL' >/dev/null
mkdir -p "$TMP/rocopy"
q "$DB" 'PRAGMA wal_autocheckpoint = 0' "INSERT INTO users (name) VALUES ('Dora')" \
	".shell cp '$DB' '$DB-wal' '$TMP/rocopy/'" >/dev/null
rm -f "$DB" "$DB-wal" "$DB-shm"
cp "$TMP/rocopy/app.db" "$TMP/rocopy/app.db-wal" "$DBDIR/"
check "read-only: setup: the WAL has frames" test "$(stat -c %s "$DB-wal")" -gt 32
dbsum=$(filesum "$DB"); walsum=$(filesum "$DB-wal")
# ro_reset: app.db and app.db-wal as copied (each boot below starts from them)
ro_reset() {
	rm -f "$DB" "$DB-wal" "$DB-shm"
	cp "$TMP/rocopy/app.db" "$TMP/rocopy/app.db-wal" "$DBDIR/"
	rm -rf "$DBDIR/.ferry"
}
ro_same() { # ro_same WHAT
	is "$(filesum "$DB")" "$dbsum" "read-only: $1: app.db byte-identical"
	check "read-only: $1: the -wal is still there" test -f "$DB-wal"
	is "$(filesum "$DB-wal" 2>/dev/null)" "$walsum" "read-only: $1: app.db-wal byte-identical"
}
fy "$DB" "$TMP/m3" migrate --dry-run
expect_status 0 "read-only: migrate --dry-run with pending migrations"
ro_same "--dry-run"
ro_reset
fy "$DB" "$TMP/m1" run -- true
expect_status 0 "read-only: ferry run -- true, up to date"
ro_same "up-to-date run"
ro_reset
fy "$DB" "$TMP/m1" migrate
expect_status 0 "read-only: migrate, up to date"
ro_same "up-to-date migrate"
ro_reset
fy "$DB" "$TMP/m1" status
expect_status 0 "read-only: status"
ro_same "status"
is "$(q "$DB" "SELECT count(*) FROM users WHERE name = 'Dora'")" 1 "read-only: the row in the WAL is still there"

# ---- 6. keep = 2: older snapshots move only once the new one is whole -------------------
new_db keep2
export FERRY_SNAPSHOT_KEEP=2
fy "$DB" "$TMP/m1" migrate
fy "$DB" "$TMP/m1" snapshot
expect_status 0 "keep=2: a first snapshot at version 1"
first=$(filesum "$DB.pre-upgrade")
FERRY_TEST_CRASH_AT=snapshot:mid fy "$DB" "$TMP/m3" migrate
expect_status 137 "keep=2: ferry killed while writing the next snapshot"
is "$(filesum "$DB.pre-upgrade")" "$first" "keep=2: the older snapshot is still the latest after the crash"
FERRY_MIGRATIONS_TARGET_VERSION=1 fy "$DB" "$TMP/m3" migrate
expect_status 0 "keep=2: the next boot discards the partial snapshot"
check "keep=2: no partial snapshot left" test ! -e "$DB.pre-upgrade.new" -a ! -e "$DB.pre-upgrade.new.tmp" -a ! -e "$DB.pre-upgrade.tmp"
fy "$DB" "$TMP/m3" migrate
expect_status 0 "keep=2: then the upgrade runs"
check "keep=2: the older snapshot moved to .1" test -e "$DB.pre-upgrade.1"
is "$(filesum "$DB.pre-upgrade.1")" "$first" "keep=2: .1 is the first snapshot"
unset FERRY_SNAPSHOT_KEEP

done_testing
