#!/bin/sh
# Configuration: INI file, FERRY_<SECTION>_<KEY> environment, command line;
# every error is exit 78 naming file:line or the variable; logging options;
# a database password never appears in anything ferry prints.
. "$(dirname "$0")/lib.sh"

ini() { printf "$1" >"$TMP/c.ini"; }

# config_error INI-TEXT LINE PATTERN DESC: the file is refused, at that line
config_error() {
	ini "$1"
	run_ferry -c "$TMP/c.ini" run -- true
	expect_status 78 "$4"
	like "$err" "$TMP/c.ini:$2: .*$3" "$4: the message names file:line"
}

# ---- the reference file ----

REF=$TESTS_DIR/../entrypoint/ferry.ini
run_ferry -c "$REF" run -- true
expect_status 0 "the reference entrypoint/ferry.ini is accepted as it is"

# every key of the reference file, as an environment variable with its value
envs=$(awk -F' *= *' '
	/^\[/ { gsub(/[][]/, ""); s = toupper($0); next }
	/^[a-z_]+ *=/ { printf "FERRY_%s_%s=%s\n", s, toupper($1), $2 }' "$REF")
count=$(printf '%s\n' "$envs" | grep -c .)
check "the reference file has keys ($count)" [ "$count" -ge 14 ]
(
	IFS='
'
	export $envs
	"$FERRY" run -- true >"$TMP/.out" 2>"$TMP/.err"
)
rc=$?
expect_status 0 "every key of the reference file works as FERRY_<SECTION>_<KEY>"

# ---- errors in the file: 78 and file:line ----

config_error '[nosuch]\nkey = 1\n' 1 "unknown section \[nosuch\]" "an unknown section"
config_error '[run]\ngrace_seconds = 1\n\n[nosuch]\n[log]\nlevel = info\n' 4 \
	"unknown section \[nosuch\]" "an unknown section without keys"
config_error '; comment\n[run]\nnosuch = 1\n' 3 "unknown key 'nosuch' in \[run\]" "an unknown key"
config_error '[run]\ngrace_seconds = abc\n' 2 "grace_seconds: bad value 'abc'" "a bad integer"
config_error '[run]\ngrace_seconds = 3601\n' 2 "grace_seconds: bad value '3601'" "an integer out of range"
config_error '[run]\ngrace_seconds = -1\n' 2 "grace_seconds" "a negative integer"
config_error '[run]\ngrace_seconds = 10s\n' 2 "grace_seconds" "an integer with a unit"
config_error '[run]\nsignal_group = maybe\n' 2 "signal_group: bad value 'maybe'" "a bad boolean"
config_error '[run]\nexit_zero = 143,256\n' 2 "exit_zero" "a bad exit status list"
config_error '[log]\nlevel = loud\n' 2 "level: bad value 'loud'" "a bad log level"
config_error '[log]\nformat = xml\n' 2 "format: bad value 'xml'" "a bad log format"
config_error '[run]\ngrace_seconds\n' 2 "syntax error" "a line that is not key = value"
config_error '[run\n' 1 "syntax error" "a broken section header"
config_error 'grace_seconds = 1\n' 1 "grace_seconds" "a key before any section"
config_error '[run]\nthis is not a setting\nnosuch = 1\n' 2 "syntax error" \
	"two errors: the first one is reported"
config_error '[run]\nnosuch = 1\nthis is not a setting\n' 2 "unknown key 'nosuch'" \
	"two errors the other way round: still the first one"
long=$(printf '%0300d' 0)
config_error "[run]\n; $long\ngrace_seconds = 1\n" 2 "line longer than" "a line too long to parse"

# what is accepted
ini '# comment\n; comment\n[RUN]\nGrace_Seconds = 1 ; inline comment\nsignal_group = yes\n\n[log]\nlevel = warn\n'
run_ferry -c "$TMP/c.ini" run -- true
expect_status 0 "comments, case-insensitive names, yes/no booleans"
ini '[run]\r\ngrace_seconds = 1\r\n'
run_ferry -c "$TMP/c.ini" run -- true
expect_status 0 "CRLF line ends"
ini '[health]\n[backup]\n[doctor]\n[app]\n'
run_ferry -c "$TMP/c.ini" run -- true
expect_status 0 "the sections of later features are known"

# ---- which file ----

run_ferry -c "$TMP/missing.ini" run -- true
expect_status 78 "a named config file (-c) that does not exist"
like "$err" "$TMP/missing.ini" "the message names the path"
run_ferry --config "$TMP/missing.ini" version
expect_status 78 "--config FILE that does not exist"
FERRY_CONFIG=$TMP/missing.ini run_ferry run -- true
expect_status 78 "FERRY_CONFIG naming a file that does not exist"
like "$err" "$TMP/missing.ini" "the message names the path"
mkdir "$TMP/dir.ini"
run_ferry -c "$TMP/dir.ini" run -- true
expect_status 78 "a config file that is a directory"
ini '[run]\ngrace_seconds = 1\n'
FERRY_CONFIG=$TMP/missing.ini run_ferry -c "$TMP/c.ini" run -- true
expect_status 0 "-c wins over FERRY_CONFIG"
if [ -e /etc/ferry/ferry.ini ]; then
	skip "a missing default config file is fine" "/etc/ferry/ferry.ini exists here"
else
	FERRY_CONFIG= run_ferry run -- true
	expect_status 0 "a missing default config file is fine"
fi

# ---- the environment ----

FERRY_RUN_GRACE_SECONDS=abc run_ferry run -- true
expect_status 78 "FERRY_RUN_GRACE_SECONDS=abc"
like "$err" "FERRY_RUN_GRACE_SECONDS" "the message names the variable"
FERRY_RUN_NOSUCHKEY=1 run_ferry run -- true
expect_status 78 "FERRY_RUN_NOSUCHKEY=1: an unknown key of a known section"
like "$err" "FERRY_RUN_NOSUCHKEY" "the message names the variable"
FERRY_LOG_LEVEL=loud run_ferry version
expect_status 78 "FERRY_LOG_LEVEL=loud"
FERRY_RUN_EXEC=perhaps run_ferry version
expect_status 78 "FERRY_RUN_EXEC=perhaps"
FERRY_SNAPSHOT_KEEP=0 run_ferry version
expect_status 78 "FERRY_SNAPSHOT_KEEP=0 (out of range)"
FERRY_APP_NAME=x run_ferry version
expect_status 78 "FERRY_APP_NAME: a section with no keys yet"
FERRY_HEALTH_TIMEOUT_SECONDS=0 run_ferry version
expect_status 78 "FERRY_HEALTH_TIMEOUT_SECONDS=0 (out of range)"
FERRY_HEALTH_MAX_ATTEMPTS=x run_ferry version
expect_status 78 "FERRY_HEALTH_MAX_ATTEMPTS=x"
FERRY_SOMETHING=1 FERRY_UNRELATED_THING=2 run_ferry version
expect_status 0 "FERRY_ variables of no section are not ferry's business"

# precedence, seen through the grace period the drain message announces
leftover() { # leftover ARGS...: a server that leaves a helper behind
	run_ferry "$@" run -- sh -c 'sleep 1000 & exit 0'
}
ini '[run]\ngrace_seconds = 7\n'
leftover -c "$TMP/c.ini"
like "$err" "SIGKILL after 7 s" "the file's grace_seconds is used"
FERRY_RUN_GRACE_SECONDS=3 leftover -c "$TMP/c.ini"
like "$err" "SIGKILL after 3 s" "the environment overrides the file"
ini '[log]\nlevel = error\n'
FERRY_LOG_LEVEL=info run_ferry -c "$TMP/c.ini" run -- true
like "$err" "no database configured" "FERRY_LOG_LEVEL overrides [log] level"

# --database-url over FERRY_DATABASE_URL over DATABASE_URL: the losers are
# never named nor touched
for v in DATABASE_URL FERRY_DATABASE_URL; do
	env FERRY_DATABASE_WAIT_SECONDS=0 "$v=sqlite:$TMP/env.db" \
		"$FERRY" -v --database-url "sqlite:$TMP/flag.db" status >"$TMP/.out" 2>&1
	unlike "$(cat "$TMP/.out")" "env\.db" "--database-url wins over $v"
	check "the database of $v was not touched" [ ! -e "$TMP/env.db" ]
done
env FERRY_DATABASE_WAIT_SECONDS=0 "DATABASE_URL=sqlite:$TMP/env.db" \
	"FERRY_DATABASE_URL=sqlite:$TMP/ferry.db" "$FERRY" -v status >"$TMP/.out" 2>&1
unlike "$(cat "$TMP/.out")" "env\.db" "FERRY_DATABASE_URL wins over DATABASE_URL"
run_ferry status
expect_status 78 "status without a database"
like "$err" "no database configured" "says that no database is configured"

# ---- logging ----

ini '[log]\nformat = json\n'
run_ferry -c "$TMP/c.ini" -v run -- sh -c 'exit 3'
expect_status 3 "format = json: the server's status"
check "format = json: several lines" [ "$(printf '%s\n' "$err" | grep -c .)" -ge 2 ]
check "format = json: every line is a JSON object with time, level, msg" \
	sh -c "printf '%s\n' \"\$1\" | $(command -v perl) -MJSON::PP -ne '
		my \$o = JSON::PP->new->decode(\$_);
		die unless defined \$o->{time} && \$o->{level} && defined \$o->{msg}'" sh "$err"
like "$err" '"level":"debug"' "format = json with -v: debug lines"
bad_name="$TMP/a \"quoted\" \\ name	tab"
FERRY_LOG_FORMAT=json run_ferry run -- "$bad_name"
expect_status 127 "a command name full of JSON specials"
check "its error line is valid JSON" sh -c "printf '%s\n' \"\$1\" | perl -MJSON::PP -ne 'JSON::PP->new->decode(\$_)'" sh "$err"
msg=$(printf '%s\n' "$err" | perl -MJSON::PP -ne 'my $o = JSON::PP->new->decode($_); print $o->{msg} if $o->{level} eq "error"')
is "$msg" "cannot run '$bad_name': No such file or directory" "and says the name exactly"

run_ferry run -- true
like "$err" "^ferry: " "text format: lines start with 'ferry: '"
like "$err" "no database configured" "level info: info lines"
unlike "$err" "started 'true'" "level info: no debug lines"
run_ferry -v run -- true
like "$err" "started 'true' as pid" "-v: debug lines"
run_ferry -q run -- true
is "$err" "" "-q: no info lines"
run_ferry -q -q -q run -- no-such-command-anywhere
like "$err" "cannot run" "-q -q -q: errors still shown"
run_ferry -v -v -v -v run -- true
expect_status 0 "-v -v -v -v is just debug"
ini '[log]\nlevel = error\n'
run_ferry -c "$TMP/c.ini" run -- true
is "$err" "" "level = error: no info lines"
run_ferry -c "$TMP/c.ini" -v run -- true
unlike "$err" "no database configured" "level = error, -v: one step, to warn"
run_ferry -c "$TMP/c.ini" -v -v run -- true
like "$err" "no database configured" "level = error, -v -v: info"
ini '[log]\nlevel = debug\n'
run_ferry -c "$TMP/c.ini" -q run -- true
like "$err" "no database configured" "level = debug, -q: info lines"
unlike "$err" "started 'true'" "level = debug, -q: no debug lines"
ini '[log]\nlevel = warn\n'
run_ferry -c "$TMP/c.ini" run -- sh -c 'sleep 1000 & exit 0'
unlike "$err" "no database configured" "level = warn: no info lines"
FERRY_RUN_GRACE_SECONDS=0 run_ferry -c "$TMP/c.ini" run -- sh -c 'trap "" TERM; sleep 1000 & exit 0'
like "$err" "^ferry: warning: grace period" "level = warn: warnings, marked as such"

# ---- a database password is never shown ----

SECRET=Sup3rSecret
URL="postgres://user:$SECRET@127.0.0.1:1/db"
export FERRY_DATABASE_WAIT_SECONDS=0
secret_free() { # secret_free DESC ARGS...: ferry ARGS prints no password
	_d=$1; shift
	"$@" </dev/null >"$TMP/.all" 2>&1
	if grep -q "$SECRET" "$TMP/.all"; then fail "$_d" "$(grep "$SECRET" "$TMP/.all" | head -5)"
	else pass "$_d"; fi
}
printf '[database]\nurl = %s\n' "$URL" >"$TMP/db.ini"
printf '[database]\nurl = %s\n[run]\nnosuch = 1\n' "$URL" >"$TMP/db-bad.ini"
printf '[database]\nwait_seconds = %s\n' "$URL" >"$TMP/db-wrongkey.ini"
printf '[database]\nurl %s\n' "$URL" >"$TMP/db-syntax.ini"
printf '[database]\nurl = %s\n' "host=127.0.0.1 port=1 password=$SECRET dbname=db" >"$TMP/db-kv.ini"
printf '[database]\nurl = %s\n' "postgres://127.0.0.1:1/db?user=u&password=$SECRET" >"$TMP/db-q.ini"
for cmd in "-v status" "-v status --json" "-v migrate" "-v migrate --dry-run" \
	"-v snapshot" "-v rollback" "-v cleanup" "-v version" "-v run -- true"; do
	secret_free "DATABASE_URL, ferry $cmd" env DATABASE_URL="$URL" "$FERRY" $cmd
	secret_free "--database-url, ferry $cmd" "$FERRY" --database-url "$URL" $cmd
	secret_free "the INI file, ferry $cmd" "$FERRY" -c "$TMP/db.ini" $cmd
done
secret_free "--database-url=URL" "$FERRY" -v --database-url="$URL" status
secret_free "FERRY_DATABASE_URL" env FERRY_DATABASE_URL="$URL" "$FERRY" -v status
FERRY_LOG_FORMAT=json secret_free "json format" env DATABASE_URL="$URL" "$FERRY" -v status
secret_free "a config error after the url" "$FERRY" -c "$TMP/db-bad.ini" -v status
secret_free "a URL in the wrong key" "$FERRY" -c "$TMP/db-wrongkey.ini" -v status
secret_free "a URL in a line that is not key = value" "$FERRY" -c "$TMP/db-syntax.ini" -v status
secret_free "a URL in a bad environment variable" env FERRY_RUN_GRACE_SECONDS="$URL" "$FERRY" -v status
secret_free "a libpq key=value string" "$FERRY" -c "$TMP/db-kv.ini" -v status
secret_free "a password=... query parameter" "$FERRY" -c "$TMP/db-q.ini" -v status
secret_free "a URL and a failing server" env DATABASE_URL="$URL" "$FERRY" -v run -- no-such-command-anywhere
unset FERRY_DATABASE_WAIT_SECONDS

done_testing
