#!/bin/sh
# PostgreSQL: every byte of a migration file is run or refused. A NUL byte
# is refused when the files are read, a pending migration that is not
# UTF-8 by the plan (exit 65, one line naming the file and the byte
# offset, nothing written); a directory without migrations is a
# configuration error (78). The statement splitter drops nothing: a last
# statement without semicolon runs, and a file that ends inside an
# unclosed comment or literal is refused before anything runs (65),
# instead of being cut off while the file is recorded as applied.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
make_std_pg_migrations

# untouched DESC: appdb is as in $state, and no snapshot or other database
# was made.
untouched() {
	same_state "$(pg_state)" "$state" "$1: database unchanged (pg_dump and ledger)"
	is "$(db_list)" appdb "$1: no snapshot database, no other database"
	is "$(ls -A "$FERRY_SNAPSHOT_DIR")" "" "$1: no snapshot file"
	no_ferry_tables "$1"
}
one_line() { is "$(printf '%s\n' "$err" | grep -c .)" 1 "$1: one log line"; }

# with_0002 NAME PRINTF-FORMAT: $M=$TMP/mig-NAME, the files of p3 with
# 0002_email.sql replaced by the bytes printf makes of the format.
with_0002() {
	M=$TMP/mig-$1
	rm -rf "$M"
	cp -r "$TMP/p3" "$M"
	printf -- "$2" >"$M/0002_email.sql"
}

# ---- a NUL byte --------------------------------------------------------------------------
with_0002 nul 'ALTER TABLE users ADD COLUMN email text;\n\000\nUPDATE users SET email = lower(name);\n'
v1_appdb
state=$(pg_state)
pgf "$M" migrate
expect_status 65 "a NUL byte in a pending migration"
one_line "NUL byte"
like "$err" "^ferry: error: migration '$M/0002_email\.sql' has a NUL byte at offset 41 \(line 2\)" \
	"names the file, the byte offset and the line"
untouched "NUL byte"

# ---- not UTF-8 -----------------------------------------------------------------------------
with_0002 latin1 '-- caf\351\nALTER TABLE users ADD COLUMN email text;\n'
pgf "$M" migrate
expect_status 65 "a pending migration in Latin-1"
one_line "Latin-1"
like "$err" "^ferry: error: migration '$M/0002_email\.sql' is not UTF-8 text: the byte at offset 6 \(line 1\)" \
	"names the file, the byte offset and the line"
untouched "Latin-1"
pgf "$M" migrate --dry-run
expect_status 65 "Latin-1: migrate --dry-run refuses"
like "$out" "^plan: refuse: migration '.*0002_email\.sql' is not UTF-8 text" "the dry run prints the refusal"
pgf "$M" status
expect_status 0 "Latin-1: status"
like "$out" "^refusal: migration '.*0002_email\.sql' is not UTF-8 text" "status shows the refusal"
untouched "Latin-1, after dry run and status"

# UTF-8 files into a LATIN1 database: with client_encoding=UTF8 in the URL
# (README) the server converts, and the text arrives as written
psql_su postgres "CREATE DATABASE latin OWNER app ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'
	TEMPLATE template0" >/dev/null
mkdir -p "$TMP/pu"
printf -- "-- caf\303\251\nCREATE TABLE words (w text);\nINSERT INTO words VALUES ('caf\303\251');\n" \
	>"$TMP/pu/0001_words.sql"
URL="postgres://app:$APP_PASSWORD@127.0.0.1:$PGPORT/latin?client_encoding=UTF8" \
	FERRY_DATABASE_STATE_DIR=$TMP/latin-state pgf "$TMP/pu" migrate
expect_status 0 "UTF-8 migrations into a LATIN1 database with client_encoding=UTF8"
is "$(psql_su latin "SELECT length(w) || ' ' || encode(convert_to(w, 'LATIN1'), 'hex') FROM words")" \
	"4 636166e9" "the text is stored as written (é is one character)"
psql_su postgres "DROP DATABASE latin WITH (FORCE)" >/dev/null

# ---- no migrations in the directory ------------------------------------------------------------
mkdir -p "$TMP/none"
pgf "$TMP/none" migrate
expect_status 78 "an empty migrations dir"
one_line "empty dir"
like "$err" "^ferry: error: \[migrations\] dir '$TMP/none' holds no migrations" "names the directory"
untouched "empty dir"
pg_fresh_appdb
state=$(pg_state)
pgf "$TMP/none" migrate
expect_status 78 "an empty migrations dir, an empty database"
untouched "empty dir, empty database"
is "$(qa "SELECT to_regclass('public.ferry_migrations') IS NULL")" t "no ledger was created"

# ---- the end of a file ---------------------------------------------------------------------------
# the last statement without a semicolon, a comment after it: it runs
v1_appdb
with_0002 nosemi 'ALTER TABLE users ADD COLUMN email text;\nUPDATE users SET email = lower(name) -- the last one\n/* done */\n'
pgf "$M" migrate
expect_status 0 "a last statement without semicolon, comments after it"
is "$(qa "SELECT string_agg(email, ',' ORDER BY id) FROM users")" "ada,brian,chloe" "the last statement ran"

# an unclosed comment after the last statement: what it swallows reaches
# the server, which refuses it; before, it was cut off and the file
# recorded as applied without the table
v1_appdb
state=$(pg_state)
with_0002 opencomment 'ALTER TABLE users ADD COLUMN email text;\n/* CREATE TABLE later (x int);\n'
pgf "$M" migrate
expect_status 65 "an unclosed comment after the last statement: refused"
like "$err" "0002_email\.sql' line 2: .*comment.*the rest of the file would never run \(nothing was changed\)" \
	"names the file, the line and what was left open"
untouched "unclosed comment"

with_0002 openquote "ALTER TABLE users ADD COLUMN email text;\nUPDATE users SET email = 'x;\nALTER TABLE users DROP COLUMN name;\n"
pgf "$M" migrate
expect_status 65 "an unclosed string literal: refused"
like "$err" "0002_email\.sql' line 2: .*the rest of the file would never run" "names the file and the line"
untouched "unclosed literal"

# the same in a migration run statement by statement, outside a transaction
with_0002 opencomment-notx '-- ferry:no-transaction\nCREATE INDEX CONCURRENTLY users_lower ON users (lower(name));\n/* CREATE TABLE later (x int);\n'
pgf "$M" migrate
expect_status 65 "no transaction: an unclosed comment after the last statement: refused"
like "$err" "0002_email\.sql' line 3: .*comment" "names the file and the line"
same_state "$(pg_state)" "$state" "no transaction: the database is unchanged"
is "$(ledger_versions)" 1 "no transaction: the ledger is back at 1"

secret_never_shown
done_testing
