#!/bin/sh
# The journal as the state machine writes it: each entry says its kind
# (upgrade or rollback) and its phase; recovery does what journal.h says
# for each phase, the phase 'applied' (committed but not yet accepted, the
# health gate's window) included; journals written before kinds existed
# still read the same.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"

make_std_migrations
J() { cat "$DBDIR/.ferry/journal" 2>/dev/null; }

# ---- an upgrade's journal says its kind ---------------------------------------
v1_db kind
FERRY_TEST_CRASH_AT=journal:migrating fy "$DB" "$TMP/m3" migrate
expect_status 137 "kind: ferry killed itself with the journal at migrating"
like "$(J)" "^kind=upgrade$" "kind: the journal says it is an upgrade"
like "$(J)" "^phase=migrating$" "kind: at the phase migrating"
fy "$DB" "$TMP/m3" status
like "$out" "journal: migrating \(an upgrade was interrupted" "kind: status names an upgrade"
fy "$DB" "$TMP/m3" status --json
like "$out" '"journal":\{"kind":"upgrade","phase":"migrating","from":1,"to":3\}' \
	"kind: status --json gives kind, phase, from and to"
FERRY_MIGRATIONS_TARGET_VERSION=1 fy "$DB" "$TMP/m3" migrate
expect_status 0 "kind: the next boot resolves it"
is "$(db_version "$DB")" 1 "kind: nothing was committed: still at 1"

# ---- applied: committed, never accepted: the snapshot goes back -----------------
v1_db applied
before=$(dump "$DB")
FERRY_TEST_CRASH_AT=upgrade:committed fy "$DB" "$TMP/m3" migrate
expect_status 137 "applied: killed right after the commit"
is "$(db_version "$DB")" 3 "applied: the upgrade was committed"
like "$(J)" "^phase=done$" "applied: the journal is at done"
# what a health gate leaves when ferry dies before the server was healthy
sed -i 's/^phase=done$/phase=applied/' "$DBDIR/.ferry/journal"
FERRY_MIGRATIONS_TARGET_VERSION=1 fy "$DB" "$TMP/m3" migrate
expect_status 0 "applied: the next boot resolves it"
like "$err" "interrupted \(phase applied\): restoring the database from $DB\.pre-upgrade" \
	"applied: says it restores, and from where"
is "$(dump "$DB")" "$before" "applied: the database is exactly at the old version again"
check "applied: the journal is gone" test ! -e "$DBDIR/.ferry/journal"

# the same at done keeps the committed upgrade (the ledger is at `to`)
v1_db done
FERRY_TEST_CRASH_AT=upgrade:committed fy "$DB" "$TMP/m3" migrate
fy "$DB" "$TMP/m3" migrate
expect_status 0 "done: the next boot resolves it"
like "$err" "interrupted after it was verified and committed" "done: says the upgrade stands"
is "$(db_version "$DB")" 3 "done: the database stays at 3"

# ---- a rollback's journal says so, and is finished by the next boot -------------
v1_db rb
fy "$DB" "$TMP/m3" migrate
expect_status 0 "rollback: upgraded to 3 first"
FERRY_TEST_CRASH_AT=restore:mid fy "$DB" "$TMP/m3" rollback
expect_status 137 "rollback: killed in the middle of the restore"
like "$(J)" "^kind=rollback$" "rollback: the journal says it is a rollback"
like "$(J)" "^phase=restoring$" "rollback: at the phase restoring"
fy "$DB" "$TMP/m3" status
like "$out" "journal: restoring \(a rollback was interrupted" "rollback: status names a rollback"
fy "$DB" "$TMP/m1" migrate
expect_status 0 "rollback: the next boot finishes the restore"
is "$(db_version "$DB")" 1 "rollback: the database is back at 1"
is "$(q "$DB" 'SELECT count(*) FROM users')" 3 "rollback: with its three users"

# ---- journals from before kinds --------------------------------------------------
v1_db old
fy "$DB" "$TMP/m3" migrate
mkdir -p "$DBDIR/.ferry"
printf 'phase=restoring\nfrom=0\nto=0\nsnapshot=%s\n' "$DB.pre-upgrade" >"$DBDIR/.ferry/journal"
fy "$DB" "$TMP/m3" status
like "$out" "journal: restoring \(a rollback was interrupted" \
	"old journal: from = to still reads as a rollback"
printf 'phase=migrating\nfrom=1\nto=3\nsnapshot=%s\n' "$DB.pre-upgrade" >"$DBDIR/.ferry/journal"
fy "$DB" "$TMP/m3" status --json
like "$out" '"kind":"upgrade","phase":"migrating"' "old journal: otherwise an upgrade"
printf 'kind=upgrade\nphase=sideways\nfrom=1\nto=3\n' >"$DBDIR/.ferry/journal"
fy "$DB" "$TMP/m3" migrate
expect_status 65 "an unknown phase is refused"
like "$err" "the journal names no phase" "an unknown phase: says so"

done_testing
