#!/bin/sh
# The command line: help, version, usage errors (exit 64).
. "$(dirname "$0")/lib.sh"

run_ferry help
expect_status 0 "ferry help"
like "$out" "^usage: ferry " "ferry help prints the usage on stdout"
for c in run migrate status snapshot rollback cleanup version help; do
	like "$out" "^  $c( |$)" "ferry help lists '$c'"
done
like "$out" "-c FILE" "ferry help lists the global options"
is "$err" "" "ferry help writes nothing on stderr"
usage=$out

run_ferry --help
expect_status 0 "ferry --help"
is "$out" "$usage" "ferry --help is ferry help"
run_ferry -h
expect_status 0 "ferry -h"
is "$out" "$usage" "ferry -h is ferry help"

run_ferry help run
expect_status 0 "ferry help run"
like "$out" "^usage: ferry \[OPTIONS\] run \[--\] COMMAND" "ferry help run shows run's usage"
like "$out" "supervisor" "and what run does"
run_help=$out
run_ferry run --help
expect_status 0 "ferry run --help"
is "$out" "$run_help" "ferry run --help is ferry help run"
run_ferry run -h
expect_status 0 "ferry run -h"
run_ferry help migrate
like "$out" "--dry-run" "ferry help migrate mentions --dry-run"
run_ferry status --help
like "$out" "--json" "ferry status --help mentions --json"

run_ferry version
expect_status 0 "ferry version"
like "$out" "^ferry [0-9]+\.[0-9]+" "ferry version prints 'ferry X.Y'"
version=$(printf '%s\n' "$out" | head -1)
run_ferry --version
expect_status 0 "ferry --version"
is "$(printf '%s\n' "$out" | head -1)" "$version" "ferry --version prints the same version"
run_ferry -q -v version
expect_status 0 "global options before the command"

# usage errors: 64, a message on stderr, nothing on stdout
run_ferry
expect_status 64 "no command"
like "$err" "^usage: ferry" "no command: the usage on stderr"
is "$out" "" "no command: nothing on stdout"
run_ferry nosuch
expect_status 64 "unknown command"
like "$err" "unknown command 'nosuch'" "names the unknown command"
run_ferry --nosuch version
expect_status 64 "unknown global option"
like "$err" "unknown option '--nosuch'" "names the unknown option"
run_ferry run --bogus -- true
expect_status 64 "unknown option of run"
like "$err" "unknown option '--bogus'" "names it"
run_ferry migrate --json
expect_status 64 "an option of another command (migrate --json)"
run_ferry status --dry-run
expect_status 64 "an option of another command (status --dry-run)"
run_ferry run
expect_status 64 "run without a command"
like "$err" "run needs a COMMAND" "says that run needs a command"
run_ferry run --
expect_status 64 "run -- without a command"
run_ferry help nosuch
expect_status 64 "help for an unknown command"
like "$err" "unknown command 'nosuch'" "names it"
run_ferry version extra
expect_status 64 "an unexpected argument"
like "$err" "unexpected argument 'extra'" "names it"
run_ferry -c
expect_status 64 "-c without a value"
like "$err" "'-c' needs a value" "says so"
run_ferry --database-url
expect_status 64 "--database-url without a value"
run_ferry --config-file=x version
expect_status 64 "a misspelt long option is not taken as a prefix"

# the arguments after the command are the server's, options included
run_ferry run -- sh -c 'echo "$@"' sh --help -v
expect_status 0 "options after -- belong to the command"
is "$out" "--help -v" "and reach it unchanged"
run_ferry run echo a -c b
is "$out" "a -c b" "options after the command word belong to the command"
run_ferry -q run -v -- true
expect_status 0 "global options between run and --"
run_ferry --config="$FERRY_CONFIG" --database-url= version
expect_status 0 "--opt=value forms"

# stdout that cannot be written is an error, not a silent success
if [ -w /dev/full ]; then
	"$FERRY" version >/dev/full 2>"$TMP/.err"
	rc=$?
	expect_status 73 "ferry version to a full disk"
	"$FERRY" help >/dev/full 2>"$TMP/.err"
	rc=$?
	expect_status 73 "ferry help to a full disk"
else
	skip "ferry version to a full disk" "no /dev/full"
	skip "ferry help to a full disk" "no /dev/full"
fi
done_testing
