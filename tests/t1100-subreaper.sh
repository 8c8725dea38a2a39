#!/bin/sh
# ferry run directly, not as PID 1 (docker --init, a shell, systemd): the
# same behaviours, with orphans reaped because ferry is a child subreaper.
. "$(dirname "$0")/lib.sh"
MODE=direct
. "$TESTS_DIR/helpers/supervisor-tests.sh"

sup run -- grep -E '^(Pid|PPid):' /proc/self/status
ppid=$(echo "$out" | sed -n 's/^PPid:[[:space:]]*//p')
check "the server's parent is not PID 1 here ($ppid)" [ -n "$ppid" -a "$ppid" != 1 ]
done_testing
