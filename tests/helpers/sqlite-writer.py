#!/usr/bin/env python3
"""A process that writes beside ferry: inserts one row per transaction into
table `beside` of DB, and appends each row's id to LOG only once its COMMIT
has returned. A busy database is waited for (busy timeout), then counted
as a refusal: a loud failure, never a row reported and then lost. Runs
until the file STOP exists, then prints "committed N busy M".

    sqlite-writer.py DB LOG STOP [--keep-open] [--pause SECONDS]

--keep-open keeps one connection for the whole run (a server's pool);
otherwise each row opens and closes its own (a cron job, a CLI).
"""
import os
import sqlite3
import sys
import time

db, log, stop = sys.argv[1:4]
keep_open = "--keep-open" in sys.argv
pause = float(sys.argv[sys.argv.index("--pause") + 1]) if "--pause" in sys.argv else 0.005


def connect():
    c = sqlite3.connect(db, timeout=5.0, isolation_level=None)
    return c


committed = busy = 0
conn = connect() if keep_open else None
with open(log, "a", buffering=1) as out:
    while not os.path.exists(stop):
        c = conn or connect()
        try:
            c.execute("BEGIN IMMEDIATE")
            cur = c.execute("INSERT INTO beside (at) VALUES (?)", (time.time(),))
            rid = cur.lastrowid
            c.execute("COMMIT")
            out.write("%d\n" % rid)
            committed += 1
        except sqlite3.OperationalError as e:
            busy += 1
            try:
                c.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if "locked" not in str(e) and "busy" not in str(e):
                print("writer: %s" % e, file=sys.stderr)
        finally:
            if not conn:
                c.close()
        time.sleep(pause)
if conn:
    conn.close()
print("committed %d busy %d" % (committed, busy))
