#!/bin/sh
# Database URLs that libpq or ferry refuse, one class each: a clear one-line
# error, exit 78, and the password never in anything ferry prints (stdout
# or stderr), whether the URL came from --database-url, DATABASE_URL or the
# INI file, and whatever the command. libpq's own messages quote the part
# they cannot place ("invalid percent-encoded token: "<the password>""):
# ferry never passes them on.
. "$(dirname "$0")/lib.sh"

SECRET=Sup3rSecret
export FERRY_DATABASE_WAIT_SECONDS=0 PGPASSFILE=$TMP/no-pgpass
unset PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGSERVICE
mkdir "$TMP/m"
echo 'CREATE TABLE t (a int);' >"$TMP/m/0001_t.sql"

# no_secret DESC: neither stdout nor stderr of the last run shows $SECRET
no_secret() {
	if grep -qF "$SECRET" "$TMP/.out" "$TMP/.err"; then
		fail "$1: the password is not shown" "$(grep -hF "$SECRET" "$TMP/.out" "$TMP/.err" | head -3)"
	else
		pass "$1: the password is not shown"
	fi
}

# one_line DESC: stderr of the last run is exactly one line
one_line() {
	is "$(wc -l <"$TMP/.err" | tr -d ' ')" 1 "$1: one line on stderr"
}

# refused URL PATTERN DESC: every source of the URL, ferry migrate: exit
# 78, one line matching PATTERN, no password
refused() {
	_url=$1 _pat=$2 _d=$3
	run_ferry --migrations "$TMP/m" --database-url "$_url" migrate
	expect_status 78 "$_d, --database-url"
	one_line "$_d, --database-url"
	like "$err" "^ferry: error: database URL: .*$_pat" "$_d: says what is wrong"
	no_secret "$_d, --database-url"
	DATABASE_URL=$_url run_ferry --migrations "$TMP/m" migrate
	expect_status 78 "$_d, DATABASE_URL"
	one_line "$_d, DATABASE_URL"
	no_secret "$_d, DATABASE_URL"
	printf '[database]\nurl = %s\n' "$_url" >"$TMP/db.ini"
	run_ferry -c "$TMP/db.ini" --migrations "$TMP/m" migrate
	expect_status 78 "$_d, [database] url"
	one_line "$_d, [database] url"
	no_secret "$_d, [database] url"
}

refused "postgres://app:p%zz$SECRET@db/app" "bad percent-escape in the password" \
	"a '%' in the password that is no percent-escape"
refused "postgres://app:$SECRET%00@db/app" "%00 in the password" "%00 in the password"
refused "postgres://app:$SECRET@[::1/app" "unclosed '\[' in the host" "an unclosed '[' in the host"
refused "postgres://app:$SECRET@db/app?bogus=1" "unknown option 'bogus' in the query" \
	"an unknown option in a URL with a password"
refused "postgres://db/app?password=$SECRET&sslmod=require" \
	"a query parameter after the password is no option" \
	"an unknown option after ?password="
refused "host=db bogus=1 password=$SECRET" "unknown option 'bogus'" \
	"an unknown option in key=value with a password"
refused "host=db password=$SECRET sslmod=require" \
	"an unknown option after the value of 'password'" \
	"an unknown option right after an unquoted password"
refused "\"host=db password=$SECRET\"" "seems to hold a password, but is neither" \
	"key=value in quotes, not seen as PostgreSQL (once a SQLite file name)"
refused "postgres:/app:$SECRET@db/app" "seems to hold a password" \
	"a URL with one slash, not seen as PostgreSQL"
refused "host=db password='$SECRET with spaces' bogus=1" "unknown option 'bogus'" \
	"a quoted password with spaces and an unknown option"
refused "host=db password='$SECRET with spaces" "unterminated quoted value of 'password'" \
	"an unterminated quoted password"
refused "host=db password=$SECRET with spaces" "a word without '=' after the value of 'password'" \
	"an unquoted password with spaces"
refused "host=db PASSWORD=$SECRET" "unknown option 'PASSWORD' \(options are lower case" \
	"PASSWORD= in capitals"
refused "PassWord = '$SECRET' host=db" "unknown option 'PassWord'" \
	"PassWord= first, mixed case, quoted (once a SQLite file name)"

# the other commands refuse the same way
for cmd in "migrate --dry-run" status "status --json" snapshot rollback cleanup; do
	# shellcheck disable=SC2086
	run_ferry -v --migrations "$TMP/m" --database-url "postgres://app:p%zz$SECRET@db/app" $cmd
	expect_status 78 "ferry $cmd, a bad percent-escape"
	one_line "ferry $cmd"
	no_secret "ferry $cmd"
done
FERRY_LOG_FORMAT=json run_ferry --migrations "$TMP/m" --database-url "host=db PASSWORD=$SECRET" migrate
expect_status 78 "JSON log, PASSWORD="
one_line "JSON log"
no_secret "JSON log"

# URLs libpq takes, the server unreachable: the URL is shown, its password not
for url in "host=127.0.0.1 port=1 user=app password='$SECRET with spaces' dbname=app" \
	"host=127.0.0.1 port=1 user=app PASSWORD_FILE=x" \
	"postgres://app:$SECRET@127.0.0.1:1/app?sslmode=disable" \
	"postgres://app@127.0.0.1:1/app?password=$SECRET" \
	"postgres://app:$SECRET"; do
	for cmd in "migrate --dry-run" status; do
		# shellcheck disable=SC2086
		run_ferry -v --migrations "$TMP/m" --database-url "$url" $cmd
		check "ferry $cmd, $(printf '%s' "$url" | cut -c1-40)...: refused (exit $rc)" \
			test "$rc" = 69 -o "$rc" = 78
		no_secret "ferry $cmd, $(printf '%s' "$url" | cut -c1-40)..."
	done
done
run_ferry --migrations "$TMP/m" --database-url "postgres://app:$SECRET@127.0.0.1:1/app" status
like "$err" "127\.0\.0\.1:1/app" "an unreachable server: the message names the URL"
run_ferry --migrations "$TMP/m" --database-url "postgres://app:$SECRET" migrate
like "$err" 'postgres://app:\*\*\*' "postgres://user:password without a host: the 'port' is masked"

# a SQLite database: status and the dry run print the URL
run_ferry --migrations "$TMP/m" --database-url "sqlite:$TMP/app.db" migrate
expect_status 0 "a SQLite database"
run_ferry --migrations "$TMP/m" --database-url "sqlite:$TMP/app.db" status
like "$out" "sqlite:$TMP/app\.db" "status prints the URL"
run_ferry --migrations "$TMP/m" --database-url "sqlite:$TMP/app.db" migrate --dry-run
expect_status 0 "a dry run"

done_testing
