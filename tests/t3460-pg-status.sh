#!/bin/sh
# ferry status on PostgreSQL, the history: a row per migration with its
# state, the ledger's applied_at (timestamptz, shown in UTC) and duration;
# a snapshot, a failed-upgrade record; --json in the documented shape;
# --exit-code 0 when up to date, 1 for pending, unknown, changed, dirty.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg-lib.sh"
make_std_pg_migrations
SHAPE=$TESTS_DIR/helpers/status-shape.py

shape() { is "$(printf '%s\n' "$out" | python3 "$SHAPE")" ok "$1: the documented shape"; }
table() { printf '%s\n' "$out" | sed -n '/^VERSION /,/^$/p' | sed '/^$/d'; }
# fixed_times: applied_at 2024-01-01 00:00:0<version> UTC, duration <version>*11 ms
fixed_times() {
	qa "UPDATE ferry_migrations SET duration_ms = version * 11,
		applied_at = ('2024-01-01 00:00:0' || version || '+00')::timestamptz" >/dev/null
}

v1_appdb
fixed_times
pgf "$TMP/p3" status --exit-code
expect_status 1 "--exit-code: pending"
is "$(table)" "VERSION  NAME        STATE    APPLIED AT            DURATION
1        0001_users  applied  2024-01-01T00:00:01Z  11 ms
2        0002_email  pending  -                     -
3        0003_posts  pending  -                     -" "a row per migration, applied_at in UTC"
pgf "$TMP/p3" status --json
shape "pending"
is "$(json '[(m["version"], m["state"], m["applied_at"], m["duration_ms"]) for m in j["migrations"]]')" \
	"[(1, 'applied', '2024-01-01T00:00:01Z', 11), (2, 'pending', None, None), (3, 'pending', None, None)]" \
	"--json: the rows"

pgf "$TMP/p3" migrate
expect_status 0 "upgrade 1 -> 3"
pgf "$TMP/p3" status --exit-code
expect_status 0 "--exit-code: up to date"
is "$(table | grep -c ' applied ')" 3 "three rows applied"
ms2=$(qa "SELECT duration_ms FROM ferry_migrations WHERE version = 2")
like "$(table)" "^2 +0002_email +applied +20[0-9-]+T[0-9:]+Z +$ms2 ms$" "row 2: the ledger's time and duration"

# dirty, unknown and changed, set by hand
qa "UPDATE ferry_migrations SET dirty = true WHERE version = 3" >/dev/null
qa "INSERT INTO ferry_migrations (version, name, sha256, applied_at, duration_ms)
	VALUES (9, '0009_later', 'ab', '2024-01-01 00:00:09+00', 99)" >/dev/null
mkdir -p "$TMP/edited"
cp "$TMP/p4/"*.sql "$TMP/edited/"
echo "-- edited" >>"$TMP/edited/0002_email.sql"
fixed_times
pgf "$TMP/edited" status --exit-code
expect_status 1 "--exit-code: changed, dirty, pending, unknown"
is "$(table)" "VERSION  NAME        STATE    APPLIED AT            DURATION
1        0001_users  applied  2024-01-01T00:00:01Z  11 ms
2        0002_email  changed  2024-01-01T00:00:02Z  22 ms
3        0003_posts  dirty    2024-01-01T00:00:03Z  33 ms
4        0004_tags   pending  -                     -
9        0009_later  unknown  2024-01-01T00:00:09Z  99 ms" "every state"
pgf "$TMP/edited" status --json --exit-code
expect_status 1 "--json --exit-code"
shape "every state"
is "$(json '[m["state"] for m in j["migrations"]]')" "['applied', 'changed', 'dirty', 'pending', 'unknown']" \
	"--json: the states"
qa "UPDATE ferry_migrations SET dirty = false" >/dev/null
qa "DELETE FROM ferry_migrations WHERE version = 9" >/dev/null
pgf "$TMP/p3" status --exit-code
expect_status 0 "--exit-code: clean again"

# a snapshot and a failed upgrade
pgf "$TMP/p3" snapshot
expect_status 0 "ferry snapshot"
cat >"$FERRY_DATABASE_STATE_DIR/failed-upgrade" <<'EOF'
from=3
to=4
migrations=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
attempts=3
time=2024-05-06T07:08:09Z
reason=migration 0004_tags failed: relation "tags" already exists
probe=
EOF
pgf "$TMP/p3" status
like "$out" "^snapshot: $(snapshot_file) \(" "text: the snapshot"
like "$out" '^failed upgrade: 3 -> 4 at 2024-05-06T07:08:09Z \(3 attempts\): migration 0004_tags failed: relation "tags" already exists$' \
	"text: the failed upgrade"
pgf "$TMP/p3" status --json
shape "a snapshot and a failed upgrade"
is "$(json '[s["path"] for s in j["snapshots"]]')" "['$(snapshot_file)']" "--json: snapshots"
is "$(json '(j["failed_upgrade"]["from"], j["failed_upgrade"]["to"], j["failed_upgrade"]["attempts"], j["failed_upgrade"]["probe"])')" \
	"(3, 4, 3, None)" "--json: failed_upgrade"

secret_never_shown
done_testing
