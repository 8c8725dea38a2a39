#!/bin/sh
# make demo: the releases of the notes app (app.c) booted through ferry on
# one data directory, the way `docker compose pull && docker compose up -d`
# would boot their images: release 1's first boot creates the database,
# release 2 upgrades it with a snapshot, a broken release 3 fails and is
# restored (exit 70), `ferry status` tells what happened, and the fixed
# release 3 upgrades. Then release 4 migrates fine but its server never
# answers /health with 200: the health gate ([health] url) stops it and
# restores the database to version 3 (exit 70), and booting the same image
# again is refused by the crash-loop guard (exit 75). Last, `ferry backup`
# archives the database and data/uploads, both are deleted, and `ferry
# restore` (verify, then replace) brings them back for release 3 to boot
# with every note. Each server is asked
# for /health and / on a loopback port, then stopped with SIGTERM. Exits
# non-zero when the story goes wrong.
#
#   run-demo.sh FERRY DEMO_APP      (DEMO_DIR: the work dir, default build/demo)
set -eu
ferry=${1:?usage: run-demo.sh FERRY DEMO_APP}
app=${2:?usage: run-demo.sh FERRY DEMO_APP}
here=$(cd "$(dirname "$0")" && pwd)
work=${DEMO_DIR:-$(pwd)/build/demo}
rm -rf "$work"
mkdir -p "$work/data"
export FERRY_CONFIG=/dev/null
export DATABASE_URL="sqlite://$work/data/app.db"
# a free loopback port (nothing here listens beyond 127.0.0.1)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
# the health gate: an upgrade is kept once /health answers 200
export FERRY_HEALTH_URL=$url/health FERRY_HEALTH_INTERVAL_SECONDS=1 \
	FERRY_HEALTH_TIMEOUT_SECONDS=5

# image N [broken]: the migrations directory the image of release N ships
image() {
	dir=$work/release-$1${2:+-$2}
	rm -rf "$dir"
	mkdir -p "$dir"
	for f in "$here"/migrations/*.sql; do
		v=$(basename "$f" | cut -d_ -f1)
		if [ "$(expr "$v" + 0)" -le "$1" ]; then cp "$f" "$dir/"; fi
	done
	if [ "${2-}" = broken ]; then cp "$here"/broken/*.sql "$dir/"; fi
	if [ "${2-}" = unhealthy ]; then cp "$here"/unhealthy/*.sql "$dir/"; fi
	echo "$dir"
}

# boot N EXPECTED-STATUS [broken]: starts release N the way its image's
# ENTRYPOINT would (ferry run -- the server); when the server comes up,
# shows /health and /, adds a note, and stops it.
boot() {
	echo
	echo "=== release $1${3:+ ($3)}: ferry run -- demo-app serve --schema $1 ==="
	dir=$(image "$1" "${3-}")
	schema=$1
	# the unhealthy release's server was built for a schema that is not there
	if [ "${3-}" = unhealthy ]; then schema=$(($1 + 1)); fi
	"$ferry" run --migrations "$dir" -- \
		"$app" serve --db "$work/data/app.db" --schema "$schema" --listen "127.0.0.1:$port" &
	pid=$!
	i=0
	while kill -0 "$pid" 2>/dev/null && ! "$app" get "$url/health" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ "$i" -ge 200 ]; then
			kill -KILL "$pid"
			echo "run-demo: the server did not answer in 10 s" >&2
			exit 1
		fi
		sleep 0.05
	done
	# an upgrade is kept once the health gate saw /health: wait for that
	i=0
	while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ] &&
		! "$ferry" status --migrations "$dir" 2>/dev/null | grep -q '^journal: none'; do
		i=$((i + 1))
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		printf 'GET /health: %s\n' "$("$app" get "$url/health")"
		echo "GET /:"
		"$app" get "$url/"
		"$app" post "$url/notes" "note from release $1
written while release $1 was running" >/dev/null
		kill -TERM "$pid"
	fi
	rc=0
	wait "$pid" || rc=$?
	echo "=== exit status $rc ==="
	if [ "$rc" != "$2" ]; then
		echo "run-demo: release $1 exited $rc, expected $2" >&2
		exit 1
	fi
}

boot 1 0
boot 2 0
boot 3 70 broken
echo
echo "=== ferry status (the broken release 3's image) ==="
"$ferry" status --migrations "$work/release-3-broken" || :
boot 3 0
boot 4 70 unhealthy
echo
echo "=== the same unhealthy image again: the crash-loop guard ==="
rc=0
"$ferry" run --migrations "$work/release-4-unhealthy" -- "$app" serve \
	--db "$work/data/app.db" --schema 5 --listen "127.0.0.1:$port" || rc=$?
echo "=== exit status $rc ==="
if [ "$rc" != 75 ]; then
	echo "run-demo: the unhealthy release booted again exited $rc, expected 75" >&2
	exit 1
fi

# One archive of the database and the uploads, a lost volume, a restore.
mkdir -p "$work/data/uploads/2026"
echo "an avatar" >"$work/data/uploads/2026/avatar.txt"
export FERRY_BACKUP_PATHS="$work/data/uploads"
echo
echo "=== ferry backup: the database at version 3 and data/uploads ==="
"$ferry" backup -o "$work/app.ferry" --migrations "$work/release-3"
echo
echo "=== the volume is lost: app.db and uploads deleted ==="
rm -rf "$work/data/app.db" "$work/data/uploads"
mkdir -p "$work/data/uploads"
echo "=== ferry restore --mode verify, then --mode replace ==="
"$ferry" restore "$work/app.ferry" --mode verify --migrations "$work/release-3"
"$ferry" restore "$work/app.ferry" --mode replace --migrations "$work/release-3"
if [ "$(cat "$work/data/uploads/2026/avatar.txt")" != "an avatar" ]; then
	echo "run-demo: the restored uploads are not what was backed up" >&2
	exit 1
fi
boot 3 0
echo
echo "Done. The data directory is $work/data: app.db, its pre-upgrade snapshot, .ferry/;"
echo "the archive is $work/app.ferry"
