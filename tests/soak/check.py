#!/usr/bin/env python3
"""The soak's checks of a database, from outside ferry.

    check.py fingerprint DB > FP
        SQLite: one line per part: "ledger <sha>", "schema <sha>", "table
        <name> <sha>" for each table but the writer's and the ledger,
        "journal_mode <mode>". (pg-soak.sh writes the same kind of lines
        for PostgreSQL with psql.)
    check.py compare FP OLD-FP NEW-FP
        "state=old|new|wrong-version|data-mismatch [detail=...]": old or new
        only when the ledger, the schema and every table match that
        reference exactly; wrong-version when the ledger matches neither,
        data-mismatch when it matches one but something else differs.
    check.py lost WRITER-LOG PRESENT-IDS
        "lost=N logged=N [detail=...]": the ids the writer logged as
        committed that are missing from PRESENT-IDS (what the table holds).
    check.py verify DB OLD-FP NEW-FP WRITER-LOG
        SQLite, all of it: "state=... integrity=ok|bad journal_mode=...
        lost=N logged=N [detail=...]".

A fingerprint is SHA-256 over the rows of one query in a fixed order, so
two databases agree exactly when their rows do.
"""
import hashlib
import sqlite3
import sys

WRITER_TABLE = "writes"


def digest(conn, sql):
    h = hashlib.sha256()
    for row in conn.execute(sql):
        # blobs go in raw, their lengths in the row's text (repr is slow on them)
        blobs = [v for v in row if isinstance(v, bytes)]
        if blobs:
            row = tuple(("blob", len(v)) if isinstance(v, bytes) else v for v in row)
        h.update(repr(row).encode())
        h.update(b"\n")
        for v in blobs:
            h.update(v)
    return h.hexdigest()


def fingerprint(conn):
    fp = {}
    fp["ledger"] = digest(
        conn, "SELECT version, name, sha256, dirty FROM ferry_migrations ORDER BY version"
    )
    fp["schema"] = digest(
        conn,
        "SELECT type, name, tbl_name, sql FROM sqlite_master "
        "WHERE name NOT LIKE 'sqlite_stat%' ORDER BY type, name",
    )
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
            "'sqlite_%' AND name NOT IN (?, 'ferry_migrations') ORDER BY name",
            (WRITER_TABLE,),
        )
    ]
    for t in tables:
        q = t.replace('"', '""')
        fp["table " + t] = digest(conn, 'SELECT * FROM "%s" ORDER BY rowid' % q)
    fp["journal_mode"] = conn.execute("PRAGMA journal_mode").fetchone()[0]
    return fp


def read_fp(path):
    fp = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").rpartition(" ")
            fp[key] = value
    return fp


def versions(conn):
    try:
        rows = conn.execute(
            "SELECT version, dirty FROM ferry_migrations ORDER BY version"
        ).fetchall()
    except sqlite3.Error as e:
        return "unreadable (%s)" % e
    return ",".join("%d%s" % (v, "(dirty)" if d else "") for v, d in rows) or "none"


def compare(fp, old, new):
    """(state, details) of a fingerprint against the two references"""
    fp, old, new = dict(fp), dict(old), dict(new)
    # the journal mode is reported, not judged: data does not depend on it
    mode = fp.pop("journal_mode", None)
    old_mode, new_mode = old.pop("journal_mode", None), new.pop("journal_mode", None)
    if fp.get("ledger") == old.get("ledger"):
        ref, name, ref_mode = old, "old", old_mode
    elif fp.get("ledger") == new.get("ledger"):
        ref, name, ref_mode = new, "new", new_mode
    else:
        return "wrong-version", ["the ledger is neither the old one nor the new one"]
    detail = []
    differ = sorted(k for k in set(ref) | set(fp) if ref.get(k) != fp.get(k))
    if differ:
        state = "data-mismatch"
        detail.append("at the %s version, differs from it: %s" % (name, ", ".join(differ)))
    else:
        state = name
    if mode != ref_mode:
        detail.append("journal_mode %s, was %s" % (mode, ref_mode))
    return state, detail


def lost_rows(log_path, present):
    """(["lost=N", "logged=N"], details)"""
    with open(log_path) as f:
        logged = {int(x) for x in f.read().split()}
    lost = sorted(logged - present)
    detail = []
    if lost:
        more = " ..." if len(lost) > 8 else ""
        detail.append("lost ids %s%s" % (" ".join(map(str, lost[:8])), more))
    return ["lost=%d" % len(lost), "logged=%d" % len(logged)], detail


def verify(db, old_path, new_path, log_path):
    conn = sqlite3.connect(db, isolation_level=None)
    detail = []

    ic = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    if ic != ["ok"]:
        detail.append("integrity_check: " + "; ".join(ic[:3]))
    try:
        fp = fingerprint(conn)
    except sqlite3.Error as e:
        fp = {}
        detail.append("cannot read: %s" % e)
    state, d = compare(fp, read_fp(old_path), read_fp(new_path))
    if state == "wrong-version":
        d = ["ledger versions " + versions(conn)]
    detail += d
    out = [
        "state=" + state,
        "integrity=" + ("ok" if ic == ["ok"] else "bad"),
        "journal_mode=" + fp.get("journal_mode", "?"),
    ]
    try:
        present = {r[0] for r in conn.execute("SELECT id FROM %s" % WRITER_TABLE)}
    except sqlite3.Error as e:
        present = set()
        detail.append("cannot read %s: %s" % (WRITER_TABLE, e))
    o, d = lost_rows(log_path, present)
    out += o
    detail += d
    conn.close()
    if detail:
        out.append("detail=" + " | ".join(detail))
    print(" ".join(out))


def main():
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "fingerprint":
        conn = sqlite3.connect(args[1], isolation_level=None)
        for k, v in fingerprint(conn).items():
            print(k, v)
        conn.close()
    elif len(args) == 4 and args[0] == "compare":
        state, detail = compare(*(read_fp(p) for p in args[1:4]))
        print("state=" + state + (" detail=" + " | ".join(detail) if detail else ""))
    elif len(args) == 3 and args[0] == "lost":
        with open(args[2]) as f:
            present = {int(x) for x in f.read().split()}
        out, detail = lost_rows(args[1], present)
        print(" ".join(out) + (" detail=" + " | ".join(detail) if detail else ""))
    elif len(args) == 5 and args[0] == "verify":
        verify(*args[1:5])
    else:
        sys.exit(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main()
