#!/bin/sh
# PostgreSQL refusals: each case exits with its status and a message, and
# the database is untouched (same pg_dump, no snapshot database or file,
# no other database): checksum mismatch, dirty ledger, database ahead of
# the image, tables without a ledger (65); a role without CREATE on the
# schema (77); the database unreachable (69); configuration errors (78).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
make_std_pg_migrations

# untouched DESC: appdb still has the state $state, no snapshot was taken,
# no other database was created.
untouched() {
	same_state "$(pg_state)" "$state" "$1: database unchanged"
	is "$(db_list)" appdb "$1: no snapshot database, no other database"
	is "$(ls -A "$FERRY_SNAPSHOT_DIR")" "" "$1: no snapshot file"
	no_ferry_tables "$1"
}

# ---- checksum mismatch ---------------------------------------------------------
v1_appdb
cp -r "$TMP/p3" "$TMP/pedit"
printf -- '-- an edit after release\n' >>"$TMP/pedit/0001_users.sql"
state=$(pg_state)
pgf "$TMP/pedit" migrate
expect_status 65 "a migration edited after it was applied"
like "$err" "checksum|sha256|changed after it was applied" "says the file changed"
like "$err" "0001_users" "names the migration"
untouched "checksum mismatch"

# ---- dirty ledger row ---------------------------------------------------------------
v1_appdb
pgf "$TMP/p3" migrate
expect_status 0 "setup: version 3"
qa "UPDATE ferry_migrations SET dirty = true WHERE version = 2" >/dev/null
state=$(pg_state)
pgf "$TMP/p4" migrate
expect_status 65 "a dirty ledger row"
like "$err" "dirty" "says dirty"
like "$err" "0002|version 2" "names the dirty migration"
untouched "dirty ledger"
pgf "$TMP/p4" run -- touch "$TMP/server-ran"
expect_status 65 "ferry run refuses a dirty ledger too"
check "and does not start the server" test ! -e "$TMP/server-ran"

# ---- database ahead of the image -------------------------------------------------------
v1_appdb
pgf "$TMP/p3" migrate
expect_status 0 "setup: version 3"
drop_snapshots
state=$(pg_state)
pgf "$TMP/p1" migrate
expect_status 65 "database ahead of the image"
like "$err" "[Aa]head|newer|rolled back" "says the database is ahead of the image"
like "$err" "3" "names the database version"
untouched "database ahead"
pgf "$TMP/p1" run -- touch "$TMP/server-ran"
expect_status 65 "ferry run refuses too"
check "and does not start the server" test ! -e "$TMP/server-ran"

# ---- tables but no ledger ------------------------------------------------------------------
pg_fresh_appdb
psql_as app appdb "CREATE TABLE legacy (id int PRIMARY KEY, v text);
	INSERT INTO legacy VALUES (1, 'keep me')" >/dev/null
state=$(pg_state)
pgf "$TMP/p3" migrate
expect_status 65 "a database with tables and no ledger"
like "$err" "ledger|ferry_migrations|baseline|unknown history|tables" "says it does not know the history"
untouched "tables without a ledger"
is "$(qa "SELECT to_regclass('public.ferry_migrations') IS NULL")" t "no ledger was created"

# ---- a role without CREATE on the schema -----------------------------------------------------
# an empty database: nothing at all may be created, not even the ledger
pg_fresh_appdb
state=$(pg_state)
URL=$WEAKURL pgf "$TMP/p3" migrate
expect_status 77 "a role without CREATE on schema public, first boot"
like "$err" "GRANT CREATE ON SCHEMA public" "names the missing grant"
like "$err" "weak" "names the role"
untouched "no CREATE, first boot"
is "$(qa "SELECT to_regclass('public.ferry_migrations') IS NULL")" t "no ledger table was created"

# an existing ledger the role may read and write: still no DDL
v1_appdb
qa "GRANT USAGE ON SCHEMA public TO weak;
	GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO weak;
	GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO weak" >/dev/null
state=$(pg_state)
URL=$WEAKURL pgf "$TMP/p3" migrate
expect_status 77 "a role without CREATE, pending migrations"
like "$err" "GRANT CREATE ON SCHEMA public" "names the missing grant"
untouched "no CREATE, pending migrations"
URL=$WEAKURL pgf "$TMP/p3" run -- touch "$TMP/server-ran"
expect_status 77 "ferry run refuses too"
check "and does not start the server" test ! -e "$TMP/server-ran"
# a pending no-transaction migration: refused before the snapshot too
mkdir -p "$TMP/pconc"
cp "$TMP/p1/0001_users.sql" "$TMP/pconc/"
echo 'CREATE INDEX CONCURRENTLY users_id_name ON users (id, name);' >"$TMP/pconc/0002_idx.sql"
URL=$WEAKURL pgf "$TMP/pconc" migrate
expect_status 77 "a role without CREATE, a pending CREATE INDEX CONCURRENTLY"
untouched "no CREATE, no-transaction migration"

# ---- the database unreachable ----------------------------------------------------------------
deadport=$(_free_port)
deadurl="postgres://app:$APP_PASSWORD@127.0.0.1:$deadport/appdb"
URL=$deadurl FERRY_DATABASE_WAIT_SECONDS=2 pgf "$TMP/p3" migrate
expect_status 69 "nothing listens at the URL's port (wait_seconds = 2)"
like "$err" "127\.0\.0\.1:$deadport" "the message names the URL"
like "$err" "[Cc]onnection refused" "and libpq's error"
URL=$deadurl FERRY_DATABASE_WAIT_SECONDS=2 pgf "$TMP/p3" run -- touch "$TMP/server-ran"
expect_status 69 "ferry run: unreachable"
check "the server was not started" test ! -e "$TMP/server-ran"
URL="host=127.0.0.1 port=$deadport dbname=appdb user=app password=$APP_PASSWORD" \
	FERRY_DATABASE_WAIT_SECONDS=1 pgf "$TMP/p3" migrate
expect_status 69 "unreachable, key=value string with a password"
URL="postgres://app:$APP_PASSWORD@127.0.0.1:$PGPORT/nosuchdb" FERRY_DATABASE_WAIT_SECONDS=1 \
	pgf "$TMP/p3" migrate
check "a database that does not exist fails (exit $rc)" test "$rc" != 0
like "$err" "nosuchdb" "and names it"
is "$(db_list)" appdb "ferry did not create it"
# no right to connect is not cured by waiting: refused at once, 78
psql_su postgres "CREATE ROLE nologin_app PASSWORD '$APP_PASSWORD' NOLOGIN" >/dev/null
URL="postgres://nologin_app:$APP_PASSWORD@127.0.0.1:$PGPORT/appdb" FERRY_DATABASE_WAIT_SECONDS=60 \
	pgf "$TMP/p3" migrate
expect_status 78 "a role that may not log in: 78, not waited for"
like "$err" "nologin_app" "names the role"

# ---- configuration errors --------------------------------------------------------------------
v1_appdb
state=$(pg_state)
FERRY_DATABASE_WAIT_SECONDS=soon pgf "$TMP/p3" migrate
expect_status 78 "FERRY_DATABASE_WAIT_SECONDS=soon"
like "$err" "wait_seconds|WAIT_SECONDS" "names the setting"
FERRY_MIGRATIONS_STATEMENT_LOCK_TIMEOUT=forever pgf "$TMP/p3" migrate
expect_status 78 "FERRY_MIGRATIONS_STATEMENT_LOCK_TIMEOUT=forever"
like "$err" "statement_lock_timeout|STATEMENT_LOCK_TIMEOUT" "names the setting"
# (wait_seconds = 2: a config error must not be waited on, but if it is,
# the test stays short)
export FERRY_DATABASE_WAIT_SECONDS=2
URL="postgres://app:$APP_PASSWORD@127.0.0.1:notaport/appdb" pgf "$TMP/p3" migrate
expect_status 78 "a URL with a bad port"
URL="host=127.0.0.1 port=$PGPORT dbname=appdb user=app password=$APP_PASSWORD nosuchkey=1" \
	pgf "$TMP/p3" migrate
expect_status 78 "a key=value string with an unknown key"
URL="host=127.0.0.1 dbname=appdb password='$APP_PASSWORD" pgf "$TMP/p3" migrate
expect_status 78 "a key=value string with an unterminated quote"
unset FERRY_DATABASE_WAIT_SECONDS
untouched "configuration errors"

secret_never_shown
done_testing
