#!/bin/sh
# The static binary as PID 1 of a root filesystem that holds nothing but
# ferry, the (static) demo server and its migrations, like a FROM scratch
# image: chroot inside a new PID and mount namespace, with /proc mounted as
# a container runtime does. It creates the demo database, serves /health on
# a loopback port (the namespace shares the host's network), stops on
# SIGTERM, and then a later release upgrades the database with a snapshot.
# Skipped when build/static/ferry has not been built.
. "$(dirname "$0")/lib.sh"

STATIC=${FERRY_STATIC:-$(cd "$TESTS_DIR/.." && pwd)/build/static/ferry}
STATIC_APP=$(dirname "$STATIC")/demo-app
DEMO=$TESTS_DIR/../compose-examples/demo

if [ ! -x "$STATIC" ] || [ ! -x "$STATIC_APP" ]; then
	skip "static binary as PID 1 in a bare root filesystem" "no $STATIC or $STATIC_APP (run make static)"
	done_testing
	exit
fi
if [ "$(id -u)" != 0 ] || ! unshare --pid --fork --mount true 2>/dev/null; then
	skip "static binary as PID 1 in a bare root filesystem" "needs root and unshare"
	done_testing
	exit
fi

UNSHARE=$(command -v unshare)
CHROOT=$(command -v chroot)
MOUNT=$(command -v mount)
root=$TMP/root
mkdir -p "$root/app/migrations" "$root/data" "$root/proc"
cp "$STATIC" "$root/ferry"
cp "$STATIC_APP" "$root/app/demo-app"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port

# release N: the image of release N ships migrations 1..N
release() {
	rm -f "$root/app/migrations"/*
	for f in "$DEMO"/migrations/*.sql; do
		v=$(basename "$f" | cut -d_ -f1)
		if [ "$(expr "$v" + 0)" -le "$1" ]; then cp "$f" "$root/app/migrations/"; fi
	done
}

# boot N: the container of release N starts. The host's sh mounts /proc
# in the new namespace and execs chroot, which execs /ferry: PID 1 is
# ferry, with only the environment an image would set (env -i).
boot() {
	start_bg env -i DATABASE_URL=sqlite:///data/app.db PATH=/app \
		"$UNSHARE" --pid --fork --mount /bin/sh -c \
		'r=$1 m=$2 c=$3; shift 3; "$m" -t proc proc "$r/proc" && exec "$c" "$r" "$@"' \
		sh "$root" "$MOUNT" "$CHROOT" \
		/ferry run --migrations /app/migrations -- \
		/app/demo-app serve --db /data/app.db --schema "$1" --listen "127.0.0.1:$port"
}

healthy() { "$STATIC_APP" get "$url/health" >/dev/null 2>&1; }
server_gone() { exited "$bgpid"; }

# ---- release 1: first boot ---------------------------------------------
release 1
boot 1
if wait_for healthy; then pass "release 1 serves /health from the bare root"
else fail "release 1 serves /health from the bare root" "$(cat "$TMP/.err")"; fi
is "$("$STATIC_APP" get "$url/health")" "ok" "/health says ok"
is "$("$STATIC_APP" get "$url/")" "#1 welcome to the ferry demo" "/ lists the notes of release 1"

ferry_pid=$(child_of "$bgpid") || ferry_pid=$bgpid
is "$(sed -n 's/^NSpid:[[:space:]]*[0-9]*[[:space:]]*//p' "/proc/$ferry_pid/status")" 1 \
	"ferry is PID 1 in its namespace"
is "$(readlink "/proc/$ferry_pid/root")" "$root" "ferry runs chrooted in the bare root"
is "$(cat "/proc/$ferry_pid/comm")" ferry "PID 1 is ferry itself"
app_pid=$(child_of "$ferry_pid") || app_pid=none
is "$(cat "/proc/$app_pid/comm" 2>/dev/null)" demo-app "the server is ferry's child"
"$STATIC_APP" post "$url/notes" "first line
second line" >/dev/null
kill -TERM "$ferry_pid"
finish_bg
expect_status 0 "SIGTERM to PID 1 stops the server, ferry exits with its status"
like "$err" 'database created at version 1' "release 1 created the database"
check "the database is in the data volume" test -f "$root/data/app.db"

# ---- release 3: an upgrade from 1 to 3 -----------------------------------
release 3
boot 3
if wait_for healthy; then pass "release 3 serves /health after the upgrade"
else fail "release 3 serves /health after the upgrade" "$(cat "$TMP/.err")"; fi
is "$("$STATIC_APP" get "$url/")" "#1 [todo] welcome to the ferry demo
#2 [todo] first line
    second line" "/ shows release 3's titles and the migrated tags (inbox -> todo)"
ferry_pid=$(child_of "$bgpid") || ferry_pid=$bgpid
kill -TERM "$ferry_pid"
finish_bg
expect_status 0 "release 3 stops cleanly"
like "$err" 'database has 1, image expects 3' "the log says what the upgrade does"
like "$err" 'snapshot written: /data/app.db.pre-upgrade' "snapshot written in the volume"
like "$err" 'database upgraded from 1 to 3' "upgraded from 1 to 3"
check "the snapshot is there" test -f "$root/data/app.db.pre-upgrade"
is "$(sqlite3 "$root/data/app.db" 'SELECT group_concat(version) FROM ferry_migrations')" "1,2,3" \
	"the ledger has 1, 2, 3"

# ---- a server that does not exist: 127 from PID 1 ---------------------------
start_bg env -i DATABASE_URL=sqlite:///data/app.db \
	"$UNSHARE" --pid --fork --mount "$CHROOT" "$root" \
	/ferry run --migrations /app/migrations -- /app/no-such-server
finish_bg
expect_status 127 "a missing server command gives 127 in the bare root"
like "$err" "/app/no-such-server" "the log names the missing command"

done_testing
