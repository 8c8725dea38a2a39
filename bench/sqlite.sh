#!/bin/sh
# bench/sqlite.sh: SQLite, against what an operator would use instead.
#   sqlite-snapshot      ferry snapshot vs sqlite3 .backup, VACUUM INTO, cp (~100 MiB)
#   sqlite-upgrade       ferry migrate vs a shell script (3 migrations, ~100 MiB table)
#   sqlite-fastpath      ferry run on an up-to-date database vs a docker-entrypoint.sh
#   sqlite-snapshot-1g   the snapshot comparison again at ~1 GiB (when disk and time allow)
BENCH_NAME=sqlite
. "$(dirname "$0")/lib.sh"

command -v sqlite3 >/dev/null || {
	for s in sqlite-snapshot sqlite-upgrade sqlite-fastpath sqlite-snapshot-1g; do
		skip $s "the sqlite3 shell is not installed (apt-get install sqlite3)"
	done
	exit 0
}

if [ "$QUICK" = 1 ]; then
	MIB=16 snap_rounds=3 up_rounds=2 fast_rounds=40
else
	MIB=100 snap_rounds=25 up_rounds=12 fast_rounds=300
fi

# ---- the migrations ------------------------------------------------------------
# p1: the table; p4: p1 plus a column, an index and a backfill.
M=$T/sqlite-migrations
mkdir -p "$M/p1" "$M/p4"
cat >"$M/p1/0001_items.sql" <<'EOF'
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    payload BLOB
);
EOF
cp "$M/p1/0001_items.sql" "$M/p4/"
echo 'ALTER TABLE items ADD COLUMN email_lower TEXT;' >"$M/p4/0002_email_lower.sql"
echo 'CREATE INDEX items_created_at ON items (created_at);' >"$M/p4/0003_items_created_at.sql"
echo 'UPDATE items SET email_lower = lower(email);' >"$M/p4/0004_backfill_email_lower.sql"

# make_db DIR MIB: DIR/app.db created by ferry at version 1, then filled
# to about MIB MiB (about 117 bytes a row, 64 of them random).
make_db() {
	mkdir -p "$1"
	"$FERRY" migrate --database-url "sqlite://$1/app.db" --migrations "$M/p1" \
		>"$T/make_db.log" 2>&1 || {
		echo "bench: ferry could not create the database:" >&2
		echo "  $FERRY migrate --database-url sqlite://$1/app.db --migrations $M/p1" >&2
		cat "$T/make_db.log" >&2
		exit 1
	}
	sqlite3 "$1/app.db" "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s
		WHERE i < $(($2 * 1048576 / 117)))
		INSERT INTO items (name, email, created_at, payload)
		SELECT 'user ' || i, 'User.' || i || '@Example.com', 1700000000 + i * 37 % 100000000,
		randomblob(64) FROM s"
	sync "$1/app.db"
}

# snapshot_bench NAME DIR ROUNDS: the snapshot comparison on DIR/app.db
snapshot_bench() {
	_d=$2
	_url="sqlite://$_d/app.db"
	_sz=$(stat -c %s "$_d/app.db")
	_how=
	ab "$1" <<-EOF
	title SQLite snapshot, $(human "$_sz")
	rounds $3
	warmup 1
	minrounds 3
	maxtime 240
	ref cp + sync
	subject ferry snapshot
	case ferry snapshot
	setup $FERRY cleanup --database-url $_url --migrations $M/p1 && sync
	exec $FERRY snapshot --database-url $_url --migrations $M/p1
	check test -f $_d/app.db.pre-upgrade
	case sqlite3 .backup
	setup rm -f $_d/peer.db && sync
	sh sqlite3 $_d/app.db ".backup '$_d/peer.db'" && sync $_d/peer.db
	case sqlite3 VACUUM INTO
	setup rm -f $_d/peer.db && sync
	sh sqlite3 $_d/app.db "VACUUM INTO '$_d/peer.db'" && sync $_d/peer.db
	case cp + sync
	setup rm -f $_d/peer.db && sync
	sh cp $_d/app.db $_d/peer.db && sync $_d/peer.db
	note Every copy is made durable: the peers end with \`sync FILE\` (fsync of that file; a no-op for the sqlite3 shell, which syncs itself). Setup (untimed) removes the previous copy and runs \`sync\`. The page cache is warm (the database was just written), as it is when a container is replaced on the same host. ferry's log line (first timed run): @HOW@
	EOF
	# the note needs ferry's log line, which exists only after the run
	_how=$(grep -h 'snapshot written' "$RES/$1".*.stderr 2>/dev/null | head -1 | sed 's|.*snapshot written: [^ ]* ||')
	sed -i "s|@HOW@|\`$_how\`|" "$RES/$1.md"
	rm -f "$_d/peer.db" "$_d/app.db.pre-upgrade"
}

# ---- snapshot, ~100 MiB --------------------------------------------------------------
S=$T/sqlite-snap
say "building a ~$MIB MiB database"
make_db "$S" "$MIB"
say "snapshot, $(human "$(stat -c %s "$S/app.db")")"
snapshot_bench sqlite-snapshot "$S" "$snap_rounds"

# ---- upgrade: a column, an index, a backfill ------------------------------------------
U=$T/sqlite-up
mkdir -p "$U"
cp "$S/app.db" "$T/pristine.db"
rm -rf "$S"
uurl="sqlite://$U/app.db"
reset="rm -rf $U/app.db $U/app.db.* $U/.ferry && cp $T/pristine.db $U/app.db && sync"
at4="test \"\$(sqlite3 $U/app.db 'SELECT max(version) FROM ferry_migrations')\" = 4"
say "upgrade, 3 migrations on $(human "$(stat -c %s "$T/pristine.db")")"
ab sqlite-upgrade <<EOF
title SQLite upgrade (add column, index, backfill)
rounds $up_rounds
warmup 1
minrounds 2
maxtime 240
ref shell script
subject ferry migrate
case ferry migrate
setup $reset
exec $FERRY migrate --database-url $uurl --migrations $M/p4
check $at4
case shell script
setup $reset
exec /bin/sh $BENCH_DIR/peers/sqlite-upgrade.sh $U/app.db $M/p4
check $at4
case careful shell script
setup $reset
exec /bin/sh $BENCH_DIR/peers/sqlite-upgrade.sh --careful $U/app.db $M/p4
check $at4
note The database starts at version 1 with $(human "$(stat -c %s "$T/pristine.db")") in \`items\`; the migrations are \`ALTER TABLE items ADD COLUMN email_lower TEXT\`, \`CREATE INDEX items_created_at ON items (created_at)\` and \`UPDATE items SET email_lower = lower(email)\`. Setup (untimed) puts the version-1 file back and runs \`sync\`. The shell script is bench/peers/sqlite-upgrade.sh: \`cp app.db app.db.bak\`, then \`sqlite3 -bail app.db < FILE\` and a ledger row per migration. The careful one adds what ferry does besides: quick_check before and after, \`sync\` of the copy, one transaction per migration with its ledger row, foreign_key_check.
EOF

# ---- the boot fast path -----------------------------------------------------------
reset_out=$(sh -c "$reset" 2>&1) || { echo "bench: $reset_out" >&2; exit 1; }
"$FERRY" migrate --database-url "$uurl" --migrations "$M/p4" >"$T/fast.log" 2>&1 || {
	echo "bench: ferry migrate failed: $(cat "$T/fast.log")" >&2
	exit 1
}
"$FERRY" cleanup --database-url "$uurl" --migrations "$M/p4" >/dev/null 2>&1
rm -f "$T/pristine.db"
sync
say "boot fast path on $(human "$(stat -c %s "$U/app.db")") at version 4"
TRUE=$(command -v true)
ab sqlite-fastpath <<EOF
title Boot fast path, SQLite at the image's version
rounds $fast_rounds
warmup 10
maxtime 120
ref entrypoint script
base true
subject ferry run
case true
exec $TRUE
case ferry run
exec $FERRY run --database-url $uurl --migrations $M/p4 -- $TRUE
$(if [ -n "$FERRY_STATIC" ]; then
	echo "case ferry run (static)"
	echo "exec $FERRY_STATIC run --database-url $uurl --migrations $M/p4 -- $TRUE"
fi)
case entrypoint script
exec /bin/sh $BENCH_DIR/peers/sqlite-entrypoint.sh $U/app.db $M/p4 $TRUE
case sqlite3 + test
sh test "\$(sqlite3 $U/app.db 'SELECT max(version) FROM ferry_migrations')" = 4 && exec $TRUE
note The database is the upgraded one above ($(human "$(stat -c %s "$U/app.db")"), version 4, 4 migration files). The entrypoint script is bench/peers/sqlite-entrypoint.sh (newest migration from \`ls | sed | sort | tail\`, version from \`sqlite3\`, compare, \`exec\`); "sqlite3 + test" is the least a script can do (the expected version written in). "ferry run" is build/ferry, dynamically linked: see the PID-1 table for what its start-up alone costs.
EOF
rm -rf "$U"

# ---- snapshot, ~1 GiB -----------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
	skip sqlite-snapshot-1g "quick mode (BENCH_QUICK=1)"
elif [ "$(free_mib "$T")" -lt 8192 ]; then
	skip sqlite-snapshot-1g "less than 8 GiB free in $T"
else
	G=$T/sqlite-snap-1g
	say "building a ~1 GiB database"
	make_db "$G" 1024
	say "snapshot, $(human "$(stat -c %s "$G/app.db")")"
	snapshot_bench sqlite-snapshot-1g "$G" 7
	rm -rf "$G"
fi
