#!/bin/sh
# Promise 1 on PostgreSQL, at every named crash point (FERRY_TEST_CRASH_AT):
# after ferry is killed there, the next boot finds the database exactly at
# the old version with the old data, or exactly at the new version with the
# migrated data; with a template-database snapshot and with a logical one,
# during the upgrade and during the restore after a failure.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
. "$(dirname "$0")/pg-crash-lib.sh"

# ---- every named crash point ----------------------------------------------------------
n=0 journal_tables=
# crash_case VARIANT POINT SET EXPECT: EXPECT is old (the snapshot phases:
# nothing was changed yet, or the restore after a failure) or either.
crash_case() {
	variant=$1 point=$2 set=$3 expect=$4
	n=$((n + 1))
	d="$variant $point"
	fresh_old "$variant"
	FERRY_TEST_CRASH_AT=$point pgf "$TMP/$set" migrate
	expect_status 137 "$d: ferry killed itself there"
	recover_boot "$set"
	case $was in
	old) is "$rc" 0 "$d: recovery boot finds the old version, nothing to do" ;;
	new) is "$rc" 65 "$d: recovery boot finds the new version, ahead of target 1" ;;
	*)
		printf '%s\n' "$old_state" >"$TMP/old.txt"
		fail "$d: old or new after the crash" "the database is in between (exit $rc)" \
			"$(printf '%s' "$err" | tail -5)" "diff old found:" \
			"$(diff "$TMP/old.txt" "$TMP/between.txt" | head -30)"
		;;
	esac
	if [ "$expect" = old ]; then
		is "$was" old "$d: the database is exactly the old one"
	fi
	is "$(invalid_indexes)" "" "$d: no INVALID index after recovery"
	[ "$was" = old ] && [ -n "$(ferry_tables)" ] && journal_tables="$journal_tables $n"
	is "$(leftovers)" "" "$d: no leftover database"
	pgf "$TMP/$set" status --json
	is "$(json 'j["journal"]')" none "$d: no journal after recovery"
	pgf "$TMP/$set" migrate
	if [ "$set" = cbad ]; then
		expect_status 70 "$d: the next normal boot fails the same way"
		is "$(classify cn)" old "$d: and restores the old state"
	else
		expect_status 0 "$d: the next normal boot"
		is "$(classify "$set")" new "$d: reaches the new version with the migrated data"
	fi
}

for variant in template logical; do
	crash_case $variant journal:snapshotting cn old
	crash_case $variant snapshot:mid cn old
	crash_case $variant journal:snapshotted cn old
	crash_case $variant journal:migrating cn either
	crash_case $variant migration:2:before-commit cn either
	crash_case $variant migration:2:after-commit cn either
	crash_case $variant pg:statement:3:1 cn either
	crash_case $variant pg:statement:3:2 cn either
	crash_case $variant pg:statement:3:3 cn either
	crash_case $variant migration:3:after-commit cn either
	crash_case $variant migration:4:before-commit cn either
	crash_case $variant migration:4:after-commit cn either
	crash_case $variant journal:verifying cn either
	# during the restore after 0004_bad failed
	crash_case $variant journal:restoring cbad old
	crash_case $variant restore:mid cbad old
done

is "$journal_tables" "" "no ferry table in appdb but the ledger after a recovery to the old state (cases listed)"

# the failing set without a crash: restored, exit 70, says so
for variant in template logical; do
	fresh_old $variant
	pgf "$TMP/cbad" migrate
	expect_status 70 "$variant: the failing set fails without a crash"
	like "$err" "0004_bad.*near line 4.*duplicate key" "$variant: names the migration, the line and the error"
	like "$err" "restored" "$variant: says it restored the snapshot"
	like "$err" "still at version 1" "$variant: says the database is still at version 1"
	is "$(classify cn)" old "$variant: exactly the old state (pg_dump identical)"
done

# the transactional set: one transaction, the points it passes
for point in journal:migrating migration:2:before-commit migration:3:before-commit migration:3:after-commit; do
	fresh_old template
	FERRY_TEST_CRASH_AT=$point pgf "$TMP/ct" migrate
	krc=$rc
	recover_boot ct
	case $krc/$was in
	137/old | 137/new) pass "transactional set, $point: killed there, then $was" ;;
	0/new) pass "transactional set, $point: not a point of the one-transaction path (completed)" ;;
	*) fail "transactional set, $point: old or new" "ferry exit $krc, then $was (recovery exit $rc)" \
		"$(printf '%s' "$err" | tail -3)" ;;
	esac
done

secret_never_shown
done_testing
