# bench/lib.sh: what every bench script sources (after setting BENCH_NAME).
#
# Environment (all optional):
#   FERRY          the binary under test (default: build/ferry)
#   FERRY_STATIC   the static binary, also timed where start-up matters
#                  (default: build/static/ferry when it is newer than src/;
#                  "none": not timed)
#   BENCH_QUICK=1  small sizes and few rounds (a smoke run, not for numbers)
#   BENCH_TMP      the scratch directory (default: a fresh /tmp/ferry-bench.*)
#   BENCH_RESULTS  where results go (default: bench/results)

set -eu
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
FERRY=${FERRY:-$ROOT/build/ferry}
RES=${BENCH_RESULTS:-$BENCH_DIR/results}
QUICK=${BENCH_QUICK:-0}
mkdir -p "$RES"

# ferry must read neither the host's /etc/ferry nor a DATABASE_URL
# from the caller's environment.
export FERRY_CONFIG=/dev/null
unset DATABASE_URL FERRY_DATABASE_URL FERRY_SNAPSHOT_DIR FERRY_SNAPSHOT_KEEP \
	FERRY_DATABASE_STATE_DIR FERRY_MIGRATIONS_DIR FERRY_LOG_LEVEL FERRY_LOG_FORMAT \
	PGHOST PGHOSTADDR PGPORT PGUSER PGPASSWORD PGDATABASE PGSERVICE 2>/dev/null || true

if [ -z "${BENCH_TMP:-}" ]; then
	BENCH_TMP=$(mktemp -d /tmp/ferry-bench.XXXXXX)
	_own_tmp=1
else
	mkdir -p "$BENCH_TMP"
	_own_tmp=0
fi
T=$BENCH_TMP
chmod 755 "$T"

_cleanups=
at_exit() { _cleanups="$* ; $_cleanups"; }
_bench_cleanup() {
	set +e   # every clean-up step runs, whatever the others do
	eval "$_cleanups"
	[ "$_own_tmp" = 1 ] && rm -rf "$T"
	return 0
}
trap _bench_cleanup EXIT
trap 'exit 130' INT TERM HUP

say() { printf 'bench: %s: %s\n' "$BENCH_NAME" "$*" >&2; }

# skip NAME REASON: the section NAME is not measured; BENCHMARKS.md says why.
skip() {
	say "skipped: $2"
	printf '_Not measured in this run: %s._\n' "$2" >"$RES/$1.md"
}

# q WORD: WORD as ONE shell word (for spec lines run through sh -c or shlex).
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# ab NAME < SPEC: runs bench/abtime.py on SPEC (stdin), results in
# $RES/NAME.*; paths under $T and $ROOT are shown as $T and . in the table.
ab() {
	_spec=$T/$1.spec
	cat >"$_spec"
	rm -f "$RES/$1".*
	python3 "$BENCH_DIR/abtime.py" "$_spec" "$RES/$1" >&2
	# shorter, stable command lines in the tables
	sed -i -e "s|$T/bin/static/ferry|build/static/ferry|g" -e "s|$T/bin/ferry|build/ferry|g" \
		-e "s|$T|\$T|g" -e "s|$ROOT/|./|g" "$RES/$1.md"
	if [ -n "${BENCH_MASK:-}" ]; then sed -i "s|$BENCH_MASK|:***@|g" "$RES/$1.md"; fi
}

# dbmate, as bench/peers.sh installs it (empty: not installed)
DBMATE=${BENCH_PEERS:-$ROOT/build/bench-peers}/node_modules/@dbmate/linux-x64/bin/dbmate
[ -x "$DBMATE" ] || DBMATE=$(command -v dbmate || true)

# free_mib DIR: free space in MiB
free_mib() { df -Pm "$1" | awk 'NR == 2 { print $4 }'; }

# human SIZE-IN-BYTES
human() {
	awk -v b="$1" 'BEGIN { if (b >= 1073741824) printf "%.2f GiB", b / 1073741824;
		else if (b >= 1048576) printf "%.1f MiB", b / 1048576;
		else printf "%.0f KiB", b / 1024 }'
}

# The static binary counts only when it is newer than every source file
# (another engineer may have changed src/ since it was built); run.sh
# decides once for all scripts (FERRY_STATIC=none: not timed).
if [ -z "${FERRY_STATIC:-}" ] && [ -x "$ROOT/build/static/ferry" ]; then
	if [ -z "$(find "$ROOT/src" -newer "$ROOT/build/static/ferry" -type f 2>/dev/null)" ]; then
		FERRY_STATIC=$ROOT/build/static/ferry
	fi
fi
[ "${FERRY_STATIC:-}" = none ] && FERRY_STATIC=
FERRY_STATIC=${FERRY_STATIC:-}

[ -x "$FERRY" ] || { echo "bench: $FERRY is missing: run make first" >&2; exit 1; }

# Time private copies: other people rebuild build/ while a benchmark runs.
mkdir -p "$T/bin/static"
cp "$FERRY" "$T/bin/ferry"
FERRY=$T/bin/ferry
if [ -n "$FERRY_STATIC" ]; then
	cp "$FERRY_STATIC" "$T/bin/static/ferry"
	FERRY_STATIC=$T/bin/static/ferry
fi
