#!/bin/sh
# The demo application (compose-examples/demo/app.c) under `ferry run`:
# /health says ok only at the schema its release expects, / lists the
# notes, POST /notes adds one, SIGTERM stops it with status 0; and the
# broken release 3 is refused and restored (exit 70) while the fixed one
# upgrades. DEMO_APP names a built demo-app; otherwise it is compiled here.
. "$(dirname "$0")/lib.sh"

DEMO=$TESTS_DIR/../compose-examples/demo
if [ -n "${DEMO_APP:-}" ]; then
	app=$DEMO_APP
else
	app=$TMP/demo-app
	if ! ${CC:-cc} -std=c11 -Wall -Wextra -Werror -O1 -o "$app" "$DEMO/app.c" -lsqlite3 \
		2>"$TMP/cc.err"; then
		fail "the demo app compiles" "$(cat "$TMP/cc.err")"
		done_testing
		exit
	fi
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
export DATABASE_URL=sqlite://$TMP/data/app.db
mkdir -p "$TMP/data"

# image N [broken]: the migrations release N ships
image() {
	rm -rf "$TMP/release"
	mkdir -p "$TMP/release"
	for f in "$DEMO"/migrations/*.sql; do
		v=$(basename "$f" | cut -d_ -f1)
		if [ "$(expr "$v" + 0)" -le "$1" ]; then cp "$f" "$TMP/release/"; fi
	done
	if [ -n "${2-}" ]; then cp "$DEMO"/broken/*.sql "$TMP/release/"; fi
}

# start N [SCHEMA]: ferry run -- demo-app serve for release N (whose server
# expects SCHEMA, default N)
start() {
	start_bg "$FERRY" run --migrations "$TMP/release" -- \
		"$app" serve --db "$TMP/data/app.db" --schema "${2:-$1}" --listen "127.0.0.1:$port"
}
healthy() { "$app" get "$url/health" >/dev/null 2>&1; }
answers() { [ -n "$("$app" get "$url/health" 2>/dev/null)" ]; } # any HTTP answer

stop() { # SIGTERM to ferry, which forwards it; the server exits 0
	kill -TERM "$bgpid"
	finish_bg
	expect_status 0 "$1"
}

image 1
start 1
if wait_for healthy; then pass "release 1 is healthy"; else fail "release 1 is healthy" "$(cat "$TMP/.err")"; fi
is "$("$app" get "$url/health")" ok "/health: ok"
is "$("$app" get "$url/")" "#1 welcome to the ferry demo" "/ lists the first note"
run_cmd "$app" post "$url/notes" "groceries
milk"
expect_status 0 "POST /notes adds a note"
like "$out" '^added #2$' "the answer names the new note"
run_cmd "$app" post "$url/notes" ""
expect_status 1 "an empty note is refused"
like "$out" 'needs a text' "with the reason"
run_cmd "$app" get "$url/nothing-here"
expect_status 1 "an unknown path gives a failure to the client"
like "$out" 'Not Found' "404 Not Found"
stop "release 1 stops on SIGTERM through ferry"
like "$err" 'demo-app: stopped' "the server said it stopped"

# A server of release 2 on a database still at 1 (someone skipped ferry):
# unhealthy, with the reason.
image 1
start 1 2
if wait_for answers; then pass "the release 2 server runs"; else fail "the release 2 server runs" "$(cat "$TMP/.err")"; fi
run_cmd "$app" get "$url/health"
expect_status 1 "/health fails at the wrong schema"
like "$out" 'database schema 1, this release needs 2' "/health says why"
stop "the unhealthy server stops"

image 3 broken
start 3
finish_bg
expect_status 70 "the broken release 3 fails and is restored"
like "$err" 'no such column: headline' "the log says what failed"
like "$err" 'still at version 1' "and that the database is back at 1"

image 3
start 3
if wait_for healthy; then pass "the fixed release 3 upgrades and is healthy"
else fail "the fixed release 3 upgrades and is healthy" "$(cat "$TMP/.err")"; fi
is "$("$app" get "$url/")" "#1 [todo] welcome to the ferry demo
#2 [todo] groceries
    milk" "release 3: titles, and every note migrated from 'inbox' to 'todo'"
is "$(sqlite3 "$TMP/data/app.db" "SELECT title FROM notes WHERE id = 2")" groceries \
	"the title is the first line of the note"
stop "release 3 stops"

done_testing
