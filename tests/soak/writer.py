#!/usr/bin/env python3
"""The soak's writer: another process committing to the database while
ferry upgrades it, the way an old replica or a sidecar would.

    writer.py sqlite DB LOG persistent|reconnect
    writer.py psql LOG PSQL-COMMAND...

It inserts rows with ids 1, 2, 3, ... into the table `writes`, which no
migration touches, each in its own transaction, and appends the id to LOG
only once the COMMIT (or psql, for PostgreSQL) returned success; after the
first one it creates LOG.ready. So every
id in LOG is a commit the database accepted. A busy database is waited for
(busy_timeout) and retried; an error is counted and the row tried again
with the next id: a refused write is loud, never a loss. Each id goes out
in one write(2) to an O_APPEND descriptor: it is in the page cache when the
call returns, so it survives a SIGKILL of the writer (the soak kills
processes, it does not cut the power).

`persistent` keeps one connection for the whole run, like an application
server; `reconnect` opens a new one for every row. SIGTERM ends the run
after the current row; the counts go to stderr as one line.
"""
import os
import signal
import sqlite3
import subprocess
import sys
import time

stop = False


def on_term(signum, frame):
    global stop
    stop = True


class Log:
    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def committed(self, i):
        os.write(self.fd, b"%d\n" % i)


def pause():
    # a little room for ferry between two commits
    time.sleep(float(os.environ.get("SOAK_WRITER_PAUSE", "0.002")))


def run_sqlite(db, log, ready, mode):
    stats = {"committed": 0, "busy": 0, "errors": 0}
    last_error = ""
    conn = None
    i = 0
    while not stop:
        i += 1
        try:
            if conn is None:
                conn = sqlite3.connect(db, timeout=5.0, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO writes (id, writer, at) VALUES (?, ?, ?)",
                (i, mode, time.time()),
            )
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            msg = str(e)
            if "locked" in msg or "busy" in msg:
                stats["busy"] += 1
            else:
                stats["errors"] += 1
                last_error = msg
            try:
                if conn is not None and conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if conn is not None and (mode == "reconnect" or "locked" not in msg):
                conn.close()
                conn = None
            time.sleep(0.01)
            continue
        log.committed(i)
        stats["committed"] += 1
        if stats["committed"] == 1:
            open(ready, "w").close()
        if mode == "reconnect":
            conn.close()
            conn = None
        pause()
    if conn is not None:
        conn.close()
    return stats, last_error


def run_psql(log, ready, psql):
    stats = {"committed": 0, "busy": 0, "errors": 0}
    last_error = ""
    i = 0
    while not stop:
        i += 1
        sql = "INSERT INTO writes (id, writer, at) VALUES (%d, 'psql', now())" % i
        r = subprocess.run(
            psql + ["-c", sql],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if r.returncode != 0:
            stats["errors"] += 1
            last_error = r.stderr.decode(errors="replace").strip()
            time.sleep(0.02)
            continue
        log.committed(i)
        stats["committed"] += 1
        if stats["committed"] == 1:
            open(ready, "w").close()
        pause()
    return stats, last_error


def main():
    signal.signal(signal.SIGTERM, on_term)
    if len(sys.argv) == 5 and sys.argv[1] == "sqlite":
        db, logpath, mode = sys.argv[2:5]
        if mode not in ("persistent", "reconnect"):
            sys.exit("writer.py: mode must be persistent or reconnect, not %r" % mode)
        stats, last_error = run_sqlite(db, Log(logpath), logpath + ".ready", mode)
    elif len(sys.argv) > 3 and sys.argv[1] == "psql":
        logpath = sys.argv[2]
        stats, last_error = run_psql(Log(logpath), logpath + ".ready", sys.argv[3:])
    else:
        sys.exit(__doc__.split("\n\n")[1])
    line = "committed=%(committed)d busy=%(busy)d errors=%(errors)d" % stats
    if last_error:
        line += " last_error=" + " ".join(last_error.split())[:200]
    print(line, file=sys.stderr)


if __name__ == "__main__":
    main()
