#!/bin/sh
# One event, one line: a newline, carriage return or other control
# character in a value ferry prints (an INI value, a variable, a URL, a
# file name, a command) is escaped, so an error is exactly one line on
# stderr and no line of it looks like another event.
. "$(dirname "$0")/lib.sh"

NL='
'
CR=$(printf '\r')
ESC=$(printf '\033')
FAKE="${CR}${NL}ferry: schema up to date"
mkdir "$TMP/m"
echo 'CREATE TABLE t (a int);' >"$TMP/m/0001_t.sql"

# one_error STATUS DESC: the last run exited STATUS with one line on
# stderr, which holds no CR and no escape character
one_error() {
	expect_status "$1" "$2"
	is "$(wc -l <"$TMP/.err" | tr -d ' ')" 1 "$2: exactly one line on stderr"
	if tr -d '\n' <"$TMP/.err" | grep -q "[$CR$ESC]"; then
		fail "$2: no CR or ESC on stderr" "$(od -c "$TMP/.err" | head -5)"
	else
		pass "$2: no CR or ESC on stderr"
	fi
}

printf '[run]\ngrace_seconds = 1\r2 x\n' >"$TMP/cr.ini"
run_ferry -c "$TMP/cr.ini" run -- true
one_error 78 "a CR in an INI value"
like "$err" "grace_seconds: bad value '1\\\\r2 x'" "the CR is shown as \\r"
printf '[log]\nlevel = \033[2J\033]0;title\007\n' >"$TMP/esc.ini"
run_ferry -c "$TMP/esc.ini" run -- true
one_error 78 "terminal escapes in an INI value"
like "$err" "bad value '\\\\x1b\[2J" "ESC is shown as \\x1b"
printf '[run]\ngrace_\0seconds = 1\n' >"$TMP/nul.ini"
run_ferry -c "$TMP/nul.ini" run -- true
one_error 78 "a NUL byte in the INI file"
like "$err" "nul.ini:2: a NUL byte" "the NUL byte's line is named"

FERRY_RUN_GRACE_SECONDS="1${NL}2${FAKE}" run_ferry run -- true
one_error 78 "a newline and a CR in FERRY_RUN_GRACE_SECONDS"
like "$err" "FERRY_RUN_GRACE_SECONDS: bad value '1\\\\n2\\\\r\\\\nferry: schema" \
	"the newline and CR are shown as \\n and \\r"
env "FERRY_RUN_GRACE${NL}X=1" "$FERRY" run -- true >"$TMP/.out" 2>"$TMP/.err"
rc=$?
one_error 78 "a newline in the name of a FERRY_RUN_ variable"

DATABASE_URL="mysql://db/app${FAKE}" run_ferry --migrations "$TMP/m" migrate
one_error 78 "a newline and a CR in DATABASE_URL"
like "$err" 'mysql://db/app\\r\\nferry: schema up to date' "shown escaped"
run_ferry --migrations "$TMP/m" --database-url "postgres://app:pw@db/app${FAKE}?bogus=1" migrate
one_error 78 "a newline and a CR in a PostgreSQL URL"
FERRY_LOG_FORMAT=json DATABASE_URL="mysql://db/app${FAKE}" run_ferry --migrations "$TMP/m" migrate
one_error 78 "JSON log: a newline and a CR in DATABASE_URL"
msg=$(perl -MJSON::PP -ne 'print JSON::PP->new->decode($_)->{msg}' "$TMP/.err" 2>&1)
like "$msg" 'mysql://db/app\\r\\nferry' "JSON log: the line decodes, the URL in it escaped"

run_ferry -c "$TMP/no${NL}such${CR}.ini" run -- true
one_error 78 "a newline and a CR in the name of a missing config file"
like "$err" "no\\\\nsuch\\\\r\\.ini" "the file name is shown escaped"
run_ferry --database-url "sqlite:$TMP/app.db" --migrations "$TMP/no${FAKE}" migrate
one_error 78 "a newline and a CR in the migrations directory"
FERRY_LOG_FORMAT=json run_ferry -q run -- "$TMP/no${NL}such"
one_error 127 "JSON log: a newline in the server's command"
msg=$(perl -MJSON::PP -ne 'print JSON::PP->new->decode($_)->{msg}' "$TMP/.err" 2>&1)
is "$msg" "cannot run '$TMP/no${NL}such': No such file or directory" \
	"JSON log: the message decodes to the exact name"

run_ferry "bad${NL}command"
one_error 64 "a newline in a command name"
run_ferry -q run -- "$TMP/no${FAKE}"
one_error 127 "a newline and a CR in the server's command"
touch "$TMP/m/bad${NL}name${CR}.sql"
run_ferry --database-url "sqlite:$TMP/app.db" --migrations "$TMP/m" migrate
one_error 65 "a newline and a CR in a migration's file name"
like "$err" 'bad\\nname\\r\.sql' "the file name is shown escaped"

done_testing
