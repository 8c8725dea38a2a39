#!/bin/sh
# ferry config [--json]: every key of every section, its effective value
# and where it came from (file:line, the variable, NAME_FILE and its path,
# the option, default); passwords masked; no database opened.
. "$(dirname "$0")/lib.sh"
unset FERRY_SNAPSHOT_KEEP FERRY_RUN_GRACE_SECONDS FERRY_LOG_LEVEL FERRY_LOG_FORMAT \
	FERRY_DATABASE_URL FERRY_MIGRATIONS_DIR DATABASE_URL_FILE FERRY_DATABASE_URL_FILE

# json EXPR: the Python expression EXPR on the JSON object in $out (as j),
# or "invalid JSON: ..."
json() {
	printf '%s' "$out" | python3 -c '
import json, sys
try:
    j = json.load(sys.stdin)
except Exception as e:
    print("invalid JSON: %s" % e); sys.exit(0)
print(eval(sys.argv[1]))' "$1"
}

# line KEY: the line of $out for "[section] key"
line() { printf '%s\n' "$out" | grep -F "$1 " | head -1; }

INI=$TMP/c.ini
printf '; a comment\n[snapshot]\nkeep = 4\n\n[run]\ngrace_seconds = 5\nsignal_group = yes\n' >"$INI"

# ---- sources ----

FERRY_RUN_GRACE_SECONDS=7 DATABASE_URL=sqlite://$TMP/env.db run_ferry -c "$INI" config
expect_status 0 "ferry config"
like "$(line '[snapshot] keep')" "^\[snapshot\] keep += 4 +# $INI:3$" "a file's value: file:line"
like "$(line '[run] signal_group')" "= true +# $INI:7$" "a boolean, as the program reads it"
like "$(line '[run] grace_seconds')" "= 7 +# FERRY_RUN_GRACE_SECONDS$" \
	"the environment over the file: the variable's name"
like "$(line '[database] url')" "= sqlite://$TMP/env\.db +# DATABASE_URL$" "DATABASE_URL"
like "$(line '[database] wait_seconds')" "= 30 +# default$" "an unset key: default"
like "$(line '[migrations] dir')" "= /app/migrations +# default$" "a default string"
check "the database was not opened nor created" [ ! -e "$TMP/env.db" ]

DATABASE_URL=sqlite://$TMP/env.db FERRY_DATABASE_URL=sqlite://$TMP/ferry.db \
	run_ferry --database-url "sqlite://$TMP/flag.db" --migrations "$TMP/nosuch" -v config
expect_status 0 "options, with no migrations directory"
like "$(line '[database] url')" "= sqlite://$TMP/flag\.db +# --database-url$" \
	"--database-url over both variables: the option"
like "$(line '[migrations] dir')" "= $TMP/nosuch +# --migrations$" "--migrations"
like "$(line '[log] level')" "= debug +# -v$" "-v moves [log] level"
DATABASE_URL=sqlite://$TMP/env.db FERRY_DATABASE_URL=sqlite://$TMP/ferry.db run_ferry config
like "$(line '[database] url')" "= sqlite://$TMP/ferry\.db +# FERRY_DATABASE_URL$" \
	"FERRY_DATABASE_URL over DATABASE_URL"
run_ferry --database-url "" config
like "$(line '[database] url')" "^\[database\] url += +# --database-url$" \
	"an empty --database-url: no database, from the option"

printf '3\n' >"$TMP/keep"
FERRY_SNAPSHOT_KEEP_FILE=$TMP/keep run_ferry -c "$INI" config
like "$(line '[snapshot] keep')" "= 3 +# FERRY_SNAPSHOT_KEEP_FILE \($TMP/keep\)$" \
	"a NAME_FILE: the variable and the file it names"

# ---- every key, one line each ----

REF=$TESTS_DIR/../entrypoint/ferry.ini
# its keys, the commented-out examples (;url = ...) too
want=$(awk -F' *= *' '/^\[/ { s = $0; next }
	/^;?[a-z_]+ *=/ { sub(/^;/, "", $1); print s " " $1 }' "$REF" | LC_ALL=C sort)
run_ferry config
got=$(printf '%s\n' "$out" | grep '^\[' | sed 's/ *=.*//' | LC_ALL=C sort)
is "$got" "$want" "every key of the reference file, no other"
like "$out" "^\[log\] format += text +# default$" "the last key too"
check "the # column lines up" \
	[ "$(printf '%s\n' "$out" | grep '^\[' | awk '{ print index($0, "#") }' | sort -u | wc -l)" = 1 ]

# ---- --json ----

FERRY_RUN_GRACE_SECONDS=7 run_ferry -c "$INI" --database-url "sqlite://$TMP/flag.db" config --json
expect_status 0 "ferry config --json"
is "$(printf '%s' "$out" | python3 -c 'import json,sys; json.load(sys.stdin)' 2>&1 && echo ok)" ok \
	"the output is one JSON object"
is "$(json 'j["snapshot"]["keep"]')" "{'value': 4, 'source': 'file', 'file': '$INI', 'line': 3}" \
	"a file's value: number, file and line"
is "$(json 'j["run"]["grace_seconds"]')" "{'value': 7, 'source': 'env', 'variable': 'FERRY_RUN_GRACE_SECONDS'}" \
	"an environment value: the variable"
is "$(json 'j["database"]["url"]')" "{'value': 'sqlite://$TMP/flag.db', 'source': 'option', 'option': '--database-url'}" \
	"an option"
is "$(json 'j["database"]["state_dir"]')" "{'value': None, 'source': 'default'}" "an unset string: null"
is "$(json 'j["run"]["signal_group"]["value"]')" "True" "a boolean"
is "$(json 'sum(len(s) for s in j.values())')" "$(printf '%s\n' "$want" | wc -l)" "every key"
FERRY_SNAPSHOT_KEEP_FILE=$TMP/keep run_ferry config --json
is "$(json 'j["snapshot"]["keep"]')" "{'value': 3, 'source': 'env_file', 'variable': 'FERRY_SNAPSHOT_KEEP_FILE', 'path': '$TMP/keep'}" \
	"a NAME_FILE: the variable and the path"

# ---- passwords ----

SECRET=Sh0wNever
printf '[database]\nurl = postgres://app:%s@127.0.0.1:1/app\n[health]\nurl = http://u:%s@127.0.0.1:1/health\n' \
	"$SECRET" "$SECRET" >"$TMP/pw.ini"
run_ferry -c "$TMP/pw.ini" config
expect_status 0 "a config with passwords, without a reachable server"
like "$(line '[database] url')" "= postgres://app:\*\*\*@127\.0\.0\.1:1/app +# $TMP/pw\.ini:2$" \
	"the database URL is shown with its password masked"
like "$(line '[health] url')" "= http://u:\*\*\*@127\.0\.0\.1:1/health " "the health URL too"
unlike "$out$err" "$SECRET" "no password in ferry config"
run_ferry -c "$TMP/pw.ini" config --json
unlike "$out$err" "$SECRET" "no password in ferry config --json"
run_ferry --database-url "host=127.0.0.1 port=1 password=$SECRET dbname=app" config --json
unlike "$out$err" "$SECRET" "no password of a key=value string"
like "$(json 'j["database"]["url"]["value"]')" "password=\*\*\*" "masked in it"

# ---- what it needs ----

printf '[run]\nnosuch = 1\n' >"$TMP/bad.ini"
run_ferry -c "$TMP/bad.ini" config
expect_status 78 "a broken config: ferry config refuses like every command"
like "$err" "$TMP/bad.ini:2: unknown key 'nosuch'" "naming file:line"
run_ferry config extra
expect_status 64 "ferry config takes no argument"
run_ferry help config
expect_status 0 "ferry help config"
like "$out" "usage: ferry \[OPTIONS\] config \[--json\]" "its usage"
like "$out" "where each value came from" "and what it does"
run_ferry help
like "$out" "config \[--json\]" "listed in ferry help"
if [ -w /dev/full ]; then
	"$FERRY" config >/dev/full 2>"$TMP/.err"
	rc=$?
	expect_status 73 "stdout on a full disk is no silent success"
else
	skip "stdout on a full disk is no silent success" "no /dev/full"
fi

done_testing
