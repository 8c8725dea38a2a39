#!/bin/sh
# PostgreSQL: the migration formats of other tools (dbmate, goose, Flyway,
# diesel, golang-migrate), each a directory written here with steps in a
# transaction and steps outside one (CREATE INDEX CONCURRENTLY, which
# PostgreSQL refuses inside a transaction block), applied by `ferry
# migrate` to an empty appdb and then upgraded by a second directory with
# more files; a goose StatementBegin/End plpgsql function whose body holds
# semicolons; down sections never run on the way up.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
# the formats alone, on ferry's own ledger (their tools' ledgers: t3720)
export FERRY_MIGRATIONS_LEDGER=ferry
unset FERRY_MIGRATIONS_FORMAT

# up DESC DIR: ferry migrate of appdb with DIR succeeds
up() {
	pgf "$2" migrate
	expect_status 0 "$1"
}

# detected FORMAT DIR: ferry status names FORMAT as DIR's format
detected() {
	pgf "$2" status
	like "$out" "^image version: .* \\($2, $1 format\\)$" "$1: detected"
}

# is_valid_index NAME DESC: the index exists and is valid (built concurrently)
is_valid_index() {
	is "$(qa "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('public.$1')")" t "$2"
}

# ---- dbmate ------------------------------------------------------------------
D=$TMP/dbmate1
mkdir -p "$D"
cat >"$D/20240101120000_users.sql" <<'EOF'
-- migrate:up
CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);
INSERT INTO users (name) VALUES ('ada'), ('bob');

-- migrate:down
DROP TABLE users;
EOF
cat >"$D/20240102120000_index.sql" <<'EOF'
-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY users_name ON users (name);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY users_name;
EOF
cp -r "$D" "$TMP/dbmate2"
cat >"$TMP/dbmate2/20240103120000_posts.sql" <<'EOF'
-- migrate:up
CREATE TABLE posts (id serial PRIMARY KEY, user_id int REFERENCES users (id));
INSERT INTO posts (user_id) SELECT id FROM users;
-- migrate:down
DROP TABLE posts;
EOF
pg_fresh_appdb
up "dbmate: an empty appdb" "$D"
detected dbmate "$D"
is "$(qa 'SELECT string_agg(name, $$,$$ ORDER BY id) FROM users')" "ada,bob" "dbmate: the up section ran, not the down one"
is_valid_index users_name "dbmate: the transaction:false step built its index concurrently"
up "dbmate: upgraded" "$TMP/dbmate2"
is "$(ledger_versions)" "20240101120000 20240102120000 20240103120000" "dbmate: every version recorded"
is "$(qa 'SELECT count(*) FROM posts')" 2 "dbmate: the new migration ran"

# ---- goose -------------------------------------------------------------------
G=$TMP/goose1
mkdir -p "$G"
cat >"$G/00001_users.sql" <<'EOF'
-- +goose Up
CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, slug text);
-- +goose StatementBegin
CREATE FUNCTION users_slug() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s text;
BEGIN
    s := lower(NEW.name);
    NEW.slug := s || '-' || NEW.id;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER users_slug BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION users_slug();
INSERT INTO users (name) VALUES ('Ada');

-- +goose Down
DROP TABLE users;
DROP FUNCTION users_slug();
EOF
cat >"$G/00002_index.sql" <<'EOF'
-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY users_name ON users (name);

-- +goose Down
DROP INDEX CONCURRENTLY users_name;
EOF
cp -r "$G" "$TMP/goose2"
cat >"$TMP/goose2/20240101120000_bob.sql" <<'EOF'
-- +goose Up
INSERT INTO users (name) VALUES ('Bob');
-- +goose Down
DELETE FROM users WHERE name = 'Bob';
EOF
pg_fresh_appdb
up "goose: an empty appdb" "$G"
detected goose "$G"
is "$(qa 'SELECT string_agg(slug, $$,$$ ORDER BY id) FROM users')" "ada-1" \
	"goose: the StatementBegin/End plpgsql function (semicolons inside) works"
is_valid_index users_name "goose: the NO TRANSACTION step built its index concurrently"
up "goose: upgraded" "$TMP/goose2"
is "$(ledger_versions)" "1 2 20240101120000" "goose: every version recorded"
is "$(qa 'SELECT string_agg(slug, $$,$$ ORDER BY id) FROM users')" "ada-1,bob-2" "goose: the down sections did not run"

# ---- Flyway ------------------------------------------------------------------
F=$TMP/flyway1
mkdir -p "$F"
echo 'CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);' >"$F/V1__users.sql"
echo "INSERT INTO users (name) VALUES ('ada');" >"$F/V2__ada.sql"
echo 'CREATE INDEX CONCURRENTLY users_name ON users (name);' >"$F/V3__index.sql"
printf 'executeInTransaction=false\n' >"$F/V3__index.sql.conf"
echo 'CREATE OR REPLACE VIEW names AS SELECT name FROM users;' >"$F/R__names.sql"
cp -r "$F" "$TMP/flyway2"
echo "INSERT INTO users (name) VALUES ('bob');" >"$TMP/flyway2/V10__bob.sql"
pg_fresh_appdb
up "Flyway: an empty appdb" "$F"
detected flyway "$F"
is_valid_index users_name "Flyway: executeInTransaction=false built its index concurrently"
up "Flyway: upgraded (V10 after V3)" "$TMP/flyway2"
is "$(ledger_versions)" "1 2 3 10" "Flyway: every version recorded"
is "$(qa 'SELECT string_agg(name, $$,$$ ORDER BY id) FROM users')" "ada,bob" "Flyway: the scripts ran in version order"

# ---- diesel ------------------------------------------------------------------
L=$TMP/diesel1
mkdir -p "$L/00000000000000_diesel_initial_setup" "$L/2024-01-01-120000_users" "$L/2024-01-02-120000_index"
cat >"$L/00000000000000_diesel_initial_setup/up.sql" <<'EOF'
-- diesel's generated setup: a helper its apps call
CREATE OR REPLACE FUNCTION diesel_set_updated_at() RETURNS trigger AS $$
BEGIN
    IF (NEW IS DISTINCT FROM OLD AND NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at) THEN
        NEW.updated_at := current_timestamp;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
EOF
echo 'DROP FUNCTION IF EXISTS diesel_set_updated_at();' >"$L/00000000000000_diesel_initial_setup/down.sql"
cat >"$L/2024-01-01-120000_users/up.sql" <<'EOF'
CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, updated_at timestamptz);
CREATE TRIGGER users_updated BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION diesel_set_updated_at();
INSERT INTO users (name) VALUES ('ada');
EOF
echo 'DROP TABLE users;' >"$L/2024-01-01-120000_users/down.sql"
echo 'CREATE INDEX CONCURRENTLY users_name ON users (name);' >"$L/2024-01-02-120000_index/up.sql"
printf 'run_in_transaction = false\n' >"$L/2024-01-02-120000_index/metadata.toml"
cp -r "$L" "$TMP/diesel2"
mkdir -p "$TMP/diesel2/2024-01-03-120000_touch"
echo "UPDATE users SET name = 'Ada';" >"$TMP/diesel2/2024-01-03-120000_touch/up.sql"
pg_fresh_appdb
up "diesel: an empty appdb" "$L"
detected diesel "$L"
is "$(ledger_versions)" "0 20240101120000 20240102120000" "diesel: the initial setup is a migration, versions are the timestamps' digits"
is_valid_index users_name "diesel: run_in_transaction = false built its index concurrently"
up "diesel: upgraded" "$TMP/diesel2"
is "$(qa 'SELECT name, updated_at IS NOT NULL FROM users')" "Ada|t" "diesel: the new migration ran, through the setup's function"

# ---- golang-migrate ----------------------------------------------------------
M=$TMP/golang1
mkdir -p "$M"
echo 'CREATE TABLE users (id serial PRIMARY KEY, name text);' >"$M/000001_users.up.sql"
echo 'DROP TABLE users;' >"$M/000001_users.down.sql"
echo 'CREATE INDEX CONCURRENTLY users_name ON users (name);' >"$M/000002_index.up.sql"
echo 'DROP INDEX CONCURRENTLY users_name;' >"$M/000002_index.down.sql"
pg_fresh_appdb
up "golang-migrate: an empty appdb, .down.sql files read and not run" "$M"
is_valid_index users_name "golang-migrate: CREATE INDEX CONCURRENTLY (detected, run outside a transaction)"

done_testing
