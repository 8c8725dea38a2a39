#!/usr/bin/env python3
# selfmigrating-app.py: a demo server that migrates itself at start, from
# migrations "compiled in" (the MIGRATIONS list below), as many real apps
# do; the tests of [migrations] mode = app (t2760, t3760) run it.
#
#   selfmigrating-app.py migrate   apply the migrations this version has, exit
#   selfmigrating-app.py serve     the same, then serve /health on APP_PORT
#
# APP_VERSION picks the release: "1.0" has migration 1, "2.0" (and "2.1",
# the same schema) has 1..2, "3.0" 1..3; a "-broken" release's last
# migration fails halfway, after one of its statements has committed (a
# half-applied migration only a snapshot undoes). Each statement commits on
# its own.
# APP_DB is the SQLite file; APP_PSQL (a psql command line, words split on
# blanks) selects PostgreSQL instead. APP_UNHEALTHY=1: /health answers 500.
# serve also records the boot in the boots table (what a restore undoes).
import http.server
import os
import sqlite3
import subprocess
import sys

MIGRATIONS = [
    (1, ["CREATE TABLE notes (id integer PRIMARY KEY, body text NOT NULL)"]),
    (2, ["ALTER TABLE notes ADD COLUMN author text",
         "UPDATE notes SET author = 'someone'"]),
    (3, ["CREATE TABLE tags (id integer PRIMARY KEY, label text)"]),
]
BROKEN = "INSERT INTO no_such_table VALUES (1)"
LEDGER = "CREATE TABLE IF NOT EXISTS app_schema (version integer NOT NULL)"


def level(version):
    return int(version.split(".")[0])


class Sqlite:
    def __init__(self, path):
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10)

    def run(self, sql):
        self.db.execute(sql)

    def value(self, sql):
        return self.db.execute(sql).fetchone()[0]


class Psql:
    def __init__(self, command):
        self.cmd = command.split() + ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]

    def run(self, sql):
        subprocess.run(self.cmd + ["-c", sql], check=True,
                       stdout=subprocess.DEVNULL)

    def value(self, sql):
        out = subprocess.run(self.cmd + ["-c", sql], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        return int(out.strip() or 0)


def connect():
    if os.environ.get("APP_PSQL"):
        return Psql(os.environ["APP_PSQL"])
    return Sqlite(os.environ["APP_DB"])


def migrate(db, version):
    db.run(LEDGER)
    have = db.value("SELECT coalesce(max(version), 0) FROM app_schema")
    for n, statements in MIGRATIONS:
        if n <= have or n > level(version):
            continue
        print("app %s: applying migration %d" % (version, n), flush=True)
        last = n == level(version)
        for sql in statements + ([BROKEN] if last and "broken" in version else []):
            db.run(sql)
        db.run("INSERT INTO app_schema (version) VALUES (%d)" % n)


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        bad = os.environ.get("APP_UNHEALTHY") == "1"
        code = 500 if bad or self.path != "/health" else 200
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"unhealthy\n" if code != 200 else b"ok\n")

    def log_message(self, *args):
        pass


def main():
    version = os.environ["APP_VERSION"]
    db = connect()
    try:
        migrate(db, version)
    except (sqlite3.Error, subprocess.CalledProcessError) as e:
        print("app %s: migration failed: %s" % (version, e), file=sys.stderr,
              flush=True)
        return 1
    if sys.argv[1:] == ["migrate"]:
        return 0
    db.run("CREATE TABLE IF NOT EXISTS boots (version text)")
    db.run("INSERT INTO boots (version) VALUES ('%s')" % version)
    server = http.server.HTTPServer(("127.0.0.1", int(os.environ["APP_PORT"])),
                                    Health)
    print("app %s: serving" % version, flush=True)
    server.serve_forever()
    return 0


sys.exit(main())
