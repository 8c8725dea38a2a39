#!/bin/sh
# Promise 1: after a kill -9 at any instant of an upgrade, the next boot
# finds the database exactly at the old version with the old data, or
# exactly at the new version with the migrated data, never in between.
# First at each named crash point (FERRY_TEST_CRASH_AT), then at random
# instants of a long upgrade.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"

POINT_ROWS=${POINT_ROWS:-20000}
RANDOM_ROWS=${RANDOM_ROWS:-150000}
RANDOM_RUNS=${RANDOM_RUNS:-50}

# c1: version 1; c3: 1..3, rewriting the whole table; cbad: 1, 2 and a 0003
# that fails after doing work.
mkdir -p "$TMP/c1" "$TMP/c3" "$TMP/cbad"
cat >"$TMP/c1/0001_items.sql" <<'EOF'
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL);
EOF
cat >"$TMP/c3/0002_rebuild_items.sql" <<'EOF'
CREATE TABLE items_new (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    qty INTEGER NOT NULL,
    total INTEGER NOT NULL
);
INSERT INTO items_new (id, name, qty, total) SELECT id, upper(name), qty, qty * 3 FROM items;
DROP TABLE items;
ALTER TABLE items_new RENAME TO items;
CREATE INDEX items_name ON items(name);
EOF
cat >"$TMP/c3/0003_summary.sql" <<'EOF'
UPDATE items SET qty = qty + 1, name = name || '/v3';
CREATE TABLE summary AS SELECT qty, count(*) AS n, sum(total) AS t FROM items GROUP BY qty;
EOF
cp "$TMP/c1/0001_items.sql" "$TMP/c3/"
# c3nt and cbadnt: the same with 0002 outside a transaction, so that it
# commits on its own and a crash or failure after it needs the snapshot
mkdir -p "$TMP/c3nt" "$TMP/cbadnt"
cp "$TMP/c3/0001_items.sql" "$TMP/c3/0002_rebuild_items.sql" "$TMP/cbad/"
cat >"$TMP/cbad/0003_bad.sql" <<'EOF'
UPDATE items SET qty = qty + 1, name = name || '/v3';
CREATE TABLE summary AS SELECT qty, count(*) AS n, sum(total) AS t FROM items GROUP BY qty;
DELETE FROM items WHERE id % 2 = 0;
INSERT INTO items (id, name, qty, total) VALUES (1, 'duplicate key', 0, 0);
EOF
for d in c3nt cbadnt; do
	src=c3; [ $d = cbadnt ] && src=cbad
	cp "$TMP/$src/"*.sql "$TMP/$d/"
	{ echo '-- ferry:no-transaction'; cat "$TMP/c3/0002_rebuild_items.sql"; } >"$TMP/$d/0002_rebuild_items.sql"
done

# make_refs ROWS: $TMP/ref-old.db (version 1 with ROWS items) and
# $TMP/ref-new.db (the same upgraded by ferry), their state sums in
# $old_sum and $new_sum.
make_refs() {
	new_db "ref$1"
	"$FERRY" migrate --database-url "sqlite://$DB" --migrations "$TMP/c1" 2>"$TMP/.err" ||
		echo "# setup failed: $(cat "$TMP/.err")"
	q "$DB" "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $1)
		INSERT INTO items (id, name, qty) SELECT x, 'item ' || x || ' ' || hex(randomblob(12)), x % 97 FROM c"
	cp "$DB" "$TMP/ref-old.db"
	new_db "refnew$1"
	cp "$TMP/ref-old.db" "$DB"
	t0=$(date +%s.%N)
	fy "$DB" "$TMP/c3" migrate
	t1=$(date +%s.%N)
	expect_status 0 "setup: reference upgrade of $1 rows"
	upgrade_seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	cp "$DB" "$TMP/ref-new.db"
	old_sum=$(state_sum "$TMP/ref-old.db")
	new_sum=$(state_sum "$TMP/ref-new.db")
	old_file=$(filesum "$TMP/ref-old.db")
	check "setup: old and new states differ" test "$old_sum" != "$new_sum"
	is "$(db_version "$TMP/ref-new.db")" 3 "setup: the reference is at version 3"
}

# old_or_new DB: "old", "new" or "between"
old_or_new() {
	_s=$(state_sum "$1")
	if [ "$_s" = "$old_sum" ]; then echo old
	elif [ "$_s" = "$new_sum" ]; then echo new
	else echo between; fi
}

# recover_boot SET: the boot after the crash, pinned to the old version:
# it resolves the journal, then finds nothing to do (old) or refuses
# because the database is ahead (new).  Sets $rc $err; $was is old/new/between.
recover_boot() {
	FERRY_MIGRATIONS_TARGET_VERSION=1 fy "$DB" "$1" migrate
	was=$(old_or_new "$DB")
}

# ---- every named crash point -------------------------------------------------
make_refs "$POINT_ROWS"

# crash_case POINT SET EXPECT: EXPECT is untouched (the database file was
# never written), rolledback (the upgrade's transaction never committed:
# recovery finds the old version and restores nothing, so that nothing
# written since the crash is lost), restored (something was committed:
# recovery must put the snapshot back), committed (the verified upgrade
# had committed: recovery keeps it) or either.
n=0
crash_case() {
	point=$1 set=$2 expect=$3
	n=$((n + 1))
	new_db "point$n"
	cp "$TMP/ref-old.db" "$DB"
	FERRY_TEST_CRASH_AT=$point fy "$DB" "$set" migrate
	expect_status 137 "$point: ferry killed itself there"
	if [ "$expect" = untouched ]; then
		is "$(filesum "$DB")" "$old_file" "$point: the database file was not touched"
	fi
	recover_boot "$set"
	case $was in
	old) is "$rc" 0 "$point: recovery boot finds the old version, nothing to do" ;;
	new) is "$rc" 65 "$point: recovery boot finds the new version, ahead of target 1" ;;
	*) fail "$point: old or new after the crash" "the database is in between (exit $rc)" "$err" ;;
	esac
	case $expect in
	untouched | restored | rolledback) is "$was" old "$point: the database is exactly the old one" ;;
	committed) is "$was" new "$point: the database is exactly the new one" ;;
	*) check "$point: the database is the old or the new one" test "$was" != between ;;
	esac
	case $expect in
	restored) like "$err" "[Rr]estor" "$point: the recovery log says it restored the snapshot" ;;
	rolledback)
		like "$err" "before it committed anything: the database is still at version 1, nothing to undo" \
			"$point: the recovery log says nothing was committed, nothing to undo"
		unlike "$err" "[Rr]estor" "$point: and restores nothing" ;;
	committed)
		like "$err" "after it was verified and committed" "$point: the recovery log says it was committed"
		unlike "$err" "database restored from|: restoring the database from" "$point: and restores nothing" ;;
	esac
	is "$(q "$DB" 'PRAGMA integrity_check')" ok "$point: integrity_check after recovery"
	check "$point: no journal after recovery" test ! -e "$DBDIR/.ferry/journal"
	no_leftovers "$DBDIR" "$point: no temp files after recovery"
	fy "$DB" "$TMP/c3" migrate
	expect_status 0 "$point: the next normal boot"
	is "$(old_or_new "$DB")" new "$point: reaches the new version with the migrated data"
}

crash_case journal:snapshotting "$TMP/c3" untouched
crash_case snapshot:mid "$TMP/c3" untouched
crash_case journal:snapshotted "$TMP/c3" untouched
crash_case journal:migrating "$TMP/c3" rolledback
crash_case migration:2:before-commit "$TMP/c3" rolledback
crash_case migration:2:after-commit "$TMP/c3" rolledback
crash_case migration:3:before-commit "$TMP/c3" rolledback
crash_case migration:3:after-commit "$TMP/c3" rolledback
crash_case journal:verifying "$TMP/c3" rolledback
crash_case journal:done "$TMP/c3" rolledback
crash_case upgrade:committed "$TMP/c3" committed
# a migration outside a transaction commits on its own: from then on a
# crash needs the snapshot
crash_case journal:migrating "$TMP/c3nt" rolledback
crash_case migration:2:after-commit "$TMP/c3nt" restored
crash_case migration:3:before-commit "$TMP/c3nt" restored
crash_case journal:verifying "$TMP/c3nt" restored
crash_case journal:done "$TMP/c3nt" restored
# during the restore after a failed migration
crash_case journal:restoring "$TMP/cbadnt" restored
crash_case restore:mid "$TMP/cbadnt" restored

# without a crash, the failing set is restored and says so
new_db nocrash
cp "$TMP/ref-old.db" "$DB"
fy "$DB" "$TMP/cbad" migrate
expect_status 70 "setup check: the failing set fails without a crash"
like "$err" "0003_bad failed: near line 4: .*UNIQUE constraint failed" "with the line and the error"
like "$err" "rolled back: nothing was committed" "rolled back, nothing committed"
is "$(old_or_new "$DB")" old "and is at the old state"
new_db nocrashnt
cp "$TMP/ref-old.db" "$DB"
fy "$DB" "$TMP/cbadnt" migrate
expect_status 70 "setup check: the failing set with 0002 outside a transaction fails"
like "$err" "database restored from" "and says it restored the snapshot"
is "$(old_or_new "$DB")" old "and is restored to the old state"

# ---- random instants -----------------------------------------------------------------
make_refs "$RANDOM_ROWS"
echo "# a full upgrade of $RANDOM_ROWS rows takes $upgrade_seconds s"
olds=0 news=0 bad=0
i=0
while [ $i -lt "$RANDOM_RUNS" ]; do
	i=$((i + 1))
	new_db "rnd"
	cp "$TMP/ref-old.db" "$DB"
	r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
	delay=$(awk -v r="$r" -v d="$upgrade_seconds" 'BEGIN { printf "%.3f", r / 65535 * d * 1.1 }')
	"$FERRY" migrate --database-url "sqlite://$DB" --migrations "$TMP/c3" \
		>/dev/null 2>"$TMP/rnd.err" &
	pid=$!
	sleep "$delay"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	krc=$?
	recover_boot "$TMP/c3"
	echo "# kill $i after $delay s: ferry exit $krc, then $was"
	case $was/$rc in
	old/0) olds=$((olds + 1)) ;;
	new/65) news=$((news + 1)) ;;
	*)
		bad=$((bad + 1))
		fail "random kill $i after $delay s (ferry exit $krc): old or new" \
			"state $was, recovery exit $rc" "$(printf '%s' "$err" | head -5)"
		;;
	esac
	if [ -e "$DBDIR/.ferry/journal" ]; then
		bad=$((bad + 1)); fail "random kill $i after $delay s: no journal after recovery"
	fi
	# now and then, the normal boot afterwards too
	if [ $((i % 10)) = 0 ]; then
		fy "$DB" "$TMP/c3" migrate
		if [ "$rc" != 0 ] || [ "$(old_or_new "$DB")" != new ]; then
			bad=$((bad + 1))
			fail "random kill $i: the next normal boot reaches the new version" "exit $rc" "$err"
		fi
	fi
done
echo "# random kills: $olds old, $news new, $bad bad"
is "$bad" 0 "$RANDOM_RUNS random kill -9 instants: always old or new ($olds old, $news new)"

done_testing
