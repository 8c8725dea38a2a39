#!/bin/sh
# SQLite: history the image cannot explain is refused, not applied. A
# version the image ships below the highest applied one that the ledger
# lacks (a migration merged out of order: ledger {1,3}, image {1,2,3}; a
# lost ledger row: ledger {2,3}) is refused by the plan with exit 65 and
# one line naming both versions, before anything is written; status and
# migrate --dry-run show the refusal.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
make_std_migrations

BEFORE=$TMP/before.db

# refused DESC: $rc is 65, stderr is one line, and $DB has the bytes of
# $BEFORE, no snapshot, no journal, no other file.
refused() {
	expect_status 65 "$1"
	is "$(printf '%s\n' "$err" | grep -c .)" 1 "$1: one log line"
	check "$1: the database file is byte for byte unchanged" cmp -s "$DB" "$BEFORE"
	no_leftovers "$DBDIR" "$1: no snapshot, journal or temp file"
}

# ---- ledger {1,3}, image {1,2,3}: 0002 was merged after 0003 shipped ----------------
mkdir -p "$TMP/m13"
cp "$TMP/m3/0001_users.sql" "$TMP/m3/0003_posts.sql" "$TMP/m13/"
v1_db late
fy "$DB" "$TMP/m13" migrate
expect_status 0 "setup: the image {1,3} brings the database to 3"
is "$(ledger_versions "$DB")" "1 3" "setup: the ledger has 1 and 3"
rm -f "$DB.pre-upgrade"
rm -rf "$DBDIR/.ferry"
cp "$DB" "$BEFORE"

fy "$DB" "$TMP/m3" migrate
refused "ledger {1,3}, image {1,2,3}: migrate"
like "$err" "^ferry: error: the ledger has 3 but not 2 \(0002_email\), which the image ships before it" \
	"names both versions and the migration"
like "$err" "give it a version above 3" "says what to do"
like "$err" "nothing was changed" "says nothing was changed"
unlike "$err" "upgraded from 3 to 3|applied 0002" "0002 is not applied after 0003"
is "$(ledger_versions "$DB")" "1 3" "the ledger is unchanged"
is "$(q "$DB" "SELECT count(*) FROM pragma_table_info('users') WHERE name = 'email'")" 0 \
	"0002 did not run"

fy "$DB" "$TMP/m3" run -- touch "$TMP/server-ran"
refused "ledger {1,3}: ferry run"
check "ferry run does not start the server" test ! -e "$TMP/server-ran"

fy "$DB" "$TMP/m3" migrate --dry-run
expect_status 65 "migrate --dry-run refuses"
like "$out" "^plan: refuse: the ledger has 3 but not 2 \(0002_email\)" "the dry run prints the refusal"
check "dry run: database unchanged" cmp -s "$DB" "$BEFORE"

fy "$DB" "$TMP/m3" status
expect_status 0 "status"
like "$out" "^refusal: the ledger has 3 but not 2 \(0002_email\)" "status shows the refusal"
like "$out" "^pending: 0$" "status: nothing pending (2 is below the highest applied)"
like "$out" "^database version: 3$" "status: the database is at 3"
fy "$DB" "$TMP/m3" status --json
expect_status 0 "status --json"
json_refusal=$(printf '%s' "$out" | python3 -c 'import json, sys; j = json.load(sys.stdin); print(j["plan"], j["pending"], j["refusal"])')
like "$json_refusal" "^refuse \[\] the ledger has 3 but not 2" "status --json: plan refuse, no pending, the reason"
check "status: database unchanged" cmp -s "$DB" "$BEFORE"

# what the message advises: the late migration renumbered above 3
mkdir -p "$TMP/m134"
cp "$TMP/m13/"*.sql "$TMP/m134/"
cp "$TMP/m3/0002_email.sql" "$TMP/m134/0004_email.sql"
fy "$DB" "$TMP/m134" migrate
expect_status 0 "renumbered above 3, the late migration applies"
is "$(ledger_versions "$DB")" "1 3 4" "the ledger has 1 3 4"
is "$(q "$DB" "SELECT group_concat(email) FROM users")" \
	"ada@example.com,brian@example.com,chloe@example.com" "and its change is there"
like "$err" "upgraded from 3 to 4" "the log says 3 to 4"

# ---- ledger {2,3}, image {1,2,3}: the row of 0001 was lost -------------------------------
v1_db lost
fy "$DB" "$TMP/m3" migrate
expect_status 0 "setup: version 3"
q "$DB" "DELETE FROM ferry_migrations WHERE version = 1"
rm -f "$DB.pre-upgrade"
rm -rf "$DBDIR/.ferry"
cp "$DB" "$BEFORE"

fy "$DB" "$TMP/m3" migrate
refused "ledger {2,3}, image {1,2,3}: migrate (0001 is not run again)"
like "$err" "^ferry: error: the ledger has 2 but not 1 \(0001_users\), which the image ships before it" \
	"names both versions and the migration"
like "$err" "ledger row was lost" "says what may have happened"
is "$(ledger_versions "$DB")" "2 3" "the ledger is unchanged"
is "$(q "$DB" "SELECT count(*) FROM users")" 3 "the users are all there"

fy "$DB" "$TMP/m3" migrate --dry-run
expect_status 65 "{2,3}: migrate --dry-run refuses"
like "$out" "^plan: refuse: the ledger has 2 but not 1" "the dry run prints the refusal"
fy "$DB" "$TMP/m3" status
expect_status 0 "{2,3}: status"
like "$out" "^refusal: the ledger has 2 but not 1" "status shows the refusal"
check "{2,3}: database unchanged after dry run and status" cmp -s "$DB" "$BEFORE"

# ---- a hole below pending versions: nothing is applied, not even those above ----------------
v1_db holeplus
fy "$DB" "$TMP/m13" migrate
expect_status 0 "setup: {1,3}"
rm -f "$DB.pre-upgrade"
rm -rf "$DBDIR/.ferry"
cp "$DB" "$BEFORE"
fy "$DB" "$TMP/m4" migrate
refused "ledger {1,3}, image {1,2,3,4}: 4 is not applied either"
like "$err" "the ledger has 3 but not 2" "names the hole"
is "$(ledger_versions "$DB")" "1 3" "the ledger is unchanged"

done_testing
