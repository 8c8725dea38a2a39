#!/bin/sh
# bench/peers.sh: installs the peers the benchmarks time ferry against,
# so that `make bench` runs from a clean Debian 12 machine. run.sh calls
# it first; what is there already is left alone.
#   tini, tini-static   Debian's tini package      (apt-get, as root)
#   dumb-init           Debian's dumb-init package (apt-get, as root)
#   mkfs.xfs            Debian's xfsprogs, for the reflink loop mount
#   sqlite3, zstd       Debian's packages of the same names
#   dbmate 2.36.0       npm's dbmate package, which ships the binary, in
#                       BENCH_PEERS (default build/bench-peers)
# Without root (apt) or npm, the sections that need a peer say "not
# measured" and why.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
peers=${BENCH_PEERS:-$root/build/bench-peers}
DBMATE_VERSION=2.36.0

missing=
command -v tini >/dev/null && command -v tini-static >/dev/null || missing="$missing tini"
command -v dumb-init >/dev/null || missing="$missing dumb-init"
command -v mkfs.xfs >/dev/null || missing="$missing xfsprogs"
command -v sqlite3 >/dev/null || missing="$missing sqlite3"
command -v zstd >/dev/null || missing="$missing zstd"
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "bench: installing$missing (apt-get)" >&2
		apt-get install -y -q $missing >"$peers.apt.log" 2>&1 ||
			{ apt-get update -q >>"$peers.apt.log" 2>&1 &&
				apt-get install -y -q $missing >>"$peers.apt.log" 2>&1; } ||
			echo "bench: apt-get could not install$missing (see $peers.apt.log)" >&2
	else
		echo "bench: not installed:$missing (apt-get install$missing, as root)" >&2
	fi
fi

dbmate=$peers/node_modules/@dbmate/linux-x64/bin/dbmate
if [ ! -x "$dbmate" ] || ! "$dbmate" --version 2>/dev/null | grep -q "$DBMATE_VERSION"; then
	if command -v npm >/dev/null; then
		mkdir -p "$peers"
		echo "bench: installing dbmate $DBMATE_VERSION (npm) into $peers" >&2
		npm install --no-audit --no-fund --prefix "$peers" "dbmate@$DBMATE_VERSION" \
			>"$peers/npm.log" 2>&1 || echo "bench: npm could not install dbmate (see $peers/npm.log)" >&2
	else
		echo "bench: dbmate not installed: npm is missing (apt-get install npm)" >&2
	fi
fi
exit 0
