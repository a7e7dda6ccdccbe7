# SPDX-License-Identifier: MIT
"""The test module (count-module.c), built into a test daemon by one line
of the module table, sees what the core hands to modules: every reading,
the storage decision, the end of each submit, the point set after a reload,
device state changes. Its counts are compared with the daemon's own
counters in the same status object, and with the device events. The plain
m2md does not know its section.

Arguments: the host fixture plugins of tests/plugin (abi11.so reports device
states)."""

import json
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ctl"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "plugin"))

from ctltest import SIM, m2mctl  # noqa: E402
from m2mtest import Gateway, check, ctl, main, run_check, wait_for  # noqa: E402
import test_abi11  # noqa: E402

COUNT_DAEMON = os.environ["M2M_COUNT_DAEMON"]

EXTRA = """
[[drivers.sim.points]]
name = "pump1/speed"
signal = "constant"
value = 3
interval = "50ms"
"""


def status(g):
    r = ctl(g, {"id": 1, "cmd": "status"})
    check(r.get("ok", True) and "result" in r, "status answers: %r" % r)
    return r["result"]


def test_counts_readings():
    g = Gateway("module-count", SIM + "\n[count]\n")
    g.binary = COUNT_DAEMON
    g.start()
    try:
        wait_for(lambda: g.count("boiler1/temperature") >= 5, 10, "readings")
        st = status(g)
        check("count" in st, "the module's status block: %r" % sorted(st))
        n = st["count"]
        # One status object: the module's counts and the core's agree exactly.
        check(n["readings"] > 0 and n["readings"] == st["readings_in"],
              "every reading reached the module: %r vs readings_in %r" % (n, st["readings_in"]))
        check(n["stored"] == st["readings_stored"],
              "the storage decision it saw: %r vs readings_stored %r" % (n, st["readings_stored"]))
        check(0 < n["submits"] <= n["readings"], "once per submit: %r" % n)
        check(n["text"] == 0 and n["points_changed"] == 0 and n["reloads"] == 0, "nothing else yet: %r" % n)

        # The block through m2mctl too.
        code, out, err = m2mctl("status", "--json", socket=g.socket)
        check(code == 0 and json.loads(out)["count"]["readings"] > 0, "m2mctl status --json: %s" % err)

        # A reload that adds a point: the module is reconfigured and told of the new point set.
        g.write_config(SIM + EXTRA + "\n[count]\n")
        g.signal(signal.SIGHUP)
        wait_for(lambda: status(g)["count"]["points_changed"] == 1, 10, "points_changed after reload")
        n = status(g)["count"]
        check(n["reloads"] == 1, "reconfigured once: %r" % n)
        wait_for(lambda: g.count("pump1/speed") >= 1, 10, "the new point's readings")
        st = status(g)
        check(st["count"]["readings"] == st["readings_in"], "still every reading after the reload")

        # A reload without [count] stops the module: its block goes.
        g.write_config(SIM + EXTRA)
        g.signal(signal.SIGHUP)
        wait_for(lambda: "count" not in status(g), 10, "the module stopped by a reload")
    finally:
        check(g.stop() == 0, "clean exit:\n" + g.run_log())


# The ABI 1.1 host test's drivers (tests/plugin/test_abi11.py), with the module.
FIXTURE = test_abi11.DRIVERS + "\n[count]\n"


def test_device_states():
    g = test_abi11.gateway("module-count-devices", FIXTURE, COUNT_DAEMON)

    def events():
        return g.query("SELECT count(*) FROM events WHERE kind IN ('online', 'offline')")[0][0]

    try:
        # dev1 offline (reported three times, one change), dev2 online: two changes.
        wait_for(lambda: status(g)["count"]["device_states"] >= 2, 10, "the first device states")
        n = status(g)["count"]
        check(n["device_states"] == 2 and n["offline"] == 1, "one call per change: %r" % n)
        # The fixture takes the whole instance offline on a write of 2 to ctl/step.
        code, out, err = m2mctl("write", "ctl/step", "2", socket=g.socket)
        check(code == 0, "write ctl/step 2: %s" % err)
        wait_for(lambda: status(g)["count"]["device_states"] == 3, 10, "the instance offline")
        n = status(g)["count"]
        check(n["offline"] == 2, "the instance's state reached the sink: %r" % n)
        wait_for(lambda: events() == 3, 10, "the device events")
        check(status(g)["count"]["device_states"] == events(), "as many calls as device events")
    finally:
        check(g.stop() == 0, "clean exit:\n" + g.run_log())


def test_plain_daemon_refuses_section():
    g = Gateway("module-count-plain", SIM + "\n[count]\n")
    code, out, err = run_check(g.config)
    check(code != 0 and "count" in err, "m2md has no count module: %d %r" % (code, err))


if __name__ == "__main__":
    main([test_counts_readings, test_device_states, test_plain_daemon_refuses_section])
