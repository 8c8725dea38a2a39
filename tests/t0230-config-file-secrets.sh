#!/bin/sh
# Secrets from files: every setting taken from the environment may come
# from the file NAME_FILE names (DATABASE_URL_FILE, FERRY_<SECTION>_<KEY>_FILE),
# the content with one trailing newline removed. Both set, a missing or
# unreadable file, a file too large: exit 78 naming the variable and the
# path. The value itself is never printed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
unset DATABASE_URL_FILE FERRY_DATABASE_URL_FILE FERRY_SNAPSHOT_KEEP_FILE
make_std_migrations
mkdir "$TMP/secrets"

# secret FILE TEXT: writes TEXT (printf format) to $TMP/secrets/FILE
secret() { printf "$2" >"$TMP/secrets/$1"; }

# ---- DATABASE_URL_FILE: a real upgrade of the database it names ----

new_db file
secret db_url "sqlite://$DB\n"
DATABASE_URL_FILE=$TMP/secrets/db_url run_ferry --migrations "$TMP/m3" migrate
expect_status 0 "ferry migrate with DATABASE_URL_FILE"
is "$(ledger_versions "$DB")" "1 2 3" "the database named in the file is migrated to 3"
is "$(q "$DB" "SELECT count(*) FROM posts")" 0 "its schema is the migrations'"
DATABASE_URL_FILE=$TMP/secrets/db_url run_ferry --migrations "$TMP/m4" run -- true
expect_status 0 "ferry run with DATABASE_URL_FILE and a newer image"
is "$(ledger_versions "$DB")" "1 2 3 4" "the boot upgraded it to 4"

new_db crlf
secret db_url_crlf "sqlite://$DB\r\n"
DATABASE_URL_FILE=$TMP/secrets/db_url_crlf run_ferry --migrations "$TMP/m1" migrate
expect_status 0 "a file ending in CRLF"
is "$(ledger_versions "$DB")" "1" "its trailing CRLF is not part of the path"
check "no database named with a CR was made" [ ! -e "$(printf '%s\r' "$DB")" ]

new_db ferryvar
secret db_url_ferry "sqlite://$DB"
DATABASE_URL=sqlite://$TMP/not-this.db FERRY_DATABASE_URL_FILE=$TMP/secrets/db_url_ferry \
	run_ferry --migrations "$TMP/m1" migrate
expect_status 0 "FERRY_DATABASE_URL_FILE (a file without a newline)"
is "$(ledger_versions "$DB")" "1" "it wins over DATABASE_URL, as FERRY_DATABASE_URL does"
check "the database of DATABASE_URL was not touched" [ ! -e "$TMP/not-this.db" ]

new_db emptyvar
secret db_url_empty "sqlite://$DB\n"
DATABASE_URL= DATABASE_URL_FILE=$TMP/secrets/db_url_empty run_ferry --migrations "$TMP/m1" migrate
expect_status 0 "an empty DATABASE_URL beside DATABASE_URL_FILE (compose's \${VAR:-})"
is "$(ledger_versions "$DB")" "1" "the file is used"

# ---- FERRY_<SECTION>_<KEY>_FILE ----

secret keep '3\n'
FERRY_SNAPSHOT_KEEP_FILE=$TMP/secrets/keep run_ferry config
expect_status 0 "FERRY_SNAPSHOT_KEEP_FILE"
like "$out" "^\[snapshot\] keep += 3 +# FERRY_SNAPSHOT_KEEP_FILE \($TMP/secrets/keep\)$" \
	"ferry config shows its value and that it came from the file"
secret user 'nobody\n'
FERRY_RUN_USER_FILE=$TMP/secrets/user run_ferry config
like "$out" "^\[run\] user += \*\*\* +# FERRY_RUN_USER_FILE " \
	"a string read from a file is shown as ***"
unlike "$out" "nobody" "and not as itself"
secret keep2 '3\n\n'
FERRY_SNAPSHOT_KEEP_FILE=$TMP/secrets/keep2 run_ferry config
expect_status 78 "only one trailing newline is removed: '3\\\\n' is no number"
like "$err" "FERRY_SNAPSHOT_KEEP_FILE: bad value in '$TMP/secrets/keep2': expected a whole number" \
	"a bad value names the variable and the file"
secret wait 'postgres://u:FileSecret1@h/db\n'
FERRY_DATABASE_WAIT_SECONDS_FILE=$TMP/secrets/wait run_ferry config
expect_status 78 "a URL in the file of a number"
unlike "$out$err" "FileSecret1" "the file's content is not echoed"
FERRY_SNAPSHOT_KEEP_FILE= run_ferry config
expect_status 0 "an empty NAME_FILE is unset (file_env)"
like "$out" "^\[snapshot\] keep += 1 +# default$" "and the default stays"

# ---- both set ----

new_db both
secret db_both "sqlite://$DB\n"
DATABASE_URL=sqlite://$DB DATABASE_URL_FILE=$TMP/secrets/db_both \
	run_ferry --migrations "$TMP/m1" migrate
expect_status 78 "DATABASE_URL and DATABASE_URL_FILE both set"
like "$err" "DATABASE_URL and DATABASE_URL_FILE" "the message names both variables"
check "nothing was created" [ ! -e "$DB" ]
FERRY_SNAPSHOT_KEEP=2 FERRY_SNAPSHOT_KEEP_FILE=$TMP/secrets/keep run_ferry config
expect_status 78 "FERRY_SNAPSHOT_KEEP and FERRY_SNAPSHOT_KEEP_FILE both set"
like "$err" "FERRY_SNAPSHOT_KEEP and FERRY_SNAPSHOT_KEEP_FILE" "the message names both"
FERRY_DATABASE_URL=sqlite://$DB FERRY_DATABASE_URL_FILE=$TMP/secrets/db_both run_ferry version
expect_status 78 "FERRY_DATABASE_URL and FERRY_DATABASE_URL_FILE both set"

# ---- unreadable files ----

DATABASE_URL_FILE=$TMP/secrets/missing run_ferry --migrations "$TMP/m1" migrate
expect_status 78 "DATABASE_URL_FILE naming a missing file"
like "$err" "DATABASE_URL_FILE: cannot read '$TMP/secrets/missing': No such file" \
	"the message names the variable and the path"
DATABASE_URL_FILE=$TMP/secrets run_ferry --migrations "$TMP/m1" run -- true
expect_status 78 "DATABASE_URL_FILE naming a directory"
like "$err" "DATABASE_URL_FILE: cannot read '$TMP/secrets': Is a directory" \
	"the message names the variable and the path"
FERRY_RUN_GRACE_SECONDS_FILE=$TMP/secrets/missing run_ferry run -- true
expect_status 78 "FERRY_RUN_GRACE_SECONDS_FILE naming a missing file"
like "$err" "FERRY_RUN_GRACE_SECONDS_FILE: cannot read '$TMP/secrets/missing'" \
	"the message names the variable and the path"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	secret private "sqlite://$TMP/private.db\n"
	chmod 600 "$TMP/secrets/private"
	DATABASE_URL_FILE=$TMP/secrets/private run_cmd setpriv --reuid=65534 --regid=65534 \
		--clear-groups env FERRY_CONFIG=/dev/null "$FERRY" config
	expect_status 78 "a file the user cannot read"
	like "$err" "DATABASE_URL_FILE: cannot read '$TMP/secrets/private': Permission denied" \
		"the message names the variable, the path and the reason"
else
	skip "a file the user cannot read" "needs root and setpriv to run as another user"
	skip "the message names the variable, the path and the reason" "as above"
fi
FERRY_RUN_USER_FILE=/dev/zero run_ferry config
expect_status 78 "a device, not a file"
like "$err" "FERRY_RUN_USER_FILE: cannot read '/dev/zero': not a regular file" "says so"
mkfifo "$TMP/secrets/fifo"
FERRY_RUN_USER_FILE=$TMP/secrets/fifo run_ferry config
expect_status 78 "a FIFO with no writer: refused, not waited for"
ln -s "$TMP/secrets/keep" "$TMP/secrets/link"
FERRY_SNAPSHOT_KEEP_FILE=$TMP/secrets/link run_ferry config
like "$out" "^\[snapshot\] keep += 3 " "a symlink to a file (Kubernetes' secrets) is followed"
head -c 70000 /dev/zero | tr '\0' 'a' >"$TMP/secrets/big"
FERRY_RUN_USER_FILE=$TMP/secrets/big run_ferry config
expect_status 78 "a file over 64 KiB"
like "$err" "FERRY_RUN_USER_FILE: '$TMP/secrets/big' is larger than 64 KiB" "says so"
printf 'a\0b\n' >"$TMP/secrets/nul"
FERRY_RUN_USER_FILE=$TMP/secrets/nul run_ferry config
expect_status 78 "a file with a NUL byte"

# ---- names that are no settings ----

FERRY_RUN_NOSUCH_FILE=$TMP/secrets/keep run_ferry version
expect_status 78 "FERRY_RUN_NOSUCH_FILE: the file of an unknown key"
like "$err" "FERRY_RUN_NOSUCH_FILE: unknown setting" "the message names the variable"
FERRY_RUN_NOSUCH=1 run_ferry version
expect_status 78 "FERRY_RUN_NOSUCH is still unknown"
FERRY_CONFIG_FILE=$TMP/c.ini run_ferry version
expect_status 78 "FERRY_CONFIG_FILE: not a setting (FERRY_CONFIG is the path)"
like "$err" "FERRY_CONFIG_FILE: .*FERRY_CONFIG=PATH" "says to use FERRY_CONFIG"

# ---- a password in DATABASE_URL_FILE is never shown ----

SECRET=Pg5ecretInFile
export FERRY_DATABASE_WAIT_SECONDS=0 PGPASSFILE=$TMP/no-pgpass
unset PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGSERVICE
secret pg_url "postgres://app:$SECRET@127.0.0.1:1/app\n"
secret pg_bad "postgres://app:p%%zz$SECRET@127.0.0.1:1/app\n"
# no_secret DESC: neither stdout nor stderr of the last run shows $SECRET
no_secret() {
	if grep -qF "$SECRET" "$TMP/.out" "$TMP/.err"; then
		fail "$1: the password is not shown" "$(grep -hF "$SECRET" "$TMP/.out" "$TMP/.err" | head -3)"
	else
		pass "$1: the password is not shown"
	fi
}
DATABASE_URL_FILE=$TMP/secrets/pg_url run_ferry config
expect_status 0 "ferry config with a PostgreSQL URL in DATABASE_URL_FILE"
like "$out" "^\[database\] url += postgres://app:\*\*\*@127\.0\.0\.1:1/app +# DATABASE_URL_FILE \($TMP/secrets/pg_url\)$" \
	"the URL is shown with its password masked, and its source"
no_secret "ferry config"
DATABASE_URL_FILE=$TMP/secrets/pg_url run_ferry config --json
expect_status 0 "ferry config --json"
no_secret "ferry config --json"
DATABASE_URL_FILE=$TMP/secrets/pg_url run_ferry -v --migrations "$TMP/m1" migrate
expect_status 69 "an unreachable server"
no_secret "ferry migrate's error"
DATABASE_URL_FILE=$TMP/secrets/pg_bad run_ferry -v --migrations "$TMP/m1" migrate
expect_status 78 "a URL libpq refuses, from the file"
no_secret "the refused URL's error"
DATABASE_URL_FILE=$TMP/secrets/pg_url DATABASE_URL="postgres://app:$SECRET@h/app" run_ferry config
expect_status 78 "both set, with passwords in both"
no_secret "the both-set error"
FERRY_LOG_FORMAT=json DATABASE_URL_FILE=$TMP/secrets/pg_url run_ferry -v status
no_secret "JSON log lines"

done_testing
