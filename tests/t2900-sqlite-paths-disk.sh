#!/bin/sh
# SQLite: paths and disks as deployments have them. A database reached
# through a symbolic link (the image expects /app/data/app.db, the volume
# is mounted elsewhere) is upgraded and restored through its real path:
# the link stays a link, snapshot and state sit beside the real file. A
# state directory ferry may not use is 73, naming it and the user. A disk
# that fills during a migration gives the status of what really happened.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
make_std_migrations
mkdir -p "$TMP/mbad"
cp "$TMP/m3nt/0001_users.sql" "$TMP/m3nt/0002_email.sql" "$TMP/mbad/"
printf 'CREATE TABLE audit (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n' >"$TMP/mbad/0003_bad.sql"

# ---- a file that ends inside a comment or a string: refused ---------------------
# SQLite's parser would stop there and the rest never run, while the file
# is recorded as applied
for kind in comment string trigger; do
	mkdir -p "$TMP/mopen$kind"
	cp "$TMP/m1/0001_users.sql" "$TMP/mopen$kind/"
	case $kind in
	comment) printf 'ALTER TABLE users ADD COLUMN email TEXT;\n/* CREATE TABLE later (x);\n' ;;
	string) printf "ALTER TABLE users ADD COLUMN email TEXT;\nUPDATE users SET email = 'x;\nDROP TABLE users;\n" ;;
	trigger) printf 'CREATE TRIGGER t AFTER INSERT ON users BEGIN\n  UPDATE users SET name = name;\n' ;;
	esac >"$TMP/mopen$kind/0002_email.sql"
	v1_db "open$kind"
	sum=$(filesum "$DB")
	fy "$DB" "$TMP/mopen$kind" migrate
	expect_status 65 "unclosed $kind: refused"
	like "$err" "0002_email\.sql' ends inside a comment, a string or a trigger body: the rest of the file would never run \(nothing was changed\)" \
		"unclosed $kind: says so, naming the file"
	is "$(filesum "$DB")" "$sum" "unclosed $kind: the database is untouched"
	fy "$DB" "$TMP/mopen$kind" migrate --dry-run
	expect_status 65 "unclosed $kind: migrate --dry-run refuses it too"
	like "$err" "0002_email\.sql' ends inside" "unclosed $kind: the dry run says why"
	new_db "open$kind-new"
	fy "$DB" "$TMP/mopen$kind" migrate
	expect_status 65 "unclosed $kind: refused at the first boot too"
	check "unclosed $kind: no database was created" test ! -e "$DB"
done

# ---- what a crash can leave behind is removed by the next boot ------------------
# a journal write cut short, and a snapshot cut short while SQLite's backup
# API wrote it (its own -journal beside the temp file)
v1_db leftovers
mkdir -p "$DBDIR/.ferry"
printf 'phase=snapshotting\nfrom=1\nto=3\nsnapshot=%s\n' "$DB.pre-upgrade" >"$DBDIR/.ferry/journal"
printf 'phase=migr' >"$DBDIR/.ferry/journal.tmp"
printf 'partial' >"$DB.pre-upgrade.tmp"
printf 'partial' >"$DB.pre-upgrade.tmp-journal"
FERRY_MIGRATIONS_TARGET_VERSION=1 fy "$DB" "$TMP/m3" migrate
expect_status 0 "leftovers: the boot after a crash mid-snapshot"
like "$err" "interrupted while writing its snapshot.*discarded the partial snapshot" "leftovers: says so"
no_leftovers "$DBDIR" "leftovers: no journal, journal.tmp, .tmp or .tmp-journal left"

# ---- a symlinked database path ---------------------------------------------------
v1_db vol
mkdir -p "$TMP/app/data"
ln -s "$DB" "$TMP/app/data/app.db"
LINK=$TMP/app/data/app.db
before=$(dump "$DB")
fy "$LINK" "$TMP/mbad" migrate
expect_status 70 "symlink: a failing upgrade (0002 committed outside a transaction)"
like "$err" "database restored from $DBDIR/app\.db\.pre-upgrade" \
	"symlink: restored from the snapshot beside the real file"
check "symlink: the link is still a link" test -L "$LINK"
is "$(readlink "$LINK")" "$DB" "symlink: to the same file"
is "$(dump "$DB")" "$before" "symlink: the real file is back at the old version, exactly"
is "$(ledger_versions "$DB")" 1 "symlink: at version 1"
check "symlink: the snapshot is beside the real file" test -f "$DB.pre-upgrade"
check "symlink: nothing was written beside the link" test ! -e "$TMP/app/data/app.db.pre-upgrade" -a ! -e "$TMP/app/data/.ferry"
fy "$LINK" "$TMP/m3" migrate
expect_status 0 "symlink: the fixed image upgrades"
check "symlink: still a link" test -L "$LINK"
is "$(ledger_versions "$DB")" "1 2 3" "symlink: the real file is at version 3"
like "$(cd "$TMP/app/data" && ls -A)" "^app\.db$" "symlink: the link's directory holds only the link"

# a link to a file that does not exist: refused, nothing created
mkdir -p "$TMP/dangle"
ln -s "$TMP/nowhere/app.db" "$TMP/dangle/app.db"
fy "$TMP/dangle/app.db" "$TMP/m3" migrate
expect_status 78 "dangling symlink: a configuration error"
like "$err" "symbolic link to a file that does not exist" "dangling symlink: says so"
is "$(printf '%s\n' "$err" | wc -l | tr -d ' ')" 1 "dangling symlink: one line"
check "dangling symlink: still a dangling link, nothing created" test -L "$TMP/dangle/app.db" -a ! -e "$TMP/nowhere"

# symlinked state and snapshot directories: used by their real paths
v1_db dirs
mkdir -p "$TMP/realstate" "$TMP/realsnap"
ln -s "$TMP/realstate" "$TMP/statelink"
ln -s "$TMP/realsnap" "$TMP/snaplink"
FERRY_DATABASE_STATE_DIR=$TMP/statelink FERRY_SNAPSHOT_DIR=$TMP/snaplink fy "$DB" "$TMP/mbad" migrate
expect_status 70 "symlinked dirs: a failing upgrade"
like "$err" "database restored from $TMP/realsnap/app\.db\.pre-upgrade" "symlinked dirs: the snapshot under the real path"
check "symlinked dirs: the links are still links" test -L "$TMP/statelink" -a -L "$TMP/snaplink"
check "symlinked dirs: the lock is in the real state dir" test -f "$TMP/realstate/lock"
is "$(ledger_versions "$DB")" 1 "symlinked dirs: at version 1"

# ---- a state directory ferry may not use ------------------------------------------
if command -v setpriv >/dev/null; then
	as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
	v1_db stnobody
	chown -R nobody:nogroup "$DBDIR"
	mkdir -p "$DBDIR/.ferry"
	chown root:root "$DBDIR/.ferry"
	chmod 0700 "$DBDIR/.ferry"
	sum=$(filesum "$DB")
	as_nobody "$FERRY" migrate --database-url "sqlite://$DB" --migrations "$TMP/m3" >"$TMP/.out" 2>"$TMP/.err"
	rc=$?; err=$(cat "$TMP/.err")
	expect_status 73 "unreadable state dir: cannot create (73)"
	like "$err" "cannot read the journal in the state directory '$DBDIR/\.ferry' as user nobody \(uid [0-9]+\): Permission denied" \
		"unreadable state dir: names the directory and the user"
	is "$(printf '%s\n' "$err" | wc -l | tr -d ' ')" 1 "unreadable state dir: one line"
	is "$(filesum "$DB")" "$sum" "unreadable state dir: the database is untouched"
	# readable but not writable: the upgrade needs to write the journal
	chmod 0755 "$DBDIR/.ferry"
	as_nobody "$FERRY" migrate --database-url "sqlite://$DB" --migrations "$TMP/m3" >"$TMP/.out" 2>"$TMP/.err"
	rc=$?; err=$(cat "$TMP/.err")
	expect_status 73 "read-only state dir: cannot create (73)"
	like "$err" "cannot write in the state directory '$DBDIR/\.ferry' as user nobody" \
		"read-only state dir: names the directory and the user"
	is "$(filesum "$DB")" "$sum" "read-only state dir: the database is untouched"
else
	skip "state dir permissions" "setpriv is missing"
fi

# ---- a disk that fills during a migration ---------------------------------------------
SMALL=$TMP/small
mkdir -p "$SMALL"
if mount -t tmpfs -o size=2m tmpfs "$SMALL" 2>/dev/null; then
	at_exit "umount '$SMALL' 2>/dev/null || umount -l '$SMALL' 2>/dev/null"
	mkdir -p "$TMP/mfill" "$TMP/mfillnt"
	cp "$TMP/m3/0001_users.sql" "$TMP/mfill/"
	cat >"$TMP/mfill/0002_fill.sql" <<-'SQL'
	CREATE TABLE fill (b BLOB);
	INSERT INTO fill SELECT randomblob(4000) FROM
	    (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1000) SELECT i FROM c);
	SQL
	cp "$TMP/m3nt/0001_users.sql" "$TMP/m3nt/0002_email.sql" "$TMP/mfillnt/"
	sed 's/CREATE TABLE fill/CREATE TABLE fill3/; s/INTO fill /INTO fill3 /' "$TMP/mfill/0002_fill.sql" \
		>"$TMP/mfillnt/0003_fill.sql"
	# fill_db NAME: a version 1 database of about 300 KiB on the tmpfs
	fill_db() {
		rm -rf "$SMALL/$1"; mkdir -p "$SMALL/$1"
		DB=$SMALL/$1/app.db DBDIR=$SMALL/$1
		"$FERRY" migrate --database-url "sqlite://$DB" --migrations "$TMP/m1" >/dev/null 2>&1
		seed_users "$DB"
		q "$DB" "CREATE TABLE blobs (b BLOB);
			WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 70)
			INSERT INTO blobs SELECT randomblob(4000) FROM c;"
		rm -rf "$DBDIR/.ferry"
	}
	fill_db tx
	before=$(dump "$DB")
	fy "$DB" "$TMP/mfill" migrate
	expect_status 70 "disk full in a transactional migration: the upgrade failed (70, not 74)"
	like "$err" "0002_fill failed: .*full" "disk full: names the migration and the full disk"
	like "$err" "rolled back: nothing was committed, the database is still at version 1" \
		"disk full: says the database is intact"
	unlike "$err" "restore failed" "disk full: no failed restore"
	is "$(dump "$DB")" "$before" "disk full: the database is exactly as before"
	check "disk full: no journal left" test ! -e "$DBDIR/.ferry/journal"
	rm -f "$DB.pre-upgrade"

	# 0002 commits outside a transaction, then 0003 fills the disk: the
	# restore has the room it was promised
	fill_db nt
	before=$(dump "$DB")
	fy "$DB" "$TMP/mfillnt" migrate
	expect_status 70 "disk full after a commit: the upgrade failed, restored (70)"
	like "$err" "0003_fill failed: .*full" "disk full after a commit: names the migration"
	like "$err" "database restored from" "disk full after a commit: the snapshot was restored"
	is "$(dump "$DB")" "$before" "disk full after a commit: the database is exactly as before"
	rm -f "$DB.pre-upgrade"

	# no room for the snapshot and the restore's journal together: refused up front
	q "$DB" "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 110)
		INSERT INTO blobs SELECT randomblob(4000) FROM c;"
	sum=$(filesum "$DB")
	fy "$DB" "$TMP/mfillnt" migrate
	expect_status 73 "room for the snapshot but not for a restore: refused (73)"
	like "$err" "not enough free space .* to undo the upgrade if it fails" "says why"
	is "$(filesum "$DB")" "$sum" "refused up front: the database is untouched"
	check "refused up front: no snapshot left" test ! -e "$DB.pre-upgrade"
	fy "$DB" "$TMP/mfill" migrate --dry-run
	expect_status 0 "setup: a dry run is still fine"
else
	skip "disk full" "cannot mount a tmpfs here"
fi

done_testing
