#!/bin/sh
# SQLite upgrades: first boot, up to date, 1 -> 3 with data, a failing
# migration restored, snapshot rotation and placement, migration formats
# (golang-migrate, no-transaction, CRLF/BOM), foreign keys, WAL.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
make_std_migrations

# ---- first boot --------------------------------------------------------------
new_db first
fy "$DB" "$TMP/m1" migrate
expect_status 0 "first boot creates the database"
check "the database file exists" test -f "$DB"
is "$(ledger_versions "$DB")" "1" "first boot: the ledger has version 1"
is "$(q "$DB" "SELECT name FROM sqlite_master WHERE name = 'users'")" "users" \
	"first boot: the migration ran"
check "first boot writes no snapshot" test ! -e "$DB.pre-upgrade"
check "first boot leaves no journal" test ! -e "$DBDIR/.ferry/journal"

# ---- up to date: nothing written ------------------------------------------------
seed_users "$DB"
rm -rf "$DBDIR/.ferry"
sum=$(filesum "$DB"); mt=$(mtime "$DB")
fy "$DB" "$TMP/m1" migrate
expect_status 0 "up to date"
like "$err" "up to date" "up to date: says so"
is "$(printf '%s\n' "$err" | grep -c 'up to date')" 1 "up to date: one such log line"
is "$(printf '%s\n' "$err" | grep -c .)" 1 "up to date: one log line in all"
is "$(filesum "$DB")" "$sum" "up to date: database file unchanged"
is "$(mtime "$DB")" "$mt" "up to date: database mtime unchanged"
check "up to date: no snapshot" test ! -e "$DB.pre-upgrade"
check "up to date: no .ferry dir created" test ! -e "$DBDIR/.ferry"
is "$(files_in "$DBDIR")" "app.db" "up to date: no other file created next to the database"

# ---- upgrade 1 -> 3 with data --------------------------------------------------
v1_db up
before=$(dump "$DB")
fy "$DB" "$TMP/m3" migrate
expect_status 0 "upgrade 1 -> 3"
like "$err" "schema version mismatch: database has 1, image expects 3 \(2 pending\)" \
	"logs the version mismatch"
like "$err" "snapshot written: $DB\.pre-upgrade \(" "logs the snapshot path"
like "$err" "applied 0002_email \([0-9]+ ms\)" "logs 0002 applied with its duration"
like "$err" "applied 0003_posts \([0-9]+ ms\)" "logs 0003 applied with its duration"
like "$(printf '%s\n' "$err" | tail -1)" "database upgraded from 1 to 3" \
	"last line: database upgraded from 1 to 3"
is "$(q "$DB" 'SELECT id, name, email FROM users ORDER BY id' | tr '\n' ' ')" \
	"1|Ada|ada@example.com 2|Brian|brian@example.com 3|Chloe|chloe@example.com " \
	"the users survived and were migrated"
is "$(q "$DB" 'SELECT user_id, title FROM posts ORDER BY id' | tr '\n' ' ')" \
	"1|hello from Ada 2|hello from Brian 3|hello from Chloe " "0003 ran on the data"
is "$(ledger_versions "$DB")" "1 2 3" "the ledger has 3 rows"
is "$(q "$DB" 'SELECT name FROM ferry_migrations ORDER BY version' | tr '\n' ' ')" \
	"0001_users 0002_email 0003_posts " "ledger names are the file names without .sql"
is "$(q "$DB" "SELECT count(*) FROM ferry_migrations WHERE sha256 GLOB '[0-9a-f][0-9a-f]*' AND length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'")" \
	3 "each ledger row has a 64-hex sha256"
is "$(q "$DB" 'SELECT count(*) FROM ferry_migrations WHERE dirty = 0 AND applied_at IS NOT NULL AND duration_ms >= 0')" \
	3 "ledger rows are clean, with applied_at and duration_ms"
is "$(q "$DB" "SELECT sha256 FROM ferry_migrations WHERE version = 2")" \
	"$(filesum "$TMP/m3/0002_email.sql")" "the checksum is the sha256 of the file"
is "$(q "$DB" 'PRAGMA integrity_check')" ok "the upgraded database passes integrity_check"
check "the snapshot exists" test -f "$DB.pre-upgrade"
is "$(stat -c %a "$DB.pre-upgrade")" 600 "the snapshot has mode 0600"
cp "$DB.pre-upgrade" "$TMP/snapcopy.db"
is "$(dump "$TMP/snapcopy.db")" "$before" "the snapshot holds the pre-upgrade database"
check "no journal after a successful upgrade" test ! -e "$DBDIR/.ferry/journal"
no_leftovers "$DBDIR" "no temp files after the upgrade"

fy "$DB" "$TMP/m3" migrate
expect_status 0 "migrate again"
like "$err" "up to date" "the second run finds it up to date"

# ---- a failing migration: restored, exit 70 ----------------------------------------
mkdir -p "$TMP/mbad"
cp "$TMP/m3/0001_users.sql" "$TMP/m3/0002_email.sql" "$TMP/mbad/"
cat >"$TMP/mbad/0003_bad.sql" <<'EOF'
CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);
INSERT INTO audit (what) VALUES ('started');
UPDATE users SET name = name || '!';
INSERT INTO no_such_table VALUES (1);
INSERT INTO audit (what) VALUES ('never');
EOF
# 2 -> 3 fails: back to 2
v1_db bad2
FERRY_MIGRATIONS_TARGET_VERSION=2 fy "$DB" "$TMP/mbad" migrate
expect_status 0 "setup: upgrade to version 2"
rm -f "$DB.pre-upgrade"
before=$(dump "$DB"); sum=$(filesum "$DB")
fy "$DB" "$TMP/mbad" migrate
expect_status 70 "a failing migration exits 70"
like "$err" "migration 0003_bad failed: near line 4: .*no such table: no_such_table" \
	"the error names the migration, the line and SQLite's error"
like "$err" "rolled back: nothing was committed, the database is still at version 2" \
	"and says it rolled back: nothing committed, still at version 2"
unlike "$err" "[Rr]estor" "no restore was needed for it"
is "$(dump "$DB")" "$before" "the database .dump is identical to before"
is "$(q "$DB" "SELECT count(*) FROM sqlite_master WHERE name = 'audit'")" 0 \
	"no trace of the failed migration"
check "no journal after the restore" test ! -e "$DBDIR/.ferry/journal"
no_leftovers "$DBDIR" "no temp files after the restore"
check "the failure is recorded for the crash-loop guard" test -f "$DBDIR/.ferry/failed-upgrade"
fy "$DB" "$TMP/m3" migrate
expect_status 0 "the fixed image then upgrades"
is "$(ledger_versions "$DB")" "1 2 3" "to version 3"

# 1 -> 3 where 0003 fails: 0002 is undone too
v1_db bad1
before=$(dump "$DB")
fy "$DB" "$TMP/mbad" migrate
expect_status 70 "1 -> 3 with a failing 0003"
like "$err" "applied 0002_email" "0002 was applied first"
like "$err" "still at version 1" "then everything was restored to version 1"
is "$(dump "$DB")" "$before" "the database is exactly as before the upgrade"

# ---- target version ------------------------------------------------------------------
v1_db target
FERRY_MIGRATIONS_TARGET_VERSION=2 fy "$DB" "$TMP/m4" migrate
expect_status 0 "FERRY_MIGRATIONS_TARGET_VERSION=2"
is "$(ledger_versions "$DB")" "1 2" "upgrades only up to 2"
FERRY_MIGRATIONS_TARGET_VERSION=0 fy "$DB" "$TMP/m4" migrate
expect_status 0 "FERRY_MIGRATIONS_TARGET_VERSION=0"
is "$(ledger_versions "$DB")" "1 2 3 4" "0 means the highest shipped"

# ---- snapshot rotation ------------------------------------------------------------------
v1_db keep2
for v in 2 3 4; do
	FERRY_SNAPSHOT_KEEP=2 FERRY_MIGRATIONS_TARGET_VERSION=$v fy "$DB" "$TMP/m4" migrate
	expect_status 0 "keep=2: upgrade to $v"
done
is "$(files_in "$DBDIR" | grep pre-upgrade | tr '\n' ' ')" "app.db.pre-upgrade app.db.pre-upgrade.1 " \
	"keep=2: two snapshots in all"
cp "$DB.pre-upgrade" "$TMP/s0.db"; cp "$DB.pre-upgrade.1" "$TMP/s1.db"
is "$(db_version "$TMP/s0.db")" 3 "keep=2: the newest snapshot is from before the last upgrade"
is "$(db_version "$TMP/s1.db")" 2 "keep=2: .1 is the one before"

v1_db keep1
for v in 2 3; do
	FERRY_MIGRATIONS_TARGET_VERSION=$v fy "$DB" "$TMP/m4" migrate
	expect_status 0 "default keep: upgrade to $v"
done
is "$(files_in "$DBDIR" | grep pre-upgrade | tr '\n' ' ')" "app.db.pre-upgrade " \
	"default keep (1): one snapshot"
cp "$DB.pre-upgrade" "$TMP/s0.db"
is "$(db_version "$TMP/s0.db")" 2 "and it is the latest"

# ---- snapshot dir, state dir -----------------------------------------------------------
v1_db sdir
mkdir -p "$TMP/snaps" "$TMP/state"
FERRY_SNAPSHOT_DIR=$TMP/snaps FERRY_DATABASE_STATE_DIR=$TMP/state fy "$DB" "$TMP/m3" migrate
expect_status 0 "upgrade with FERRY_SNAPSHOT_DIR and FERRY_DATABASE_STATE_DIR"
check "the snapshot is in the snapshot dir" test -f "$TMP/snaps/app.db.pre-upgrade"
like "$err" "snapshot written: $TMP/snaps/app\.db\.pre-upgrade" "the log names it"
check "no snapshot next to the database" test ! -e "$DB.pre-upgrade"
check "no .ferry next to the database" test ! -e "$DBDIR/.ferry"
check "no journal left in the state dir" test ! -e "$TMP/state/journal"

# ---- database URL forms, options after the command, environment ------------------------
v1_db url
( cd "$DBDIR" && "$FERRY" migrate --database-url sqlite:app.db --migrations "$TMP/m3" >/dev/null 2>"$TMP/.err" ); rc=$?
expect_status 0 "sqlite:relative/path"
is "$(db_version "$DB")" 3 "the relative path named the database"
v1_db url
( cd "$TMP" && "$FERRY" --database-url "url/app.db" --migrations "$TMP/m3" migrate >/dev/null 2>"$TMP/.err" ); rc=$?
expect_status 0 "a plain relative path, options before the command"
is "$(db_version "$DB")" 3 "upgraded"
v1_db url
DATABASE_URL=$DB FERRY_MIGRATIONS_DIR=$TMP/m3 run_ferry migrate
expect_status 0 "DATABASE_URL (plain absolute path) and FERRY_MIGRATIONS_DIR"
is "$(db_version "$DB")" 3 "upgraded"
v1_db url
DATABASE_URL="sqlite://$DB" run_ferry migrate --migrations "$TMP/m3"
expect_status 0 "DATABASE_URL=sqlite:///abs"
is "$(db_version "$DB")" 3 "upgraded"

# ---- golang-migrate format ------------------------------------------------------------
mkdir -p "$TMP/mgm"
printf 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n' >"$TMP/mgm/000001_notes.up.sql"
printf 'DROP TABLE notes;\n' >"$TMP/mgm/000001_notes.down.sql"
printf "INSERT INTO notes (body) VALUES ('one'), ('two');\n" >"$TMP/mgm/000002_fill.up.sql"
printf 'DELETE FROM notes;\n' >"$TMP/mgm/000002_fill.down.sql"
printf 'ALTER TABLE notes ADD COLUMN done INTEGER NOT NULL DEFAULT 0;\n' >"$TMP/mgm/000003_done.up.sql"
printf 'garbage that is not SQL\n' >"$TMP/mgm/000003_done.down.sql"
printf 'not a migration\n' >"$TMP/mgm/README.md"
new_db gm
# [migrations] ledger = ferry: ferry's own ledger, not migrate's (t2720)
export FERRY_MIGRATIONS_LEDGER=ferry
fy "$DB" "$TMP/mgm" migrate
expect_status 0 "golang-migrate format: first boot"
is "$(q "$DB" 'SELECT body, done FROM notes ORDER BY id' | tr '\n' ' ')" "one|0 two|0 " \
	"the up files ran, the down files did not"
is "$(q "$DB" 'SELECT version, name FROM ferry_migrations ORDER BY version' | tr '\n' ' ')" \
	"1|000001_notes 2|000002_fill 3|000003_done " "ledger names drop .up.sql"
fy "$DB" "$TMP/mgm" migrate
expect_status 0 "golang-migrate format: again"
like "$err" "up to date" "up to date"
unset FERRY_MIGRATIONS_LEDGER

# ---- no-transaction migration ------------------------------------------------------------
cp -r "$TMP/m3" "$TMP/mnt"
cat >"$TMP/mnt/0004_vacuum.sql" <<'EOF'
-- ferry:no-transaction
CREATE INDEX posts_user ON posts(user_id);
VACUUM;
EOF
v1_db notx
fy "$DB" "$TMP/mnt" migrate
expect_status 0 "a no-transaction migration (VACUUM) runs"
is "$(ledger_versions "$DB")" "1 2 3 4" "it is in the ledger"
is "$(q "$DB" 'SELECT dirty FROM ferry_migrations WHERE version = 4')" 0 "and is not dirty"
is "$(q "$DB" "SELECT name FROM sqlite_master WHERE name = 'posts_user'")" posts_user "its index exists"

# ---- CRLF and BOM after LF ---------------------------------------------------------------
v1_db crlf
fy "$DB" "$TMP/m3" migrate
expect_status 0 "setup: applied with LF"
cp -r "$TMP/m3" "$TMP/mcrlf"
for f in "$TMP/mcrlf"/*.sql; do sed -i 's/$/\r/' "$f"; done
printf '\357\273\277' | cat - "$TMP/m3/0002_email.sql" | sed 's/$/\r/' >"$TMP/mcrlf/0002_email.sql"
check "setup: the files differ byte-wise" sh -c "! cmp -s '$TMP/m3/0001_users.sql' '$TMP/mcrlf/0001_users.sql'"
sum=$(filesum "$DB")
fy "$DB" "$TMP/mcrlf" migrate
expect_status 0 "the same migrations with CRLF (and a BOM)"
like "$err" "up to date" "are up to date"
unlike "$err" "checksum" "no checksum mismatch"
is "$(filesum "$DB")" "$sum" "the database is unchanged"
cp -r "$TMP/m1" "$TMP/mbom"
printf '\357\273\277' | cat - "$TMP/m1/0001_users.sql" >"$TMP/mbom/0001_users.sql"
v1_db bom
fy "$DB" "$TMP/mbom" migrate
expect_status 0 "a BOM alone is not a checksum mismatch either"

# ---- table rebuild with ON DELETE CASCADE children -------------------------------------------
mkdir -p "$TMP/mfk"
cat >"$TMP/mfk/0001_authors.sql" <<'EOF'
CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE books (
    id INTEGER PRIMARY KEY,
    author_id INTEGER NOT NULL REFERENCES authors(id) ON DELETE CASCADE,
    title TEXT
);
EOF
mkdir -p "$TMP/mfk1"; cp "$TMP/mfk/0001_authors.sql" "$TMP/mfk1/"
cat >"$TMP/mfk/0002_rebuild_authors.sql" <<'EOF'
CREATE TABLE authors_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, bio TEXT NOT NULL DEFAULT '');
INSERT INTO authors_new (id, name) SELECT id, name FROM authors;
DROP TABLE authors;
ALTER TABLE authors_new RENAME TO authors;
EOF
new_db fk
fy "$DB" "$TMP/mfk1" migrate
expect_status 0 "setup: authors and books"
q "$DB" "PRAGMA foreign_keys = ON;
	INSERT INTO authors VALUES (1, 'Le Guin'), (2, 'Lem');
	INSERT INTO books (author_id, title) VALUES (1, 'Earthsea'), (1, 'The Dispossessed'), (2, 'Solaris');"
fy "$DB" "$TMP/mfk" migrate
expect_status 0 "a migration that rebuilds a parent table"
is "$(q "$DB" 'SELECT count(*) FROM books')" 3 "the ON DELETE CASCADE children survive"
is "$(q "$DB" 'SELECT name, bio FROM authors ORDER BY id' | tr '\n' ' ')" "Le Guin| Lem| " "the parent rows are rebuilt"
is "$(q "$DB" 'PRAGMA foreign_key_check')" "" "foreign_key_check is clean"
is "$(q "$DB" 'PRAGMA foreign_keys = ON; DELETE FROM authors WHERE id = 2; SELECT count(*) FROM books')" 2 \
	"the cascade still works on the rebuilt table"

# ---- WAL with data not yet checkpointed ---------------------------------------------------------
v1_db wal
q "$DB" 'PRAGMA journal_mode = WAL' >/dev/null
mkfifo "$TMP/walfifo"
sqlite3 "$DB" <"$TMP/walfifo" >"$TMP/walreader.out" 2>&1 &
rpid=$!
at_exit "kill -9 $rpid 2>/dev/null"
exec 9>"$TMP/walfifo"
echo "BEGIN; SELECT count(*) FROM users;" >&9
wait_for test -s "$TMP/walreader.out"
q "$DB" "PRAGMA wal_autocheckpoint = 0; INSERT INTO users (name) VALUES ('Wally'), ('Wanda');" >/dev/null
kill -9 $rpid; wait $rpid 2>/dev/null; exec 9>&-
check "setup: the WAL file holds data" test -s "$DB-wal"
cp "$DB" "$TMP/walmain.db"
is "$(q "$TMP/walmain.db" 'SELECT count(*) FROM users')" 3 "setup: the new rows are only in the WAL"
fy "$DB" "$TMP/m3" migrate
expect_status 0 "upgrade of a WAL database with un-checkpointed rows"
is "$(q "$DB" "SELECT count(*) FROM users WHERE name LIKE 'W%' AND email IS NOT NULL")" 2 \
	"the WAL's rows are in the upgraded database"
is "$(q "$DB" "SELECT count(*) FROM posts")" 5 "and were migrated"
cp "$DB.pre-upgrade" "$TMP/walsnap.db"
is "$(q "$TMP/walsnap.db" "SELECT count(*) FROM users")" 5 "the snapshot file alone holds them too"
is "$(q "$TMP/walsnap.db" "PRAGMA integrity_check")" ok "the snapshot alone is a sound database"

# An empty file where the database goes (touch app.db before mounting it)
# is an empty database to SQLite: created as a new one.
new_db emptyfile
: >"$DB"
fy "$DB" "$TMP/m1" migrate
expect_status 0 "a 0-byte database file"
like "$err" "no database yet: creating" "is created as a new database"
is "$(ledger_versions "$DB")" "1" "at version 1"

done_testing
