#!/usr/bin/env python3
# status-shape.py: checks that stdin is one `ferry status --json` object of
# the shape README.md documents (every key, the type of every field);
# prints "ok", or one line per problem.  Used by t2460 and t3460.
import json
import re
import sys

TOP = ["database", "exists", "database_version", "image_version", "plan",
       "pending", "unknown", "dirty", "refusal", "snapshot", "journal",
       "migrations", "snapshots", "failed_upgrade", "app"]
ROW = ["version", "name", "state", "applied_at", "duration_ms"]
SNAP = ["path", "bytes", "age_seconds"]
FAIL = ["from", "to", "attempts", "time", "reason", "probe"]
APP = ["recorded", "recorded_at", "current"]
STATES = {"applied", "pending", "dirty", "changed", "unknown", "above-target"}
NOT_APPLIED = {"pending", "above-target"}
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
problems = []


def bad(where, what):
    problems.append("%s: %s" % (where, what))


def is_int(v):
    return type(v) is int  # bool is an int to Python, not to JSON


def version(where, v):
    # integers are numbers, dotted versions strings of digits and dots
    if is_int(v):
        if v < 0:
            bad(where, "negative version %r" % v)
    elif isinstance(v, str):
        if not re.fullmatch(r"\d+(\.\d+)+", v):
            bad(where, "a string version that is not dotted: %r" % v)
    else:
        bad(where, "version is %s" % type(v).__name__)


def keys(where, obj, expected):
    if not isinstance(obj, dict):
        bad(where, "not an object: %r" % (obj,))
        return False
    if list(obj) != expected:
        bad(where, "keys %s, expected %s" % (list(obj), expected))
    return True


def strings(where, v):
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        bad(where, "not a list of strings: %r" % (v,))


def snapshot(where, s):
    if not keys(where, s, SNAP):
        return
    if not isinstance(s.get("path"), str) or not s["path"]:
        bad(where + ".path", "not a path")
    for k in ("bytes", "age_seconds"):
        if not is_int(s.get(k)) or s[k] < 0:
            bad(where + "." + k, "not a count: %r" % s.get(k))


def row(where, r):
    if not keys(where, r, ROW):
        return
    version(where + ".version", r.get("version"))
    if not isinstance(r.get("name"), str):
        bad(where + ".name", "not a string")
    st = r.get("state")
    if st not in STATES:
        bad(where + ".state", "unknown state %r" % (st,))
    at, ms = r.get("applied_at"), r.get("duration_ms")
    if st in NOT_APPLIED:
        if at is not None or ms is not None:
            bad(where, "%s but applied_at/duration_ms not null" % st)
    else:
        if at is not None and not (isinstance(at, str) and STAMP.match(at)):
            bad(where + ".applied_at", "not a UTC time or null: %r" % (at,))
        if not is_int(ms) or ms < 0:
            bad(where + ".duration_ms", "not a duration: %r" % (ms,))


def failure(where, f):
    if f is None or not keys(where, f, FAIL):
        return
    version(where + ".from", f.get("from"))
    version(where + ".to", f.get("to"))
    if not is_int(f.get("attempts")) or f["attempts"] < 1:
        bad(where + ".attempts", "not a count >= 1: %r" % (f.get("attempts"),))
    if f.get("time") is not None and not STAMP.match(str(f["time"])):
        bad(where + ".time", "not a UTC time or null: %r" % (f["time"],))
    if not isinstance(f.get("reason"), str):
        bad(where + ".reason", "not a string")
    if f.get("probe") is not None and not isinstance(f["probe"], str):
        bad(where + ".probe", "not a string or null")


def main():
    text = sys.stdin.read()
    if text.count("\n") != 1 or not text.endswith("\n"):
        bad("output", "not exactly one line")
    try:
        j = json.loads(text)
    except ValueError as e:
        print("invalid JSON: %s" % e)
        return
    if not keys("status", j, TOP) or problems:
        print("\n".join(problems))
        return
    if not isinstance(j["database"], str):
        bad("database", "not a string")
    if not isinstance(j["exists"], bool):
        bad("exists", "not a boolean")
    version("database_version", j["database_version"])
    version("image_version", j["image_version"])
    if j["plan"] not in ("current", "create", "upgrade", "refuse"):
        bad("plan", "unknown plan %r" % (j["plan"],))
    for k in ("pending", "unknown", "dirty"):
        strings(k, j[k])
    if (j["refusal"] is None) != (j["plan"] != "refuse"):
        bad("refusal", "a string exactly when plan is refuse: %r" % (j["refusal"],))
    if j["snapshot"] is not None:
        snapshot("snapshot", j["snapshot"])
    jn = j["journal"]
    if jn != "none" and keys("journal", jn, ["kind", "phase", "from", "to"]):
        version("journal.from", jn.get("from"))
        version("journal.to", jn.get("to"))
    if not isinstance(j["migrations"], list):
        bad("migrations", "not a list")
    else:
        for i, r in enumerate(j["migrations"]):
            row("migrations[%d]" % i, r)
    if not isinstance(j["snapshots"], list):
        bad("snapshots", "not a list")
    else:
        for i, s in enumerate(j["snapshots"]):
            snapshot("snapshots[%d]" % i, s)
        if j["snapshot"] is not None and (
                not j["snapshots"] or
                j["snapshots"][0].get("path") != j["snapshot"].get("path")):
            bad("snapshots", "does not start with the latest snapshot")
    failure("failed_upgrade", j["failed_upgrade"])
    a = j["app"]  # null unless [migrations] mode = app
    if a is not None and keys("app", a, APP):
        if not isinstance(a.get("current"), str) or not a["current"]:
            bad("app.current", "not an identity: %r" % (a.get("current"),))
        if a.get("recorded") is not None and not isinstance(a["recorded"], str):
            bad("app.recorded", "not a string or null")
        at = a.get("recorded_at")
        if (at is None) != (a.get("recorded") is None) or (
                at is not None and not STAMP.match(str(at))):
            bad("app.recorded_at", "a UTC time exactly when recorded: %r" % (at,))
    print("\n".join(problems) if problems else "ok")


main()
