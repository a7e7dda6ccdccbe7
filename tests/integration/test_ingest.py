# SPDX-License-Identifier: MIT
"""m2md with the sim driver fills SQLite with the expected rows."""

import math
import signal
import time

from m2mtest import Gateway, check, main, wait_for

SIM = """
[drivers.sim]
plugin = "sim"
[[drivers.sim.points]]
name = "line1/count"
signal = "counter"
value = 0
step = 1
interval = "20ms"
[[drivers.sim.points]]
name = "line1/level"
signal = "constant"
value = 5
scale = 2.0
offset = 1.0
unit = "mm"
interval = "20ms"
[[drivers.sim.points]]
name = "line1/flat"
signal = "constant"
value = 3
deadband = 0.5
interval = "20ms"
[[drivers.sim.points]]
name = "line1/hot"
signal = "constant"
value = 500
max = 100
interval = "20ms"
[[drivers.sim.points]]
name = "line1/wave"
signal = "sine"
base = 10
amplitude = 2
period = "1s"
interval = "20ms"
[[drivers.sim.points]]
name = "line1/on"
kind = "bool"
signal = "square"
base = 0.5
amplitude = 0.5
period = "200ms"
interval = "20ms"
"""


def test_rows_arrive():
    g = Gateway("ingest", SIM).start()
    try:
        wait_for(lambda: g.count("line1/count") >= 50, 10, "50 counter rows")
        names = [r[0] for r in g.query("SELECT name FROM points ORDER BY id")]
        check(names == ["line1/count", "line1/level", "line1/flat", "line1/hot", "line1/wave",
                        "line1/on"], "points in declaration order: %r" % names)
        check(g.query("SELECT unit FROM points WHERE name='line1/level'")[0][0] == "mm", "unit stored")
        check(g.query("SELECT kind FROM points WHERE name='line1/on'")[0][0] == "bool", "kind stored")

        counts = g.values("line1/count")
        # A counter sampled every tick: consecutive, no gap, nothing twice.
        check(all(b - a == 1 for a, b in zip(counts, counts[1:])), "counter has no gaps: %r" % counts[:20])
        # Normalization: engineering = raw * scale + offset.
        check(set(g.values("line1/level")) == {11.0}, "scale and offset applied")
        # The deadband keeps a flat signal to its first reading.
        check(g.count("line1/flat") == 1, "deadband holds back unchanged readings")
        # Outside the limits: kept, marked out_of_range (4).
        q = g.query("SELECT DISTINCT r.quality FROM readings r JOIN points p ON p.id=r.point "
                    "WHERE p.name='line1/hot'")
        check(q == [(4,)], "out-of-limit readings are marked out_of_range: %r" % q)
        wave = g.values("line1/wave")
        check(all(7.99 <= v <= 12.01 for v in wave) and max(wave) - min(wave) > 1, "sine within its band")
        check(set(g.values("line1/on")) <= {0.0, 1.0} and len(set(g.values("line1/on"))) == 2,
              "bool square wave alternates 0/1")
        ts = [r[0] for r in g.query("SELECT ts FROM readings ORDER BY rowid")]
        now_us = time.time() * 1e6
        check(all(now_us - 60e6 < t <= now_us + 1e6 for t in ts), "timestamps are µs since the epoch")
        ev = g.query("SELECT kind, source FROM events WHERE kind = 'running'")
        check(("running", "sim") in ev, "driver start is an event: %r" % ev)
    finally:
        t0 = time.monotonic()
        code = g.stop()
    check(code == 0, "SIGTERM exits 0, got %r" % code)
    check(time.monotonic() - t0 < 5, "SIGTERM exits within 5 s")
    check(g.query("SELECT value FROM meta WHERE key='clean_shutdown'")[0][0] in (1, "1"),
          "clean shutdown recorded")
    log = g.log_text()
    check("<3>" not in log, "no error lines in the log:\n" + log)
    check("final stats:" in log and "loop_lag_p99=" in log, "final stats line logged")
    check(" drivers=1/1" in log, "the final line counts the drivers that ran until the stop")


def test_flush_on_stop():
    """Everything queued for storage before SIGTERM is in the database after exit."""
    g = Gateway("flush", SIM, storage_extra='commit_interval = "10s"\ncommit_rows = 1000000').start()
    time.sleep(1.0)
    check(g.stop() == 0, "clean exit")
    final = [l for l in g.log_text().splitlines() if "final stats:" in l][0]
    fields = dict(f.split("=", 1) for f in final.split() if "=" in f)
    stored = int(fields["stored"])
    check(stored >= 100 and int(fields["dropped"]) == 0, "readings were queued: %s" % final)
    check(g.count() == stored, "every queued reading was written at exit: %d of %d" % (g.count(), stored))
    check(int(fields["written"]) == stored and int(fields["queued"]) == 0,
          "the final line counts the flush: %s" % final)
    counts = g.values("line1/count")
    check(counts == [float(i) for i in range(int(counts[0]), int(counts[0]) + len(counts))],
          "flushed counter rows are complete")


def test_sigint_also_stops():
    g = Gateway("sigint", SIM).start()
    g.signal(signal.SIGINT)
    check(g.stop() == 0, "SIGINT exits 0")


if __name__ == "__main__":
    main([test_rows_arrive, test_flush_on_stop, test_sigint_also_stops])
