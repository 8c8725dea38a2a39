#!/bin/sh
# SQLite: the migration formats of other tools (dbmate, goose, Flyway,
# diesel, golang-migrate), each a directory written here with steps in a
# transaction and steps outside one (VACUUM, which SQLite refuses inside a
# transaction, proves which is which), applied by `ferry migrate` to a new
# database and then upgraded by a second directory with more files. The
# down sections are never run on the way up. Flyway's dotted versions
# order numerically; U/B scripts, goose ENVSUB, two formats in one
# directory and a forced [migrations] format that does not match are
# refused with one line naming a file (65). A diesel-style table rebuild
# (new table, copy, DROP the table others reference, rename) keeps the
# referencing rows, ON DELETE CASCADE included; one that really breaks a
# foreign key fails (70) and leaves the database as it was.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
# the formats alone, on ferry's own ledger (their tools' ledgers: t2720)
export FERRY_MIGRATIONS_LEDGER=ferry
unset FERRY_MIGRATIONS_FORMAT

# up DESC DIR: ferry migrate of $DB with DIR succeeds
up() {
	fy "$DB" "$2" migrate
	expect_status 0 "$1"
}

# detected FORMAT DIR: ferry status names FORMAT as DIR's format
detected() {
	fy "$DB" "$2" status
	like "$out" "^image version: .* \\($2, $1 format\\)$" "$1: detected"
}

# refused DESC DIR PATTERN: ferry migrate of a new database with DIR is
# refused (65) in one line matching PATTERN, and creates nothing
refused() {
	new_db "refused-$(basename "$2")"
	fy "$DB" "$2" migrate
	expect_status 65 "$1"
	is "$(printf '%s\n' "$err" | grep -c .)" 1 "$1: one log line"
	like "$err" "$3" "$1: names the file"
	check "$1: no database is created" test ! -e "$DB"
}

# ---- dbmate ------------------------------------------------------------------
D=$TMP/dbmate1
mkdir -p "$D"
cat >"$D/20240101120000_users.sql" <<'EOF'
-- migrate:up
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO users (name) VALUES ('ada'), ('bob');

-- migrate:down
DROP TABLE users;
EOF
cat >"$D/20240102120000_compact.sql" <<'EOF'
-- migrate:up transaction:false
CREATE INDEX users_name ON users (name);
VACUUM;

-- migrate:down transaction:false
DROP INDEX users_name;
EOF
cp -r "$D" "$TMP/dbmate2"
cat >"$TMP/dbmate2/20240103120000_posts.sql" <<'EOF'
-- migrate:down
DROP TABLE posts;
-- migrate:up
CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id));
INSERT INTO posts (user_id) SELECT id FROM users;
EOF
new_db dbmate
up "dbmate: a new database" "$D"
detected dbmate "$D"
is "$(q "$DB" 'SELECT group_concat(name) FROM users')" "ada,bob" "dbmate: the up section ran, not the down one"
is "$(q "$DB" "SELECT count(*) FROM sqlite_master WHERE name = 'users_name'")" 1 \
	"dbmate: the transaction:false step ran (VACUUM included)"
up "dbmate: upgraded by a second directory" "$TMP/dbmate2"
is "$(ledger_versions "$DB")" "20240101120000 20240102120000 20240103120000" "dbmate: every version recorded"
is "$(q "$DB" 'SELECT count(*) FROM posts')" 2 "dbmate: a down section first, then the up one"

# ---- goose -------------------------------------------------------------------
G=$TMP/goose1
mkdir -p "$G"
cat >"$G/00001_users.sql" <<'EOF'
-- +goose Up
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE audit (what TEXT);
-- +goose StatementBegin
CREATE TRIGGER users_audit AFTER INSERT ON users
BEGIN
    INSERT INTO audit VALUES ('user ' || NEW.name);
    INSERT INTO audit VALUES ('count ' || (SELECT count(*) FROM users));
END;
-- +goose StatementEnd
INSERT INTO users (name) VALUES ('ada');

-- +goose Down
DROP TABLE audit;
DROP TABLE users;
EOF
cat >"$G/00002_compact.sql" <<'EOF'
-- +goose NO TRANSACTION
-- +goose Up
VACUUM;
EOF
cp -r "$G" "$TMP/goose2"
cat >"$TMP/goose2/20240101120000_more.sql" <<'EOF'
-- +goose Up
INSERT INTO users (name) VALUES ('bob');
-- +goose Down
DELETE FROM users WHERE name = 'bob';
EOF
new_db goose
up "goose: a new database" "$G"
detected goose "$G"
is "$(q "$DB" 'SELECT group_concat(what, "|") FROM audit')" "user ada|count 1" \
	"goose: the StatementBegin/End trigger with semicolons inside works"
up "goose: upgraded, a timestamp version after the numbered ones" "$TMP/goose2"
is "$(ledger_versions "$DB")" "1 2 20240101120000" "goose: every version recorded"
is "$(q "$DB" 'SELECT group_concat(name) FROM users')" "ada,bob" "goose: the down sections did not run"

# ---- Flyway ------------------------------------------------------------------
F=$TMP/flyway1
mkdir -p "$F"
echo 'CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);' >"$F/V1__users.sql"
echo "INSERT INTO users (name) VALUES ('ada');" >"$F/V2__ada.sql"
echo 'VACUUM;' >"$F/V3__compact.sql"
printf '# Flyway script config\nexecuteInTransaction=false\n' >"$F/V3__compact.sql.conf"
echo "CREATE VIEW IF NOT EXISTS names AS SELECT name FROM users;" >"$F/R__names.sql"
cp -r "$F" "$TMP/flyway2"
echo "INSERT INTO users (name) VALUES ('bob');" >"$TMP/flyway2/V10__bob.sql"
new_db flyway
up "Flyway: a new database" "$F"
detected flyway "$F"
is "$(q "$DB" 'SELECT group_concat(name) FROM users')" "ada" "Flyway: the versioned scripts ran"
up "Flyway: upgraded (V10 after V3)" "$TMP/flyway2"
is "$(ledger_versions "$DB")" "1 2 3 10" "Flyway: every version recorded, the repeatable not among them"
is "$(q "$DB" 'SELECT group_concat(name) FROM users')" "ada,bob" "Flyway: V10 ran"

# dotted versions: the order ferry status shows, 1 < 1.1 (V1_1) < 1.2 < 1.10
FD=$TMP/flyway-dotted
mkdir -p "$FD"
for v in 1.10 1_1 1 1.2; do echo 'SELECT 1;' >"$FD/V${v}__s.sql"; done
new_db dotted
fy "$DB" "$FD" status
expect_status 0 "Flyway dotted versions: status"
is "$(printf '%s\n' "$out" | awk '$3 == "pending" { printf "%s:%s ", $1, $2 }')" \
	"1:V1__s 1.1:V1_1__s 1.2:V1.2__s 1.10:V1.10__s " "Flyway: 1 < 1.1 (V1_1) < 1.2 < 1.10"
echo 'SELECT 1;' >"$FD/V1.1__t.sql"
refused "Flyway: V1_1 and V1.1 are one version" "$FD" "have the same version 1\.1"

mkdir -p "$TMP/flyway-undo" "$TMP/flyway-base"
cp "$F"/V1__users.sql "$TMP/flyway-undo/"
echo 'DROP TABLE users;' >"$TMP/flyway-undo/U1__users.sql"
echo 'CREATE TABLE users (id INTEGER);' >"$TMP/flyway-base/B5__baseline.sql"
refused "Flyway: an undo script" "$TMP/flyway-undo" "migration '$TMP/flyway-undo/U1__users\.sql' is a Flyway undo script"
refused "Flyway: a baseline script" "$TMP/flyway-base" "'$TMP/flyway-base/B5__baseline\.sql' is a Flyway baseline script"

# ---- diesel ------------------------------------------------------------------
# the rebuild: users gains a NOT NULL column through a new table; posts
# (ON DELETE CASCADE) and likes (plain) reference users
L=$TMP/diesel1
mkdir -p "$L/00000000000000_diesel_initial_setup" "$L/2024-01-01-120000_users" "$L/2024-01-02-120000_compact"
echo '-- diesel setup' >"$L/00000000000000_diesel_initial_setup/up.sql"
echo 'SELECT 1;' >>"$L/00000000000000_diesel_initial_setup/up.sql"
echo '-- nothing' >"$L/00000000000000_diesel_initial_setup/down.sql"
cat >"$L/2024-01-01-120000_users/up.sql" <<'EOF'
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE);
CREATE TABLE likes (post_id INTEGER, user_id INTEGER REFERENCES users (id));
INSERT INTO users (name) VALUES ('ada'), ('bob');
INSERT INTO posts (user_id) VALUES (1), (1), (2);
INSERT INTO likes VALUES (1, 2), (3, 1);
EOF
echo 'DROP TABLE likes; DROP TABLE posts; DROP TABLE users;' >"$L/2024-01-01-120000_users/down.sql"
echo 'VACUUM;' >"$L/2024-01-02-120000_compact/up.sql"
printf '# diesel\nrun_in_transaction = false\n' >"$L/2024-01-02-120000_compact/metadata.toml"
cp -r "$L" "$TMP/diesel2"
mkdir -p "$TMP/diesel2/2024-01-03-120000_rebuild_users"
cat >"$TMP/diesel2/2024-01-03-120000_rebuild_users/up.sql" <<'EOF'
PRAGMA foreign_keys = OFF;
CREATE TABLE users_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL DEFAULT '');
INSERT INTO users_new (id, name) SELECT id, name FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
PRAGMA foreign_keys = ON;
EOF
echo 'SELECT 1;' >"$TMP/diesel2/2024-01-03-120000_rebuild_users/down.sql"
new_db diesel
up "diesel: a new database" "$L"
detected diesel "$L"
is "$(ledger_versions "$DB")" "0 20240101120000 20240102120000" \
	"diesel: the initial setup is a migration, versions are the timestamps' digits"
is "$(q "$DB" 'SELECT count(*) FROM posts')" 3 "diesel: up.sql ran, down.sql did not"
up "diesel: upgraded by a table rebuild under foreign keys" "$TMP/diesel2"
is "$(q "$DB" 'SELECT count(*) FROM posts')|$(q "$DB" 'SELECT count(*) FROM likes')" "3|2" \
	"diesel: the rows referencing the rebuilt table are all there (no cascade)"
is "$(q "$DB" 'SELECT count(*) FROM pragma_foreign_key_check')" 0 "diesel: no foreign key violation"
is "$(q "$DB" "SELECT group_concat(name || '<' || email || '>') FROM users")" "ada<>,bob<>" \
	"diesel: the rebuilt table has its data and the new column"

# a rebuild that loses a referenced row: the migration fails, nothing changes
cp -r "$TMP/diesel2" "$TMP/diesel3"
mkdir -p "$TMP/diesel3/2024-01-04-120000_lose_bob"
cat >"$TMP/diesel3/2024-01-04-120000_lose_bob/up.sql" <<'EOF'
CREATE TABLE users_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL DEFAULT '');
INSERT INTO users_new SELECT * FROM users WHERE name <> 'bob';
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
EOF
before=$(state_sum "$DB")
fy "$DB" "$TMP/diesel3" migrate
expect_status 70 "diesel: a rebuild that breaks a foreign key fails"
like "$err" "foreign key violation: a row of table '(posts|likes)' references a missing row of 'users'" \
	"diesel: the failure names the tables"
is "$(state_sum "$DB")" "$before" "diesel: the database is as it was"
is "$(q "$DB" 'SELECT count(*) FROM users')" 2 "diesel: bob is still there"

printf 'run_in_transaction\n' >"$TMP/diesel3/2024-01-04-120000_lose_bob/metadata.toml"
refused "diesel: a malformed metadata.toml" "$TMP/diesel3" \
	"'$TMP/diesel3/2024-01-04-120000_lose_bob/metadata\.toml' line 1: not a line of TOML"

# ---- golang-migrate ----------------------------------------------------------
M=$TMP/golang1
mkdir -p "$M"
echo 'CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);' >"$M/000001_users.up.sql"
echo 'DROP TABLE users;' >"$M/000001_users.down.sql"
echo "INSERT INTO users (name) VALUES ('ada');" >"$M/000002_ada.up.sql"
echo "DELETE FROM users;" >"$M/000002_ada.down.sql"
new_db golang
up "golang-migrate: a new database, its .down.sql files read and not run" "$M"
is "$(q "$DB" 'SELECT group_concat(name) FROM users')" "ada" "golang-migrate: the up files ran"

# ---- refusals ----------------------------------------------------------------
E=$TMP/envsub
mkdir -p "$E"
printf -- "-- +goose Up\n-- +goose ENVSUB ON\nCREATE TABLE t (x TEXT DEFAULT '\${NAME}');\n" >"$E/00001_t.sql"
refused "goose: ENVSUB ON" "$E" "migration '$E/00001_t\.sql' line 2: '-- \+goose ENVSUB ON'"

X=$TMP/mixed
mkdir -p "$X"
cp "$D/20240101120000_users.sql" "$G/00002_compact.sql" "$X/"
refused "dbmate and goose files in one directory" "$X" \
	"mixes two formats: '(20240101120000_users\.sql' is a dbmate migration, '00002_compact\.sql' a goose|00002_compact\.sql' is a goose migration, '20240101120000_users\.sql' a dbmate) one"

Y=$TMP/forced
mkdir -p "$Y"
echo 'CREATE TABLE t (x);' >"$Y/0001_t.sql"
FERRY_MIGRATIONS_FORMAT=goose
export FERRY_MIGRATIONS_FORMAT
refused "[migrations] format = goose, ferry files" "$Y" \
	"format = goose, but '$Y/0001_t\.sql' is a ferry migration"
FERRY_MIGRATIONS_FORMAT=dbmate
refused "[migrations] format = dbmate, goose files" "$G" \
	"format = dbmate, but '$G/0000[12]_[a-z]*\.sql' is a goose migration"
FERRY_MIGRATIONS_FORMAT=flyway
new_db forced-ok
up "[migrations] format = flyway, Flyway files" "$F"
FERRY_MIGRATIONS_FORMAT=sqitch
new_db forced-bad
fy "$DB" "$F" migrate
expect_status 78 "[migrations] format = sqitch: not a format"
like "$err" "expected auto, ferry, golang-migrate, dbmate, goose, flyway or diesel" "says which formats there are"
unset FERRY_MIGRATIONS_FORMAT

# ---- files written on Windows: CRLF line ends and a BOM --------------------------
# The markers are read as the loader reads the text: a CRLF dbmate file is
# dbmate's (its down section must not run with its up), a goose file with
# a BOM before its first marker is goose's.
mkdir -p "$TMP/m-crlf"
printf -- '-- migrate:up\r\nCREATE TABLE users (x);\r\n-- migrate:down\r\nDROP TABLE users;\r\n' \
	>"$TMP/m-crlf/20240101120000_a.sql"
printf -- '-- migrate:up\r\nCREATE TABLE posts (x);\r\n-- migrate:down\r\nDROP TABLE users;\r\n' \
	>"$TMP/m-crlf/20240201120000_b.sql"
new_db crlf
fy "$DB" "$TMP/m-crlf" migrate
expect_status 0 "dbmate files with CRLF line ends"
is "$(q "$DB" "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN ('users', 'posts') ORDER BY name)")" \
	"posts users" "both up sections ran, no down section"
fy "$DB" "$TMP/m-crlf" status
like "$out" "dbmate format" "status names the dbmate format"
mkdir -p "$TMP/m-bom"
printf '\357\273\277-- +goose Up\nCREATE TABLE g (x);\n-- +goose Down\nDROP TABLE g;\n' >"$TMP/m-bom/00001_g.sql"
new_db bom
fy "$DB" "$TMP/m-bom" migrate
expect_status 0 "a goose file with a BOM before its first marker"
is "$(q "$DB" "SELECT count(*) FROM sqlite_schema WHERE name = 'g'")" 1 "its up section ran, not its down"

# A directory with an up.sql that no format reads (a diesel stamp of 13
# digits) is refused, naming it, not skipped with its SQL.
mkdir -p "$TMP/m-dz/2024-01-01-120000_a" "$TMP/m-dz/2024-01-02-12000_b"
echo 'CREATE TABLE a (x);' >"$TMP/m-dz/2024-01-01-120000_a/up.sql"
echo 'CREATE TABLE b (x);' >"$TMP/m-dz/2024-01-02-12000_b/up.sql"
new_db dz
fy "$DB" "$TMP/m-dz" migrate
expect_status 65 "a diesel directory without its 14-digit stamp"
like "$err" "2024-01-02-12000_b/up.sql': cannot read a version from the name" "names it"
check "no database was created" test ! -e "$DB"

done_testing
