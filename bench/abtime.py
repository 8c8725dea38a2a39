#!/usr/bin/env python3
"""abtime.py: time several commands side by side, interleaved.

    abtime.py SPEC OUTPREFIX

SPEC is a small line-based file (the bench scripts write it with a heredoc):

    title   PID-1 overhead               (heading of the table)
    rounds  300                          (timed rounds; each round runs every case once)
    warmup  5                            (untimed rounds first)
    maxtime 60                           (optional: stop after this many seconds of
                                          rounds, once minrounds rounds are done)
    minrounds 20
    ref     tini                         (ratios are against this case)
    base    true                         (optional: also report "minus this case")
    subject ferry                        (optional: a sentence "ferry took X times the
                                          time of each other case", paired per round)
    env     K=V                          (for every case)
    case    NAME                         (starts a case; NAME is free text)
    exec    ARGV...                      (the timed command, shlex-split, no shell)
    sh      SHELL TEXT                   (the timed command, through /bin/sh -c)
    setup   SHELL TEXT                   (untimed, before each run of this case)
    check   SHELL TEXT                   (untimed, after each run; must succeed)
    expect  N                            (the exit status the run must have; default 0)
    env     K=V                          (after a case line: for that case only)
    note    TEXT                         (printed under the table)

Each round runs every case once, in an order shuffled per round (seeded,
so reruns are comparable), so that slow drifts of a shared machine hit
every case alike.  A run is timed from just before posix_spawn to the
return of wait4, so nothing of the harness' own start-up is included.  A
run that exits with an unexpected status, or whose check fails, stops
the benchmark: its command, status and output are printed (a benchmark
of a failing command is worthless, and the failure may be a bug).

Writes OUTPREFIX.samples.tsv (every run), OUTPREFIX.summary.tsv and
OUTPREFIX.md (a markdown table), and OUTPREFIX.N.stderr (the stderr of
the first timed run of case N).
"""
import os
import random
import shlex
import statistics
import subprocess
import sys
import time


def die(msg):
    sys.stderr.write("abtime: %s\n" % msg)
    sys.exit(2)


class Case:
    def __init__(self, name):
        self.name = name
        self.argv = None
        self.shown = None
        self.setup = None
        self.check = None
        self.expect = 0
        self.env = {}
        self.wall = []
        self.cpu = []


def parse(path):
    g = {"title": path, "rounds": 10, "warmup": 1, "maxtime": None,
         "minrounds": 3, "ref": None, "base": None, "subject": None, "env": {}, "notes": []}
    cases = []
    with open(path) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, _, rest = line.partition(" ")
            rest = rest.strip()
            cur = cases[-1] if cases else None
            if key == "case":
                cases.append(Case(rest))
            elif key in ("title", "ref", "base", "subject"):
                g[key] = rest
            elif key in ("rounds", "warmup", "minrounds"):
                g[key] = int(rest)
            elif key == "maxtime":
                g[key] = float(rest)
            elif key == "note":
                g["notes"].append(rest)
            elif key == "env":
                k, eq, v = rest.partition("=")
                if not eq:
                    die("%s:%d: env needs K=V" % (path, lineno))
                (cur.env if cur else g["env"])[k] = v
            elif cur is None:
                die("%s:%d: '%s' before any case" % (path, lineno, key))
            elif key == "exec":
                cur.argv = shlex.split(rest)
                cur.shown = rest
            elif key == "sh":
                cur.argv = ["/bin/sh", "-c", rest]
                cur.shown = rest
            elif key == "setup":
                cur.setup = rest
            elif key == "check":
                cur.check = rest
            elif key == "expect":
                cur.expect = int(rest)
            else:
                die("%s:%d: unknown keyword '%s'" % (path, lineno, key))
    if not cases:
        die("%s: no case" % path)
    for c in cases:
        if c.argv is None:
            die("%s: case '%s' has no exec or sh line" % (path, c.name))
    names = [c.name for c in cases]
    for k in ("ref", "base", "subject"):
        if g[k] is not None and g[k] not in names:
            die("%s: %s '%s' is not a case" % (path, k, g[k]))
    if g["ref"] is None:
        g["ref"] = names[0]
    return g, cases


def shell(cmd, env, what, case):
    r = subprocess.run(["/bin/sh", "-c", cmd], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if r.returncode != 0:
        die("%s of case '%s' failed (status %d): %s\n%s" % (
            what, case.name, r.returncode, cmd,
            r.stdout.decode(errors="replace")[-3000:]))


def run_once(case, env, outfile, errfile):
    """One timed run; returns (wall seconds, cpu seconds)."""
    fa = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, outfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, errfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
    ]
    exe = case.argv[0]
    if "/" not in exe:
        found = None
        for d in env.get("PATH", os.defpath).split(":"):
            p = os.path.join(d or ".", exe)
            if os.access(p, os.X_OK):
                found = p
                break
        if not found:
            die("case '%s': %s: not found" % (case.name, exe))
        exe = found
    t0 = time.perf_counter()
    pid = os.posix_spawn(exe, case.argv, env, file_actions=fa)
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter()
    code = os.waitstatus_to_exitcode(status)
    if code != case.expect:
        def tail(p):
            try:
                with open(p, errors="replace") as f:
                    return f.read()[-3000:]
            except OSError:
                return ""
        die("case '%s' exited %d (expected %d)\n  command: %s\n  stdout: %s\n  stderr: %s" % (
            case.name, code, case.expect, case.shown, tail(outfile), tail(errfile)))
    return t1 - t0, ru.ru_utime + ru.ru_stime


def pct(xs, p):
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def fmt(s):
    if s is None:
        return "-"
    a = abs(s)
    if a >= 10:
        return "%.1f s" % s
    if a >= 1:
        return "%.2f s" % s
    if a >= 0.01:
        return "%.0f ms" % (s * 1e3) if a >= 0.1 else "%.1f ms" % (s * 1e3)
    if a >= 0.001:
        return "%.2f ms" % (s * 1e3)
    return "%.0f µs" % (s * 1e6)


def main():
    if len(sys.argv) != 3:
        die("usage: abtime.py SPEC OUTPREFIX")
    g, cases = parse(sys.argv[1])
    prefix = sys.argv[2]
    tmpd = prefix + ".runs"
    os.makedirs(tmpd, exist_ok=True)
    base_env = dict(os.environ)
    base_env.update(g["env"])
    envs = []
    for c in cases:
        e = dict(base_env)
        e.update(c.env)
        envs.append(e)
    rng = random.Random(20240601)
    order_log = []
    total = g["warmup"] + g["rounds"]
    t_start = None
    done = 0
    sys.stderr.write("bench: %s: %d cases, up to %d rounds\n" % (g["title"], len(cases), g["rounds"]))
    for r in range(total):
        timed = r >= g["warmup"]
        if timed and t_start is None:
            t_start = time.monotonic()
        idx = list(range(len(cases)))
        rng.shuffle(idx)
        for i in idx:
            c = cases[i]
            if c.setup:
                shell(c.setup, envs[i], "setup", c)
            out = os.path.join(tmpd, "%d.out" % i)
            err = os.path.join(tmpd, "%d.err" % i)
            w, cpu = run_once(c, envs[i], out, err)
            if c.check:
                shell(c.check, envs[i], "check", c)
            if timed:
                c.wall.append(w)
                c.cpu.append(cpu)
                order_log.append((r - g["warmup"], i, w, cpu))
                if len(c.wall) == 1:
                    os.replace(err, "%s.%d.stderr" % (prefix, i))
        if timed:
            done += 1
            if (g["maxtime"] is not None and done >= g["minrounds"] and
                    time.monotonic() - t_start > g["maxtime"]):
                sys.stderr.write("bench: %s: time budget reached after %d rounds\n" % (g["title"], done))
                break
    for n in os.listdir(tmpd):
        os.unlink(os.path.join(tmpd, n))
    os.rmdir(tmpd)

    ref = next(c for c in cases if c.name == g["ref"])
    base = next((c for c in cases if c.name == g["base"]), None)
    ref_med = statistics.median(ref.wall)
    base_med = statistics.median(base.wall) if base else None

    with open(prefix + ".samples.tsv", "w") as f:
        f.write("round\tcase\twall_s\tcpu_s\n")
        for r, i, w, cpu in order_log:
            f.write("%d\t%s\t%.9f\t%.6f\n" % (r, cases[i].name, w, cpu))

    rows = []
    for c in cases:
        med = statistics.median(c.wall)
        # paired: per round, this case over the reference of the same round
        paired = [a / b for a, b in zip(c.wall, ref.wall)]
        rows.append({
            "case": c.name, "cmd": c.shown, "n": len(c.wall), "median": med,
            "p25": pct(c.wall, 0.25), "p75": pct(c.wall, 0.75), "min": min(c.wall),
            "cpu": statistics.median(c.cpu), "ratio": med / ref_med,
            "pratio": statistics.median(paired), "pr25": pct(paired, 0.25),
            "pr75": pct(paired, 0.75),
            "minus_base": (med - base_med) if base else None,
        })
    with open(prefix + ".summary.tsv", "w") as f:
        keys = ["case", "n", "median", "p25", "p75", "min", "cpu", "ratio", "pratio",
                "pr25", "pr75", "minus_base", "cmd"]
        f.write("\t".join(keys) + "\n")
        for row in rows:
            f.write("\t".join("%.9g" % row[k] if isinstance(row[k], float) else str(row[k])
                              for k in keys) + "\n")

    lines = []
    head = "| case | median | p25–p75 | min | CPU | ratio to %s | per-round ratio (p25–p75) |" % g["ref"]
    sep = "|---|---:|---:|---:|---:|---:|---:|"
    if base:
        head += " minus %s |" % g["base"]
        sep += "---:|"
    lines += [head, sep]
    for row in rows:
        name = row["case"]
        if name == g["ref"]:
            name = "**%s**" % name
        line = "| %s | %s | %s–%s | %s | %s | %.2f× | %.2f× (%.2f–%.2f) |" % (
            name, fmt(row["median"]), fmt(row["p25"]), fmt(row["p75"]),
            fmt(row["min"]), fmt(row["cpu"]), row["ratio"], row["pratio"],
            row["pr25"], row["pr75"])
        if base:
            line += " %s |" % fmt(row["minus_base"])
        lines.append(line)
    subj = next((c for c in cases if c.name == g["subject"]), None)
    if subj:
        parts = []
        for c in cases:
            if c is subj or (base and c is base):
                continue
            paired = [a / b for a, b in zip(subj.wall, c.wall)]
            parts.append("%.2f× %s" % (statistics.median(paired), c.name))
        lines.append("")
        lines.append("**%s** took (median of per-round ratios): %s." % (
            subj.name, ", ".join(parts)))
    lines.append("")
    lines.append("%d interleaved rounds (+%d warm-up), order shuffled per round. "
                 "Commands:" % (len(ref.wall), g["warmup"]))
    lines.append("")
    for row in rows:
        lines.append("- %s: `%s`" % (row["case"], row["cmd"]))
    for n in g["notes"]:
        lines.append("")
        lines.append(n)
    with open(prefix + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    sys.stdout.write("\n".join(lines[:len(rows) + 2]) + "\n")


if __name__ == "__main__":
    main()
