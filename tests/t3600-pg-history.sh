#!/bin/sh
# PostgreSQL: history the image cannot explain is refused, not applied. A
# version the image ships below the highest applied one that the ledger
# lacks (a migration merged out of order: ledger {1,3}, image {1,2,3}; a
# lost ledger row: ledger {2,3}) is refused by the plan with exit 65 and
# one line naming both versions, before anything is written (same
# pg_dump, same ledger); status and migrate --dry-run show the refusal.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
make_std_pg_migrations

# refused DESC: $rc is 65, stderr is one line, appdb is as in $state, and
# no snapshot or other database was made.
refused() {
	expect_status 65 "$1"
	is "$(printf '%s\n' "$err" | grep -c .)" 1 "$1: one log line"
	same_state "$(pg_state)" "$state" "$1: database unchanged (pg_dump and ledger)"
	is "$(db_list)" appdb "$1: no snapshot database, no other database"
	is "$(ls -A "$FERRY_SNAPSHOT_DIR")" "" "$1: no snapshot file"
	no_ferry_tables "$1"
}

# ---- ledger {1,3}, image {1,2,3}: 0002 was merged after 0003 shipped ----------------
mkdir -p "$TMP/p13"
cp "$TMP/p3/0001_users.sql" "$TMP/p3/0003_posts.sql" "$TMP/p13/"
v1_appdb
pgf "$TMP/p13" migrate
expect_status 0 "setup: the image {1,3} brings the database to 3"
is "$(ledger_versions)" "1 3" "setup: the ledger has 1 and 3"
drop_snapshots
state=$(pg_state)

pgf "$TMP/p3" migrate
refused "ledger {1,3}, image {1,2,3}: migrate"
like "$err" "^ferry: error: the ledger has 3 but not 2 \(0002_email\), which the image ships before it" \
	"names both versions and the migration"
like "$err" "give it a version above 3" "says what to do"
like "$err" "nothing was changed" "says nothing was changed"
unlike "$err" "upgraded from 3 to 3|applied 0002" "0002 is not applied after 0003"
is "$(ledger_versions)" "1 3" "the ledger is unchanged"
is "$(qa "SELECT string_agg(name, ',' ORDER BY id) FROM users")" "Ada,Brian,Chloe" "the users are unchanged"
is "$(qa "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'email'")" 0 \
	"0002 did not run"

pgf "$TMP/p3" run -- touch "$TMP/server-ran"
refused "ledger {1,3}: ferry run"
check "ferry run does not start the server" test ! -e "$TMP/server-ran"

pgf "$TMP/p3" migrate --dry-run
expect_status 65 "migrate --dry-run refuses"
like "$out" "^plan: refuse: the ledger has 3 but not 2 \(0002_email\)" "the dry run prints the refusal"
pgf "$TMP/p3" status
expect_status 0 "status"
like "$out" "^refusal: the ledger has 3 but not 2 \(0002_email\)" "status shows the refusal"
like "$out" "^pending: 0$" "status: nothing pending (2 is below the highest applied)"
pgf "$TMP/p3" status --json
expect_status 0 "status --json"
is "$(json 'j["plan"] + " " + str(j["pending"])')" "refuse []" "status --json: plan refuse, nothing pending"
like "$(json 'j["refusal"]')" "^the ledger has 3 but not 2" "status --json: the reason"
same_state "$(pg_state)" "$state" "dry run and status: database unchanged"

# what the message advises: the late migration renumbered above 3
mkdir -p "$TMP/p134"
cp "$TMP/p13/"*.sql "$TMP/p134/"
cp "$TMP/p3/0002_email.sql" "$TMP/p134/0004_email.sql"
pgf "$TMP/p134" migrate
expect_status 0 "renumbered above 3, the late migration applies"
is "$(ledger_versions)" "1 3 4" "the ledger has 1 3 4"
is "$(qa "SELECT string_agg(email, ',' ORDER BY id) FROM users")" \
	"ada@example.com,brian@example.com,chloe@example.com" "and its change is there"
like "$err" "upgraded from 3 to 4" "the log says 3 to 4"

# ---- ledger {2,3}, image {1,2,3}: the row of 0001 was lost -------------------------------
v1_appdb
pgf "$TMP/p3" migrate
expect_status 0 "setup: version 3"
qa "DELETE FROM ferry_migrations WHERE version = 1" >/dev/null
drop_snapshots
state=$(pg_state)

pgf "$TMP/p3" migrate
refused "ledger {2,3}, image {1,2,3}: migrate (0001 is not run again)"
like "$err" "^ferry: error: the ledger has 2 but not 1 \(0001_users\), which the image ships before it" \
	"names both versions and the migration"
like "$err" "ledger row was lost" "says what may have happened"
is "$(ledger_versions)" "2 3" "the ledger is unchanged"

pgf "$TMP/p3" migrate --dry-run
expect_status 65 "{2,3}: migrate --dry-run refuses"
like "$out" "^plan: refuse: the ledger has 2 but not 1" "the dry run prints the refusal"
pgf "$TMP/p3" status
expect_status 0 "{2,3}: status"
like "$out" "^refusal: the ledger has 2 but not 1" "status shows the refusal"
same_state "$(pg_state)" "$state" "{2,3}: database unchanged after dry run and status"

# ---- a hole below a pending version: nothing is applied, not even that ----------------------
v1_appdb
pgf "$TMP/p13" migrate
expect_status 0 "setup: {1,3}"
drop_snapshots
state=$(pg_state)
pgf "$TMP/p4" migrate
refused "ledger {1,3}, image {1,2,3,4}: 4 is not applied either"
like "$err" "the ledger has 3 but not 2" "names the hole"

secret_never_shown
done_testing
