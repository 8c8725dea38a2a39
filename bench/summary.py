#!/usr/bin/env python3
"""summary.py RESULTS-DIR: the headline table of BENCHMARKS.md.

For each pair below whose two cases were measured, one row: both
medians and the median of the per-round ratios (A's time over B's time
in the same round), from RESULTS-DIR/NAME.samples.tsv.
"""
import os
import statistics
import sys

PAIRS = [
    ("pid1", "init, no database", "ferry (static)", "tini-static"),
    ("pid1", "init, no database", "ferry (build/ferry)", "tini"),
    ("pid1", "init, no database", "ferry (build/ferry)", "dumb-init"),
    ("sqlite-fastpath", "boot, SQLite up to date", "ferry run (static)", "entrypoint script"),
    ("sqlite-fastpath", "boot, SQLite up to date", "ferry run", "entrypoint script"),
    ("sqlite-fastpath", "boot, SQLite up to date", "ferry run", "sqlite3 + test"),
    ("sqlite-snapshot", "SQLite snapshot", "ferry snapshot", "cp + sync"),
    ("sqlite-snapshot", "SQLite snapshot", "ferry snapshot", "sqlite3 .backup"),
    ("sqlite-snapshot", "SQLite snapshot", "ferry snapshot", "sqlite3 VACUUM INTO"),
    ("sqlite-snapshot-1g", "SQLite snapshot, 1 GiB", "ferry snapshot", "cp + sync"),
    ("sqlite-snapshot-1g", "SQLite snapshot, 1 GiB", "ferry snapshot", "sqlite3 .backup"),
    ("sqlite-upgrade", "SQLite upgrade, 3 migrations", "ferry migrate", "shell script"),
    ("sqlite-upgrade", "SQLite upgrade, 3 migrations", "ferry migrate", "careful shell script"),
    ("pg-template", "PostgreSQL template copy", "STRATEGY FILE_COPY", "STRATEGY WAL_LOG"),
    ("pg-template", "PostgreSQL template copy", "ferry snapshot (template)", "STRATEGY FILE_COPY"),
    ("pg-template-busy", "PostgreSQL template copy, busy server", "STRATEGY FILE_COPY", "STRATEGY WAL_LOG"),
    ("pg-template-busy", "PostgreSQL template copy, busy server", "ferry snapshot (template)", "STRATEGY FILE_COPY"),
    ("pg-logical", "PostgreSQL logical snapshot", "ferry snapshot (logical)", "pg_dump -Fc"),
    ("pg-logical", "PostgreSQL logical snapshot", "ferry snapshot (logical)", "pg_dump + zstd"),
    ("sqlite-fastpath-200", "boot, SQLite, 200 migrations", "ferry run (static)", "tini-static"),
    ("sqlite-fastpath-200", "boot, SQLite, 200 migrations", "ferry run", "tini-static"),
    ("sqlite-batch", "1000 migrations, new SQLite db", "ferry migrate", "dbmate 2.36.0"),
    ("sqlite-batch", "1000 migrations, new SQLite db", "ferry migrate", "sqlite3, one transaction"),
    ("sqlite-upgrade-1g", "SQLite upgrade, 1 GiB, 1 migration", "ferry migrate", "cp + sync"),
    ("sqlite-upgrade-1g", "SQLite upgrade, 1 GiB, 1 migration", "ferry migrate", "careful shell script"),
    ("sqlite-reflink", "SQLite on XFS (reflink), 1 GiB", "ferry snapshot, large", "cp + sync, large"),
    ("sqlite-reflink", "SQLite on XFS (reflink)", "ferry snapshot, large", "ferry snapshot, small"),
    ("sqlite-reflink", "SQLite on XFS (reflink), 1 GiB", "ferry migrate, large", "cp + sync, large"),
    ("pg-batch", "1000 migrations, PostgreSQL", "ferry migrate", "psql -1 -f all.sql"),
    ("pg-batch", "1000 migrations, PostgreSQL", "ferry migrate", "dbmate 2.36.0"),
]


def fmt(s):
    a = abs(s)
    if a >= 10:
        return "%.1f s" % s
    if a >= 1:
        return "%.2f s" % s
    if a >= 0.1:
        return "%.0f ms" % (s * 1e3)
    if a >= 0.01:
        return "%.1f ms" % (s * 1e3)
    return "%.2f ms" % (s * 1e3)


def load(path):
    rounds = {}
    with open(path) as f:
        next(f)
        for line in f:
            r, case, wall, _ = line.rstrip("\n").split("\t")
            rounds.setdefault(case, {})[int(r)] = float(wall)
    return rounds


def main():
    res = sys.argv[1]
    rows = []
    cache = {}
    for name, what, a, b in PAIRS:
        p = os.path.join(res, name + ".samples.tsv")
        if not os.path.exists(p):
            continue
        if p not in cache:
            cache[p] = load(p)
        d = cache[p]
        if a not in d or b not in d:
            continue
        common = sorted(set(d[a]) & set(d[b]))
        ratios = [d[a][r] / d[b][r] for r in common]
        rows.append("| %s | %s | %s | %s | %s | **%.2f×** | %d |" % (
            what, a, fmt(statistics.median(d[a].values())), b,
            fmt(statistics.median(d[b].values())), statistics.median(ratios), len(common)))
    if not rows:
        print("_Nothing was measured._")
        return
    print("| what | A | A median | B | B median | A / B (per round) | rounds |")
    print("|---|---|---:|---|---:|---:|---:|")
    print("\n".join(rows))
    print()
    print("Below 1× A is faster. The sections below give the spread and the exact commands.")


if __name__ == "__main__":
    main()
