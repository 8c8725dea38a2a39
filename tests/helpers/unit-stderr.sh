#!/bin/sh
# unit-stderr.sh PROGRAM: runs a C unit-test program (which prints its own
# TAP) with its stderr kept aside. The refusals under test print ferry's
# error messages there on purpose; shown raw in prove's output they read
# like failures. They become TAP comments, labelled as expected ("prove -v"
# shows them); when the program fails, its stderr is shown as it came.
prog=$1
err=$(mktemp /tmp/ferry-unit-stderr.XXXXXX) || exit 1
trap 'rm -f "$err"' EXIT
"$prog" 2>"$err"
rc=$?
if [ "$rc" -eq 0 ]; then
	[ -s "$err" ] && echo "# expected stderr of the refusals under test ($(wc -l <"$err") lines):"
	sed 's/^/#   (expected) /' "$err"
else
	echo "# $(basename "$prog") exited with status $rc; its stderr follows on stderr" >&2
	cat "$err" >&2
fi
exit "$rc"
