#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Ingest benchmark: the sim driver through normalization into SQLite.

Runs the real m2md from the build tree twice (at the sim driver's highest
rate, and at 10,000 readings/s) and a plain SQLite program doing the same
inserts into the same schema with the same pragmas, all in one run, and
prints the figures side by side. It is a benchmark, not a test: it never
fails because the machine is slow.

Usage: bench-ingest.py [--seconds N]   (M2M_BUILD_ROOT points at the build)
"""

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from m2mtest import BUILD, Gateway, wait_for  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
POINTS = 1000


def sim_config(interval):
    pts = "".join('[[drivers.sim.points]]\nname = "dev%d/p%d"\nsignal = "%s"\ninterval = "%s"\n'
                  % (i // 100, i, ("sine", "ramp", "counter", "random_walk")[i % 4], interval)
                  for i in range(POINTS))
    return '[drivers.sim]\nplugin = "sim"\n' + pts


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime + stime


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def committed(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        return con.execute("SELECT max(rowid) FROM readings").fetchone()[0] or 0
    finally:
        con.close()


def final_stats(g):
    line = [l for l in g.log_text().splitlines() if "final stats:" in l][-1]
    return dict(f.split("=", 1) for f in line.split() if "=" in f)


def run(name, interval, seconds, warmup=2.0):
    g = Gateway("bench-" + name, sim_config(interval),
                storage_extra='commit_rows = 5000\nqueue_limit = 100000\n')
    g.start(extra_args=["--log-level", "info"])
    pid = g.proc.pid
    time.sleep(warmup)
    r0, c0, t0 = committed(g.db), cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    r1, c1, t1 = committed(g.db), cpu_seconds(pid), time.monotonic()
    rss = vm_hwm_kib(pid)
    g.stop()
    st = final_stats(g)
    rows = r1 - r0
    return {
        "rate": rows / (t1 - t0),
        "cpu_per_1000": (c1 - c0) / (rows / 1000.0) if rows else float("nan"),
        "cpu_share": (c1 - c0) / (t1 - t0),
        "rss_mib": rss / 1024.0,
        "lag_p50": float(st["loop_lag_p50"].rstrip("ms")),
        "lag_p99": float(st["loop_lag_p99"].rstrip("ms")),
        "dropped": int(st["dropped"]),
        "db": g.db,
    }


def baseline(schema_db, rows):
    out = os.path.join(os.path.dirname(schema_db), "baseline.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(out + suffix):
            os.unlink(out + suffix)
    exe = os.path.join(BUILD, "tests", "bench", "bench-sqlite-baseline")
    p = subprocess.run([exe, schema_db, out, str(rows), str(POINTS), "5000"],
                       capture_output=True, text=True, check=True)
    return dict((k, float(v)) for k, v in (f.split("=") for f in p.stdout.split()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()

    print("m2md ingest benchmark: %d sim points, %.0f s per run, %d CPUs" % (POINTS, a.seconds, os.cpu_count()))
    top = run("max", "1ms", a.seconds)
    steady = run("10k", "100ms", a.seconds)
    base = baseline(steady["db"], max(int(top["rate"] * a.seconds), 500000))

    ratio = top["rate"] / base["rows_per_s"]
    print()
    print("%-44s %14s  %s" % ("figure", "value", "target"))
    print("%-44s %14.0f" % ("baseline: plain SQLite inserts, rows/s", base["rows_per_s"]))
    print("%-44s %14.6f" % ("baseline: CPU s per 1,000 rows", base["cpu_s"] / (base["rows"] / 1000)))
    print("%-44s %14.0f  (%.0f%% of baseline; target >= 60%%)" % ("m2md max rate: readings/s stored", top["rate"], ratio * 100))
    print("%-44s %14.6f" % ("m2md max rate: CPU s per 1,000 readings", top["cpu_per_1000"]))
    print("%-44s %14d" % ("m2md max rate: readings dropped (counted)", top["dropped"]))
    print("%-44s %14.2f" % ("m2md max rate: peak RSS MiB", top["rss_mib"]))
    print("%-44s %14.3f  (target <= 2 ms)" % ("m2md max rate: loop lag p99 ms", top["lag_p99"]))
    print("%-44s %14.0f" % ("m2md 10k/s: readings/s stored", steady["rate"]))
    print("%-44s %14.6f  (target <= 0.003)" % ("m2md 10k/s: CPU s per 1,000 readings", steady["cpu_per_1000"]))
    print("%-44s %14.2f  (target <= 8 MiB)" % ("m2md 10k/s: peak RSS MiB (1,000 points)", steady["rss_mib"]))
    print("%-44s %14.3f" % ("m2md 10k/s: loop lag p50 ms", steady["lag_p50"]))
    print("%-44s %14.3f  (target <= 2 ms)" % ("m2md 10k/s: loop lag p99 ms", steady["lag_p99"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
