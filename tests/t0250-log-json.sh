#!/bin/sh
# Logs for pipelines and for people: with FERRY_LOG_FORMAT=json every line
# of a real SQLite upgrade is a JSON object carrying the event's fields
# (event, from, to, migration, duration_ms, snapshot, exit); a config error
# is JSON too when the environment asked for JSON; in text, errors start
# with "ferry: error: ".
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sqlite-lib.sh"
command -v python3 >/dev/null || { echo "1..0 # skip python3 is needed to parse JSON"; exit 0; }
make_std_migrations

# events FILE: one line per log line, "event k=v ..." with the fields in
# a fixed order; "NOT JSON: line" for a line that does not parse, and
# "MISSING time/level/msg" when a line lacks one of them.
events() {
	python3 - "$1" <<-'PY'
	import json, sys
	for line in open(sys.argv[1], encoding="utf-8"):
	    try:
	        o = json.loads(line)
	    except ValueError:
	        print("NOT JSON: " + line.rstrip("\n"))
	        continue
	    if not isinstance(o, dict) or not all(k in o for k in ("time", "level", "msg")):
	        print("MISSING time/level/msg: " + line.rstrip("\n"))
	        continue
	    out = [o.get("event", "-"), "level=" + o["level"]]
	    for k in ("from", "to", "migration", "snapshot", "duration_ms", "exit"):
	        if k in o:
	            v = o[k]
	            if k in ("duration_ms", "exit"):
	                v = "int" if isinstance(v, int) and v >= 0 else "BAD(%r)" % (v,)
	                if k == "exit":
	                    v = str(o[k])
	            out.append("%s=%s" % (k, v))
	    print(" ".join(out))
	PY
}

# ---- a real upgrade 1 -> 3 ---------------------------------------------------------
new_db up
fy "$DB" "$TMP/m1" migrate
expect_status 0 "version 1 created"
FERRY_LOG_FORMAT=json fy "$DB" "$TMP/m3" migrate
expect_status 0 "upgrade 1 -> 3 with JSON logs"
ev=$(events "$TMP/.err")
unlike "$ev" "^(NOT JSON|MISSING)" "every line is a JSON object with time, level and msg"
like "$ev" "^upgrade_started level=info from=1 to=3$" "upgrade start: from and to"
like "$ev" "^migration_applied level=info migration=0002_email duration_ms=int$" \
	"migration 0002 applied: its name and duration_ms"
like "$ev" "^migration_applied level=info migration=0003_posts duration_ms=int$" \
	"migration 0003 applied: its name and duration_ms"
like "$ev" "^snapshot_taken level=info from=1 snapshot=$DB\.pre-upgrade duration_ms=int$" \
	"snapshot taken: its path"
like "$ev" "^upgrade_done level=info from=1 to=3 snapshot=$DB\.pre-upgrade duration_ms=int$" \
	"upgrade done: from, to, duration_ms"
is "$(db_version "$DB")" 3 "the database is at version 3"

# ---- a failing migration: upgrade_failed with the exit status -------------------------
mkdir -p "$TMP/mbad"
cp "$TMP/m3/"*.sql "$TMP/mbad/"
printf 'INSERT INTO no_such_table VALUES (1);\n' >"$TMP/mbad/0004_bad.sql"
FERRY_LOG_FORMAT=json fy "$DB" "$TMP/mbad" migrate
expect_status 70 "a failing migration exits 70"
ev=$(events "$TMP/.err")
unlike "$ev" "^(NOT JSON|MISSING)" "failure: every line is JSON"
like "$ev" "^upgrade_failed level=error from=3 to=4 snapshot=$DB\.pre-upgrade exit=70$" \
	"upgrade failed: from, to, snapshot and exit 70"
is "$(db_version "$DB")" 3 "the database is back at version 3"

# ---- config errors are JSON when the environment asked for JSON ------------------------
printf '[migrations]\ndir = %s\n[nosuch]\nkey = 1\n' "$TMP/m3" >"$TMP/bad.toml"
FERRY_LOG_FORMAT=json run_ferry --config "$TMP/bad.toml" migrate
expect_status 78 "a config error exits 78"
ev=$(events "$TMP/.err")
is "$(printf '%s\n' "$ev" | grep -c .)" 1 "config error: one line"
like "$ev" "^- level=error$" "config error: a JSON line at level error"
like "$(cat "$TMP/.err")" "bad\.toml" "config error: the JSON msg names the file"

FERRY_LOG_FORMAT=json run_ferry --no-such-option
expect_status 64 "a usage error exits 64"
like "$(events "$TMP/.err")" "^- level=error$" "usage error: a JSON line too"

# ---- text mode: errors marked -------------------------------------------------------
run_ferry --config "$TMP/bad.toml" migrate
expect_status 78 "text: config error exits 78"
like "$err" "^ferry: error: .*bad\.toml" "text: the error starts with 'ferry: error: '"
FERRY_RETRY_FAILED_UPGRADE=1 fy "$DB" "$TMP/mbad" migrate
expect_status 70 "text: failing migration exits 70"
like "$err" "^ferry: error: migration 0004_bad failed" "text: the failure starts with 'ferry: error: '"
like "$err" "^ferry: schema version mismatch" "text: info lines keep plain 'ferry: '"
unlike "$err" "^\{" "text: no JSON"

done_testing
