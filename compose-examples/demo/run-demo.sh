#!/bin/sh
# make demo: three releases of a small notes app booted through ferry, as
# `docker compose pull && docker compose up -d` would boot them, on one data
# directory: first boot, an upgrade with a snapshot, and a broken release
# whose failed upgrade is restored.
ferry=${1:?usage: run-demo.sh FERRY}
here=$(cd "$(dirname "$0")" && pwd)
work=${DEMO_DIR:-$(pwd)/build/demo}
rm -rf "$work"
mkdir -p "$work/data"
export FERRY_CONFIG=/dev/null
export DATABASE_URL="sqlite://$work/data/app.db"

release() { # release N: the image of release N ships migrations 1..N
	rm -rf "$work/release-$1"
	mkdir -p "$work/release-$1"
	for f in "$here"/migrations/*.sql; do
		v=$(basename "$f" | cut -d_ -f1)
		if [ "$(expr "$v" + 0)" -le "$1" ]; then cp "$f" "$work/release-$1/"; fi
	done
}

boot() { # boot N: start release N the way its image's ENTRYPOINT would
	echo
	echo "=== release $1: ferry run -- server ==="
	release "$1"
	"$ferry" run --migrations "$work/release-$1" -- sh "$here/server.sh" "$work/data/app.db"
	echo "=== exit status $? ==="
}

boot 1
boot 2
boot 3
echo
echo "=== ferry status (release 3 image) ==="
"$ferry" status --migrations "$work/release-3"
echo
echo "=== back on release 2 (the operator pins the old tag again) ==="
"$ferry" run --migrations "$work/release-2" -- sh "$here/server.sh" "$work/data/app.db"
echo "=== exit status $? ==="
