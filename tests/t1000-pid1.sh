#!/bin/sh
# ferry as PID 1 of a new PID namespace (as in a container): exit statuses,
# signal forwarding, grace period, zombies, exec, inheritance.
. "$(dirname "$0")/lib.sh"
MODE=pidns
. "$TESTS_DIR/helpers/supervisor-tests.sh"

# only PID 1 sees this: orphans of the whole namespace come to ferry
sup run -- sh -c 'echo $PPID'
is "$out" 1 "the server's parent is ferry, PID 1"
done_testing
