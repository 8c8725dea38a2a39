#!/bin/sh
# Speed without weaker guarantees (issue 13). A first boot builds the
# database under a temporary name with synchronous = OFF and its journal
# in memory, and makes it durable once, before the rename: 1000
# migrations end complete, checked and in rollback-journal mode, and a
# kill -9 in the middle leaves no database (the next boot builds it
# whole). The boot fast path writes nothing. The check after an in-place
# upgrade covers what the upgrade wrote, and the whole file when a write
# may reach further (a DROP).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"

N=1000
mkdir -p "$TMP/big"
i=1
while [ $i -le $N ]; do
	f=$(printf '%04d' $i)
	printf 'CREATE TABLE t%d (id INTEGER PRIMARY KEY, v TEXT NOT NULL);\nINSERT INTO t%d (v) VALUES (%s);\n' \
		$i $i "'row $i'" >"$TMP/big/${f}_t$i.sql"
	i=$((i + 1))
done

# ---- 1000 migrations onto a new database -------------------------------------------
new_db batch
fy "$DB" "$TMP/big" migrate
expect_status 0 "1000 migrations onto a new database"
is "$(q "$DB" 'SELECT count(*), min(version), max(version) FROM ferry_migrations')" \
	"1000|1|1000" "the ledger has 1000 rows"
is "$(q "$DB" 'PRAGMA integrity_check')" ok "integrity_check ok"
is "$(q "$DB" "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name GLOB 't[0-9]*'")" \
	1000 "1000 tables"
is "$(q "$DB" 'SELECT v FROM t1000')" "row 1000" "the last migration's row is there"
is "$(q "$DB" 'PRAGMA journal_mode')" delete "the file is in rollback-journal mode (MEMORY was the build's only)"
is "$(q "$DB" 'PRAGMA synchronous')" 2 "a new connection gets the default synchronous = FULL"
is "$(files_in "$DBDIR" | grep -v '^\.ferry' | tr '\n' ' ')" "app.db " \
	"no temporary file, -journal or -wal left"
like "$err" "database created at version 1000" "says it was created"

# ---- kill -9 in the middle of the batch ---------------------------------------------
new_db crash
FERRY_TEST_CRASH_AT=migration:500:after-commit fy "$DB" "$TMP/big" migrate
check "killed at migration 500 (status $rc)" test "$rc" -ne 0
check "no database at the final name" test ! -e "$DB"
fy "$DB" "$TMP/big" migrate
expect_status 0 "the next boot builds the database"
is "$(q "$DB" 'SELECT count(*) FROM ferry_migrations')" 1000 "all 1000 rows"
is "$(q "$DB" 'PRAGMA integrity_check')" ok "integrity_check ok after the crash and the rebuild"
is "$(files_in "$DBDIR" | grep -v '^\.ferry' | tr '\n' ' ')" "app.db " \
	"the crashed build's temporary files are gone"

# a failed migration: no database, nothing at the final name
mkdir -p "$TMP/bad"
cp "$TMP/big/0001_t1.sql" "$TMP/big/0002_t2.sql" "$TMP/bad/"
printf 'CREATE TABLE ok3 (a);\nINSERT INTO nosuch VALUES (1);\n' >"$TMP/bad/0003_bad.sql"
new_db failed
fy "$DB" "$TMP/bad" migrate
expect_status 70 "a failing migration in a new database"
like "$err" "0003_bad.*line 2" "names the migration and its line"
check "no database was created" test ! -e "$DB"
is "$(files_in "$DBDIR" | grep -v '^\.ferry' | tr '\n' ' ')" "" "no temporary file left"

# ---- the fast path writes nothing -------------------------------------------------------
DB=$TMP/batch/app.db DBDIR=$TMP/batch
rm -rf "$DBDIR/.ferry"
sum=$(filesum "$DB") ino=$(stat -c %i "$DB") mt=$(mtime "$DB")
before=$(files_in "$DBDIR" | tr '\n' ' ')
fy "$DB" "$TMP/big" run -- true
expect_status 0 "boot fast path with 1000 migrations shipped"
is "$(filesum "$DB")" "$sum" "fast path: sha256 unchanged"
is "$(stat -c %i "$DB")" "$ino" "fast path: same inode"
is "$(mtime "$DB")" "$mt" "fast path: mtime unchanged"
is "$(files_in "$DBDIR" | tr '\n' ' ')" "$before" "fast path: no -wal, -journal or state file"
echo '-- edited' >>"$TMP/big/0500_t500.sql"
fy "$DB" "$TMP/big" run -- true
expect_status 65 "the fast path still checks the checksums of applied migrations"
like "$err" "0500" "names the edited migration"
is "$(filesum "$DB")" "$sum" "refused: sha256 unchanged"

# ---- the check after an in-place upgrade --------------------------------------------
mkdir -p "$TMP/s1" "$TMP/s2" "$TMP/s3"
echo 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);' >"$TMP/s1/0001_items.sql"
echo 'CREATE TABLE other (id INTEGER PRIMARY KEY, x TEXT);' >"$TMP/s1/0002_other.sql"
cp "$TMP/s1/"*.sql "$TMP/s2/"
cp "$TMP/s1/"*.sql "$TMP/s3/"
echo "INSERT INTO items (name) VALUES ('a');" >"$TMP/s2/0003_item.sql"
echo "DROP TABLE other;" >"$TMP/s3/0003_drop.sql"
new_db scoped
fy "$DB" "$TMP/s1" migrate
cp "$DB" "$TMP/scoped.db"
fy "$DB" "$TMP/s2" -v migrate
expect_status 0 "in place: an INSERT"
like "$err" "integrity check after the upgrade: the [0-9]+ b-tree\(s\) it wrote, first 'items'" \
	"the check covers the table written"
rm -rf "$DBDIR"/app.db* "$DBDIR/.ferry"
cp "$TMP/scoped.db" "$DB"
fy "$DB" "$TMP/s3" -v migrate
expect_status 0 "in place: a DROP"
like "$err" "integrity check after the upgrade: the whole file" \
	"a DROP frees pages: the whole file is checked"
is "$(q "$DB" 'PRAGMA integrity_check')" ok "integrity_check ok"

# A pragma under another schema's prefix still acts on the database:
# temp.writable_schema is refused like the plain one, nothing changed.
mkdir -p "$TMP/s4"
cp "$TMP/s1"/* "$TMP/s4/"
printf "PRAGMA temp.writable_schema = ON;\nUPDATE sqlite_schema SET rootpage = 2 WHERE name = 'items';\nPRAGMA temp.writable_schema = OFF;\n" \
	>"$TMP/s4/0003_raw.sql"
rm -rf "$DBDIR"/app.db* "$DBDIR/.ferry"
cp "$TMP/scoped.db" "$DB"
fy "$DB" "$TMP/s4" migrate
expect_status 70 "in place: PRAGMA temp.writable_schema"
like "$err" "line 1: PRAGMA writable_schema edits sqlite_schema by hand" \
	"writable_schema refused, naming the line"
is "$(q "$DB" 'PRAGMA integrity_check')" ok "integrity_check ok after the refusal"
is "$(ledger_versions "$DB")" "1 2" "still at version 2"

# Many tables written: past the bound of named b-trees, the whole file.
mkdir -p "$TMP/m1" "$TMP/m2"
i=1
: >"$TMP/m1/0001_t.sql"
: >"$TMP/m2/0002_w.sql"
while [ $i -le 63 ]; do
	echo "CREATE TABLE w$i (x);" >>"$TMP/m1/0001_t.sql"
	echo "INSERT INTO w$i VALUES ($i);" >>"$TMP/m2/0002_w.sql"
	i=$((i + 1))
done
cp "$TMP/m1/0001_t.sql" "$TMP/m2/"
rm -rf "$DBDIR"/app.db* "$DBDIR/.ferry"
fy "$DB" "$TMP/m1" migrate
fy "$DB" "$TMP/m2" -v migrate
expect_status 0 "in place: 63 tables written"
like "$err" "integrity check after the upgrade: the whole file" \
	"63 tables + schema + ledger: the whole file is checked"

done_testing
