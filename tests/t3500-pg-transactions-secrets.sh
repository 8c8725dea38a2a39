#!/bin/sh
# PostgreSQL: transactions, stale snapshots and secrets.  BEGIN/COMMIT inside a
# transactional migration is refused before anything is written; a
# snapshot older than a later upgrade that needed none is never rolled
# back to; passwords with '#' and '?', sslpassword and key=value keywords
# in any case are never printed, nor an unknown option's value; a lock
# that cannot be taken because the maintenance database is unreachable
# exits 69.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
make_std_pg_migrations

# ---- 6. explicit transaction control in a transactional migration ---------------------
mkdir -p "$TMP/tx" "$TMP/txnt" "$TMP/txok"
cp "$TMP/p1/0001_users.sql" "$TMP/tx/"
cat >"$TMP/tx/0002_b.sql" <<'EOF'
BEGIN;
CREATE TABLE b (x int);
COMMIT;
EOF
cat >"$TMP/tx/0003_c.sql" <<'EOF'
CREATE TABLE c (x int);
SELECT 1/0;
EOF
v1_appdb
state=$(pg_state)
pgf "$TMP/tx" migrate
expect_status 65 "BEGIN/COMMIT in a transactional migration: refused"
like "$err" "0002_b" "the refusal names the migration file"
like "$err" "BEGIN|COMMIT" "and the BEGIN/COMMIT"
like "$err" "no-transaction" "and points to -- ferry:no-transaction"
same_state "$(pg_state)" "$state" "refused before any write: database unchanged"
check "no table b" test "$(qa "SELECT to_regclass('public.b') IS NULL")" = t
check "no table c" test "$(qa "SELECT to_regclass('public.c') IS NULL")" = t
is "$(ledger_versions)" 1 "the ledger is unchanged"
is "$(db_list)" appdb "no snapshot database was made"
is "$(ls -A "$FERRY_SNAPSHOT_DIR")" "" "no snapshot file was written"

# START TRANSACTION / END and a lowercase commit are refused too
v1_appdb
state=$(pg_state)
mkdir -p "$TMP/tx2"
cp "$TMP/p1/0001_users.sql" "$TMP/tx2/"
cat >"$TMP/tx2/0002_b.sql" <<'EOF'
start transaction;
CREATE TABLE b (x int);
end;
EOF
pgf "$TMP/tx2" migrate
expect_status 65 "START TRANSACTION/END in a transactional migration: refused"
same_state "$(pg_state)" "$state" "START TRANSACTION/END: database unchanged"

# the same file declared no-transaction: its BEGIN/COMMIT are its own
v1_appdb
cp "$TMP/p1/0001_users.sql" "$TMP/txok/"
{ echo '-- ferry:no-transaction'; cat "$TMP/tx/0002_b.sql"; } >"$TMP/txok/0002_b.sql"
pgf "$TMP/txok" migrate
expect_status 0 "the same BEGIN/COMMIT in a no-transaction migration is allowed"
is "$(ledger_versions)" "1 2" "the ledger has 1 2"
check "table b exists" table_exists b
# ... and followed by a failing migration: restored from the snapshot
v1_appdb
state=$(pg_state)
cp "$TMP/txok/"*.sql "$TMP/txnt/"
cp "$TMP/tx/0003_c.sql" "$TMP/txnt/"
pgf "$TMP/txnt" migrate
expect_status 70 "no-transaction BEGIN/COMMIT then a failing 0003: restored"
same_state "$(pg_state)" "$state" "no-transaction then failure: database as before"
check "no-transaction then failure: no table b" test "$(qa "SELECT to_regclass('public.b') IS NULL")" = t

# ---- 7. a snapshot older than the last upgrade is not rolled back to -----------------
mkdir -p "$TMP/s2" "$TMP/s3"
cp "$TMP/p1/0001_users.sql" "$TMP/s2/"
cat >"$TMP/s2/0002_idx.sql" <<'EOF'
CREATE INDEX CONCURRENTLY users_name2 ON users (name);
EOF
cp "$TMP/s2/"*.sql "$TMP/s3/"
cat >"$TMP/s3/0003_notes.sql" <<'EOF'
CREATE TABLE notes (x int);
INSERT INTO notes VALUES (3);
EOF
for kind in template logical; do
	v1_appdb
	[ "$kind" = logical ] && psql_su postgres "ALTER ROLE app NOCREATEDB" >/dev/null
	pgf "$TMP/s2" migrate
	expect_status 0 "stale $kind: v1 -> v2 with CREATE INDEX CONCURRENTLY"
	if [ "$kind" = template ]; then
		is "$(db_list)" "appdb appdb_pre_upgrade" "stale $kind: a template snapshot was taken"
	else
		check "stale $kind: a logical snapshot was taken" test -f "$(snapshot_file)"
	fi
	psql_as app appdb "INSERT INTO users (name) VALUES ('written at v2')" >/dev/null
	pgf "$TMP/s3" migrate
	expect_status 0 "stale $kind: v2 -> v3, transactional (no snapshot needed)"
	is "$(ledger_versions)" "1 2 3" "stale $kind: at version 3"
	psql_as app appdb "INSERT INTO users (name) VALUES ('written at v3')" >/dev/null
	echo "# stale $kind: after the v3 upgrade: databases '$(db_list)', snapshot dir '$(ls -A "$FERRY_SNAPSHOT_DIR" | tr '\n' ' ')'"
	pgf "$TMP/s3" rollback
	echo "# stale $kind: rollback exit $rc: $(printf '%s' "$err" | tail -3)"
	check "stale $kind: rollback does not succeed (exit $rc)" test "$rc" != 0
	like "$err" "snapshot" "stale $kind: and says why (the snapshot)"
	is "$(ledger_versions)" "1 2 3" "stale $kind: the database is still at version 3"
	is "$(qa "SELECT string_agg(name, ',' ORDER BY id) FROM users WHERE name LIKE 'written%'")" \
		"written at v2,written at v3" "stale $kind: the rows written at v2 and v3 survive"
	check "stale $kind: the table of 0003 survives" table_exists notes
done

# ---- 8. passwords and options never printed ----------------------------------------------
# leaks TEXT-FILES... DESC: none of the secrets appears in the files
SECRETS_RE='se#cr\?et|se%23cr%3Fet|cr\?et|cr%3Fet|Sup3rSecret'
no_leak() {
	_d=$1; shift
	if cat "$@" 2>/dev/null | grep -Eq -- "$SECRETS_RE"; then
		fail "$_d: no secret in the output" "$(cat "$@" | grep -E -- "$SECRETS_RE" | head -5)"
	else
		pass "$_d: no secret in the output"
	fi
}
v1_appdb
psql_su postgres "ALTER ROLE app PASSWORD 'se#cr?et'" >/dev/null
ENC="postgres://app:se%23cr%3Fet@127.0.0.1:$PGPORT"
export FERRY_DATABASE_WAIT_SECONDS=1
for cmd in migrate status; do
	run_ferry --database-url "$ENC/nosuchdb" --migrations "$TMP/p1" $cmd
	check "'#?' password, URL, no such database, $cmd: fails (exit $rc)" test "$rc" != 0
	like "$err" "nosuchdb" "'#?' password, URL, $cmd: the error names the database"
	echo "# $(printf '%s' "$err" | head -1 | cut -c1-200)"
	no_leak "'#?' password, URL, no such database, $cmd" "$TMP/.out" "$TMP/.err"
	run_ferry --database-url "postgres://app:se#cr?et@127.0.0.1:$PGPORT/nosuchdb" --migrations "$TMP/p1" $cmd
	check "'#?' password, raw in the URL, no such database, $cmd: fails (exit $rc)" test "$rc" != 0
	no_leak "'#?' password, raw in the URL, no such database, $cmd" "$TMP/.out" "$TMP/.err"
	run_ferry --database-url "postgresql://app:se#cr?et@127.0.0.1:$PGPORT/nosuchdb?sslmode=disable" \
		--migrations "$TMP/p1" $cmd
	check "'#?' password, raw in a URL with parameters, $cmd: fails (exit $rc)" test "$rc" != 0
	no_leak "'#?' password, raw in a URL with parameters, $cmd" "$TMP/.out" "$TMP/.err"
	run_ferry --database-url "host=127.0.0.1 port=$PGPORT dbname=nosuchdb user=app password=se#cr?et" \
		--migrations "$TMP/p1" $cmd
	check "'#?' password, key=value, no such database, $cmd: fails (exit $rc)" test "$rc" != 0
	no_leak "'#?' password, key=value, no such database, $cmd" "$TMP/.out" "$TMP/.err"
done
# the same passwords against the real database: they work, and are not printed
run_ferry --database-url "$ENC/appdb" --migrations "$TMP/p3" migrate
expect_status 0 "'#?' password, URL: the upgrade connects"
no_leak "'#?' password, URL, upgrade" "$TMP/.out" "$TMP/.err"
FERRY_LOG_LEVEL=debug run_ferry --database-url "$ENC/appdb?application_name=x&connect_timeout=5" \
	--migrations "$TMP/p3" status
expect_status 0 "'#?' password, URL with query parameters, debug log: status"
no_leak "'#?' password, URL with query parameters, debug log" "$TMP/.out" "$TMP/.err"
FERRY_LOG_LEVEL=debug run_ferry --database-url "host=127.0.0.1 port=$PGPORT dbname=appdb user=app password=se#cr?et" \
	--migrations "$TMP/p3" status
expect_status 0 "'#?' password, key=value, debug log: status"
no_leak "'#?' password, key=value, debug log" "$TMP/.out" "$TMP/.err"
DATABASE_URL="$ENC/nosuchdb" FERRY_LOG_FORMAT=json run_ferry --migrations "$TMP/p1" migrate
check "'#?' password in DATABASE_URL, JSON log: fails (exit $rc)" test "$rc" != 0
no_leak "'#?' password in DATABASE_URL, JSON log" "$TMP/.out" "$TMP/.err"
psql_su postgres "ALTER ROLE app PASSWORD '$APP_PASSWORD'" >/dev/null

# an unknown option is not echoed with its value
run_ferry --database-uri=postgres://app:Sup3rSecret@x/y --migrations "$TMP/p1" migrate
expect_status 64 "unknown option --database-uri=...: usage error"
no_leak "unknown option --database-uri=" "$TMP/.out" "$TMP/.err"
like "$err" "database-uri" "the error names the option"
run_ferry migrate --database-uri=postgres://app:Sup3rSecret@x/y
expect_status 64 "unknown option after the command: usage error"
no_leak "unknown option after the command" "$TMP/.out" "$TMP/.err"

# sslpassword, in a key=value string and as a URL parameter
run_ferry --database-url "host=127.0.0.1 port=$PGPORT dbname=nosuchdb user=app password=wrong sslpassword=Sup3rSecret" \
	--migrations "$TMP/p1" migrate
check "sslpassword in key=value: fails (exit $rc)" test "$rc" != 0
no_leak "sslpassword in key=value" "$TMP/.out" "$TMP/.err"
run_ferry --database-url "postgres://app@127.0.0.1:$PGPORT/nosuchdb?sslpassword=Sup3rSecret" \
	--migrations "$TMP/p1" migrate
check "sslpassword as a URL parameter: fails (exit $rc)" test "$rc" != 0
no_leak "sslpassword as a URL parameter" "$TMP/.out" "$TMP/.err"
run_ferry --database-url "postgres://app@127.0.0.1:$PGPORT/nosuchdb?password=Sup3rSecret" \
	--migrations "$TMP/p1" migrate
check "password as a URL parameter: fails (exit $rc)" test "$rc" != 0
no_leak "password as a URL parameter" "$TMP/.out" "$TMP/.err"

# PASSWORD in upper case (not a libpq keyword: a configuration error, still not echoed)
run_ferry --database-url "host=127.0.0.1 port=$PGPORT dbname=appdb user=app PASSWORD=Sup3rSecret" \
	--migrations "$TMP/p1" migrate
check "PASSWORD= in key=value: fails (exit $rc)" test "$rc" != 0
no_leak "PASSWORD= in key=value" "$TMP/.out" "$TMP/.err"
run_ferry --database-url "host=127.0.0.1 port=$PGPORT dbname=appdb user=app Password = 'Sup3rSecret'" \
	--migrations "$TMP/p1" migrate
check "Password = '...' in key=value: fails (exit $rc)" test "$rc" != 0
no_leak "Password = '...' in key=value" "$TMP/.out" "$TMP/.err"
FERRY_DATABASE_URL="host=127.0.0.1 port=$PGPORT dbname=appdb user=app PASSWORD=Sup3rSecret" \
	run_ferry --migrations "$TMP/p1" migrate
check "PASSWORD= in FERRY_DATABASE_URL: fails (exit $rc)" test "$rc" != 0
no_leak "PASSWORD= in FERRY_DATABASE_URL" "$TMP/.out" "$TMP/.err"
unset FERRY_DATABASE_WAIT_SECONDS

# ---- 9. the maintenance database does not exist: unreachable, 69 --------------------------
v1_appdb
state=$(pg_state)
FERRY_DATABASE_MAINTENANCE_DB=nosuchdb pgf "$TMP/p3" migrate
expect_status 69 "maintenance database missing, a pending migration: exit 69 (unreachable)"
check "and not 73 (exit $rc)" test "$rc" != 73
like "$err" "nosuchdb" "the message names the maintenance database"
like "$err" "maintenance" "and says it is the maintenance database"
same_state "$(pg_state)" "$state" "maintenance database missing: nothing changed"
FERRY_DATABASE_MAINTENANCE_DB=nosuchdb pgf "$TMP/s2" migrate
expect_status 69 "maintenance database missing, a no-transaction migration pending: exit 69"
same_state "$(pg_state)" "$state" "maintenance database missing (no-transaction): nothing changed"
is "$(db_list)" appdb "maintenance database missing: no snapshot database"

secret_never_shown
done_testing
