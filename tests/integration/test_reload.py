# SPDX-License-Identifier: MIT
"""SIGHUP reload: only changed drivers restart, ids stay, nothing is lost,
and a bad config keeps the running one."""

import signal
import time

from m2mtest import Gateway, check, main, wait_for

A = """
[drivers.a]
plugin = "sim"
[[drivers.a.points]]
name = "a/count"
signal = "counter"
interval = "10ms"
"""

B1 = """
[drivers.b]
plugin = "sim"
[[drivers.b.points]]
name = "b/x"
signal = "constant"
value = 1
interval = "20ms"
"""

B2 = """
[drivers.b]
plugin = "sim"
[[drivers.b.points]]
name = "b/x"
signal = "constant"
value = 7
interval = "20ms"
[[drivers.b.points]]
name = "b/y"
signal = "constant"
value = 2
interval = "20ms"
"""

C = """
[drivers.c]
plugin = "sim"
[[drivers.c.points]]
name = "c/z"
signal = "counter"
interval = "20ms"
"""


def reloaded(g, n):
    return lambda: g.log_text().count("configuration reloaded") >= n


def test_reload():
    g = Gateway("reload", A + B1).start()
    try:
        wait_for(lambda: g.count("b/x") >= 5 and g.count("a/count") >= 20, 10, "first rows")
        id_a, id_x = g.point_id("a/count"), g.point_id("b/x")

        g.write_config(A + B2 + C)
        g.signal(signal.SIGHUP)
        wait_for(reloaded(g, 1), 10, "reload 1")
        wait_for(lambda: 7.0 in g.values("b/x") and g.count("b/y") > 0 and g.count("c/z") > 0,
                 10, "the changed and the new driver's rows")
        check(g.point_id("a/count") == id_a and g.point_id("b/x") == id_x, "ids stay across reload")
        check(g.point_id("b/y") > max(id_a, id_x) and g.point_id("c/z") > max(id_a, id_x),
              "new points get new ids")
        log = g.log_text()
        check("driver a: started" in log and log.count("driver a: started") == 1,
              "the unchanged driver was not restarted")
        check(log.count("driver b: started") == 2, "the changed driver was restarted")

        # A broken file: the running configuration stays, and the log says why.
        with open(g.config, "a") as f:
            f.write("\n[drivers.a\n")
        g.signal(signal.SIGHUP)
        wait_for(lambda: "reload failed, keeping the running configuration" in g.log_text(), 10,
                 "failed reload logged")
        check("m2md.toml:" in g.log_text().split("reload failed")[1].splitlines()[0],
              "failed reload names the file and line")
        n = g.count("a/count")
        wait_for(lambda: g.count("a/count") > n + 10, 10, "still ingesting after a bad reload")

        # A config whose error is semantic (an unknown key) is refused the same way.
        g.write_config(A + B2 + C + '\n[drivers.d]\nplugin = "sim"\nbogus = 1\n'
                       '[[drivers.d.points]]\nname = "d/x"\nsignal = "constant"\n')
        g.signal(signal.SIGHUP)
        wait_for(lambda: g.log_text().count("reload failed") >= 2, 10, "second failed reload")
        check("drivers.d.bogus" in g.log_text(), "unknown key named in the failed reload")

        # Removing a driver stops it.
        g.write_config(A + B2)
        g.signal(signal.SIGHUP)
        wait_for(reloaded(g, 2), 10, "reload 2")
        time.sleep(0.3)
        nz = g.count("c/z")
        time.sleep(0.5)
        check(g.count("c/z") == nz, "the removed driver's points stop")
    finally:
        check(g.stop() == 0, "clean exit")

    # Nothing lost: the unchanged driver's counter is whole across both reloads.
    counts = g.values("a/count")
    gaps = [(a, b) for a, b in zip(counts, counts[1:]) if b - a != 1]
    check(not gaps and len(counts) > 50, "a/count has no gaps across reloads: %r" % gaps[:5])
    kinds = [r[0] for r in g.query("SELECT to_state FROM events WHERE kind='reload'")]
    check(kinds.count("failed") == 2, "failed reloads are events: %r" % kinds)

    # Ids survive a restart too.
    g2 = Gateway("reload", A + B2, directory=g.dir)
    g2.write_config(A + B2)
    g2.start()
    try:
        wait_for(lambda: g2.count("a/count") > len(counts), 10, "rows after restart")
        check(g2.point_id("a/count") == id_a and g2.point_id("b/x") == id_x, "ids survive a restart")
        check(len(g2.query("SELECT id FROM points")) == 4, "no duplicate point rows")
    finally:
        g2.stop()


if __name__ == "__main__":
    main([test_reload])
