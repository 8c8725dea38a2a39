# tests/lib.sh: the helpers every test script sources. TAP on stdout
# (prove reads it); each script gets a fresh temp dir, removed at the end.

set -u
FERRY=${FERRY:-$(cd "$(dirname "$0")/.." && pwd)/build/ferry}
TESTS_DIR=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d /tmp/ferry-test.XXXXXX)
chmod 755 "$TMP"
export FERRY_CONFIG=$TMP/none.ini   # never read the host's /etc/ferry
: > "$FERRY_CONFIG"
unset DATABASE_URL
_n=0
_failed=0
_cleanups=

cleanup() {
	eval "$_cleanups"
	rm -rf "$TMP"
}
trap cleanup EXIT
at_exit() { _cleanups="$_cleanups $*;"; }

pass() { _n=$((_n + 1)); echo "ok $_n - $1"; }
fail() {
	_n=$((_n + 1)); _failed=$((_failed + 1))
	echo "not ok $_n - $1"
	shift
	for line in "$@"; do echo "#   $line"; done
}

# ok CONDITION-COMMAND... -- not used; use: check "desc" test-expression
check() { desc=$1; shift; if "$@"; then pass "$desc"; else fail "$desc" "failed: $*"; fi; }

is() { # is GOT EXPECTED DESC
	if [ "$1" = "$2" ]; then pass "$3"; else fail "$3" "got:      '$1'" "expected: '$2'"; fi
}

like() { # like TEXT GREP-E-PATTERN DESC
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then pass "$3"
	else fail "$3" "no match for /$2/ in:" "$(printf '%s' "$1" | head -20)"; fi
}

unlike() { # unlike TEXT GREP-E-PATTERN DESC
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then fail "$3" "unexpected /$2/ in:" "$(printf '%s' "$1" | head -20)"
	else pass "$3"; fi
}

# run_ferry ARGS...: runs the binary, stdout in $out, stderr in $err, status in $rc.
# A crash of ferry itself (signal, sanitizer report) is reported as a failure.
run_ferry() {
	"$FERRY" "$@" >"$TMP/.out" 2>"$TMP/.err"
	rc=$?
	out=$(cat "$TMP/.out"); err=$(cat "$TMP/.err")
	_check_crash
}

# in_pidns ARGS...: ferry as PID 1 of a new PID namespace.
in_pidns() {
	unshare --pid --fork --mount-proc "$FERRY" "$@" >"$TMP/.out" 2>"$TMP/.err"
	rc=$?
	out=$(cat "$TMP/.out"); err=$(cat "$TMP/.err")
	_check_crash
}

_check_crash() {
	if grep -Eq 'AddressSanitizer|runtime error:|LeakSanitizer' "$TMP/.err"; then
		fail "ferry ran without a sanitizer report" "$(head -30 "$TMP/.err")"
	fi
}

# expect_status N DESC: $rc must be N.
expect_status() {
	if [ "$rc" = "$1" ]; then pass "$2 (exit $1)"
	else fail "$2" "exit status $rc, expected $1" "stderr: $(head -c 2000 "$TMP/.err")"; fi
}

# wait_for CMD...: polls up to 10 s for CMD to succeed (a readiness wait,
# never a timing assertion).
wait_for() {
	_i=0
	while ! "$@" 2>/dev/null; do
		_i=$((_i + 1)); [ $_i -ge 200 ] && return 1
		sleep 0.05
	done
}

done_testing() {
	echo "1..$_n"
	[ "$_n" -gt 0 ] || { echo "# no test ran"; exit 1; }
	[ "$_failed" -eq 0 ]
}

# ---- helpers added for the supervisor tests ----

# skip DESC REASON: a test that cannot run here, reported as a TAP skip.
skip() { _n=$((_n + 1)); echo "ok $_n - $1 # skip $2"; }

# run_cmd CMD...: like run_ferry, for any command line (wrappers, unshare).
run_cmd() {
	"$@" >"$TMP/.out" 2>"$TMP/.err"
	rc=$?
	out=$(cat "$TMP/.out"); err=$(cat "$TMP/.err")
	_check_crash
}

# start_bg CMD...: starts CMD in the background with SIGINT and SIGQUIT at
# their defaults (a non-interactive shell ignores them for background jobs,
# a container runtime does not). Its pid is $bgpid; finish_bg collects it.
start_bg() {
	# emptied here, not only by the background redirection, which runs in
	# the child: a wait_for right after must not read the last run's lines
	: >"$TMP/.out"
	: >"$TMP/.err"
	perl -e '$SIG{INT} = $SIG{QUIT} = "DEFAULT"; exec {$ARGV[0]} @ARGV or die "exec $ARGV[0]: $!\n"' \
		"$@" >"$TMP/.out" 2>"$TMP/.err" &
	bgpid=$!
	at_exit "kill_tree $bgpid"
}

# finish_bg: waits (at most 10 s) for the start_bg command, then sets
# $rc, $out and $err like run_ferry. A command that does not exit is killed
# and reported as a failure.
finish_bg() {
	if ! wait_for exited "$bgpid"; then
		fail "background command exited" "pid $bgpid still running; killed"
		kill_tree "$bgpid"
	fi
	wait "$bgpid"
	rc=$?
	out=$(cat "$TMP/.out"); err=$(cat "$TMP/.err")
	_check_crash
}

# exited PID: PID is gone or a zombie.
exited() {
	[ ! -e "/proc/$1/stat" ] || [ "$(proc_state "$1")" = Z ]
}

# proc_state PID: the one-letter state of PID (R, S, T, Z...), empty if gone.
proc_state() {
	sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null
}

# child_of PID: the pid of PID's (first) child; fails when it has none.
child_of() {
	_c=$(pgrep -P "$1" | head -1)
	[ -n "$_c" ] && echo "$_c"
}

# kill_tree PID: SIGKILL to PID and all its descendants (cleanup only).
kill_tree() {
	for _k in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$_k"; done
	kill -KILL "$1" 2>/dev/null
	return 0
}

# has_line FILE LINE: FILE exists and has LINE as one of its lines.
has_line() { [ -f "$1" ] && grep -qxF -- "$2" "$1"; }

# sigrec FILE: the helper that records the signals it receives.
SIGREC=$TESTS_DIR/helpers/sigrec

# has_child PID: PID has at least one child (quiet, for wait_for).
has_child() { pgrep -P "$1" >/dev/null; }
