#!/bin/sh
# SQLite: ferry downgrade --to V with golang-migrate files (up and down).
# Upgraded 1 -> 4, data written after the upgrade, then taken down to 2:
# the schema is version 2's, the rows that fit it are kept, the ledger
# and `ferry status` say 2, and `ferry migrate` goes back up to 4.
# Refusals change nothing (65 or 64, one line naming the version or the
# migration); a failing down step leaves the data as it was (70); a kill
# -9 at every crash point leaves the old or the new version next boot.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
# downgrade on ferry's own ledger (the tools' ledgers forget versions: t2720)
export FERRY_MIGRATIONS_LEDGER=ferry

# ---- golang-migrate sets: g1 (1), g2 (1-2), g4 (1-4) -----------------------
G=$TMP/g4
mkdir -p "$G"
cat >"$G/000001_users.up.sql" <<'EOF'
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
EOF
echo 'DROP TABLE users;' >"$G/000001_users.down.sql"
cat >"$G/000002_email.up.sql" <<'EOF'
ALTER TABLE users ADD COLUMN email TEXT;
UPDATE users SET email = lower(name) || '@example.com';
EOF
echo 'ALTER TABLE users DROP COLUMN email;' >"$G/000002_email.down.sql"
cat >"$G/000003_posts.up.sql" <<'EOF'
CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), title TEXT NOT NULL);
EOF
echo 'DROP TABLE posts;' >"$G/000003_posts.down.sql"
cat >"$G/000004_nick.up.sql" <<'EOF'
ALTER TABLE users ADD COLUMN nick TEXT;
CREATE INDEX users_nick ON users(nick);
EOF
cat >"$G/000004_nick.down.sql" <<'EOF'
DROP INDEX users_nick;
ALTER TABLE users DROP COLUMN nick;
EOF
mkdir -p "$TMP/g1" "$TMP/g2"
cp "$G"/000001_* "$TMP/g1/"
cp "$G"/000001_* "$G"/000002_* "$TMP/g2/"

# at4 NAME: a database built with g1, three users, upgraded to 4 with g4,
# then rows written by the new release (a user with email and nick, a
# post); its state dir removed. Sets DBDIR and DB.
at4() {
	new_db "$1"
	fy "$DB" "$TMP/g1" migrate || return 1
	q "$DB" "INSERT INTO users (name) VALUES ('Ada'), ('Brian'), ('Chloe')"
	fy "$DB" "$2" migrate
	q "$DB" "INSERT INTO users (name, email, nick) VALUES ('Dora', 'dora@new.example', 'dd')"
	[ ! -e "$2/000003_posts.up.sql" ] ||
		q "$DB" "INSERT INTO posts (user_id, title) VALUES (4, 'written after the upgrade')"
	rm -rf "$DBDIR/.ferry" "$DB.pre-upgrade"
}

# refused STATUS DESC: $rc is STATUS, one log line, $DB byte for byte as
# $TMP/before.db, no snapshot, no journal.
refused() {
	expect_status "$1" "$2"
	is "$(printf '%s\n' "$err" | grep -c .)" 1 "$2: one log line"
	check "$2: the database file is unchanged" cmp -s "$DB" "$TMP/before.db"
	no_leftovers "$DBDIR" "$2: no snapshot, journal or temp file"
	check "$2: no snapshot" test ! -e "$DB.pre-upgrade"
}

# ---- down to 2, data kept, up again ---------------------------------------------
at4 main "$G"
is "$(ledger_versions "$DB")" "1 2 3 4" "setup: upgraded to 4"
new_db ref2
fy "$DB" "$TMP/g2" migrate
ref_schema=$(q "$DB" .schema | grep -v ferry_migrations)
DBDIR=$TMP/main DB=$TMP/main/app.db

fy "$DB" "$G" downgrade --to 2
expect_status 0 "downgrade --to 2"
like "$err" "downgrading the database from 4 to 2: undoing 2 migrations" "says what it undoes"
like "$err" "reverted 000004_nick \([0-9]+ ms\)" "a line for 000004"
like "$err" "reverted 000003_posts \([0-9]+ ms\)" "a line for 000003"
is "$(printf '%s\n' "$err" | sed -n 's/.*reverted \([^ ]*\) .*/\1/p' | tr '\n' ' ')" \
	"000004_nick 000003_posts " "newest first"
like "$err" "downgraded from 4 to 2 in [0-9.]+ s \(snapshot kept: $DB\.pre-upgrade\)" "the final line"
is "$(ledger_versions "$DB")" "1 2" "the ledger says 2"
is "$(q "$DB" .schema | grep -v ferry_migrations)" "$ref_schema" "the schema is version 2's"
is "$(q "$DB" "SELECT name, email FROM users ORDER BY id" | tr '\n' ' ')" \
	"Ada|ada@example.com Brian|brian@example.com Chloe|chloe@example.com Dora|dora@new.example " \
	"the rows written after the upgrade are kept, in the columns version 2 has"
is "$(q "$DB" 'PRAGMA integrity_check')" ok "integrity_check"
check "the snapshot is kept" test -f "$DB.pre-upgrade"
is "$(ledger_versions "$DB.pre-upgrade")" "1 2 3 4" "the snapshot holds version 4"
no_leftovers "$DBDIR" "no journal or temp file"

fy "$DB" "$G" status
expect_status 0 "status with the newer image"
like "$out" "^2 +000002_email +applied " "status: 2 applied"
like "$out" "^3 +000003_posts +pending " "status: 3 pending"
like "$out" "^4 +000004_nick +pending " "status: 4 pending"
fy "$DB" "$TMP/g2" status --exit-code
expect_status 0 "status with the older image: up to date"
fy "$DB" "$TMP/g2" migrate
expect_status 0 "the older image boots"
like "$err" "schema up to date: database and image at version 2" "at version 2"

fy "$DB" "$G" migrate
expect_status 0 "migrate goes back up"
is "$(ledger_versions "$DB")" "1 2 3 4" "at 4 again"
is "$(q "$DB" "SELECT count(*) FROM users")" 4 "with every user"

# --to 0 undoes everything
fy "$DB" "$G" downgrade --to=0
expect_status 0 "downgrade --to=0"
is "$(ledger_versions "$DB")" "" "the ledger is empty"
is "$(q "$DB" "SELECT group_concat(name) FROM sqlite_master WHERE type = 'table'")" ferry_migrations \
	"only the ledger table is left"

# JSON events
at4 json "$G"
FERRY_LOG_FORMAT=json fy "$DB" "$G" downgrade --to 3
expect_status 0 "downgrade --to 3, JSON log"
like "$err" '"event":"migration_reverted".*"migration":"000004_nick"' "the step's event"
like "$err" '"event":"downgrade_done".*"from":"4".*"to":"3"' "the final event with from and to"

# ---- refusals: nothing changed ----------------------------------------------------
N=$TMP/g4-nodown
cp -r "$G" "$N"
rm "$N/000003_posts.down.sql"
at4 nodown "$N"
cp "$DB" "$TMP/before.db"
fy "$DB" "$N" downgrade --to 2
refused 65 "a migration above V without a down part"
like "$err" "cannot downgrade to 2: migration 000003_posts \(version 3\) has no down part" \
	"names the first migration without one"

at4 target "$G"
cp "$DB" "$TMP/before.db"
fy "$DB" "$G" downgrade --to 2 --dry-run
expect_status 0 "--dry-run"
is "$out" "database: sqlite://$DB at version 4
plan: snapshot, then undo 2 migrations down to version 2, newest first:
  000004_nick
  000003_posts" "--dry-run prints what would be undone"
check "--dry-run: the database file is unchanged" cmp -s "$DB" "$TMP/before.db"
check "--dry-run: no snapshot" test ! -e "$DB.pre-upgrade"
fy "$DB" "$N" downgrade --to 2 --dry-run
expect_status 65 "--dry-run refuses as the downgrade would"
fy "$DB" "$G" downgrade --to 4
refused 65 "--to the current version"
like "$err" "cannot downgrade to 4: the database is at version 4" "says where the database is"
fy "$DB" "$G" downgrade --to 7
refused 65 "--to above the current version"
fy "$DB" "$G" downgrade --to x2
refused 64 "--to that is no version"
fy "$DB" "$G" downgrade
refused 64 "no --to"
like "$err" "downgrade needs --to VERSION" "says --to is needed"

# a version the image does not ship was never applied
S=$TMP/g124
mkdir -p "$S"
cp "$G"/000001_* "$G"/000002_* "$G"/000004_* "$S/"
at4 notapplied "$S"
cp "$DB" "$TMP/before.db"
fy "$DB" "$S" downgrade --to 3
refused 65 "--to a version that was never applied"
like "$err" "version 3 was never applied to this database \(applied: 1, 2, 4\)" "names the applied ones"

# the older image refuses, and names the way that keeps data
at4 older "$G"
fy "$DB" "$TMP/g2" migrate
expect_status 65 "the older image refuses a database ahead of it"
like "$err" "run \`ferry downgrade --to 2\` with the newer image" "and names ferry downgrade --to 2"
fy "$DB" "$TMP/g2" downgrade --to 2
expect_status 65 "downgrade with the older image is refused"

# ---- a failing down step ----------------------------------------------------
B=$TMP/g4-bad
cp -r "$G" "$B"
printf 'DROP TABLE posts;\nINSERT INTO nosuch VALUES (1);\n' >"$B/000003_posts.down.sql"
at4 bad "$B"
before=$(state_sum "$DB")
fy "$DB" "$B" downgrade --to 2
expect_status 70 "a failing down step"
like "$err" "the down part of migration 000003_posts failed: near line 2: no such table: nosuch" \
	"names the migration and the error"
is "$(state_sum "$DB")" "$before" "the data is exactly as before"
is "$(ledger_versions "$DB")" "1 2 3 4" "still at 4"
no_leftovers "$DBDIR" "no journal"

# ---- a kill -9 at each crash point ------------------------------------------------
at4 crashref "$G"
cp "$DB" "$TMP/old.db"
old_sum=$(state_sum "$DB")
fy "$DB" "$G" downgrade --to 2
new_sum=$(state_sum "$DB")

n=0
crash_case() {
	point=$1 expect=$2
	n=$((n + 1))
	new_db "crash$n"
	cp "$TMP/old.db" "$DB"
	FERRY_TEST_CRASH_AT=$point fy "$DB" "$G" downgrade --to 2
	expect_status 137 "$point: ferry killed itself there"
	# the next boot of the newer image pinned to 2: up to date at 2, ahead at 4
	FERRY_MIGRATIONS_TARGET_VERSION=2 fy "$DB" "$G" migrate
	s=$(state_sum "$DB")
	case $expect in
	old) is "$s" "$old_sum" "$point: the next boot finds the old version and data"
	     expect_status 65 "$point: ahead of target 2" ;;
	new) is "$s" "$new_sum" "$point: the next boot finds the downgraded database"
	     expect_status 0 "$point: at 2" ;;
	esac
	like "$err" "a downgrade from 4 to 2 was interrupted" "$point: the log says a downgrade was interrupted"
	is "$(q "$DB" 'PRAGMA integrity_check')" ok "$point: integrity_check"
	check "$point: no journal after recovery" test ! -e "$DBDIR/.ferry/journal"
	no_leftovers "$DBDIR" "$point: no temp files"
}
crash_case journal:snapshotting old
crash_case journal:snapshotted old
crash_case journal:migrating old
crash_case migration:4:before-commit old
crash_case downgrade:4:after-commit old
crash_case migration:3:before-commit old
crash_case journal:verifying old
crash_case journal:done old
crash_case downgrade:committed new

# ---- dbmate: a down section outside a transaction ----------------------------------
D=$TMP/mig-dbmate
mkdir -p "$D"
cat >"$D/20240101000001_users.sql" <<'EOF'
-- migrate:up
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);

-- migrate:down
DROP TABLE users;
EOF
cat >"$D/20240101000002_email.sql" <<'EOF'
-- migrate:up
ALTER TABLE users ADD COLUMN email TEXT;

-- migrate:down transaction:false
ALTER TABLE users DROP COLUMN email;
EOF
cat >"$D/20240101000003_tags.sql" <<'EOF'
-- migrate:up
CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT);

-- migrate:down
DROP TABLE tags;
EOF
# dbmate_db NAME SET: SET applied at first boot, rows written after
dbmate_db() {
	new_db "$1"
	fy "$DB" "$2" migrate
	q "$DB" "INSERT INTO users (name, email) VALUES ('Ada', 'ada@example.com'), ('Brian', NULL);
		INSERT INTO tags (label) VALUES ('news')"
	rm -rf "$DBDIR/.ferry"
}
dbmate_db dbmate "$D"
is "$(ledger_versions "$DB")" "20240101000001 20240101000002 20240101000003" "dbmate: setup at 3 versions"
fy "$DB" "$D" downgrade --to 20240101000001
expect_status 0 "dbmate: downgrade --to the first version"
is "$(printf '%s\n' "$err" | sed -n 's/.*reverted \([^ ]*\) .*/\1/p' | tr '\n' ' ')" \
	"20240101000003_tags 20240101000002_email " "dbmate: newest first"
like "$err" "downgraded from 20240101000003 to 20240101000001" "dbmate: the final line"
is "$(ledger_versions "$DB")" 20240101000001 "dbmate: the ledger says the first version"
is "$(q "$DB" "SELECT group_concat(name) FROM pragma_table_info('users')")" "id,name" \
	"dbmate: the transaction:false down section ran"
is "$(q "$DB" "SELECT group_concat(name) FROM users")" "Ada,Brian" "dbmate: the users are kept"
is "$(q "$DB" "SELECT count(*) FROM ferry_migrations WHERE dirty")" 0 "dbmate: no dirty row"
no_leftovers "$DBDIR" "dbmate: no journal"
fy "$DB" "$D" migrate
expect_status 0 "dbmate: migrate goes back up"
is "$(ledger_versions "$DB")" "20240101000001 20240101000002 20240101000003" "dbmate: at 3 versions again"

# a failing down section outside a transaction, after another committed: restored
D2=$TMP/mig-dbmate-bad
cp -r "$D" "$D2"
sed -i 's/DROP COLUMN email;/DROP COLUMN nosuch;/' "$D2/20240101000002_email.sql"
dbmate_db dbmatebad "$D2"
before=$(state_sum "$DB")
fy "$DB" "$D2" downgrade --to 20240101000001
expect_status 70 "dbmate: a failing no-transaction down section"
like "$err" "the down part of migration 20240101000002_email failed: .*nosuch" "dbmate: names it"
like "$err" "database restored from $DB\.pre-upgrade, still at version 20240101000003" \
	"dbmate: the snapshot was restored"
is "$(state_sum "$DB")" "$before" "dbmate: the data is exactly as before"
no_leftovers "$DBDIR" "dbmate: no journal after the restore"

# a crash after the no-transaction step committed: the snapshot goes back
for point in downgrade:20240101000002:after-commit journal:verifying; do
	dbmate_db "dbmatecrash-$point" "$D"
	before=$(state_sum "$DB")
	FERRY_TEST_CRASH_AT=$point fy "$DB" "$D" downgrade --to 20240101000001
	expect_status 137 "dbmate $point: ferry killed itself there"
	FERRY_MIGRATIONS_TARGET_VERSION=20240101000001 fy "$DB" "$D" migrate
	expect_status 65 "dbmate $point: the next boot finds the old version, ahead of the target"
	like "$err" "a downgrade from 20240101000003 to 20240101000001 was interrupted \(phase [a-z]+\): restoring" \
		"dbmate $point: and restores the snapshot"
	is "$(state_sum "$DB")" "$before" "dbmate $point: the old data exactly"
	no_leftovers "$DBDIR" "dbmate $point: no journal"
done

done_testing
