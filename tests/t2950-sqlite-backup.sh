#!/bin/sh
# SQLite: ferry backup and restore round trip. A database with data plus an
# uploads tree with nested files, odd names and modes is archived, verified,
# and restored into an empty place: the database's .dump and the tree
# (names, modes, sizes, content) come back identical. -o - writes the same
# archive to stdout. An archive older than the image is restored and then
# upgraded by migrate; one newer than the image is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
command -v zstd >/dev/null || { echo "1..0 # skip no zstd CLI"; exit 0; }
make_std_migrations

tree() { (cd "$1" && find . -mindepth 1 -printf '%P %m %s\n' | LC_ALL=C sort); }
sums() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); }

v1_db live
fy "$DB" "$TMP/m3" migrate
expect_status 0 "setup: the database is at version 3"
UP=$TMP/live/uploads
mkdir -p "$UP/2024/01" "$UP/privé" "$UP/.tmp"
printf 'a photo' >"$UP/2024/01/photo one.jpg"
printf 'x%.0s' $(seq 1 3000) >"$UP/2024/01/big.bin"
printf 'dash' >"$UP/-leading-dash"
printf 'ü' >"$UP/privé/naïve ✓.txt"
printf 'secret' >"$UP/privé/key"
printf 'scratch' >"$UP/.tmp/partial"
printf 'old' >"$UP/2024/cache.tmp"
chmod 0600 "$UP/privé/key"
chmod 0750 "$UP/privé" "$UP/2024"
cat >"$TMP/live.ini" <<EOT
[backup]
paths = $UP
exclude = .tmp *.tmp
zstd_level = 5
threads = 2
EOT
LIVE=$DB
want_dump=$(dump "$LIVE")

run_ferry -c "$TMP/live.ini" --database-url "sqlite://$LIVE" --migrations "$TMP/m3" \
	backup -o "$TMP/a.ferry"
expect_status 0 "backup exits 0"
like "$err" "backup: $TMP/a.ferry written: [0-9]+ members, schema version 3" "backup logs what it wrote"
check "the archive is there" test -s "$TMP/a.ferry"
is "$(ls "$TMP" | grep -c 'a.ferry.tmp')" "0" "no temporary file is left"
is "$(zstd -dc "$TMP/a.ferry" | tar tf - 2>/dev/null | head -1)" "manifest.ini" "manifest.ini is the first member"
man=$(zstd -dc "$TMP/a.ferry" | tar xOf - manifest.ini 2>/dev/null)
like "$man" "^engine = sqlite$" "the manifest names the engine"
like "$man" "^schema_version = 3$" "the manifest names the schema version"
like "$man" "^f [0-9]+ 0600 [0-9]+ [0-9a-f]{64} paths/0/privé/key$" "the manifest has size and sha256 of each file"
unlike "$man" "partial|cache\.tmp" "excluded patterns are not archived"

run_ferry -c "$TMP/live.ini" --database-url "sqlite://$LIVE" --migrations "$TMP/m3" \
	restore "$TMP/a.ferry"
expect_status 0 "restore --mode verify (the default) exits 0"
like "$err" "verified: [0-9]+ members, sqlite schema version 3" "verify reports the archive"

# ---- restore into an empty place ----------------------------------------------
want_tree=$(tree "$UP" | grep -v -e '^\.tmp' -e 'cache\.tmp')
want_sums=$(sums "$UP" | grep -v -e '\.tmp')
mv "$TMP/live" "$TMP/gone"
mkdir -p "$TMP/live"
run_ferry -c "$TMP/live.ini" --database-url "sqlite://$LIVE" --migrations "$TMP/m3" \
	restore "$TMP/a.ferry" --mode replace
expect_status 0 "restore --mode replace into an empty place exits 0"
is "$(dump "$LIVE")" "$want_dump" "the database content is identical"
is "$(tree "$UP")" "$want_tree" "the tree (names, modes, sizes) is identical"
is "$(sums "$UP")" "$want_sums" "every file's content is identical"
check "no journal is left" test ! -e "$TMP/live/.ferry/restore.journal"
is "$(ls -a "$TMP/live" | grep -c 'restore')" "0" "no staging or .pre-restore is left"

# ---- replace over changed data ------------------------------------------------
sqlite3 "$LIVE" "DELETE FROM posts; INSERT INTO users (name) VALUES ('Zed')"
printf 'new' >"$UP/added-later"
rm "$UP/-leading-dash"
run_ferry -c "$TMP/live.ini" --database-url "sqlite://$LIVE" --migrations "$TMP/m3" \
	restore "$TMP/a.ferry" --mode replace
expect_status 0 "restore --mode replace over changed data exits 0"
is "$(dump "$LIVE")" "$want_dump" "the database is back to the archive's"
is "$(tree "$UP")" "$want_tree" "the tree is back to the archive's"

# ---- -o - -------------------------------------------------------------------
run_ferry -c "$TMP/live.ini" --database-url "sqlite://$LIVE" --migrations "$TMP/m3" \
	backup -o -
expect_status 0 "backup -o - exits 0"
printf '%s' "$out" >/dev/null
"$FERRY" -c "$TMP/live.ini" --database-url "sqlite://$LIVE" --migrations "$TMP/m3" \
	backup -o - >"$TMP/b.ferry" 2>/dev/null
run_ferry -c "$TMP/live.ini" --database-url "sqlite://$LIVE" --migrations "$TMP/m3" \
	restore "$TMP/b.ferry"
expect_status 0 "the archive written to stdout verifies"
is "$(zstd -dc "$TMP/b.ferry" | tar tf - 2>/dev/null | grep -c '^paths/0/privé/key$')" "1" "it holds the tree"

# ---- older and newer archives -------------------------------------------------
v1_db old
printf '[backup]\npaths = \n' >"$TMP/old.ini"
fy "$DB" "$TMP/m1" backup -o "$TMP/v1.ferry"
expect_status 0 "a version 1 archive is written"
new_db old-restored
fy "$DB" "$TMP/m3" restore "$TMP/v1.ferry" --mode replace
expect_status 0 "an archive older than the image is restored"
is "$(db_version "$DB")" "1" "it is restored at its own version"
fy "$DB" "$TMP/m3" migrate
expect_status 0 "migrate then upgrades it"
is "$(db_version "$DB")" "3" "to the image's version"
is "$(q "$DB" 'SELECT count(*) FROM users')" "3" "with its data"

new_db newer
fy "$DB" "$TMP/m1" migrate
sum=$(filesum "$DB")
fy "$DB" "$TMP/m1" restore "$TMP/a.ferry" --mode replace
expect_status 65 "an archive newer than the image is refused"
like "$err" "schema version 3 is newer than this image's 1" "the refusal names both versions"
is "$(filesum "$DB")" "$sum" "the database is untouched"
fy "$DB" "$TMP/m1" restore "$TMP/a.ferry"
expect_status 65 "verify refuses it too"

# ---- owners: [run] user, or the archive's with --keep-owners -------------------
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	v1_db owners
	mkdir -p "$DBDIR/files"
	printf 'a' >"$DBDIR/files/mine"
	printf 'b' >"$DBDIR/files/daemons"
	chown daemon "$DBDIR/files/daemons"
	printf '[backup]\npaths = %s/files\n[run]\nuser = nobody\n' "$DBDIR" >"$TMP/own.ini"
	run_ferry -c "$TMP/own.ini" --database-url "sqlite://$DB" --migrations "$TMP/m1" \
		backup -o "$TMP/own.ferry"
	run_ferry -c "$TMP/own.ini" --database-url "sqlite://$DB" --migrations "$TMP/m1" \
		restore "$TMP/own.ferry" --mode replace
	expect_status 0 "restore as root with [run] user"
	is "$(stat -c %U "$DBDIR/files/mine" "$DBDIR/files/daemons" "$DB" | sort -u)" "nobody" \
		"every restored file belongs to [run] user"
	run_ferry -c "$TMP/own.ini" --database-url "sqlite://$DB" --migrations "$TMP/m1" \
		restore "$TMP/own.ferry" --mode replace --keep-owners
	expect_status 0 "restore --keep-owners"
	is "$(stat -c %U "$DBDIR/files/mine") $(stat -c %U "$DBDIR/files/daemons")" "root daemon" \
		"--keep-owners keeps the archive's owners"
else
	skip "owners" "needs root and a 'nobody' user"
fi

# ---- a full disk: 73, no partial file -------------------------------------------
SMALL=$TMP/small
mkdir -p "$SMALL"
if mount -t tmpfs -o size=256k tmpfs "$SMALL" 2>/dev/null; then
	at_exit "umount '$SMALL' 2>/dev/null || umount -l '$SMALL' 2>/dev/null"
	v1_db full
	mkdir -p "$DBDIR/blobs"
	head -c 1048576 /dev/urandom >"$DBDIR/blobs/noise"
	printf '[backup]\npaths = %s/blobs\n' "$DBDIR" >"$TMP/full.ini"
	run_ferry -c "$TMP/full.ini" --database-url "sqlite://$DB" --migrations "$TMP/m1" \
		backup -o "$SMALL/full.ferry"
	expect_status 73 "a backup onto a full disk exits 73"
	is "$(ls -A "$SMALL")" "" "it leaves no partial or temporary file"
else
	skip "full disk" "cannot mount a tmpfs here"
fi

# ---- [backup] before_upgrade ---------------------------------------------------
v1_db pre
printf '[backup]\nbefore_upgrade = true\ndir = %s/pre-backups\n' "$TMP" >"$TMP/pre.ini"
v1_dump=$(dump "$DB")
run_ferry -c "$TMP/pre.ini" --database-url "sqlite://$DB" --migrations "$TMP/m3" migrate
expect_status 0 "an upgrade with before_upgrade = true succeeds"
like "$err" "before_upgrade: writing $TMP/pre-backups/pre-upgrade-[0-9TZ]+\.ferry" "it logs the archive it takes first"
arc=$(ls "$TMP"/pre-backups/pre-upgrade-*.ferry 2>/dev/null | head -1)
check "the archive is in [backup] dir" test -s "$arc"
is "$(db_version "$DB")" "3" "the upgrade ran after it"
new_db pre-restored
fy "$DB" "$TMP/m3" restore "$arc" --mode replace
expect_status 0 "the pre-upgrade archive restores"
is "$(dump "$DB")" "$v1_dump" "it holds the database as it was before the upgrade"

done_testing
