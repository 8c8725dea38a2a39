#!/bin/sh
# bench/static.sh DIR: builds the static musl binary of the working tree
# privately, in DIR (a copy of the tree and of the library cache), and
# prints its path. run.sh uses it with BENCH_STATIC=1, so that the binary
# images ship is timed without touching build/static, which other people
# may be building at the same time. With the cache of build/static-deps
# this takes seconds; without it, .ci/build-static.sh builds the libraries
# from Debian's sources first (minutes; root the first time).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$1
mkdir -p "$dir/tree"
tar -C "$root" --exclude=./build --exclude=./.git --exclude=./bench/results -cf - . |
	tar -C "$dir/tree" -xf -
cache=${FERRY_STATIC_CACHE:-$root/build/static-deps}
if [ -d "$cache" ]; then
	cp -R "$cache" "$dir/static-deps"
fi
FERRY_STATIC_CACHE=$dir/static-deps sh "$dir/tree/.ci/build-static.sh" >"$dir/build.log" 2>&1 || {
	echo "bench: the static build failed; the end of $dir/build.log:" >&2
	tail -20 "$dir/build.log" >&2
	exit 1
}
echo "$dir/tree/build/static/ferry"
