# SPDX-License-Identifier: MIT
"""Retained commands against a real mosquitto, under both protocol versions.

A retained command would be written again at every connect of the gateway,
so it is never executed where m2md can tell it is retained:
- MQTT 5: m2md subscribes with retain-as-published, so a retained command
  published while it is connected arrives flagged and is refused, as is
  one the broker holds when m2md connects;
- MQTT 3.1.1: the broker clears the flag on messages it forwards live, so
  only the retained command present at connect can be told apart and is
  refused; a live one is executed (docs/mqtt.md says so).
Every refusal echoes the request's id."""

import json
import os
import sys
import time

from m2mtest import SLOW, Gateway, check, main, tmpdir, wait_for
from mqttpeer import MOSQUITTO, Broker, Subscriber, ctl, mqtt_status, publish

GW = "gw-test"
TOPIC = "m2m/%s/valve/pos/set" % GW
DRIVERS = ('[drivers.sim]\nplugin = "sim"\n'
           '[[drivers.sim.points]]\nname = "valve/pos"\nsignal = "constant"\nwritable = true\n'
           'min = 0\nmax = 100\ninterval = "50ms"\n')


def config(port, protocol):
    return DRIVERS + ('[mqtt]\nurl = "mqtt://127.0.0.1:%d"\nreconnect_min = "50ms"\nprotocol = "%s"\n'
                      '[mqtt.commands]\nenabled = true\n' % (port, protocol))


def replies(sub):
    return [json.loads(p) for t, p, _, _ in sub.take() if t == TOPIC + "/result"]


def valve(g):
    return ctl(g, {"id": 1, "cmd": "read", "point": "valve/pos"})["result"].get("value")


def subscribed(g, sub):
    """Connected, and the command subscription in place: a plain command is answered."""
    wait_for(lambda: mqtt_status(g)["state"] == "connected", 10, "connected")
    n = len(replies(sub))
    deadline = time.monotonic() + 10 * SLOW
    while not replies(sub)[n:]:
        check(time.monotonic() < deadline, "the gateway answers commands")
        publish(sub.port, TOPIC, json.dumps({"value": 1, "id": "probe"}))
        time.sleep(0.2)
    wait_for(lambda: valve(g) == 1, 10, "the probe written")


def ask(sub, payload, retain):
    n = len(replies(sub))
    publish(sub.port, TOPIC, payload, retain=retain)
    return sub.wait(lambda m: replies(sub)[n:], 10, "a reply to %s" % payload)[0]


def run(protocol):
    d = tmpdir("mqtt-retained")
    b = Broker(d).start()
    sub = Subscriber(b.port, [TOPIC + "/result"], v5=True)
    sub.port = b.port
    g = Gateway("mqtt-retained", config(b.port, protocol), directory=d).start()
    try:
        subscribed(g, sub)
        rep = ask(sub, json.dumps({"value": 33, "id": "ret1"}), retain=True)
        if protocol == "5":
            check(rep.get("id") == "ret1" and rep["ok"] is False and "retained" in rep.get("error", ""),
                  "MQTT 5: a live retained command is refused, with its id: %r" % rep)
            time.sleep(0.3 * SLOW)
            check(valve(g) == 1, "MQTT 5: the live retained command wrote nothing: %r" % valve(g))
        else:
            # The broker forwards it without the flag: it cannot be told apart (documented).
            check(rep == {"id": "ret1", "ok": True}, "MQTT 3.1.1: a live retained command looks live: %r" % rep)
            wait_for(lambda: valve(g) == 33, 10, "MQTT 3.1.1: written")
        # A live command without retain still works.
        rep = ask(sub, json.dumps({"value": 7, "id": "live"}), retain=False)
        check(rep == {"id": "live", "ok": True}, "a plain command is executed (MQTT %s): %r" % (protocol, rep))
        wait_for(lambda: valve(g) == 7, 10, "7 written")

        # At the next connect the broker hands the retained command over: refused, with its id.
        check(g.stop() == 0, "m2md exits 0")
        n = len(replies(sub))
        g.start()
        rep = sub.wait(lambda m: replies(sub)[n:], 10, "the reply to the retained command at connect")[0]
        check(rep.get("id") == "ret1" and rep["ok"] is False and "retained" in rep.get("error", ""),
              "MQTT %s: the retained command at connect is refused, with its id: %r" % (protocol, rep))
        time.sleep(0.3 * SLOW)
        check(valve(g) == 0, "MQTT %s: nothing written at connect: %r" % (protocol, valve(g)))
        st = mqtt_status(g)["commands"]
        check(st["ok"] == 0 and st["invalid"] == 1, "counted as invalid: %r" % st)

        # A retained command whose payload is not even valid still names its id.
        # Clearing it (an empty retained message) is answered too: it arrives as a command.
        rep = ask(sub, "", retain=True)
        check(rep["ok"] is False and "id" not in rep, "the clear refused: %r" % rep)
        rep = ask(sub, json.dumps({"value": "high", "id": 9}), retain=True)
        want = "retained" if protocol == "5" else "malformed"  # 3.1.1: it arrives as a live one
        check(rep.get("id") == 9 and rep["ok"] is False and want in rep["error"],
              "MQTT %s: a malformed retained command is refused (%s), with its id: %r" % (protocol, want, rep))
        publish(b.port, TOPIC, "", retain=True)  # clear it
        check(g.stop() == 0, "m2md exits 0")
    finally:
        if g.proc:
            g.kill9()
        sub.close()
        b.stop()


def test_mqtt5():
    run("5")


def test_mqtt311():
    run("3.1.1")


if __name__ == "__main__":
    if not os.access(MOSQUITTO, os.X_OK):
        print("FAIL: mosquitto is needed (apt-get install -y mosquitto mosquitto-clients)")
        sys.exit(1)
    main([test_mqtt5, test_mqtt311])
