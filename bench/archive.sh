#!/bin/sh
# bench/archive.sh: archives and the rebuild mode, against what an operator
# would run instead.
#   archive-backup    ferry backup vs tar --zstd of the same stopped data
#                     (a database plus a tree of files, ~1 GiB each)
#   archive-restore   ferry restore --mode replace vs tar -x --zstd + sync
#   archive-rebuild   a rebuild-mode upgrade vs sqlite3 old.db .dump | sqlite3 new.db
#   archive-rss       the peak RSS of each of ferry's runs above
BENCH_NAME=archive
. "$(dirname "$0")/lib.sh"

if ! command -v sqlite3 >/dev/null || ! command -v zstd >/dev/null || ! tar --help | grep -q -- --zstd; then
	for s in archive-backup archive-restore archive-rebuild archive-rss; do
		skip $s "sqlite3, zstd or a tar with --zstd is missing"
	done
	exit 0
fi
if [ "$QUICK" = 1 ]; then
	MIB=16 rounds=2
else
	MIB=1024 rounds=3
	if [ "$(free_mib "$T")" -lt $((MIB * 8)) ]; then
		for s in archive-backup archive-restore archive-rebuild archive-rss; do
			skip $s "less than $((MIB * 8)) MiB free in $T"
		done
		exit 0
	fi
fi

# ---- the data: a database at version 1 and an uploads tree ---------------------------
D=$T/app
M=$T/arch-migrations
mkdir -p "$D" "$M/v1" "$M/v2"
printf 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL,\n  email TEXT NOT NULL, created_at INTEGER NOT NULL, payload BLOB);\n' \
	>"$M/v1/0001_items.sql"
say "building a ~$MIB MiB database"
"$FERRY" migrate --database-url "sqlite://$D/app.db" --migrations "$M/v1" >"$T/mk.log" 2>&1 ||
	{ cat "$T/mk.log" >&2; exit 1; }
sqlite3 "$D/app.db" "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s
	WHERE i < $((MIB * 1048576 / 117)))
	INSERT INTO items (name, email, created_at, payload)
	SELECT 'user ' || i, 'User.' || i || '@Example.com', 1700000000 + i * 37 % 100000000,
	randomblob(64) FROM s"
# uploads: half incompressible (photos), half text-like (base64 of random
# bytes compresses to ~3/4), in files of 256 KiB to 4 MiB, 8 directories
say "building ~$MIB MiB of uploads"
python3 - "$D/uploads" "$MIB" <<'PY'
import base64, os, random, sys
root, mib = sys.argv[1], int(sys.argv[2])
random.seed(7)
left, n = mib * 1048576, 0
while left > 0:
    d = os.path.join(root, "d%02d" % (n % 8), "s%d" % (n % 3))
    os.makedirs(d, exist_ok=True)
    size = min(left, random.choice([262144, 1048576, 4194304]))
    if n % 2:
        data = os.urandom(size)
    else:
        data = base64.b64encode(os.urandom(size * 3 // 4))[:size]
    with open(os.path.join(d, "file %d.bin" % n), "wb") as f:
        f.write(data)
    left -= size
    n += 1
PY
sync
dbsz=$(stat -c %s "$D/app.db")
upsz=$(du -sb "$D/uploads" | cut -f1)
nfiles=$(find "$D/uploads" -type f | wc -l)
threads=$(nproc)
# ferry's zstd workers as many as the zstd -T peer's (the README sets
# [backup] threads the same way: the container's CPUs)
cat >"$T/ferry.ini" <<EOI
[database]
url = sqlite://$D/app.db
[migrations]
dir = $M/v1
[backup]
paths = $D/uploads
threads = $threads
EOI
export FERRY_CONFIG=$T/ferry.ini

say "backup of $(human "$dbsz") + $(human "$upsz") ($nfiles files)"
ab archive-backup <<EOB
title Backup: a $(human "$dbsz") database + $(human "$upsz") of files
rounds $rounds
warmup 1
minrounds 2
maxtime 900
ref tar --zstd
subject ferry backup
env FERRY_CONFIG=$T/ferry.ini
case ferry backup
setup rm -f $T/b.ferry && sync
exec $FERRY backup -o $T/b.ferry
check test -s $T/b.ferry
case tar --zstd
setup rm -f $T/b.tar.zst && sync
sh cd $D && tar --zstd -cf $T/b.tar.zst app.db uploads && sync $T/b.tar.zst
case tar + zstd -T$threads
setup rm -f $T/b.tar.zst && sync
sh cd $D && tar -cf - app.db uploads | zstd -q -T$threads -o $T/b.tar.zst && sync $T/b.tar.zst
note The database is at rest (the app stopped), as a \`tar\` of the volume needs. \`ferry backup\` writes manifest.ini with the size and sha256 of every member, the database through SQLite's online backup API, then the files, compressing with \`[backup] threads = $threads\` zstd workers; it writes to a temporary name, fsyncs and renames. The peers end with \`sync FILE\`. Sizes: @SIZES@
EOB
"$FERRY" backup -o "$T/b.ferry" >/dev/null 2>&1
(cd "$D" && tar -cf - app.db uploads | zstd -q -T"$threads" -o "$T/b.tar.zst" -f)
raw=$((dbsz + upsz))
sizes="ferry $(human "$(stat -c %s "$T/b.ferry")") (ratio $(awk -v a=$raw -v b="$(stat -c %s "$T/b.ferry")" 'BEGIN{printf "%.2f", a/b}')), tar + zstd $(human "$(stat -c %s "$T/b.tar.zst")") (ratio $(awk -v a=$raw -v b="$(stat -c %s "$T/b.tar.zst")" 'BEGIN{printf "%.2f", a/b}')), of $(human $raw)."
sed -i "s|@SIZES@|$sizes|" "$RES/archive-backup.md"

say "restore"
R=$T/restore
ab archive-restore <<EOB
title Restore of that archive
rounds $rounds
warmup 1
minrounds 2
maxtime 900
ref tar -x --zstd
subject ferry restore --mode replace
env FERRY_CONFIG=$T/ferry.ini
case ferry restore --mode replace
exec $FERRY restore $T/b.ferry --mode replace
check test -s $D/app.db
case ferry restore --mode verify
exec $FERRY restore $T/b.ferry --mode verify
case tar -x --zstd
setup rm -rf $R && mkdir -p $R && sync
sh tar --zstd -xf $T/b.tar.zst -C $R && sync
note \`--mode replace\` extracts and checks every member into a staging area, then swaps the database and the uploads tree in by journalled renames and fsyncs; \`--mode verify\` reads and checks the archive and writes nothing. \`tar -x\` checks nothing and writes over the target in place; it ends with \`sync\`.
EOB

# ---- rebuild: version 2 adds a column, one transform fills it ------------------------------
say "rebuild of $(human "$dbsz")"
RB=$T/rb
mkdir -p "$RB" "$M/rb/transforms"
cp "$D/app.db" "$T/pristine.db"
{
	echo '-- ferry:version 2'
	echo 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL,'
	echo '  email TEXT NOT NULL, created_at INTEGER NOT NULL, payload BLOB, email_lower TEXT);'
	echo 'CREATE INDEX items_created_at ON items (created_at);'
} >"$M/rb/schema.sql"
reset="rm -rf $RB/* $RB/.ferry && cp $T/pristine.db $RB/app.db && sync"
at2="test \"\$(sqlite3 $RB/app.db 'SELECT max(version) FROM ferry_migrations')\" = 2"
ab archive-rebuild <<EOB
title Rebuild of a $(human "$dbsz") SQLite database (a new column and an index)
rounds $rounds
warmup 1
minrounds 2
maxtime 900
ref dump and reload
subject ferry migrate (rebuild)
case ferry migrate (rebuild)
setup $reset
exec $FERRY -c /dev/null migrate --database-url sqlite://$RB/app.db --migrations $M/rb
env FERRY_MIGRATIONS_MODE=rebuild
check $at2
case dump and reload
setup $reset && rm -f $RB/new.db
sh sqlite3 $RB/app.db .dump | sqlite3 $RB/new.db && sync $RB/new.db
note ferry snapshots the old database, copies it to a staging file, builds a fresh database from schema.sql, copies every shared column across with ATTACH, checks integrity and foreign keys, and renames it in; the old file is untouched until then. The peer only copies (no snapshot, no check, no new schema) and ends with \`sync\`.
EOB

# ---- peak RSS ----------------------------------------------------------------------------
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
eval "$reset"
b=$(rss "$FERRY" backup -o "$T/c.ferry")
r=$(rss "$FERRY" restore "$T/c.ferry" --mode replace)
v=$(rss "$FERRY" restore "$T/c.ferry" --mode verify)
u=$(FERRY_MIGRATIONS_MODE=rebuild rss "$FERRY" -c /dev/null migrate --database-url "sqlite://$RB/app.db" --migrations "$M/rb")
tb=$(cd "$D" && rss tar --zstd -cf "$T/x.tar.zst" app.db uploads)
{
	echo "| run | peak RSS |"
	echo "|---|---|"
	for l in "ferry backup ($(human $raw))|$b" "ferry restore --mode replace|$r" \
		"ferry restore --mode verify|$v" "ferry migrate, rebuild of $(human "$dbsz")|$u" \
		"tar --zstd -c (for scale)|$tb"; do
		echo "| ${l%%|*} | $(awk -v k="${l##*|}" 'BEGIN { printf "%.1f MiB", k / 1024 }') |"
	done
	echo
	echo "Target: flat, under 64 MiB whatever the size. Measured with GNU time (\`%M\`, the maximum resident set)."
} >"$RES/archive-rss.md"
rm -rf "$D" "$RB" "$R" "$T"/*.ferry "$T"/*.zst "$T/pristine.db"
