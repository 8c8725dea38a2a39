#!/bin/sh
# Files belong to the server's user: run as root with [run] user, what
# ferry creates for the database (the file, its sidecars, the state dir,
# snapshots) is that user's, and a database the user cannot write is a
# clear error at boot (73) before any upgrade.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"

if [ "$(id -u)" != 0 ]; then
	skip "files given to [run] user" "needs root"
	done_testing
	exit
fi
U=nobody
UID_=$(id -u $U)
GID_=$(id -g $U)
export FERRY_RUN_USER=$U
mkdir -p "$TMP/m1" "$TMP/m2"
echo 'CREATE TABLE t (x INTEGER);' >"$TMP/m1/0001_t.sql"
cp "$TMP/m1/0001_t.sql" "$TMP/m2/"
echo 'ALTER TABLE t ADD COLUMN y TEXT;' >"$TMP/m2/0002_y.sql"
owner() { stat -c %U "$1"; }
# the server: writes a row as the user it runs as, in WAL mode
mkdir "$TMP/w"
chown "$UID_" "$TMP/w"
writer() { echo "id -un >'$TMP/w/who'; sqlite3 '$1' 'PRAGMA journal_mode=WAL; INSERT INTO t (x) VALUES (7)' >/dev/null"; }
rows() { sqlite3 "$1" 'SELECT count(*) FROM t'; }
boot() { # boot DB MIGRATIONS: ferry run as root, the writer as server
	run_ferry --database-url "$1" --migrations "$2" run -- sh -c "$(writer "$1")"
}

# a data directory the user owns: the new database is the user's
mkdir "$TMP/d1"
chown "$UID_:$GID_" "$TMP/d1"
DB=$TMP/d1/app.db
boot "$DB" "$TMP/m1"
expect_status 0 "first boot as root with user = $U"
is "$(owner "$DB")" "$U" "the new database belongs to $U"
is "$(owner "$TMP/d1/.ferry")" "$U" "the state dir belongs to $U"
is "$(cat "$TMP/w/who")" "$U" "the server ran as $U"
is "$(rows "$DB")" 1 "the server could write to the database"
is "$(sqlite3 "$DB" 'PRAGMA journal_mode')" wal "the server switched it to WAL"

# an upgrade: snapshot and state files, and the WAL files root leaves
sqlite3 "$DB" 'SELECT 1' >/dev/null # a root reader: -shm stays root's
boot "$DB" "$TMP/m2"
expect_status 0 "an upgrade as root with user = $U"
is "$(owner "$DB.pre-upgrade")" "$U" "the snapshot belongs to $U"
is "$(find "$TMP/d1" ! -user $U | wc -l)" 0 "every file in the directory is $U's"
is "$(rows "$DB")" 2 "the server could write after the upgrade"

# root's leftovers of a crash go to the user at the next boot
echo 'CREATE TABLE z (a INTEGER);' >"$TMP/m2/0003_z.sql"
FERRY_TEST_CRASH_AT=snapshot:mid run_ferry --database-url "$DB" --migrations "$TMP/m2" migrate
check "ferry killed in the middle of a snapshot (status $rc)" [ "$rc" -ge 128 ]
boot "$DB" "$TMP/m2"
expect_status 0 "the boot after the crash"
is "$(find "$TMP/d1" ! -user $U | wc -l)" 0 "nothing in the directory is left to root"
is "$(rows "$DB")" 3 "the server could write after the crash"

# -wal and -shm while a root process has the database open (SQLite as root
# gives its sidecars to the database file's owner: the file must be the user's)
rm -f "$DB-wal" "$DB-shm"
{ echo 'SELECT count(*) FROM t;'; sleep 20; } | sqlite3 "$DB" >/dev/null &
holder=$!
at_exit "kill_tree $holder"
wait_for test -e "$DB-shm"
run_ferry --database-url "$DB" --migrations "$TMP/m2" run -- sh -c \
	"stat -c %U '$DB-wal' '$DB-shm' >'$TMP/w/owners'; $(writer "$DB")"
expect_status 0 "a boot beside a root connection"
is "$(tr '\n' ' ' <"$TMP/w/owners")" "$U $U " "the server finds -wal and -shm its own"
is "$(rows "$DB")" 4 "the server could write beside the root connection"
kill_tree $holder

# a fresh root-owned volume: the directory goes to the user
mkdir "$TMP/d2"
boot "$TMP/d2/app.db" "$TMP/m1"
expect_status 0 "a root-owned empty directory"
is "$(owner "$TMP/d2")" "$U" "the directory was given to $U"
is "$(owner "$TMP/d2/app.db")" "$U" "the database belongs to $U"
is "$(rows "$TMP/d2/app.db")" 1 "the server could write"

# a root-owned directory with other files: never given, refused
mkdir "$TMP/d3"
: >"$TMP/d3/server.bin"
boot "$TMP/d3/app.db" "$TMP/m1"
expect_status 73 "a root-owned directory shared with other files"
like "$err" "$U \\(uid $UID_\\) cannot create files in '$TMP/d3'" "names the user and the directory"
is "$(printf '%s\n' "$err" | wc -l)" 1 "one line"
check "the database was not created" [ ! -e "$TMP/d3/app.db" ]
is "$(owner "$TMP/d3")" root "the directory stays root's"

# a database of another user, that $U cannot write: 73 before any upgrade
mkdir "$TMP/d4"
chown "$UID_:$GID_" "$TMP/d4"
fy "$TMP/d4/app.db" "$TMP/m1" migrate
chown 1234:1234 "$TMP/d4/app.db"
chmod 644 "$TMP/d4/app.db"
boot "$TMP/d4/app.db" "$TMP/m2"
expect_status 73 "a database $U cannot write"
like "$err" "$U \\(uid $UID_\\) cannot write the database file '$TMP/d4/app.db'" \
	"names the user and the file"
is "$(sqlite3 "$TMP/d4/app.db" 'SELECT max(version) FROM ferry_migrations')" 1 \
	"no migration ran: the ledger is unchanged"
check "the server did not start" [ ! -e "$TMP/d4/app.db-wal" ]

# a root-owned database of an earlier ferry: given to the user
mkdir "$TMP/d5"
chown "$UID_:$GID_" "$TMP/d5"
env -u FERRY_RUN_USER "$FERRY" --database-url "$TMP/d5/app.db" --migrations "$TMP/m1" migrate 2>/dev/null
chown root:root "$TMP/d5/app.db" "$TMP/d5/.ferry"
chmod 644 "$TMP/d5/app.db"
boot "$TMP/d5/app.db" "$TMP/m2"
expect_status 0 "a root-owned database from an earlier version"
is "$(owner "$TMP/d5/app.db")" "$U" "it was given to $U"
is "$(rows "$TMP/d5/app.db")" 1 "the server could write"

# a link planted in the directory is not followed
ln -s /etc/hostname "$TMP/d5/app.db-journal"
boot "$TMP/d5/app.db" "$TMP/m2"
is "$(owner /etc/hostname)" root "a symbolic link's target is never given"
rm -f "$TMP/d5/app.db-journal"
done_testing
