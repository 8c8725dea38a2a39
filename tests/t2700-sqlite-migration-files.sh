#!/bin/sh
# SQLite: every byte of a migration file is run or refused. A NUL byte
# (the engines stop reading there) is refused when the files are read; a
# migration about to run that is not UTF-8 is refused by the plan; each
# with exit 65, one line naming the file and the byte offset, and nothing
# written. An applied file that is not UTF-8 is left alone. A migrations
# directory without migrations is a configuration error (78), whether or
# not the database exists.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
make_std_migrations

BEFORE=$TMP/before.db

# refused STATUS DESC: $rc is STATUS, stderr is one line, and $DB has the
# bytes of $BEFORE, no snapshot, no journal, no other file.
refused() {
	expect_status "$1" "$2"
	is "$(printf '%s\n' "$err" | grep -c .)" 1 "$2: one log line"
	check "$2: the database file is byte for byte unchanged" cmp -s "$DB" "$BEFORE"
	no_leftovers "$DBDIR" "$2: no snapshot, journal or temp file"
}

# with_0002 NAME PRINTF-FORMAT: $M=$TMP/mig-NAME, the files of m3 with
# 0002_email.sql replaced by the bytes printf makes of the format.
with_0002() {
	M=$TMP/mig-$1
	rm -rf "$M"
	cp -r "$TMP/m3" "$M"
	printf -- "$2" >"$M/0002_email.sql"
}

# ---- a NUL byte ----------------------------------------------------------------------
# before the fix the statement after the NUL never ran, yet 0002 was recorded
with_0002 nul 'ALTER TABLE users ADD COLUMN email TEXT;\n\000\nUPDATE users SET email = lower(name);\n'
v1_db nul
cp "$DB" "$BEFORE"
fy "$DB" "$M" migrate
refused 65 "a NUL byte in a pending migration"
like "$err" "^ferry: error: migration '$M/0002_email\.sql' has a NUL byte at offset 41 \(line 2\)" \
	"names the file, the byte offset and the line"
is "$(ledger_versions "$DB")" 1 "nothing was recorded"

fy "$DB" "$M" status
expect_status 65 "status reads the same files and refuses the same way"
like "$err" "NUL byte at offset 41" "status: says why"

new_db nulfirst
fy "$DB" "$M" migrate
expect_status 65 "a NUL byte at first boot"
check "no database is created" test ! -e "$DB"

# in a file already applied too: the database lacks what followed the NUL
v1_db nulapplied
M=$TMP/mig-nulapplied
mkdir -p "$M"
printf 'CREATE TABLE users (\n    id INTEGER PRIMARY KEY,\n    name TEXT NOT NULL\n);\n\000CREATE INDEX users_name ON users(name);\n' \
	>"$M/0001_users.sql"
cp "$DB" "$BEFORE"
fy "$DB" "$M" migrate
refused 65 "a NUL byte in an applied migration"
like "$err" "0001_users\.sql' has a NUL byte at offset 75 \(line 5\)" "names the file and the offset"

# ---- bytes that are not UTF-8 ---------------------------------------------------------------
# Latin-1, an overlong '/', a UTF-16 surrogate, a code point above
# U+10FFFF, a sequence cut short by the end of the file
n=0
for kind in latin1 overlong surrogate above-10ffff cut-short; do
	n=$((n + 1))
	case $kind in
	latin1) bytes='\351' ;;
	overlong) bytes='\300\257' ;;
	surrogate) bytes='\355\240\200' ;;
	above-10ffff) bytes='\364\220\200\200' ;;
	cut-short) bytes='\342\202' ;;
	esac
	if [ "$kind" = cut-short ]; then
		with_0002 "$kind" "ALTER TABLE users ADD COLUMN email TEXT;\n-- caf$bytes"
		at="offset 47 \(line 2\)"
	else
		with_0002 "$kind" "-- caf$bytes\nALTER TABLE users ADD COLUMN email TEXT;\n"
		at="offset 6 \(line 1\)"
	fi
	v1_db "$kind"
	cp "$DB" "$BEFORE"
	fy "$DB" "$M" migrate
	refused 65 "not UTF-8 ($kind) in a pending migration"
	like "$err" "^ferry: error: migration '$M/0002_email\.sql' is not UTF-8 text: the byte at $at" \
		"($kind) names the file, the byte offset and the line"
done
like "$err" "iconv -f latin1 -t utf-8" "says how to convert a Latin-1 file"
like "$err" "nothing was changed" "says nothing was changed"
is "$(ledger_versions "$DB")" 1 "nothing was recorded"

with_0002 latin1-commands '-- caf\351\nALTER TABLE users ADD COLUMN email TEXT;\n'
v1_db latin1-commands
cp "$DB" "$BEFORE"
fy "$DB" "$M" migrate --dry-run
expect_status 65 "not UTF-8: migrate --dry-run refuses"
like "$out" "^plan: refuse: migration '.*0002_email\.sql' is not UTF-8 text" "the dry run prints the refusal"
fy "$DB" "$M" status
expect_status 0 "not UTF-8: status"
like "$out" "^refusal: migration '.*0002_email\.sql' is not UTF-8 text" "status shows the refusal"
fy "$DB" "$M" run -- touch "$TMP/server-ran"
refused 65 "not UTF-8: ferry run"
check "ferry run does not start the server" test ! -e "$TMP/server-ran"

new_db latin1first
fy "$DB" "$M" migrate
expect_status 65 "not UTF-8 at first boot"
check "no database is created" test ! -e "$DB"

# UTF-8 of every length, with a BOM and CRLF line ends, runs
with_0002 utf8 '\357\273\277-- caf\303\251 \342\230\225 \360\237\232\200\r\nALTER TABLE users ADD COLUMN email TEXT;\r\nUPDATE users SET email = '\''\303\251@example.com'\'';\r\n'
v1_db utf8
fy "$DB" "$M" migrate
expect_status 0 "UTF-8 with 2, 3 and 4 byte characters, a BOM and CRLF"
is "$(q "$DB" "SELECT DISTINCT email FROM users")" "é@example.com" "its text arrived as written"

# an applied file that is not UTF-8 ran as it is and matches its checksum:
# it is left alone, and what comes after it applies
v1_db oldlatin1
M=$TMP/mig-oldlatin1
cp -r "$TMP/m3" "$M"
printf -- '-- r\351sum\351\n' >>"$M/0001_users.sql"
q "$DB" "UPDATE ferry_migrations SET sha256 = '$(filesum "$M/0001_users.sql")' WHERE version = 1"
fy "$DB" "$M" migrate
expect_status 0 "an applied migration that is not UTF-8 does not stop the upgrade"
is "$(ledger_versions "$DB")" "1 2 3" "2 and 3 applied"

# ---- no migrations in the directory ------------------------------------------------------------
mkdir -p "$TMP/none" "$TMP/readme-only" "$TMP/down-only"
printf 'the migrations go here\n' >"$TMP/readme-only/README.md"
printf 'DROP TABLE users;\n' >"$TMP/down-only/000002_email.down.sql"

new_db emptyfirst
fy "$DB" "$TMP/none" migrate
expect_status 78 "an empty migrations dir, no database yet"
is "$(printf '%s\n' "$err" | grep -c .)" 1 "one log line"
like "$err" "^ferry: error: \[migrations\] dir '$TMP/none' holds no migrations \(no \*\.sql file\)" \
	"names the directory and what it lacks"
check "no database is created" test ! -e "$DB"
is "$(files_in "$DBDIR")" "" "nothing is written next to it"
fy "$DB" "$TMP/none" run -- touch "$TMP/server-ran2"
expect_status 78 "ferry run: an empty migrations dir"
check "the server is not started" test ! -e "$TMP/server-ran2"

v1_db emptyexisting
cp "$DB" "$BEFORE"
for dir in none readme-only down-only; do
	fy "$DB" "$TMP/$dir" migrate
	refused 78 "no migrations in '$dir', a database at version 1"
	like "$err" "\[migrations\] dir '$TMP/$dir' holds no migrations" "($dir) names the directory"
done
like "$err" "no \*\.up\.sql file" "golang-migrate: says no up file"
fy "$DB" "$TMP/none" migrate --dry-run
refused 78 "an empty migrations dir: migrate --dry-run"
fy "$DB" "$TMP/none" status
refused 78 "an empty migrations dir: status"
fy "$DB" "$TMP/none" version
expect_status 0 "ferry version still answers"
like "$out" "^ferry " "and prints ferry's version"

done_testing
