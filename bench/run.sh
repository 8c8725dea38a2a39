#!/bin/sh
# bench/run.sh: every benchmark, then BENCHMARKS.md from bench/BENCHMARKS.md.in.
# `make bench` runs it after building build/ferry.
#
#   BENCH_QUICK=1 sh bench/run.sh     small sizes, few rounds (a smoke run)
#   BENCH_ONLY="pid1 sqlite"          run only these scripts (pid1 sqlite speed pg archive scale)
#   BENCH_STATIC=1                    also time a static binary built from this tree
#                                     (bench/static.sh; otherwise build/static/ferry
#                                     is timed only when it is newer than src/)
#   BENCH_NO_WRITE=1                  leave BENCHMARKS.md alone (results only)
#   BENCH_RENDER_ONLY=1               run nothing: BENCHMARKS.md again from the
#                                     results of the last run (after editing the
#                                     template); writes it when BENCH_WRITE=1
#   BENCH_WRITE=1                     rewrite BENCHMARKS.md even after a quick or
#                                     partial run (by default only a full run does)
#
# Results: bench/results/ (gitignored): NAME.md (the table), NAME.summary.tsv,
# NAME.samples.tsv (every timed run), machine.md.
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
RES=${BENCH_RESULTS:-$BENCH_DIR/results}
export BENCH_RESULTS="$RES"
FERRY=${FERRY:-$ROOT/build/ferry}
export FERRY
mkdir -p "$RES"
render_only=${BENCH_RENDER_ONLY:-0}
[ "$render_only" = 1 ] || rm -f "$RES"/*.md "$RES"/*.tsv "$RES"/*.stderr "$RES"/run-*

[ -x "$FERRY" ] || { echo "bench: $FERRY is missing: run make first" >&2; exit 1; }

# The binaries under test are copied once, here: other people rebuild
# (or make clean) build/ while the benchmarks run.
bindir=$(mktemp -d /tmp/ferry-bench-bin.XXXXXX)
trap 'rm -rf "$bindir"' EXIT
trap 'exit 130' INT TERM HUP
cp "$FERRY" "$bindir/ferry"
FERRY=$bindir/ferry
if [ -z "${FERRY_STATIC:-}" ] && [ "${BENCH_STATIC:-0}" != 1 ] && [ -x "$ROOT/build/static/ferry" ] &&
	[ -z "$(find "$ROOT/src" -newer "$ROOT/build/static/ferry" -type f)" ]; then
	FERRY_STATIC=$ROOT/build/static/ferry
	static_desc="timed: build/static/ferry (newer than src/)"
fi
# BENCH_STATIC=1: time a static binary built from this tree, privately
if [ "${BENCH_STATIC:-0}" = 1 ] && [ -z "${FERRY_STATIC:-}" ] && [ "$render_only" != 1 ]; then
	echo "bench: building the static binary in $bindir/static" >&2
	FERRY_STATIC=$(sh "$BENCH_DIR/static.sh" "$bindir/static") || exit 1
	static_desc="timed: built from this tree by bench/static.sh (BENCH_STATIC=1)"
fi
if [ -n "${FERRY_STATIC:-}" ]; then
	mkdir -p "$bindir/s"
	cp "$FERRY_STATIC" "$bindir/s/ferry"
	static_desc=${static_desc:-"timed: $FERRY_STATIC"}
	FERRY_STATIC=$bindir/s/ferry
	export FERRY_STATIC
else
	static_desc="not timed (build/static/ferry absent or older than src/; BENCH_STATIC=1 builds one)"
	# and lib.sh must not pick up a build/static/ferry that appears meanwhile
	export FERRY_STATIC=none
fi

failed=
if [ "$render_only" != 1 ]; then
# ---- the peers (installed when missing) ------------------------------------------
sh "$BENCH_DIR/peers.sh"

# ---- the machine ------------------------------------------------------------------
ver() { "$@" 2>&1 | head -1; }
{
	echo "| | |"
	echo "|---|---|"
	echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
	echo "| CPU | $(nproc) × $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1) |"
	echo "| memory | $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) |"
	echo "| kernel | $(uname -sr) |"
	echo "| OS | $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME") |"
	echo "| filesystem of /tmp | $(findmnt -n -o FSTYPE -T /tmp 2>/dev/null || echo '?') ($(df -Ph /tmp | awk 'NR == 2 { print $4 }') free at the start) |"
	echo "| load average at the start | $(cut -d' ' -f1-3 /proc/loadavg) |"
	rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
	dirty=$(git -C "$ROOT" status --porcelain -- src 2>/dev/null | wc -l)
	[ "$dirty" -gt 0 ] && rev="$rev, with $dirty uncommitted file(s) in src/"
	echo "| ferry | $("$FERRY" version 2>&1 | head -1) (commit $rev) |"
	echo "| static binary | $static_desc |"
	echo "| peers | $(ver tini --version), $(ver dumb-init --version | tr -d '\n'), sqlite3 $(sqlite3 --version 2>/dev/null | cut -d' ' -f1), $(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1 | sed 's/^./PostgreSQL &/'), $(ver zstd --version | sed 's/ \*\*\*//g; s/\*\*\* //; s/, by.*//'), dbmate $(ver "${BENCH_PEERS:-$ROOT/build/bench-peers}/node_modules/@dbmate/linux-x64/bin/dbmate" --version | sed 's/.*version //') |"
	echo "| mode | $([ "${BENCH_QUICK:-0}" = 1 ] && echo 'BENCH_QUICK=1 (small sizes, few rounds: not for comparison)' || echo full) |"
} >"$RES/machine.md"

# ---- the benchmarks -----------------------------------------------------------------
t0=$(date +%s)
for s in ${BENCH_ONLY:-pid1 sqlite speed pg archive scale}; do
	echo "bench: === $s" >&2
	# the output also goes to results/run-NAME.log (a failure's explanation)
	{ sh "$BENCH_DIR/$s.sh" 2>&1; echo $? >"$RES/run-$s.rc"; } | tee "$RES/run-$s.log" >&2
	if [ "$(cat "$RES/run-$s.rc")" != 0 ]; then
		failed="$failed $s"
		echo "bench: $s FAILED (see above)" >&2
		for f in $(sed -n 's/^@@\([a-z0-9-]*\)@@$/\1/p' "$BENCH_DIR/BENCHMARKS.md.in"); do
			case $f in "$s"|"$s"-*)
				[ -s "$RES/$f.md" ] ||
					echo "_Failed in this run: \`make bench\` printed why._" >"$RES/$f.md" ;;
			esac
		done
	fi
done
echo "| total time of make bench | $(( ($(date +%s) - t0) / 60 )) min $(( ($(date +%s) - t0) % 60 )) s |" >>"$RES/machine.md"
fi

# ---- BENCHMARKS.md ------------------------------------------------------------------
python3 "$BENCH_DIR/summary.py" "$RES" >"$RES/summary.md"
out=$RES/BENCHMARKS.md
awk -v res="$RES" '
/^@@[a-z0-9-]+@@$/ {
	name = substr($0, 3, length($0) - 4)
	file = res "/" name ".md"
	n = 0
	while ((getline line < file) > 0) { print line; n++ }
	close(file)
	if (n == 0) print "_Not measured in this run._"
	next
}
{ print }' "$BENCH_DIR/BENCHMARKS.md.in" >"$out"
# a quick or partial run does not replace the committed numbers
write=1
[ "${BENCH_QUICK:-0}" = 1 ] && write=0
[ -n "${BENCH_ONLY:-}" ] && write=0
[ "$render_only" = 1 ] && write=0
[ "${BENCH_WRITE:-0}" = 1 ] && write=1
[ "${BENCH_NO_WRITE:-0}" = 1 ] && write=0
if [ $write = 1 ]; then
	cp "$out" "$ROOT/BENCHMARKS.md"
	echo "bench: wrote BENCHMARKS.md" >&2
else
	echo "bench: results in $RES; BENCHMARKS.md left alone (the new text is $out; BENCH_WRITE=1 writes it)" >&2
fi
if [ -n "$failed" ]; then
	echo "bench: failed:$failed" >&2
	exit 1
fi
