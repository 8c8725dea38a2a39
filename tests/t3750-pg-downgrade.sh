#!/bin/sh
# PostgreSQL: ferry downgrade --to V with golang-migrate files (up and
# down). Upgraded 1 -> 4, data written after the upgrade, then taken down
# to 2: the schema is version 2's, the rows that fit it are kept, the
# ledger and `ferry status` say 2, and `ferry migrate` goes up to 4 again.
# Refusals change nothing; a failing down step after another committed
# restores the snapshot (70, data identical); a down part detected as
# no-transaction (DROP INDEX CONCURRENTLY) runs statement by statement; a
# kill -9 at the crash points leaves the old or the new version next boot.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
# downgrade on ferry's own ledger (the tools' ledgers forget versions: t2720)
export FERRY_MIGRATIONS_LEDGER=ferry

# ---- golang-migrate sets: g1 (1), g2 (1-2), g4 (1-4), gn4 (4 concurrent) -----
G=$TMP/g4
mkdir -p "$G"
echo 'CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL);' >"$G/000001_users.up.sql"
echo 'DROP TABLE users;' >"$G/000001_users.down.sql"
cat >"$G/000002_email.up.sql" <<'EOF'
ALTER TABLE users ADD COLUMN email text;
UPDATE users SET email = lower(name) || '@example.com';
EOF
echo 'ALTER TABLE users DROP COLUMN email;' >"$G/000002_email.down.sql"
echo 'CREATE TABLE posts (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users(id), title text NOT NULL);' \
	>"$G/000003_posts.up.sql"
echo 'DROP TABLE posts;' >"$G/000003_posts.down.sql"
cat >"$G/000004_nick.up.sql" <<'EOF'
ALTER TABLE users ADD COLUMN nick text;
CREATE INDEX users_nick ON users (nick);
EOF
cat >"$G/000004_nick.down.sql" <<'EOF'
DROP INDEX users_nick;
ALTER TABLE users DROP COLUMN nick;
EOF
mkdir -p "$TMP/g1" "$TMP/g2" "$TMP/gn4"
cp "$G"/000001_* "$TMP/g1/"
cp "$G"/000001_* "$G"/000002_* "$TMP/g2/"
cp "$G"/* "$TMP/gn4/"
cat >"$TMP/gn4/000004_nick.up.sql" <<'EOF'
ALTER TABLE users ADD COLUMN nick text;
CREATE INDEX CONCURRENTLY users_nick ON users (nick);
EOF
cat >"$TMP/gn4/000004_nick.down.sql" <<'EOF'
DROP INDEX CONCURRENTLY users_nick;
ALTER TABLE users DROP COLUMN nick;
EOF

# at4 SET: appdb built with g1, three users, upgraded to 4 with SET, then
# rows written by the new release; no snapshot or state left.
at4() {
	pg_fresh_appdb
	pgf "$TMP/g1" migrate
	qa "INSERT INTO users (name) VALUES ('Ada'), ('Brian'), ('Chloe')" >/dev/null
	pgf "$1" migrate
	qa "INSERT INTO users (name, email, nick) VALUES ('Dora', 'dora@new.example', 'dd')" >/dev/null
	[ ! -e "$1/000003_posts.up.sql" ] ||
		qa "INSERT INTO posts (user_id, title) VALUES (4, 'written after the upgrade')" >/dev/null
	pg_fresh_appdb_keep
}
# pg_fresh_appdb_keep: ferry's state and snapshots gone, appdb kept
pg_fresh_appdb_keep() {
	for _d in $(psql_su postgres "SELECT datname FROM pg_database WHERE datname LIKE 'appdb\\_%'"); do
		psql_su postgres "DROP DATABASE \"$_d\" WITH (FORCE)" >/dev/null
	done
	rm -rf "$FERRY_DATABASE_STATE_DIR" "$FERRY_SNAPSHOT_DIR"
	mkdir -p "$FERRY_DATABASE_STATE_DIR" "$FERRY_SNAPSHOT_DIR"
}
columns() {
	qa "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns
		WHERE table_schema = 'public' AND table_name = '$1'"
}
# refused STATUS DESC: $rc is STATUS, one log line, appdb as $before, no snapshot
refused() {
	expect_status "$1" "$2"
	is "$(printf '%s\n' "$err" | grep -c .)" 1 "$2: one log line"
	is "$(pg_state_sum)" "$before" "$2: nothing changed"
	is "$(db_list)" appdb "$2: no snapshot database"
	is "$(ls "$FERRY_SNAPSHOT_DIR")" "" "$2: no snapshot file"
}

# ---- down to 2, data kept, up again ---------------------------------------------
at4 "$G"
is "$(ledger_versions)" "1 2 3 4" "setup: upgraded to 4"
pgf "$G" downgrade --to 2
expect_status 0 "downgrade --to 2"
like "$err" "reverted 000004_nick \([0-9]+ ms\)" "a line for 000004"
like "$err" "reverted 000003_posts \([0-9]+ ms\)" "a line for 000003"
is "$(printf '%s\n' "$err" | sed -n 's/.*reverted \([^ ]*\) .*/\1/p' | tr '\n' ' ')" \
	"000004_nick 000003_posts " "newest first"
like "$err" "downgraded from 4 to 2 in [0-9.]+ s \(snapshot kept: " "the final line"
is "$(ledger_versions)" "1 2" "the ledger says 2"
is "$(columns users)" "id,name,email" "users has version 2's columns"
is "$(qa "SELECT to_regclass('public.posts') IS NULL AND to_regclass('public.users_nick') IS NULL")" t \
	"posts and the index of 4 are gone"
is "$(qa "SELECT name || ' ' || email FROM users ORDER BY id" | tr '\n' ',')" \
	"Ada ada@example.com,Brian brian@example.com,Chloe chloe@example.com,Dora dora@new.example," \
	"the rows written after the upgrade are kept"
check "a snapshot was taken" test -n "$(db_list | sed 's/^appdb *//')$(ls "$FERRY_SNAPSHOT_DIR")"

pgf "$G" status
expect_status 0 "status with the newer image"
like "$out" "^2 +000002_email +applied " "status: 2 applied"
like "$out" "^3 +000003_posts +pending " "status: 3 pending"
like "$out" "^4 +000004_nick +pending " "status: 4 pending"
pgf "$TMP/g2" status --exit-code
expect_status 0 "status with the older image: up to date"
pgf "$G" migrate
expect_status 0 "migrate goes back up"
is "$(ledger_versions)" "1 2 3 4" "at 4 again"
is "$(qa "SELECT count(*) FROM users")" 4 "with every user"

# ---- refusals ---------------------------------------------------------------------------
N=$TMP/g4-nodown
cp -r "$G" "$N"
rm "$N/000003_posts.down.sql"
at4 "$N"
before=$(pg_state_sum)
pgf "$N" downgrade --to 2
refused 65 "a migration above V without a down part"
like "$err" "cannot downgrade to 2: migration 000003_posts \(version 3\) has no down part" \
	"names the first migration without one"
pgf "$N" downgrade --to 5
refused 65 "--to above the current version"
like "$err" "cannot downgrade to 5: the database is at version 4" "says where the database is"
pgf "$TMP/g2" migrate
expect_status 65 "the older image refuses a database ahead of it"
like "$err" "run \`ferry downgrade --to 2\` with the newer image" "and names ferry downgrade --to 2"

# ---- a failing down step after one committed: restored -------------------------------
B=$TMP/g4-bad
cp -r "$G" "$B"
printf 'DROP TABLE posts;\nINSERT INTO nosuch VALUES (1);\n' >"$B/000003_posts.down.sql"
at4 "$B"
before=$(pg_state_sum)
pgf "$B" downgrade --to 2
expect_status 70 "a failing down step"
like "$err" "the down part of migration 000003_posts failed: .*nosuch" "names the migration and the error"
like "$err" "database restored from .*, still at version 4" "says it restored the snapshot"
is "$(pg_state_sum)" "$before" "the data is exactly as before"

# ---- a no-transaction down step -----------------------------------------------------
at4 "$TMP/gn4"
pgf "$TMP/gn4" downgrade --to 3
expect_status 0 "a down part with DROP INDEX CONCURRENTLY"
is "$(ledger_versions)" "1 2 3" "the ledger says 3"
is "$(columns users)" "id,name,email" "nick is gone"
is "$(qa "SELECT count(*) FROM ferry_migrations WHERE dirty")" 0 "no dirty row"

# ---- dbmate, a down section with transaction:false --------------------------------
D=$TMP/mig-dbmate
mkdir -p "$D"
printf -- '-- migrate:up\nCREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL);\n-- migrate:down\nDROP TABLE users;\n' \
	>"$D/20240101000001_users.sql"
printf -- '-- migrate:up\nALTER TABLE users ADD COLUMN email text;\n-- migrate:down transaction:false\nALTER TABLE users DROP COLUMN email;\n' \
	>"$D/20240101000002_email.sql"
printf -- '-- migrate:up\nCREATE TABLE tags (id bigserial PRIMARY KEY, label text);\n-- migrate:down\nDROP TABLE tags;\n' \
	>"$D/20240101000003_tags.sql"
pg_fresh_appdb
pgf "$D" migrate
qa "INSERT INTO users (name, email) VALUES ('Ada', 'ada@example.com')" >/dev/null
pgf "$D" downgrade --to 20240101000001
expect_status 0 "dbmate: downgrade --to the first version"
is "$(printf '%s\n' "$err" | sed -n 's/.*reverted \([^ ]*\) .*/\1/p' | tr '\n' ' ')" \
	"20240101000003_tags 20240101000002_email " "dbmate: newest first"
is "$(ledger_versions)" 20240101000001 "dbmate: the ledger says the first version"
is "$(columns users)" "id,name" "dbmate: the transaction:false down section ran"
is "$(qa "SELECT name FROM users")" Ada "dbmate: the user is kept"
pgf "$D" migrate
expect_status 0 "dbmate: migrate goes back up"
is "$(ledger_versions | wc -w)" 3 "dbmate: at 3 versions again"

# ---- a kill -9 at each crash point ------------------------------------------------
export FERRY_MIGRATIONS_LOCK_TIMEOUT_SECONDS=60
# crash_case SET POINT EXPECT: EXPECT old or new
crash_case() {
	set=$1 point=$2 expect=$3
	at4 "$set"
	old_sum=$(pg_state_sum)
	FERRY_TEST_CRASH_AT=$point pgf "$set" downgrade --to 2
	expect_status 137 "$point: ferry killed itself there"
	FERRY_MIGRATIONS_TARGET_VERSION=2 pgf "$set" migrate
	case $expect in
	old) is "$(pg_state_sum)" "$old_sum" "$point: the next boot finds the old version and data"
	     expect_status 65 "$point: ahead of target 2" ;;
	new) is "$(ledger_versions)" "1 2" "$point: the next boot finds the downgraded database"
	     is "$(columns users)" "id,name,email" "$point: with version 2's schema"
	     expect_status 0 "$point: at 2" ;;
	esac
	like "$err" "a downgrade from 4 to 2 was interrupted" "$point: the log says a downgrade was interrupted"
	pgf "$set" status --json
	is "$(json 'j["journal"]')" none "$point: no journal after recovery"
	is "$(db_list | tr ' ' '\n' | grep -v '^appdb$' | grep -v pre_upgrade)" "" "$point: no leftover database"
}
crash_case "$G" journal:snapshotted old
crash_case "$G" journal:migrating old
crash_case "$G" migration:4:before-commit old
crash_case "$G" downgrade:4:after-commit old
crash_case "$G" migration:3:before-commit old
crash_case "$G" journal:verifying old
crash_case "$G" journal:done new
crash_case "$G" downgrade:committed new
crash_case "$TMP/gn4" pg:statement:4:1 old
crash_case "$TMP/gn4" pg:statement:4:2 old

secret_never_shown
done_testing
