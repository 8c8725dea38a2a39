#!/bin/sh
# restore --mode replace killed (-9) at each phase: after staging (nothing
# swapped yet), after the swap was journalled, after the database was
# moved aside, after the first pair was swapped. The next boot (ferry
# status, ferry migrate) finds the old state when the crash came before
# the swap was journalled, the restored state after: never a mix, and no
# staging, .pre-restore or journal left behind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
make_std_migrations

tree() { (cd "$1" && find . -printf '%P %m %s\n' | LC_ALL=C sort; find . -type f -exec sha256sum {} + | LC_ALL=C sort); }

setup() { # setup NAME: a database and uploads; an archive of them; then both changed
	v1_db "$1"
	UP=$DBDIR/uploads
	mkdir -p "$UP/a"
	printf 'archived' >"$UP/a/one"
	printf '[backup]\npaths = %s\n' "$UP" >"$DBDIR.ini"
	run_ferry -c "$DBDIR.ini" --database-url "sqlite://$DB" --migrations "$TMP/m1" \
		backup -o "$DBDIR.ferry"
	want_db=$(dump "$DB")
	want_tree=$(tree "$UP")
	sqlite3 "$DB" "INSERT INTO users (name) VALUES ('after the backup')"
	printf 'changed' >"$UP/a/one"
	printf 'new' >"$UP/a/two"
	old_db=$(dump "$DB")
	old_tree=$(tree "$UP")
}

for point in restore-staged restore-swap-journalled restore-moved-aside restore-swapped-one; do
	setup "$point"
	FERRY_TEST_CRASH_AT=$point run_ferry -c "$DBDIR.ini" --database-url "sqlite://$DB" \
		--migrations "$TMP/m1" restore "$DBDIR.ferry" --mode replace
	expect_status 137 "$point: restore killed there"
	run_ferry -c "$DBDIR.ini" --database-url "sqlite://$DB" --migrations "$TMP/m1" status
	expect_status 0 "$point: the next boot (status) runs"
	if [ $point = restore-staged ]; then
		like "$err" "removing the staging of an interrupted restore" "$point: it removes the staging"
		is "$(dump "$DB")" "$old_db" "$point: the database is the old one"
		is "$(tree "$UP")" "$old_tree" "$point: the uploads are the old ones"
	else
		like "$err" "finished the interrupted restore" "$point: it finishes the restore"
		is "$(dump "$DB")" "$want_db" "$point: the database is the restored one"
		is "$(tree "$UP")" "$want_tree" "$point: the uploads are the restored ones"
	fi
	is "$(ls -a "$DBDIR" | grep -E 'ferry-restore|pre-restore' | tr '\n' ' ')" "" \
		"$point: no staging or .pre-restore is left"
	check "$point: no restore journal is left" test ! -e "$DBDIR/.ferry/restore.journal"
	run_ferry -c "$DBDIR.ini" --database-url "sqlite://$DB" --migrations "$TMP/m3" migrate
	expect_status 0 "$point: migrate then upgrades whichever state it is"
	is "$(db_version "$DB")" "3" "$point: to version 3"
done

done_testing
