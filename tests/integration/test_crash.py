# SPDX-License-Identifier: MIT
"""kill -9 during ingest: after a restart the database passes an integrity
check and every row committed before the kill is still there."""

import time

from m2mtest import Gateway, check, main, wait_for

SIM = """
[drivers.sim]
plugin = "sim"
[[drivers.sim.points]]
name = "m/count"
signal = "counter"
interval = "1ms"
[[drivers.sim.points]]
name = "m/wave"
signal = "sine"
interval = "1ms"
"""


def test_kill9():
    g = Gateway("crash", SIM).start()
    for round in range(3):
        wait_for(lambda: g.count() > 2000 * (round + 1), 20, "rows before the kill")
        # What a reader saw as committed must survive the kill.
        committed = g.query("SELECT count(*), max(rowid) FROM readings")[0]
        seen = g.values("m/count")
        g.kill9()
        ok = g.query("PRAGMA integrity_check")
        check(ok == [("ok",)], "integrity after kill -9: %r" % ok)
        after = g.query("SELECT count(*) FROM readings WHERE rowid <= ?", (committed[1],))[0][0]
        check(after == committed[0], "rows committed before the kill are there: %d of %d"
              % (after, committed[0]))
        check(g.values("m/count")[:len(seen)] == seen, "committed values unchanged")
        g.start()
        check("the last shutdown was unclean; quick_check found the database intact" in g.run_log(),
              "the restart checks the database after the unclean shutdown")
    check(g.stop() == 0, "clean exit")
    check(g.query("PRAGMA integrity_check") == [("ok",)], "integrity at the end")
    names = g.query("SELECT name FROM points ORDER BY id")
    check(names == [("m/count",), ("m/wave",)], "ids stable across crashes: %r" % names)


if __name__ == "__main__":
    main([test_kill9])
