#!/bin/sh
# ferry status on SQLite, the history: one row per migration (shipped, or
# in the ledger only) with its state (applied, pending, dirty, changed,
# unknown, above-target), applied_at and duration; the journal, every
# snapshot kept, the last failed upgrade; --json in the shape README.md
# documents (checked by tests/helpers/status-shape.py); --exit-code 0 when
# up to date and clean, 1 for each way of not being so.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
make_std_migrations
SHAPE=$TESTS_DIR/helpers/status-shape.py

# json EXPR: the Python expression EXPR on the JSON object in $out (as j)
json() {
	printf '%s\n' "$out" | python3 -c '
import json, sys
try:
    j = json.loads(sys.stdin.read())
except Exception as e:
    print("invalid JSON: %s" % e); sys.exit(0)
try:
    print(eval(sys.argv[1]))
except Exception as e:
    print("%s: %s" % (type(e).__name__, e))' "$1"
}
# shape DESC: $out is a status --json object of the documented shape
shape() { is "$(printf '%s\n' "$out" | python3 "$SHAPE")" ok "$1: the documented shape"; }
# table: the history table of a text $out (header and rows)
table() { printf '%s\n' "$out" | sed -n '/^VERSION /,/^$/p' | sed '/^$/d'; }
# fixed_times DB: applied_at 2024-01-01T00:00:0<version>Z, duration <version>*11 ms
fixed_times() {
	q "$1" "UPDATE ferry_migrations SET applied_at = '2024-01-01T00:00:0' || version || 'Z',
		duration_ms = version * 11"
}

# ---- applied and pending --------------------------------------------------------
v1_db pend
fixed_times "$DB"
fy "$DB" "$TMP/m3" status
expect_status 0 "status without --exit-code: 0 with migrations pending"
is "$(table)" "VERSION  NAME        STATE    APPLIED AT            DURATION
1        0001_users  applied  2024-01-01T00:00:01Z  11 ms
2        0002_email  pending  -                     -
3        0003_posts  pending  -                     -" "a row per migration: version, name, state, applied_at, duration"
like "$out" "^pending: 2 \(0002_email, 0003_posts\)$" "the pending line is still there"
like "$out" "^dirty: 0$" "the dirty line is still there"
like "$out" "^journal: none$" "journal: none"
like "$out" "^snapshot: none$" "snapshot: none"
like "$out" "^failed upgrade: none$" "failed upgrade: none"
fy "$DB" "$TMP/m3" status --exit-code
expect_status 1 "--exit-code: pending migrations"
fy "$DB" "$TMP/m3" status --json
expect_status 0 "status --json"
shape "pending"
is "$(json '[(m["version"], m["name"], m["state"], m["applied_at"], m["duration_ms"]) for m in j["migrations"]]')" \
	"[(1, '0001_users', 'applied', '2024-01-01T00:00:01Z', 11), (2, '0002_email', 'pending', None, None), (3, '0003_posts', 'pending', None, None)]" \
	"--json: migrations, with null applied_at and duration_ms for the pending ones"
is "$(json '(j["snapshots"], j["failed_upgrade"], j["snapshot"])')" "([], None, None)" \
	"--json: no snapshots, no failed upgrade"
fy "$DB" "$TMP/m3" status --json --exit-code
expect_status 1 "--json --exit-code: pending"
shape "--json --exit-code"

# ---- all applied: the ledger's own times ----------------------------------------
fy "$DB" "$TMP/m3" migrate
expect_status 0 "upgrade 1 -> 3"
fy "$DB" "$TMP/m3" status --exit-code
expect_status 0 "--exit-code: up to date"
at2=$(q "$DB" "SELECT applied_at FROM ferry_migrations WHERE version = 2")
ms3=$(q "$DB" "SELECT duration_ms FROM ferry_migrations WHERE version = 3")
like "$at2" '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "setup: the ledger has a UTC applied_at"
like "$(table)" "^2 +0002_email +applied +$at2 +[0-9]+ ms$" "row 2: applied, at the ledger's applied_at"
like "$(table)" "^3 +0003_posts +applied +[^ ]+ +$ms3 ms$" "row 3: the ledger's duration_ms"
is "$(table | grep -c ' applied ')" 3 "three rows applied"
like "$out" "^snapshot: $DB\.pre-upgrade \([0-9.]+ [KMG]?i?B, [0-9]+ s old\)$" "the snapshot line"
fy "$DB" "$TMP/m3" status --json --exit-code
expect_status 0 "--json --exit-code: up to date"
shape "up to date"
is "$(json '[m["state"] for m in j["migrations"]]')" "['applied', 'applied', 'applied']" "--json: all applied"
is "$(json 'j["migrations"][1]["applied_at"]')" "$at2" "--json: applied_at from the ledger"
is "$(json 'j["migrations"][2]["duration_ms"]')" "$ms3" "--json: duration_ms from the ledger"
is "$(json '[s["path"] for s in j["snapshots"]]')" "['$DB.pre-upgrade']" "--json: snapshots lists the one snapshot"
is "$(json 'j["snapshots"][0]["bytes"]')" "$(stat -c %s "$DB.pre-upgrade")" "--json: its size"

# ---- every state at once -----------------------------------------------------------
# 0001 applied, 0002 edited since (changed), 0003 dirty, 0004 pending,
# 0007 in the ledger only (unknown)
mkdir -p "$TMP/mix"
cp "$TMP/m4/"*.sql "$TMP/mix/"
echo "-- edited after the release" >>"$TMP/mix/0002_email.sql"
q "$DB" "UPDATE ferry_migrations SET dirty = 1 WHERE version = 3"
q "$DB" "INSERT INTO ferry_migrations (version, name, sha256, applied_at, duration_ms, dirty)
	VALUES (7, '0007_gone', 'ab', '', 0, 0)"
fixed_times "$DB"
sum=$(filesum "$DB")
fy "$DB" "$TMP/mix" status
expect_status 0 "status with every state"
is "$(table)" "VERSION  NAME        STATE    APPLIED AT            DURATION
1        0001_users  applied  2024-01-01T00:00:01Z  11 ms
2        0002_email  changed  2024-01-01T00:00:02Z  22 ms
3        0003_posts  dirty    2024-01-01T00:00:03Z  33 ms
4        0004_tags   pending  -                     -
7        0007_gone   unknown  2024-01-01T00:00:07Z  77 ms" "applied, changed, dirty, pending, unknown: one row each, in version order"
like "$out" "^refusal: migration 0003_posts \(version 3\) is marked dirty" "the refusal line is still there"
like "$out" "^unknown: 1$" "unknown: 1"
like "$out" "^dirty: 1$" "dirty: 1"
fy "$DB" "$TMP/mix" status --json --exit-code
expect_status 1 "--exit-code: every state"
shape "every state"
is "$(json '[(m["version"], m["state"]) for m in j["migrations"]]')" \
	"[(1, 'applied'), (2, 'changed'), (3, 'dirty'), (4, 'pending'), (7, 'unknown')]" "--json: the states"
is "$(json '(j["migrations"][4]["name"], j["migrations"][4]["applied_at"], j["migrations"][4]["duration_ms"])')" \
	"('0007_gone', '2024-01-01T00:00:07Z', 77)" "--json: an unknown row has the ledger's name and times"
is "$(json '(j["unknown"], j["dirty"], j["plan"])')" "(['0007_gone'], ['0003_posts'], 'refuse')" \
	"--json: the lists of old are still there"
is "$(filesum "$DB")" "$sum" "status changed nothing"

# ---- --exit-code, one way of not being clean at a time ------------------------------------
# exit_for DESC MIGDIR STATE: --exit-code is 1, and every row not applied
# is in STATE (text and JSON)
exit_for() {
	fy "$DB" "$2" status --exit-code
	expect_status 1 "--exit-code: $1"
	like "$(table)" "^[0-9]+ +[^ ]+ +$3 " "$1: a row in state $3"
	fy "$DB" "$2" status --json --exit-code
	expect_status 1 "--json --exit-code: $1"
	is "$(json "sorted({m['state'] for m in j['migrations'] if m['state'] != 'applied'})")" "['$3']" \
		"$1: the rows not applied are $3"
}
v1_db one
exit_for "pending only" "$TMP/m3" pending
fy "$DB" "$TMP/m3" migrate
fy "$DB" "$TMP/m1" status
exit_for "unknown only (the image is older than the database)" "$TMP/m1" unknown
mkdir -p "$TMP/changed"
cp "$TMP/m3/"*.sql "$TMP/changed/"
echo "-- edited" >>"$TMP/changed/0003_posts.sql"
exit_for "changed only" "$TMP/changed" changed
q "$DB" "UPDATE ferry_migrations SET dirty = 1 WHERE version = 2"
exit_for "dirty only" "$TMP/m3" dirty
q "$DB" "UPDATE ferry_migrations SET dirty = 0"
fy "$DB" "$TMP/m3" status --exit-code
expect_status 0 "--exit-code: clean again"
mkdir -p "$DBDIR/.ferry"
printf 'kind=upgrade\nphase=migrating\nfrom=1\nto=3\nsnapshot=%s\n' "$DB.pre-upgrade" >"$DBDIR/.ferry/journal"
fy "$DB" "$TMP/m3" status --exit-code
expect_status 1 "--exit-code: an interrupted upgrade in the journal"
like "$out" "^journal: migrating \(an upgrade was interrupted" "the journal line"
rm "$DBDIR/.ferry/journal"
new_db nodb
fy "$DB" "$TMP/m3" status --exit-code
expect_status 1 "--exit-code: no database yet (everything pending)"
fy "$DB" "$TMP/none" status --exit-code
expect_status 78 "--exit-code: a real error keeps its own status"
run_ferry migrate --exit-code
expect_status 64 "--exit-code is status's option only"
run_ferry status --help
like "$out" "^usage: ferry \[OPTIONS\] status \[--json\] \[--exit-code\]$" "status --help: the usage names --exit-code"

# ---- above the target: shipped, not meant to be applied ------------------------------
v1_db target
fy "$DB" "$TMP/m3" migrate
q "$DB" "DELETE FROM ferry_migrations WHERE version = 3"
FERRY_MIGRATIONS_TARGET_VERSION=2 fy "$DB" "$TMP/m3" status --exit-code
expect_status 0 "--exit-code: at the pinned target_version, a newer file shipped"
like "$(table)" "^3 +0003_posts +above-target +- +-$" "the row above the target"
FERRY_MIGRATIONS_TARGET_VERSION=2 fy "$DB" "$TMP/m3" status --json
shape "above-target"
is "$(json '[m["state"] for m in j["migrations"]]')" "['applied', 'applied', 'above-target']" "--json: above-target"

# ---- a name that is not one line -----------------------------------------------------------
v1_db esc
q "$DB" "INSERT INTO ferry_migrations (version, name, sha256, applied_at, duration_ms, dirty)
	VALUES (5, 'two' || char(10) || 'lines', 'ab', '2024-01-01T00:00:05Z', 1, 0)"
fy "$DB" "$TMP/m1" status
like "$(table)" '^5 +two\\nlines +unknown ' "text: a newline in a ledger name is escaped, the row stays one line"
fy "$DB" "$TMP/m1" status --json
shape "a name with a newline"
is "$(json 'j["migrations"][1]["name"] == "two\nlines"')" True "--json: the name as it is"

# ---- snapshots: the latest and the older ones kept --------------------------------------
v1_db snaps
for i in 1 2 3; do
	FERRY_SNAPSHOT_KEEP=3 fy "$DB" "$TMP/m1" snapshot
done
expect_status 0 "setup: three snapshots with keep = 3"
FERRY_SNAPSHOT_KEEP=3 fy "$DB" "$TMP/m1" status
is "$(printf '%s\n' "$out" | grep 'snapshot: ' | sed 's/ (.*//')" "snapshot: $DB.pre-upgrade
older snapshot: $DB.pre-upgrade.1
older snapshot: $DB.pre-upgrade.2" "text: the latest snapshot, then the older ones"
like "$out" "^older snapshot: $DB\.pre-upgrade\.2 \([0-9.]+ [KMG]?i?B, [0-9]+ s old\)$" "an older snapshot's line"
FERRY_SNAPSHOT_KEEP=3 fy "$DB" "$TMP/m1" status --json
shape "three snapshots"
is "$(json '[s["path"] for s in j["snapshots"]]')" "['$DB.pre-upgrade', '$DB.pre-upgrade.1', '$DB.pre-upgrade.2']" \
	"--json: snapshots, newest first"
is "$(json 'j["snapshots"][2]["bytes"]')" "$(stat -c %s "$DB.pre-upgrade.2")" "--json: an older one's size"
is "$(json 'j["snapshot"]["path"]')" "$DB.pre-upgrade" "--json: snapshot is still the latest"
fy "$DB" "$TMP/m1" status --json
is "$(json 'len(j["snapshots"])')" 3 "keep = 1 now: the older ones left behind are still shown"
rm "$DB.pre-upgrade"
fy "$DB" "$TMP/m1" status
like "$out" "^snapshot: none$" "no latest snapshot: snapshot: none"
like "$out" "^older snapshot: $DB\.pre-upgrade\.1 " "and the older ones"
fy "$DB" "$TMP/m1" status --json
is "$(json '(j["snapshot"], len(j["snapshots"]))')" "(None, 2)" "--json: snapshot null, two older ones"

# ---- the last failed upgrade -------------------------------------------------------------
v1_db failed
mkdir -p "$DBDIR/.ferry"
cat >"$DBDIR/.ferry/failed-upgrade" <<'EOF'
from=1
to=3
migrations=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
attempts=2
time=2024-05-06T07:08:09Z
reason=the server was not healthy within 30 s after the upgrade: database restored
probe=HTTP 503 from http://127.0.0.1:8080/health: schema "too new"
EOF
fy "$DB" "$TMP/m3" status
expect_status 0 "status with a failed-upgrade record"
like "$out" '^failed upgrade: 1 -> 3 at 2024-05-06T07:08:09Z \(2 attempts\): the server was not healthy within 30 s after the upgrade: database restored$' \
	"text: from, to, time, attempts, reason"
like "$out" '^failed upgrade probe: HTTP 503 from http://127\.0\.0\.1:8080/health: schema "too new"$' "text: the probe's answer"
fy "$DB" "$TMP/m3" status --json
shape "a failed upgrade"
is "$(json 'j["failed_upgrade"]')" \
	"{'from': 1, 'to': 3, 'attempts': 2, 'time': '2024-05-06T07:08:09Z', 'reason': 'the server was not healthy within 30 s after the upgrade: database restored', 'probe': 'HTTP 503 from http://127.0.0.1:8080/health: schema \"too new\"'}" \
	"--json: failed_upgrade"
printf 'from=1\nto=3\nattempts=1\ntime=2024-05-06T07:08:09Z\nreason=migration 0002_email failed: boom\nprobe=\n' \
	>"$DBDIR/.ferry/failed-upgrade"
fy "$DB" "$TMP/m3" status
like "$out" '^failed upgrade: 1 -> 3 at 2024-05-06T07:08:09Z \(1 attempt\): migration 0002_email failed: boom$' \
	"text: one attempt, a migration's failure"
unlike "$out" "failed upgrade probe" "text: no probe line without a probe"
fy "$DB" "$TMP/m3" status --json
is "$(json '(j["failed_upgrade"]["attempts"], j["failed_upgrade"]["probe"])')" "(1, None)" "--json: probe null"
fy "$DB" "$TMP/m1" status --exit-code
expect_status 0 "--exit-code: a failure record alone (the old image again, up to date) is clean"
like "$out" "^failed upgrade: 1 -> 3 " "and still shown"

done_testing
