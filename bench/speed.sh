#!/bin/sh
# bench/speed.sh: the targets of issue 13 that SQLite can show.
#   disk                 the disk's own limit: sequential write with fdatasync, O_DIRECT read
#   sqlite-fastpath-200  the boot fast path with 200 migrations shipped, against tini-static
#   sqlite-batch         1000 small migrations onto a new database: dbmate, one transaction
#   sqlite-upgrade-1g    1 GiB, one cheap migration: ferry migrate against cp + sync
#   sqlite-rss           peak RSS of upgrade, restore and snapshot on 1 GiB
#   sqlite-reflink       snapshot and upgrade on an XFS loop mount with reflinks
BENCH_NAME=speed
. "$(dirname "$0")/lib.sh"

ALL="disk sqlite-fastpath-200 sqlite-batch sqlite-upgrade-1g sqlite-rss sqlite-reflink"
command -v sqlite3 >/dev/null || {
	for s in $ALL; do skip "$s" "the sqlite3 shell is not installed (apt-get install sqlite3)"; done
	exit 0
}
TRUE=$(command -v true)
if [ "$QUICK" = 1 ]; then
	GMIB=64 disk_mib=128 fast_rounds=40 batch_rounds=2 up_rounds=2 ref_rounds=2
else
	GMIB=1024 disk_mib=1024 fast_rounds=300 batch_rounds=10 up_rounds=5 ref_rounds=5
fi

# ---- the disk's own limit -----------------------------------------------------------
# dd_rate ARGS: dd's own figure from its last line ("..., 1.2 s, 870 MB/s")
dd_rate() { dd "$@" 2>&1 | tail -1 | awk -F', ' '{ print $NF }'; }
if [ "$(free_mib "$T")" -lt $((disk_mib * 2)) ]; then
	skip disk "less than $((disk_mib * 2)) MiB free in $T"
else
	say "the disk: $disk_mib MiB written with fdatasync, read with O_DIRECT, three times"
	w= r=
	for i in 1 2 3; do
		w="$w | $(dd_rate if=/dev/zero of="$T/dd.bin" bs=1M count=$disk_mib conv=fdatasync)"
		r="$r | $(dd_rate if="$T/dd.bin" of=/dev/null bs=1M iflag=direct)"
	done
	rm -f "$T/dd.bin"
	{
		echo "| what | run 1 | run 2 | run 3 |"
		echo "|---|---:|---:|---:|"
		echo "| sequential write of $disk_mib MiB, \`dd bs=1M conv=fdatasync\` $w |"
		echo "| sequential read of $disk_mib MiB, \`dd bs=1M iflag=direct\` (no page cache) $r |"
		echo
		echo "On the file system of the scratch directory ($(findmnt -n -o FSTYPE -T "$T" 2>/dev/null || echo '?') on $(findmnt -n -o SOURCE -T "$T" 2>/dev/null || echo '?')), dd's own MB/s (10^6 bytes a second), measured in the same run as the tables below. A durable copy cannot be faster than the write rate: at it, writing 1 GiB takes 1074 MB / (MB/s) seconds, the floor of every 1 GiB snapshot and upgrade below. Those read from a warm page cache, so the read rate is what a cold start would add."
	} >"$RES/disk.md"
fi

# ---- boot fast path, 200 migrations shipped -----------------------------------------
M=$T/migrations
M200=$M/m200
mkdir -p "$M200"
i=1
while [ $i -le 200 ]; do
	printf -- '-- migration %d of the app\nCREATE TABLE t%d (id INTEGER PRIMARY KEY, v TEXT);\nCREATE INDEX t%d_v ON t%d (v);\n' \
		$i $i $i $i >"$M200/$(printf '%04d' $i)_t$i.sql"
	i=$((i + 1))
done
F=$T/fast200
mkdir -p "$F"
"$FERRY" migrate --database-url "sqlite://$F/app.db" --migrations "$M200" >"$T/f200.log" 2>&1 || {
	echo "bench: ferry migrate (200 migrations) failed: $(cat "$T/f200.log")" >&2
	exit 1
}
rm -rf "$F/.ferry"
sync
say "boot fast path, 200 migrations shipped"
ref=true
TINIS=$(command -v tini-static || true)
[ -n "$TINIS" ] && ref=tini-static
subject="ferry run"
[ -n "$FERRY_STATIC" ] && subject="ferry run (static)"
{
	echo "title Boot fast path, SQLite at the image's version, 200 migrations shipped"
	echo "rounds $fast_rounds"
	echo "warmup 10"
	echo "maxtime 150"
	echo "ref $ref"
	echo "base true"
	echo "subject $subject"
	echo "case true"
	echo "exec $TRUE"
	if [ -n "$TINIS" ]; then
		echo "case tini-static"
		echo "exec $TINIS -s -- $TRUE"
	fi
	if [ -n "$FERRY_STATIC" ]; then
		echo "case ferry run (static)"
		echo "exec $FERRY_STATIC run --database-url sqlite://$F/app.db --migrations $M200 -- $TRUE"
	fi
	echo "case ferry run"
	echo "exec $FERRY run --database-url sqlite://$F/app.db --migrations $M200 -- $TRUE"
	echo "note The database was created by ferry from the 200 files (each a comment line, a CREATE TABLE and a CREATE INDEX) and is at version 200: at every boot ferry reads every file, checks its sha256 against the ledger, finds nothing to do, writes nothing and execs the command. \`tini-static -s\` (a subreaper, as ferry is) is the peer of the static binary (the target: within 1 ms of it at the median); \"minus true\" is what each adds to starting \`true\` itself. \"ferry run\" is build/ferry, the dynamically linked development build."
} | ab sqlite-fastpath-200
rm -rf "$F"

# ---- 1000 small migrations onto a new database ---------------------------------------
MB=$M/m1000
MD=$M/m1000-dbmate
mkdir -p "$MB" "$MD"
i=1
while [ $i -le 1000 ]; do
	body=$(printf "CREATE TABLE t%d (id INTEGER PRIMARY KEY, v TEXT NOT NULL);\nINSERT INTO t%d (v) VALUES ('row %d');" $i $i $i)
	printf '%s\n' "$body" >"$MB/$(printf '%04d' $i)_t$i.sql"
	printf -- '-- migrate:up\n%s\n\n-- migrate:down\nDROP TABLE t%d;\n' "$body" $i \
		>"$MD/$((20240101000000 + i))_t$i.sql"
	i=$((i + 1))
done
{ echo 'BEGIN;'; cat "$MB"/*.sql; echo 'COMMIT;'; } >"$T/m1000-one.sql"
B=$T/batch
mkdir -p "$B"
dbmate_v=
[ -n "$DBMATE" ] && dbmate_v=$("$DBMATE" --version | sed 's/.*version //')
say "1000 migrations onto a new database"
{
	echo "title 1000 small migrations onto a new SQLite database"
	echo "rounds $batch_rounds"
	echo "warmup 1"
	echo "minrounds 3"
	echo "maxtime 240"
	echo "ref sqlite3, one transaction"
	echo "subject ferry migrate"
	echo "case ferry migrate"
	echo "setup rm -rf $B/app.db* $B/.ferry && sync"
	echo "exec $FERRY migrate --database-url sqlite://$B/app.db --migrations $MB"
	echo "check test \"\$(sqlite3 $B/app.db 'SELECT count(*) FROM ferry_migrations')\" = 1000"
	if [ -n "$DBMATE" ]; then
		echo "case dbmate $dbmate_v"
		echo "setup rm -rf $B/app.db* && sync"
		echo "exec $DBMATE --url sqlite:$B/app.db --migrations-dir $MD --no-dump-schema up"
		echo "check test \"\$(sqlite3 $B/app.db 'SELECT count(*) FROM schema_migrations')\" = 1000"
	fi
	echo "case sqlite3, one transaction"
	echo "setup rm -rf $B/app.db* && sync"
	echo "sh sqlite3 -bail $B/app.db < $T/m1000-one.sql && sync $B/app.db"
	echo "check test \"\$(sqlite3 $B/app.db 'SELECT v FROM t1000')\" = 'row 1000'"
	echo "note Each migration is \`CREATE TABLE tN (id INTEGER PRIMARY KEY, v TEXT NOT NULL)\` and one \`INSERT\`. ferry builds a new database under a temporary name that a crash leaves to be deleted (synchronous = OFF, journal in memory, locking_mode EXCLUSIVE), each migration with its ledger row in a transaction of its own, then fsyncs the file, renames it and fsyncs the directory before it says \"database created\". dbmate${dbmate_v:+ $dbmate_v} (npm's package, installed by bench/peers.sh) commits each migration with SQLite's defaults (the database and its rollback journal fsynced at every commit). \"sqlite3, one transaction\" is the same 1000 scripts between one BEGIN and COMMIT, then \`sync FILE\`: no ledger, no check, one failure undoes all. Setup (untimed) removes the database.${DBMATE:+}$([ -z "$DBMATE" ] && echo ' dbmate was not measured: bench/peers.sh could not install it (npm).')"
} | ab sqlite-batch
rm -rf "$B"

# ---- 1 GiB, one cheap migration -------------------------------------------------------
# g_db DIR: DIR/app.db at version 1 (made by ferry), then about GMIB MiB of rows
P1=$M/g1
P2=$M/g2
mkdir -p "$P1" "$P2"
cat >"$P1/0001_items.sql" <<'EOF'
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    payload BLOB
);
EOF
cp "$P1/0001_items.sql" "$P2/"
echo 'CREATE TABLE notes (id INTEGER PRIMARY KEY, item_id INTEGER, body TEXT);' >"$P2/0002_notes.sql"
g_db() {
	mkdir -p "$1"
	"$FERRY" migrate --database-url "sqlite://$1/app.db" --migrations "$P1" >"$T/g.log" 2>&1 ||
		{ echo "bench: ferry migrate failed: $(cat "$T/g.log")" >&2; exit 1; }
	sqlite3 "$1/app.db" "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s
		WHERE i < $(($2 * 1048576 / 117)))
		INSERT INTO items (name, email, created_at, payload)
		SELECT 'user ' || i, 'User.' || i || '@Example.com', 1700000000 + i * 37 % 100000000,
		randomblob(64) FROM s"
	rm -rf "$1/.ferry"
	sync "$1/app.db"
}
# undo DIR: the version-1 state again without copying the file (the
# migration only added a table and a ledger row)
undo() {
	echo "rm -rf $1/.ferry $1/app.db.pre-upgrade $1/app.db.bak $1/peer.db && sqlite3 $1/app.db \"DROP TABLE IF EXISTS notes; DELETE FROM ferry_migrations WHERE version > 1\" && sync"
}
at2() { echo "test \"\$(sqlite3 $1/app.db 'SELECT max(version) FROM ferry_migrations')\" = 2"; }

G=$T/g
if [ "$(free_mib "$T")" -lt $((GMIB * 4)) ]; then
	for s in sqlite-upgrade-1g sqlite-rss; do skip $s "less than $((GMIB * 4)) MiB free in $T"; done
else
	say "building a ~$GMIB MiB database"
	g_db "$G" "$GMIB"
	gsize=$(human "$(stat -c %s "$G/app.db")")
	say "upgrade of $gsize, one cheap migration"
	ab sqlite-upgrade-1g <<-EOF
	title SQLite upgrade of $gsize, one cheap migration
	rounds $up_rounds
	warmup 1
	minrounds 2
	maxtime 300
	ref cp + sync
	subject ferry migrate
	case ferry migrate
	setup $(undo "$G")
	exec $FERRY migrate --database-url sqlite://$G/app.db --migrations $P2
	check $(at2 "$G")
	case careful shell script
	setup $(undo "$G")
	exec /bin/sh $BENCH_DIR/peers/sqlite-upgrade.sh --careful $G/app.db $P2
	check $(at2 "$G")
	case cp + sync
	setup $(undo "$G")
	sh cp $G/app.db $G/peer.db && sync $G/peer.db
	note The database: $gsize in one table \`items\` at version 1; the migration is \`CREATE TABLE notes (...)\`. ferry: quick_check of the whole file (a damaged database is refused before anything is written), the snapshot (\`copy_file_range\` here: $(findmnt -n -o FSTYPE -T "$T" 2>/dev/null || echo '?') has no reflinks; temp name, fsync, rename, fsync of the directory), the migration with its ledger row in the held transaction, the check of what it wrote, the commit (fsync). "cp + sync" is the copy alone, the physical floor (see the disk table for the disk's own rate). The careful shell script is bench/peers/sqlite-upgrade.sh --careful (quick_check before and after, cp and sync of the copy, one transaction per migration). Setup (untimed) drops the new table, deletes its ledger row and removes the snapshot: the same version-1 file every round, without copying it back.
	EOF

	# ---- peak RSS ------------------------------------------------------------------
	rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
	if [ -x /usr/bin/time ]; then
		sh -c "$(undo "$G")"
		ru=$(rss "$FERRY" migrate --database-url "sqlite://$G/app.db" --migrations "$P2")
		rr=$(rss "$FERRY" rollback --database-url "sqlite://$G/app.db" --migrations "$P2")
		"$FERRY" cleanup --database-url "sqlite://$G/app.db" --migrations "$P1" >/dev/null 2>&1
		rs=$(rss "$FERRY" snapshot --database-url "sqlite://$G/app.db" --migrations "$P1")
		rc=$(rss cp "$G/app.db" "$G/peer.db")
		rq=$(rss sqlite3 "$G/app.db" 'PRAGMA quick_check')
		rm -f "$G/peer.db"
		sh -c "$(undo "$G")"
		{
			echo "| run on $gsize | peak RSS |"
			echo "|---|---:|"
			echo "| ferry migrate (check, snapshot, migration, check, commit) | $((ru / 1024)) MiB ($ru KiB) |"
			echo "| ferry rollback (the restore of that snapshot) | $((rr / 1024)) MiB ($rr KiB) |"
			echo "| ferry snapshot | $((rs / 1024)) MiB ($rs KiB) |"
			echo "| cp (for comparison) | $((rc / 1024)) MiB ($rc KiB) |"
			echo "| sqlite3 PRAGMA quick_check (for comparison) | $((rq / 1024)) MiB ($rq KiB) |"
			echo
			echo "Maximum resident set size from GNU time (\`%M\`), one run each, of build/ferry. The target is a flat figure under 64 MiB whatever the size: the copies go through the kernel (\`copy_file_range\`, reflinks) and SQLite's page cache is bounded."
		} >"$RES/sqlite-rss.md"
	else
		skip sqlite-rss "/usr/bin/time (GNU time) is not installed"
	fi
fi

# ---- reflinks: XFS on a loop device ---------------------------------------------------------
reflink_skip() { skip sqlite-reflink "$1"; }
if [ "$(id -u)" != 0 ]; then
	reflink_skip "the loop mount needs root"
elif ! command -v mkfs.xfs >/dev/null || ! command -v losetup >/dev/null; then
	reflink_skip "mkfs.xfs is not installed (apt-get install xfsprogs)"
elif [ "$(free_mib "$T")" -lt $((GMIB * 5)) ]; then
	reflink_skip "less than $((GMIB * 5)) MiB free in $T"
else
	X=$T/xfs
	mkdir -p "$X/mnt"
	truncate -s $((GMIB * 3 + 1024))M "$X/fs.img"
	if ! mkfs.xfs -q -m reflink=1 "$X/fs.img" >"$X/mkfs.log" 2>&1 ||
		! mount -o loop "$X/fs.img" "$X/mnt" >"$X/mount.log" 2>&1; then
		reflink_skip "no XFS loop mount here: $(cat "$X/mkfs.log" "$X/mount.log" | head -2 | tr '\n' ' ')"
	else
		at_exit "umount $X/mnt"
		XG=$X/mnt/g XS=$X/mnt/s
		if [ -d "$G" ] && [ -f "$G/app.db" ]; then
			mkdir -p "$XG" && cp "$G/app.db" "$XG/app.db"
		else
			g_db "$XG" "$GMIB"
		fi
		g_db "$XS" $((GMIB / 10))
		sync
		xg=$(human "$(stat -c %s "$XG/app.db")") xs=$(human "$(stat -c %s "$XS/app.db")")
		say "reflinks: snapshots and an upgrade on XFS"
		ab sqlite-reflink <<-EOF
		title SQLite on XFS with reflinks
		rounds $ref_rounds
		warmup 1
		minrounds 2
		maxtime 240
		ref cp + sync, large
		subject ferry snapshot, large
		case ferry snapshot, large
		setup $FERRY cleanup --database-url sqlite://$XG/app.db --migrations $P1 && sync
		exec $FERRY snapshot --database-url sqlite://$XG/app.db --migrations $P1
		case ferry snapshot, small
		setup $FERRY cleanup --database-url sqlite://$XS/app.db --migrations $P1 && sync
		exec $FERRY snapshot --database-url sqlite://$XS/app.db --migrations $P1
		case ferry migrate, large
		setup $(undo "$XG")
		exec $FERRY migrate --database-url sqlite://$XG/app.db --migrations $P2
		check $(at2 "$XG")
		case cp --reflink + sync, large
		setup rm -f $XG/peer.db && sync
		sh cp --reflink=always $XG/app.db $XG/peer.db && sync $XG/peer.db
		case cp + sync, large
		setup rm -f $XG/peer.db && sync
		sh cp --reflink=never $XG/app.db $XG/peer.db && sync $XG/peer.db
		note "large" is a database of $xg, "small" one of $xs. A $((GMIB * 3 + 1024)) MiB file in the scratch directory made into XFS (\`mkfs.xfs -m reflink=1\`) and loop-mounted. ferry's snapshot takes a reflink (FICLONE) when the file system has them: the copy shares the blocks, so its time does not grow with the size; ferry migrate is the same upgrade as in the 1 GiB table (the quick_check before it still reads the whole file). "cp + sync" makes a full copy (\`--reflink=never\`). ferry's log line (first timed run): @HOW@
		EOF
		how=$(grep -h 'snapshot written' "$RES/sqlite-reflink".*.stderr 2>/dev/null | head -1 | sed 's|.*snapshot written: [^ ]* ||')
		sed -i "s|@HOW@|\`$how\`|" "$RES/sqlite-reflink.md"
	fi
fi
rm -rf "$G"
