# SPDX-License-Identifier: MIT
"""Rules across a reload, through the real daemon, the sim driver and a
private mosquitto: the test drives two tank levels by writing them through
the control socket, and two pumps follow the rules.

- A reload that removes the rules ends their alarms the same way whether
  another rule stays or none does: a transition to normal, the on_clear
  actions (the pump written back, the MQTT message at the broker), a write
  still deferred by a rate limit sent, nothing left in `rules` or status,
  and the database ending with `active -> normal`.
- A changed rule whose condition still holds keeps its alarm: its pump
  stays on, with no clear and no second raise; a change after which the
  condition no longer holds ends it with its on_clear actions."""

import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "mqtt"))

from m2mtest import SLOW, Gateway, check, ctl, main, tmpdir, wait_for  # noqa: E402
from mqttpeer import MOSQUITTO, Broker, Subscriber  # noqa: E402

POINT = """
[[drivers.sim.points]]
name = "%s"
%ssignal = "constant"
value = 0
writable = true
interval = "20ms"
"""

DRIVERS = ('[mqtt]\nurl = "mqtt://127.0.0.1:%(port)d"\nreconnect_min = "50ms"\n\n[drivers.sim]\nplugin = "sim"\n'
           + "".join(POINT % (n, "") for n in ("tank1/level", "tank2/level"))
           + "".join(POINT % (n, 'kind = "bool"\n') for n in ("tank1/pump", "tank2/pump")))

# A rate limit far longer than the test: a deferred write goes out only when a reload sends it.
RULE = """
[[rules]]
name = "%(name)s"
point = "%(tank)s/level"
condition = ">"
value = %(value)g
severity = "%(severity)s"
on_raise = [ { write = { point = "%(tank)s/pump", value = 1, rate_limit = "1h" } },
             { mqtt = { topic = "{gateway}/alarms/{rule}", qos = 1 } } ]
on_clear = [ { write = { point = "%(tank)s/pump", value = 0, rate_limit = "1h" } },
             { mqtt = { topic = "{gateway}/alarms/{rule}/clear", qos = 1 } } ]
"""

OTHER = """
[[rules]]
name = "other"
point = "tank2/pump"
condition = "<"
value = -1
"""


def rule(name, tank, value=50, severity="warning"):
    return RULE % {"name": name, "tank": tank, "value": value, "severity": severity}


def write(g, point, value):
    rep = ctl(g, {"id": 1, "cmd": "write", "point": point, "value": value})
    check(rep["ok"], "write %s = %g: %r" % (point, value, rep))


def read(g, point):
    return ctl(g, {"id": 2, "cmd": "read", "point": point})["result"].get("value")


def rule_events(g, name):
    return g.query("SELECT from_state, to_state, text FROM events WHERE kind = 'rule' AND source = ? ORDER BY id",
                   (name,))


def writes(g, name):
    """The values the daemon wrote for rule NAME, in order (the core's write events)."""
    return [r[0] for r in g.query("SELECT value FROM events WHERE kind = 'write' AND source = ? "
                                  "AND to_state = 'ok' ORDER BY id", ("rule:" + name,))]


def states(g):
    return {(a["rule"], a["point"]): a["state"] for a in ctl(g, {"id": 3, "cmd": "rules", "all": True})["result"]}


def reload_to(g, text, n):
    g.write_config(text)
    g.signal(1)  # SIGHUP
    wait_for(lambda: g.log_text().count("configuration reloaded") >= n, 10, "reload %d" % n)


def raise_and_defer(g, sub):
    """tank_a active with its pump on; tank_b cleared with its pump-off write deferred."""
    write(g, "tank1/level", 80)
    write(g, "tank2/level", 80)
    wait_for(lambda: read(g, "tank1/pump") == 1 and read(g, "tank2/pump") == 1, 10, "both pumps on")
    write(g, "tank2/level", 10)
    wait_for(lambda: g.query("SELECT 1 FROM events WHERE kind = 'action' AND source = 'tank_b' "
                             "AND to_state = 'deferred'"), 10, "tank_b's pump-off write deferred")
    sub.wait(lambda m: [x for x in m if x[0] == "gw-test/alarms/tank_a"], 10, "tank_a's raise at the broker")
    check(states(g)[("tank_a", "tank1/level")] == "active", "tank_a active before the reload")
    check(read(g, "tank2/pump") == 1, "tank_b's pump stays on while its write waits for the rate limit")


def check_ended(g, sub, what):
    """What removing tank_a and tank_b by a reload must do, whatever else stays."""
    sub.wait(lambda m: [x for x in m if x[0] == "gw-test/alarms/tank_a/clear"], 10,
             "tank_a's on_clear message at the broker (%s)" % what)
    clear = [json.loads(p) for t, p, _, _ in sub.take() if t == "gw-test/alarms/tank_a/clear"]
    check(clear[0]["state"] == "normal" and clear[0]["rule"] == "tank_a", "clear payload (%s): %r" % (what, clear))
    wait_for(lambda: read(g, "tank1/pump") == 0, 10, "tank_a's on_clear switched its pump off (%s)" % what)
    wait_for(lambda: read(g, "tank2/pump") == 0, 10, "tank_b's deferred write went out (%s)" % what)
    # Events reach the database at the next commit.
    ev = wait_for(lambda: (lambda e: e if e[-1][1] == "normal" and len(writes(g, "tank_b")) >= 2 else None)(
        rule_events(g, "tank_a")), 10, "the reload's events in the database (%s)" % what)
    check(ev[-1][:2] == ("active", "normal") and "removed or changed by a reload" in ev[-1][2],
          "the database ends tank_a with active -> normal (%s): %r" % (what, ev[-1:]))
    check(rule_events(g, "tank_b")[-1][:2] == ("active", "normal"), "tank_b ended normal (%s)" % what)
    check(writes(g, "tank_a") == [1, 0] and writes(g, "tank_b") == [1, 0],
          "each pump written on, then off once (%s): %r %r" % (what, writes(g, "tank_a"), writes(g, "tank_b")))
    acts = g.query("SELECT to_state, count(*) FROM events WHERE kind = 'action' AND source = 'tank_a' "
                   "GROUP BY to_state")
    check(dict(acts).get("error", 0) == 0, "no failed action (%s): %r" % (what, acts))
    left = [k for k in states(g) if k[0] in ("tank_a", "tank_b")]
    check(not left, "m2mctl rules shows none of them (%s): %r" % (what, left))
    alarms = ctl(g, {"id": 4, "cmd": "status"})["result"]["alarms"]
    check(alarms == [], "status has no alarm (%s): %r" % (what, alarms))


def test_removing_every_rule():
    """The same scenario twice: once a rule stays, once none does."""
    for what, rest in (("another rule stays", OTHER), ("no rule left", "")):
        d = tmpdir("rules-reload-remove")
        broker = Broker(d).start()
        sub = Subscriber(broker.port, ["gw-test/alarms/#"])
        drivers = DRIVERS % {"port": broker.port}
        g = Gateway("rules-reload-remove", drivers + rule("tank_a", "tank1") + rule("tank_b", "tank2") + OTHER,
                    directory=d).start()
        try:
            wait_for(lambda: g.query("SELECT 1 FROM events WHERE kind = 'mqtt' AND to_state = 'connected'"),
                     10, "connected to the broker")
            raise_and_defer(g, sub)
            reload_to(g, drivers + rest, 1)
            check_ended(g, sub, what)
            # Re-adding the rules and restarting must not bring the alarm back (nor run its on_clear again).
            check(g.stop() == 0, "m2md exits 0 (%s)" % what)
            n_events, n_writes = len(rule_events(g, "tank_a")), len(writes(g, "tank_a"))
            g.write_config(drivers + rule("tank_a", "tank1") + rule("tank_b", "tank2"))
            g.start()
            wait_for(lambda: g.count("tank1/level") > 20, 10, "readings after the restart")
            check(states(g).get(("tank_a", "tank1/level")) == "normal", "normal after the restart (%s)" % what)
            check(len(rule_events(g, "tank_a")) == n_events and len(writes(g, "tank_a")) == n_writes,
                  "nothing restored, nothing run again (%s): %r" % (what, rule_events(g, "tank_a")[n_events:]))
            check(g.stop() == 0, "second run exits 0")
        finally:
            if g.proc is not None:
                g.kill9()
            sub.close()
            broker.stop()


def test_changed_rule_that_stays_true():
    d = tmpdir("rules-reload-change")
    broker = Broker(d).start()
    sub = Subscriber(broker.port, ["gw-test/alarms/#"])
    drivers = DRIVERS % {"port": broker.port}
    g = Gateway("rules-reload-change", drivers + rule("tank_a", "tank1"), directory=d).start()
    try:
        wait_for(lambda: g.query("SELECT 1 FROM events WHERE kind = 'mqtt' AND to_state = 'connected'"),
                 10, "connected to the broker")
        write(g, "tank1/level", 80)
        wait_for(lambda: read(g, "tank1/pump") == 1, 10, "the pump on")
        sub.wait(lambda m: [x for x in m if x[0] == "gw-test/alarms/tank_a"], 10, "the raise at the broker")
        n_events = len(rule_events(g, "tank_a"))

        # Changed threshold and severity; 80 is still above the new threshold.
        reload_to(g, drivers + rule("tank_a", "tank1", value=60, severity="critical"), 1)
        time.sleep(0.5 * SLOW)  # 25 readings of the pump
        check(writes(g, "tank_a") == [1], "no write by the reload: %r" % writes(g, "tank_a"))
        check(len(rule_events(g, "tank_a")) == n_events, "no transition: %r" % rule_events(g, "tank_a")[n_events:])
        pump = g.values("tank1/pump")
        first_on = pump.index(1)
        check(0 not in pump[first_on:], "the pump never went off: %r" % pump[first_on:][:40])
        msgs = [t for t, _, _, _ in sub.take()]
        check(msgs.count("gw-test/alarms/tank_a") == 1 and "gw-test/alarms/tank_a/clear" not in msgs,
              "no clear and no second raise at the broker: %r" % msgs)
        st = [a for a in ctl(g, {"id": 5, "cmd": "status"})["result"]["alarms"] if a["rule"] == "tank_a"]
        check(st and st[0]["state"] == "active" and st[0]["severity"] == "critical",
              "still active, with the new severity: %r" % st)

        # A change after which the condition no longer holds (80 is not above 90) ends the alarm.
        reload_to(g, drivers + rule("tank_a", "tank1", value=90), 2)
        wait_for(lambda: read(g, "tank1/pump") == 0, 10, "the pump off by the ended alarm's on_clear")
        ev = wait_for(lambda: rule_events(g, "tank_a")[n_events:], 10, "the transition recorded")
        check(ev[-1][:2] == ("active", "normal") and "removed or changed by a reload" in ev[-1][2],
              "ended by the reload: %r" % ev)
        wait_for(lambda: len(writes(g, "tank_a")) >= 2, 10, "the write recorded")
        check(writes(g, "tank_a") == [1, 0], "written off once, at once despite the rate limit: %r"
              % writes(g, "tank_a"))
        sub.wait(lambda m: [x for x in m if x[0] == "gw-test/alarms/tank_a/clear"], 10, "the clear at the broker")
        check(g.stop() == 0, "m2md exits 0")
    finally:
        if g.proc is not None:
            g.kill9()
        sub.close()
        broker.stop()


if __name__ == "__main__":
    if not os.access(MOSQUITTO, os.X_OK) or not shutil.which("mosquitto_sub"):
        print("FAIL: mosquitto is needed (apt-get install -y mosquitto mosquitto-clients)")
        sys.exit(1)
    main([test_removing_every_rule, test_changed_rule_that_stays_true])
