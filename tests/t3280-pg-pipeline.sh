#!/bin/sh
# A run of migrations is pipelined (issue 13): each round trip carries the
# ledger row of the migration before and the statements of the next one.
# The guarantees stay: 1000 migrations end with 1000 ledger rows and
# their data; a failure anywhere (also in a long script cut into several
# rounds) names its migration and line and leaves the database exactly as
# it was; a kill -9 before the commit leaves it as it was too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"

N=1000
mkdir -p "$TMP/big"
i=1
while [ $i -le $N ]; do
	printf 'CREATE TABLE t%d (id bigint PRIMARY KEY, v text NOT NULL);\nINSERT INTO t%d VALUES (1, $q$row %d$q$);\n' \
		$i $i $i >"$TMP/big/$(printf '%04d' $i)_t$i.sql"
	i=$((i + 1))
done
# 0500: 450 statements, more than one round of the pipeline
{
	echo 'CREATE TABLE many (id bigint PRIMARY KEY);'
	i=1
	while [ $i -lt 450 ]; do echo "INSERT INTO many VALUES ($i);"; i=$((i + 1)); done
} >"$TMP/big/0500_t500.sql"
echo 'DO $$ BEGIN PERFORM 1; END $$;' >>"$TMP/big/0500_t500.sql"

# ---- 1000 migrations ------------------------------------------------------------------
pg_fresh_appdb
pgf "$TMP/big" migrate
expect_status 0 "1000 migrations in one transaction"
is "$(qa 'SELECT count(*), min(version), max(version) FROM ferry_migrations')" "1000|1|1000" \
	"1000 ledger rows"
is "$(qa 'SELECT count(*) FROM ferry_migrations WHERE dirty OR duration_ms < 0 OR applied_at IS NULL')" \
	0 "every row clean, with a duration and a time"
is "$(qa "SELECT sha256 FROM ferry_migrations WHERE version = 777")" \
	"$(filesum "$TMP/big/0777_t777.sql")" "the sha256 of the file as applied"
is "$(qa 'SELECT v FROM t1000')" "row 1000" "the last migration's data"
is "$(qa 'SELECT count(*) FROM many')" 449 "the 450-statement migration ran whole"

# ---- failures: nothing changes ---------------------------------------------------------
# fail_at DIR NAME LINE DESC: migrate DIR on an empty appdb must fail in
# NAME at LINE with appdb as it was
fail_at() {
	pg_fresh_appdb
	state_before=$(pg_state)
	pgf "$1" migrate
	expect_status 70 "$4"
	like "$err" "$2" "$4: names the migration"
	like "$err" "near line $3" "$4: and the line"
	same_state "$(pg_state)" "$state_before" "$4: appdb as it was"
}
mkdir -p "$TMP/bad600" "$TMP/bad500"
cp "$TMP/big/"*.sql "$TMP/bad600/"
printf 'CREATE TABLE t600 (id bigint PRIMARY KEY, v text);\nINSERT INTO t600 VALUES (1, %s);\nINSERT INTO t600 VALUES (1, %s);\n' \
	"'a'" "'dup'" >"$TMP/bad600/0600_t600.sql"
fail_at "$TMP/bad600" 0600_t600 3 "a duplicate key in migration 600 of 1000"
cp "$TMP/big/"*.sql "$TMP/bad500/"
sed -i 's/^INSERT INTO many VALUES (300);$/INSERT INTO many VALUES (299);/' "$TMP/bad500/0500_t500.sql"
fail_at "$TMP/bad500" 0500_t500 301 "a failure in the second round of a long script"

# ---- kill -9 before the commit ---------------------------------------------------------
pg_fresh_appdb
state_before=$(pg_state)
FERRY_TEST_CRASH_AT=migration:1000:before-commit pgf "$TMP/big" migrate
check "killed before the commit (status $rc)" test "$rc" -ne 0
same_state "$(pg_state)" "$state_before" "killed before the commit: appdb as it was"
pgf "$TMP/big" migrate
expect_status 0 "the next boot applies them all"
is "$(qa 'SELECT count(*) FROM ferry_migrations')" 1000 "1000 ledger rows"

done_testing
