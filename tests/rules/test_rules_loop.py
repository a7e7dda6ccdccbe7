# SPDX-License-Identifier: MIT
"""The closed loop through the real daemon and the sim driver: a boiler whose
temperature rises while its burner is on and falls while it is off; one rule
switches the burner off above 85 and on again below 80. Over a bounded run
the temperature stays in the band, the events table holds the transitions
and the write results, and a restart restores alarm states without firing
them again."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from m2mtest import BUILD, SLOW, Gateway, check, ctl, main, wait_for  # noqa: E402

M2MCTL = os.path.join(BUILD, "src", "m2mctl")

INTERVAL = 0.02   # s
RATE_ON = 20.0    # °C/s
RATE_OFF = -15.0

DRIVERS = """
[drivers.sim]
plugin = "sim"
[[drivers.sim.points]]
name = "boiler1/temperature"
unit = "C"
signal = "integrate"
input = "boiler1/burner"
value = 70.0
rate_on = %g
rate_off = %g
low = 0
high = 150
interval = "20ms"
[[drivers.sim.points]]
name = "boiler1/burner"
kind = "bool"
signal = "constant"
value = 1
writable = true
interval = "20ms"

[[rules]]
name = "boiler_high"
point = "boiler1/temperature"
condition = ">"
value = 85
clear = 80
severity = "critical"
on_raise = [ { write = { point = "boiler1/burner", value = 0, rate_limit = "100ms" } },
             { mqtt = { topic = "{gateway}/alarms/{rule}" } } ]
on_clear = [ { write = { point = "boiler1/burner", value = 1, rate_limit = "100ms" } } ]

[[rules]]
name = "warm"
point = "*/temperature"
condition = ">"
value = 50
on_raise = [ { log = "warm raised on {point} at {value} {unit}" } ]

[[rules]]
name = "burner_quiet"
point = "boiler1/burner"
condition = "stale"
stale_after = "2s"
""" % (RATE_ON, RATE_OFF)


def check_band(temps):
    """After the first climb into the band the loop holds it. The rule acts on
    the reading that crossed a threshold, so the temperature may overshoot by
    one step (one interval; longer when a timer fired late, since the sim
    integrates over the real elapsed time), but never moves further away:
    above 85 every next reading is lower, below 80 every next one higher."""
    first = next(i for i, v in enumerate(temps) if v >= 80)
    inside = temps[first:]
    check(len(inside) > 50, "readings in the band: %d" % len(inside))
    away = [(a, b) for a, b in zip(inside, inside[1:]) if (a > 85 and b >= a) or (a < 80 and b <= a)]
    check(not away, "the temperature never moves away from the band: %r" % away[:5])
    steps = [abs(b - a) for a, b in zip(inside, inside[1:])]
    one = INTERVAL * max(RATE_ON, -RATE_OFF)
    over = max(max(steps), one)
    check(min(inside) >= 80 - over and max(inside) <= 85 + over,
          "temperature in [80 - %g, 85 + %g]: min %g max %g" % (over, over, min(inside), max(inside)))
    check(max(inside) > 85 and min(inside) < 80, "the loop really cycled: %g..%g" % (min(inside), max(inside)))
    typical = sorted(steps)[len(steps) // 2]
    check(typical <= 1.5 * one, "typical step is one interval: %g" % typical)


def rule_events(g, rule):
    return g.query("SELECT from_state, to_state, value FROM events WHERE kind = 'rule' AND source = ? "
                   "ORDER BY id", (rule,))


def test_closed_loop_and_restore():
    g = Gateway("rules-loop", DRIVERS).start()
    try:
        wait_for(lambda: len(g.query("SELECT 1 FROM events WHERE kind = 'action' AND source = 'boiler_high' "
                                     "AND to_state = 'ok'")) >= 8,
                 30, "8 burner writes by the rule")
        code = g.stop()
        check(code == 0, "m2md exits 0 (%r)" % code)

        temps = g.values("boiler1/temperature")
        check(len(temps) > 50, "temperature readings stored: %d" % len(temps))
        check_band(temps)
        ev = rule_events(g, "boiler_high")
        ups = [e for e in ev if e[:2] == ("normal", "active")]
        downs = [e for e in ev if e[:2] == ("active", "normal")]
        check(len(ups) >= 4 and len(downs) >= 3, "transitions recorded: %d up, %d down" % (len(ups), len(downs)))
        check(all(v > 85 for _, _, v in ups), "raised on values above 85: %r" % ups[:5])
        check(all(v < 80 for _, _, v in downs), "cleared on values below 80: %r" % downs[:5])

        burner = g.point_id("boiler1/burner")
        acts = g.query("SELECT point, value, to_state, text FROM events WHERE kind = 'action' "
                       "AND source = 'boiler_high' AND text LIKE 'write %' ORDER BY id")
        check(acts and all(a[0] == burner and a[2] == "ok" for a in acts), "write results recorded: %r" % acts[:4])
        check({a[1] for a in acts} == {0.0, 1.0}, "wrote both 0 and 1")
        writes = g.query("SELECT count(*) FROM events WHERE kind = 'write' AND source = 'rule:boiler_high' "
                         "AND to_state = 'ok'")[0][0]
        check(writes >= 8, "the daemon recorded the writes with their origin: %d" % writes)
        # MQTT is not configured: the action fails visibly, the rule still works.
        mq = g.query("SELECT to_state, text FROM events WHERE kind = 'action' AND text LIKE 'mqtt %' LIMIT 1")
        check(mq and mq[0][0] == "error" and "gw-test/alarms/boiler_high" in mq[0][1], "mqtt action: %r" % mq)

        warm = rule_events(g, "warm")
        check(warm[:1] and warm[0][:2] == ("normal", "active") and len(warm) == 1, "warm raised once: %r" % warm)
        check(g.log_text().count("warm raised on boiler1/temperature") == 1, "log action ran once")
        check(rule_events(g, "burner_quiet") == [], "the burner reports: never stale")

        # Restart: 'warm' comes back active without firing again.
        g.start()
        wait_for(lambda: len(g.query("SELECT 1 FROM events WHERE kind = 'action' AND source = 'boiler_high' "
                                     "AND to_state = 'ok'")) >= len(acts) + 4,
                 30, "the loop runs again after the restart")
        check(g.stop() == 0, "second run exits 0")
        warm = rule_events(g, "warm")
        check(len(warm) == 1, "warm was restored, not raised again: %r" % warm)
        check(g.log_text().count("warm raised on boiler1/temperature") == 1, "no second log action")
        check_band(g.values("boiler1/temperature")[len(temps):])
    finally:
        if g.proc is not None:
            g.kill9()


LATCHED = DRIVERS + """
[[rules]]
name = "hot_latched"
point = "boiler1/temperature"
condition = ">"
value = 84
latch = true
on_clear = [ { log = "hot_latched cleared on {point} ({state})" } ]
"""


def latched_state(g):
    alarms = ctl(g, {"id": 1, "cmd": "rules"})["result"]
    return [a["state"] for a in alarms if a["rule"] == "hot_latched"]


def ack_events(g):
    return g.query("SELECT from_state, to_state FROM events WHERE kind = 'rule' AND source = 'hot_latched' "
                   "AND text LIKE '%acknowledged'")


def test_ack_end_to_end():
    """A latched alarm stays until acknowledged through the control socket
    (the daemon calls into the rules engine), and its on_clear actions run
    then. With m2mctl built, the same through m2mctl."""
    g = Gateway("rules-ack", LATCHED).start()
    try:
        wait_for(lambda: latched_state(g), 10, "hot_latched raised")
        # The temperature cycles 80..85: the alarm goes latched, and back up, and never ends alone.
        wait_for(lambda: g.query("SELECT 1 FROM events WHERE source = 'hot_latched' AND to_state = 'latched'"),
                 10, "hot_latched latched once its condition cleared")
        check("hot_latched cleared" not in g.run_log(), "no on_clear before the ack")
        bad = ctl(g, {"id": 7, "cmd": "ack", "rule": "no_such_rule"})
        check(bad["ok"] is False and bad["code"] == "ENOENT" and bad["id"] == 7, "unknown rule refused: %r" % bad)
        rep = ctl(g, {"id": 8, "cmd": "ack", "rule": "hot_latched", "point": "boiler1/temperature"})
        check(rep["ok"] and rep["result"]["acknowledged"] == 1, "ack answered: %r" % rep)
        # Latched when acked: it ends now; active when acked: it ends at the next clear.
        wait_for(lambda: "hot_latched cleared on boiler1/temperature (normal)" in g.run_log(), 10,
                 "the on_clear action after the ack")
        ev = wait_for(lambda: ack_events(g), 10, "the ack recorded as a transition")
        check(ev[0] in (("latched", "normal"), ("active", "acked")), "ack transition: %r" % ev)
        if os.access(M2MCTL, os.X_OK):
            n = len(ack_events(g))
            wait_for(lambda: latched_state(g) == ["latched"], 10, "latched again")
            p = subprocess.run([M2MCTL, "--socket", g.socket, "ack", "hot_latched"], capture_output=True,
                               timeout=10 * SLOW, stdin=subprocess.DEVNULL)
            out = p.stdout.decode()
            check(p.returncode == 0 and "1 alarm(s) acknowledged" in out, "m2mctl ack: %d %r %r"
                  % (p.returncode, out, p.stderr.decode()))
            wait_for(lambda: len(ack_events(g)) > n, 10, "the m2mctl ack recorded")
            p = subprocess.run([M2MCTL, "--socket", g.socket, "ack", "no_such_rule"], capture_output=True,
                               timeout=10 * SLOW, stdin=subprocess.DEVNULL)
            check(p.returncode != 0, "m2mctl ack of an unknown rule fails")
        else:
            print("m2mctl not built: checked through the control socket only", flush=True)
        check(g.stop() == 0, "m2md exits 0")
    finally:
        if g.proc is not None:
            g.kill9()


if __name__ == "__main__":
    main([test_closed_loop_and_restore, test_ack_end_to_end])
