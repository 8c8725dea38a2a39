#!/bin/sh
# SQLite refusals: each case exits with its status and a message, and the
# database is untouched (same bytes, no snapshot, no journal).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
make_std_migrations

# untouched DESC: the database at $DB still has the bytes $sum, no snapshot
# and no journal were left.
untouched() {
	is "$(filesum "$DB")" "$sum" "$1: database unchanged"
	check "$1: no snapshot" test ! -e "$DB.pre-upgrade"
	check "$1: no journal" test ! -e "$DBDIR/.ferry/journal"
	no_leftovers "$DBDIR" "$1: no other files"
}

# ---- checksum mismatch ---------------------------------------------------------
v1_db cks
cp -r "$TMP/m3" "$TMP/medit"
printf -- '-- an edit after release\n' >>"$TMP/medit/0001_users.sql"
sum=$(filesum "$DB")
fy "$DB" "$TMP/medit" migrate
expect_status 65 "a migration edited after it was applied"
like "$err" "checksum|sha256|changed after it was applied" "says the file changed"
like "$err" "0001_users" "names the migration"
untouched "checksum mismatch"

# ---- dirty ledger row ---------------------------------------------------------------
v1_db dirty
q "$DB" "INSERT INTO ferry_migrations (version, name, sha256, applied_at, duration_ms, dirty)
	VALUES (2, '0002_email', '$(filesum "$TMP/m3/0002_email.sql")', '2024-01-01T00:00:00Z', 5, 1)"
sum=$(filesum "$DB")
fy "$DB" "$TMP/m3" migrate
expect_status 65 "a dirty ledger row"
like "$err" "dirty" "says dirty"
like "$err" "0002|version 2" "names the dirty migration"
untouched "dirty ledger"

# ---- database ahead of the image -------------------------------------------------------
v1_db ahead
fy "$DB" "$TMP/m3" migrate
expect_status 0 "setup: version 3"
rm -f "$DB.pre-upgrade"; rm -rf "$DBDIR/.ferry"
sum=$(filesum "$DB")
fy "$DB" "$TMP/m1" migrate
expect_status 65 "database ahead of the image"
like "$err" "[Aa]head|newer|rolled back" "says the database is ahead of the image"
like "$err" "3" "names the database version"
untouched "database ahead"
fy "$DB" "$TMP/m1" run -- touch "$TMP/server-ran"
expect_status 65 "ferry run refuses too"
check "and does not start the server" test ! -e "$TMP/server-ran"

# ---- a ledger version the image does not ship ------------------------------------------------
mkdir -p "$TMP/mgap"
cp "$TMP/m3/0001_users.sql" "$TMP/m3/0003_posts.sql" "$TMP/mgap/"
cp "$TMP/m4/0004_tags.sql" "$TMP/mgap/"
v1_db unknown
FERRY_MIGRATIONS_TARGET_VERSION=2 fy "$DB" "$TMP/m3" migrate
expect_status 0 "setup: version 2"
rm -f "$DB.pre-upgrade"; rm -rf "$DBDIR/.ferry"
sum=$(filesum "$DB")
fy "$DB" "$TMP/mgap" migrate
expect_status 65 "the ledger has a version the image does not ship"
like "$err" "0002|version 2|\b2\b" "names it"
untouched "unknown ledger version"

# ---- corrupt database files ---------------------------------------------------------------
new_db random
head -c 65536 /dev/urandom >"$DB"
sum=$(filesum "$DB")
fy "$DB" "$TMP/m3" migrate
expect_status 65 "a file of random bytes"
like "$err" "$DB" "names the database file"
untouched "random bytes"

new_db trunc
fy "$DB" "$TMP/m1" migrate
expect_status 0 "setup: a database with many pages"
q "$DB" "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000)
	INSERT INTO users (name) SELECT 'user ' || x || ' ' || hex(randomblob(40)) FROM c"
rm -rf "$DBDIR/.ferry"
size=$(stat -c %s "$DB")
truncate -s $((size / 2)) "$DB"
sum=$(filesum "$DB")
fy "$DB" "$TMP/m3" migrate
expect_status 65 "a truncated database"
like "$err" "corrupt|malformed|truncated|not a database|integrity" "says it is damaged"
untouched "truncated database"

new_db noledger
q "$DB" "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('x');"
sum=$(filesum "$DB")
fy "$DB" "$TMP/m3" migrate
expect_status 65 "a database with tables but no ledger"
like "$err" "ferry_migrations|ledger|baseline|history" "says there is no migration history"
untouched "no ledger"

# ---- missing migrations dir ------------------------------------------------------------------
v1_db nomig
sum=$(filesum "$DB")
fy "$DB" "$TMP/no-such-dir" migrate
expect_status 78 "a missing migrations dir"
like "$err" "$TMP/no-such-dir" "names it"
untouched "missing migrations dir"
new_db nomig2
fy "$DB" "$TMP/no-such-dir" migrate
expect_status 78 "a missing migrations dir at first boot"
check "creates no database" test ! -e "$DB"

# ---- malformed migration directories -----------------------------------------------------------
bad_dir() { # bad_dir NAME: $M=$TMP/mig-NAME, a copy of m3
	rm -rf "$TMP/mig-$1"; cp -r "$TMP/m3" "$TMP/mig-$1"; M=$TMP/mig-$1
}
bad_dir dup
printf 'CREATE TABLE a (x);\n' >"$M/0002_other.sql"
v1_db dup; sum=$(filesum "$DB")
fy "$DB" "$M" migrate
expect_status 65 "two migrations with the same version"
like "$err" "0002_other\.sql|0002_email\.sql" "names a file"
like "$err" "[Dd]uplicate|same version|twice" "says duplicate"
untouched "duplicate versions"

bad_dir unparsable
printf 'CREATE TABLE a (x);\n' >"$M/abc.sql"
v1_db unparsable; sum=$(filesum "$DB")
fy "$DB" "$M" migrate
expect_status 65 "an unparsable migration file name"
like "$err" "abc\.sql" "names the file"
untouched "unparsable name"

bad_dir empty
: >"$M/0004_empty.sql"
v1_db empty; sum=$(filesum "$DB")
fy "$DB" "$M" migrate
expect_status 65 "an empty migration file"
like "$err" "0004_empty\.sql" "names the file"
untouched "empty file"

bad_dir ignored
printf 'not sql\n' >"$M/README.md"
printf 'DROP TABLE users;\n' >"$M/0009_old.sql.bak"
printf 'DROP TABLE users;\n' >"$M/0010_x.sql~"
v1_db ignored
fy "$DB" "$M" migrate
expect_status 0 "files not ending in .sql are ignored"
is "$(ledger_versions "$DB")" "1 2 3" "only the .sql files ran"

# ---- disk full: the snapshot does not fit ----------------------------------------------------------
SMALL=$TMP/small
mkdir -p "$SMALL"
if mount -t tmpfs -o size=512k tmpfs "$SMALL" 2>/dev/null; then
	at_exit "umount '$SMALL' 2>/dev/null || umount -l '$SMALL' 2>/dev/null"
	new_db bigsrc
	fy "$DB" "$TMP/m1" migrate
	q "$DB" "CREATE TABLE blobs (b BLOB);
		WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 90)
		INSERT INTO blobs SELECT randomblob(4000) FROM c; VACUUM;"
	cp "$DB" "$SMALL/app.db"
	DB=$SMALL/app.db DBDIR=$SMALL
	size=$(stat -c %s "$DB")
	check "setup: a database of about 400 KiB ($size bytes) on a 512 KiB tmpfs" \
		test "$size" -gt 350000 -a "$size" -lt 450000
	sum=$(filesum "$DB")
	fy "$DB" "$TMP/m3" migrate
	expect_status 73 "no room for the snapshot"
	like "$err" "snapshot|space" "says why"
	untouched "disk full"
	fy "$DB" "$TMP/m3" run -- touch "$TMP/server-ran2"
	expect_status 73 "ferry run: no room for the snapshot"
	check "the server was not started" test ! -e "$TMP/server-ran2"
	untouched "disk full (run)"
	# with the snapshot elsewhere, it upgrades
	mkdir -p "$TMP/snaps"
	FERRY_SNAPSHOT_DIR=$TMP/snaps fy "$DB" "$TMP/m3" migrate
	expect_status 0 "with FERRY_SNAPSHOT_DIR on a roomy disk, the same upgrade works"
	is "$(ledger_versions "$DB")" "1 2 3" "upgraded"
else
	skip "disk full" "cannot mount a tmpfs here"
fi

done_testing
