#!/bin/sh
# PostgreSQL upgrades against a real server: the URL forms, the first boot,
# an upgrade with data in one transaction, a failing migration rolled back
# (pg_dump --data-only identical), golang-migrate files, statement
# splitting (dollar quotes, comments, literals, quoted identifiers), and the
# no-transaction migrations: declared, or detected (CREATE INDEX
# CONCURRENTLY, REINDEX CONCURRENTLY, DROP INDEX CONCURRENTLY, VACUUM).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
make_std_pg_migrations

# ---- first boot on an empty database --------------------------------------------
pg_fresh_appdb
pgf "$TMP/p1" migrate
expect_status 0 "first boot on an empty appdb"
is "$(ledger_versions)" 1 "the ledger has version 1"
check "the ledger is public.ferry_migrations" table_exists ferry_migrations
is "$(qa "SELECT name, sha256, dirty FROM ferry_migrations")" \
	"0001_users|$(filesum "$TMP/p1/0001_users.sql")|f" "ledger row: name, sha256 of the file, clean"
is "$(qa "SELECT applied_at IS NOT NULL AND duration_ms >= 0 FROM ferry_migrations")" t \
	"ledger row: applied_at and duration_ms"
check "the users table is there" table_exists users
is "$(qa "SELECT tableowner FROM pg_tables WHERE tablename = 'users'")" app "created by the role of the URL"
is "$(db_list)" appdb "no other database was created"

# ---- an upgrade with data, in one transaction ---------------------------------------
psql_as app appdb "INSERT INTO users (name) VALUES ('Ada'), ('Brian'), ('Chloe')" >/dev/null
pgf "$TMP/p3" migrate
expect_status 0 "upgrade 1 -> 3 with data"
is "$(ledger_versions)" "1 2 3" "the ledger has 1 2 3"
is "$(qa "SELECT name || ' ' || email FROM users ORDER BY id" | tr '\n' ',')" \
	"Ada ada@example.com,Brian brian@example.com,Chloe chloe@example.com," "0002 migrated the data"
is "$(qa "SELECT title FROM posts ORDER BY id" | tr '\n' ',')" \
	"hello from Ada,hello from Brian,hello from Chloe," "0003 created and filled posts"
like "$err" "upgraded from 1 to 3" "the log says it upgraded from 1 to 3"
like "$err" "[Nn]o snapshot" "all transactional: the log says no snapshot is needed"
is "$(db_list)" appdb "no snapshot database"
is "$(ls "$FERRY_SNAPSHOT_DIR")" "" "no snapshot file"
is "$(qa "SELECT count(*) FROM ferry_migrations WHERE dirty")" 0 "no dirty row"

sum=$(pg_state_sum)
pgf "$TMP/p3" migrate
expect_status 0 "second boot"
like "$err" "up to date" "says up to date"
is "$(pg_state_sum)" "$sum" "up to date: nothing changed"

pgf "$TMP/p3" run -- sh -c 'echo served'
expect_status 0 "ferry run, up to date"
is "$out" served "the server ran"

# ---- the URL forms --------------------------------------------------------------------
pgf "$TMP/p3" status
expect_status 0 "status with postgres://user:password@host:port/db"
like "$out" "database version: 3" "reads version 3"
URL="postgresql://app:$APP_PASSWORD@127.0.0.1:$PGPORT/appdb" pgf "$TMP/p3" status
expect_status 0 "postgresql:// URL"
like "$out" "database version: 3" "postgresql://: version 3"
URL="postgres://app:$APP_PASSWORD@127.0.0.1:$PGPORT/appdb?sslmode=disable&connect_timeout=5" \
	pgf "$TMP/p3" status
expect_status 0 "URL with libpq query parameters"
URL=$PGKV pgf "$TMP/p3" status
expect_status 0 "libpq key=value string over the socket dir"
like "$out" "database version: 3" "key=value: version 3"
URL="host=127.0.0.1 port=$PGPORT dbname=appdb user=app password=$APP_PASSWORD" pgf "$TMP/p3" status
expect_status 0 "libpq key=value string over TCP with password="
like "$out" "database version: 3" "key=value with password: version 3"
URL="host=127.0.0.1 port=$PGPORT dbname=appdb user=app password='$APP_PASSWORD'" pgf "$TMP/p3" status
expect_status 0 "key=value with a quoted password"
DATABASE_URL=$PGURL run_ferry --migrations "$TMP/p3" status
no_secret "DATABASE_URL status" "$TMP/.out" "$TMP/.err"
expect_status 0 "DATABASE_URL from the environment"
like "$out" "database version: 3" "DATABASE_URL: version 3"
URL="postgres://app:wrong$APP_PASSWORD@127.0.0.1:$PGPORT/appdb" \
	FERRY_DATABASE_WAIT_SECONDS=1 pgf "$TMP/p3" status
check "a wrong password fails (exit $rc)" test "$rc" != 0
like "$err" "password|authentication" "and says the authentication failed"

# application_name: ferry unless the URL says otherwise
mkdir -p "$TMP/pwho"
cp "$TMP/p1/0001_users.sql" "$TMP/pwho/"
cat >"$TMP/pwho/0002_who.sql" <<'EOF'
CREATE TABLE who AS SELECT current_setting('application_name') AS app, current_user AS role;
EOF
v1_appdb
pgf "$TMP/pwho" migrate
expect_status 0 "setup: a migration that records its session"
is "$(qa "SELECT app || ' ' || role FROM who")" "ferry app" "application_name defaults to ferry"
v1_appdb
URL="$PGURL?application_name=billing-api" pgf "$TMP/pwho" migrate
expect_status 0 "URL with application_name"
is "$(qa "SELECT app FROM who")" billing-api "application_name from the URL is passed through"

# target version
v1_appdb
FERRY_MIGRATIONS_TARGET_VERSION=2 pgf "$TMP/p3" migrate
expect_status 0 "FERRY_MIGRATIONS_TARGET_VERSION=2"
is "$(ledger_versions)" "1 2" "stops at version 2"
is "$(qa "SELECT to_regclass('public.posts') IS NULL")" t "no posts table"

# ---- a failing migration: everything pending rolls back ---------------------------------
mkdir -p "$TMP/pbad"
cp "$TMP/p3/"*.sql "$TMP/pbad/"
cat >"$TMP/pbad/0004_bad.sql" <<'EOF'
-- tags, with a duplicate by mistake
CREATE TABLE tags (id bigint PRIMARY KEY, label text);

INSERT INTO tags VALUES (1, 'news');
INSERT INTO tags VALUES (1, 'misc');
INSERT INTO tags VALUES (2, 'other');
EOF
v1_appdb
data_before=$(pg_data)
state_before=$(pg_state)
pgf "$TMP/pbad" migrate
expect_status 70 "a failing migration"
like "$err" "0004_bad" "the log names the migration"
like "$err" "near line 5" "and the line of the failing statement"
like "$err" "duplicate key" "and PostgreSQL's error"
like "$err" "rolled back|restored" "says it rolled back"
like "$err" "still at version 1" "says the database is still at version 1"
like "$err" "[Nn]o snapshot" "says no snapshot was needed"
same_state "$(pg_data)" "$data_before" "pg_dump --data-only identical before and after"
same_state "$(pg_state)" "$state_before" "pg_dump (schema + data) identical"
no_ferry_tables "rolled back"
is "$(ledger_versions)" 1 "the ledger is still at 1"
is "$(db_list)" appdb "no snapshot database"
is "$(ls "$FERRY_SNAPSHOT_DIR")" "" "no snapshot file"
pgf "$TMP/p3" migrate
expect_status 0 "the fixed image upgrades"
is "$(ledger_versions)" "1 2 3" "to 3"

# ---- golang-migrate files -----------------------------------------------------------------
mkdir -p "$TMP/gm"
cat >"$TMP/gm/000001_users.up.sql" <<'EOF'
CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL);
EOF
echo 'DROP TABLE users;' >"$TMP/gm/000001_users.down.sql"
cat >"$TMP/gm/000002_email.up.sql" <<'EOF'
ALTER TABLE users ADD COLUMN email text;
EOF
echo 'ALTER TABLE users DROP COLUMN email;' >"$TMP/gm/000002_email.down.sql"
pg_fresh_appdb
# [migrations] ledger = ferry: ferry's own ledger, not migrate's (t3720)
FERRY_MIGRATIONS_LEDGER=ferry pgf "$TMP/gm" migrate
expect_status 0 "golang-migrate .up.sql files"
is "$(ledger_versions)" "1 2" "ledger 1 2"
is "$(qa "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'email'")" 1 \
	"the up files ran, not the down files"

# ---- statement splitting: dollar quotes, comments, literals, identifiers ------------------
# The same body twice: in a transactional migration and in a no-transaction
# one (run statement by statement, where splitting really matters).
mkdir -p "$TMP/pfn"
cp "$TMP/p1/0001_users.sql" "$TMP/pfn/"
fn_body() { # fn_body SUFFIX
	cat <<EOF
-- a comment; with a semicolon and a 'quote
CREATE FUNCTION add_one$1(i integer) RETURNS integer LANGUAGE plpgsql AS \$\$
BEGIN
    -- inner comment; still the body
    IF i < 0 THEN
        RAISE EXCEPTION 'negative; no';
    END IF;
    RETURN i + 1;
END \$\$;
CREATE FUNCTION greet$1(who text) RETURNS text LANGUAGE plpgsql AS \$fn\$
DECLARE
    s text := 'hello; ';
BEGIN
    s := s || who || \$q\$; it's \$\$ fine\$q\$;
    RETURN s;
END;
\$fn\$;
/* a block comment; with semicolons; */
CREATE TABLE "semi;colon$1" (id int, "a;b" text DEFAULT 'x;y');
INSERT INTO "semi;colon$1" (id) VALUES (1);
INSERT INTO "semi;colon$1" VALUES (2, E'it\\'s; fine'), (3, 'two''s; ok');
EOF
}
fn_body "" >"$TMP/pfn/0002_functions.sql"
{ echo '-- ferry:no-transaction'; fn_body _nt; } >"$TMP/pfn/0003_functions_nt.sql"
cat >"$TMP/pfn/0004_nested_comment.sql" <<'EOF'
-- ferry:no-transaction
/* PostgreSQL nests block comments; /* inner; */ still outer; */
CREATE TABLE nested_ok (id int);
EOF
v1_appdb
pgf "$TMP/pfn" migrate
expect_status 0 "migrations with dollar-quoted plpgsql functions"
is "$(ledger_versions)" "1 2 3 4" "all applied"
check "a nested block comment is one comment" table_exists nested_ok
for sfx in "" _nt; do
	is "$(qa "SELECT add_one$sfx(41)")" 42 "add_one$sfx(41) works"
	is "$(qa "SELECT greet$sfx('bob')")" "hello; bob; it's \$\$ fine" "greet$sfx: the \$fn\$ body is whole"
	is "$(qa "SELECT id || ':' || \"a;b\" FROM \"semi;colon$sfx\" ORDER BY id" | tr '\n' ',')" \
		"1:x;y,2:it's; fine,3:two's; ok," "quoted identifier and literals with semicolons ($sfx)"
	is "$(qa "SELECT prosrc LIKE '%inner comment; still the body%' FROM pg_proc WHERE proname = 'add_one$sfx'")" t \
		"the comment inside the body is part of it ($sfx)"
done
if qa 'SELECT add_one(-1)' >/dev/null 2>&1; then fail "add_one(-1) raises (the IF survived)"
else pass "add_one(-1) raises (the IF survived)"; fi

# ---- no-transaction: declared ------------------------------------------------------------
# In one transaction now() is constant; outside, each statement has its own.
mkdir -p "$TMP/pnt" "$TMP/ptx"
cp "$TMP/p1/0001_users.sql" "$TMP/pnt/"
cp "$TMP/p1/0001_users.sql" "$TMP/ptx/"
cat >"$TMP/pnt/0002_clock.sql" <<'EOF'
-- ferry:no-transaction
CREATE TABLE clock AS SELECT now() AS t;
SELECT pg_sleep(0.05);
INSERT INTO clock SELECT now();
EOF
tail -n +2 "$TMP/pnt/0002_clock.sql" >"$TMP/ptx/0002_clock.sql"
v1_appdb
pgf "$TMP/ptx" migrate
expect_status 0 "the migration without the directive"
is "$(qa "SELECT count(DISTINCT t) FROM clock")" 1 "without the directive: one transaction"
v1_appdb
pgf "$TMP/pnt" migrate
expect_status 0 "-- ferry:no-transaction"
is "$(qa "SELECT count(DISTINCT t) FROM clock")" 2 "with the directive: each statement on its own"
is "$(qa "SELECT dirty FROM ferry_migrations WHERE version = 2")" f "its ledger row is clean"
like "$err" "snapshot" "a no-transaction migration: the log speaks of the snapshot"

# ---- no-transaction: detected --------------------------------------------------------------
mkdir -p "$TMP/pconc"
cp "$TMP/p3/0001_users.sql" "$TMP/p3/0002_email.sql" "$TMP/pconc/"
cat >"$TMP/pconc/0003_email_index.sql" <<'EOF'
CREATE INDEX CONCURRENTLY users_email ON users (email);
EOF
cat >"$TMP/pconc/0004_reindex.sql" <<'EOF'
-- rebuild without blocking writes
reindex   index concurrently users_name;
EOF
cat >"$TMP/pconc/0005_vacuum.sql" <<'EOF'
VACUUM (ANALYZE) users;
EOF
cat >"$TMP/pconc/0006_swap_index.sql" <<'EOF'
create unique index concurrently users_email_uniq on users (email);
DROP INDEX CONCURRENTLY users_email;
EOF
v1_appdb
pgf "$TMP/pconc" migrate
expect_status 0 "CREATE INDEX / REINDEX / DROP INDEX CONCURRENTLY and VACUUM without the directive"
is "$(ledger_versions)" "1 2 3 4 5 6" "all applied"
is "$(qa "SELECT count(*) FROM ferry_migrations WHERE dirty")" 0 "no dirty row"
is "$(qa "SELECT string_agg(indexrelid::regclass::text || ':' || indisvalid, ' '
	ORDER BY indexrelid::regclass::text) FROM pg_index WHERE indrelid = 'users'::regclass")" \
	"users_email_uniq:true users_name:true users_pkey:true" "the indexes are there and valid"
is "$(invalid_indexes)" "" "no INVALID index"
like "$err" "snapshot" "the log says which snapshot it took"
like "$err" "0003_email_index" "the log names the migrations"

# a failed CREATE UNIQUE INDEX CONCURRENTLY leaves no INVALID index behind
mkdir -p "$TMP/pconcbad"
cp "$TMP/p1/0001_users.sql" "$TMP/pconcbad/"
cat >"$TMP/pconcbad/0002_unique_names.sql" <<'EOF'
CREATE UNIQUE INDEX CONCURRENTLY users_name_uniq ON users (name);
EOF
v1_appdb
psql_as app appdb "INSERT INTO users (name) VALUES ('Ada')" >/dev/null
state_before=$(pg_state)
pgf "$TMP/pconcbad" migrate
expect_status 70 "CREATE UNIQUE INDEX CONCURRENTLY on duplicate data fails"
like "$err" "0002_unique_names" "names the migration"
like "$err" "duplicate|could not create unique index" "with PostgreSQL's error"
like "$err" "restored|rolled back" "says the database was restored"
is "$(invalid_indexes)" "" "no INVALID index left behind"
same_state "$(pg_state)" "$state_before" "the database is exactly as before"
no_ferry_tables "failed CREATE INDEX CONCURRENTLY"
is "$(ledger_versions)" 1 "still at version 1"

secret_never_shown
done_testing
