#!/bin/sh
# No silent init-only mode: an image that ships migrations and finds no
# database refuses to start its server (78, naming DATABASE_URL); a plain
# init (no migrations shipped) runs as before; [run] init_only opts out.
. "$(dirname "$0")/lib.sh"
unset FERRY_MIGRATIONS_DIR FERRY_RUN_INIT_ONLY FERRY_DATABASE_URL

mkdir -p "$TMP/mig" "$TMP/empty"
echo 'CREATE TABLE t (x INTEGER);' >"$TMP/mig/0001_t.sql"

run_ferry --migrations "$TMP/mig" run -- sh -c 'touch "$0/started"' "$TMP"
expect_status 78 "migrations shipped, no database"
like "$err" "DATABASE_URL" "the message names DATABASE_URL"
like "$err" "init_only" "the message names the opt-out"
is "$(printf '%s\n' "$err" | wc -l)" 1 "one line"
check "the server did not start" [ ! -e "$TMP/started" ]

FERRY_MIGRATIONS_DIR=$TMP/mig in_pidns run -- true
expect_status 78 "the same as PID 1, [migrations] dir from the environment"

run_ferry migrate --migrations "$TMP/mig"
expect_status 78 "ferry migrate without a database"
like "$err" "DATABASE_URL" "ferry migrate names DATABASE_URL too"

run_ferry --migrations "$TMP/none" run -- sh -c 'exit 3'
expect_status 3 "no migrations directory: a plain init"
like "$err" "starting without a schema check" "says so"
run_ferry --migrations "$TMP/empty" run -- true
expect_status 0 "an empty migrations directory: a plain init"

printf '[run]\ninit_only = true\n' >"$TMP/init.ini"
run_ferry -c "$TMP/init.ini" --migrations "$TMP/mig" run -- sh -c 'exit 4'
expect_status 4 "init_only = true: runs"
like "$err" "init_only" "says why there is no check"
FERRY_RUN_INIT_ONLY=true run_ferry --migrations "$TMP/mig" run -- true
expect_status 0 "FERRY_RUN_INIT_ONLY=true: runs"

# with a database configured too, init_only leaves it alone
FERRY_RUN_INIT_ONLY=true DATABASE_URL=$TMP/app.db \
	run_ferry --migrations "$TMP/mig" run -- true
expect_status 0 "init_only with a database: runs"
check "init_only: the database is not created" [ ! -e "$TMP/app.db" ]
printf '[run]\ninit_only = maybe\n' >"$TMP/bad.ini"
run_ferry -c "$TMP/bad.ini" run -- true
expect_status 78 "init_only = maybe"
like "$err" "bad.ini:2" "names file and line"
done_testing
