# SPDX-License-Identifier: MIT
"""The closed loop's alarms at a real broker: a private mosquitto on
127.0.0.1 and a free port, started and stopped by this test, and
mosquitto_sub as the independent consumer. The boiler of test_rules_loop
cycles; every raise and every clear of its rule is published with the
templates filled in, and what arrives matches the events table."""

import json
import os
import shutil
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "mqtt"))

from m2mtest import Gateway, check, main, tmpdir, wait_for  # noqa: E402
from mqttpeer import MOSQUITTO, Broker  # noqa: E402

DRIVERS = """
[mqtt]
url = "mqtt://127.0.0.1:%(port)d"
topic_prefix = "site7"

[drivers.sim]
plugin = "sim"
[[drivers.sim.points]]
name = "boiler1/temperature"
unit = "C"
signal = "integrate"
input = "boiler1/burner"
value = 70.0
rate_on = 20
rate_off = -15
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
             { mqtt = { topic = "{gateway}/alarms/{rule}", qos = 1 } },
             { mqtt = { topic = "{prefix}/{gateway}/alarms/{rule}", qos = 1 } } ]
on_clear = [ { write = { point = "boiler1/burner", value = 1, rate_limit = "100ms" } },
             { mqtt = { topic = "{gateway}/alarms/{rule}/clear", qos = 1, payload = '{"r":"{rule}","p":"{point}","v":{value},"u":"{unit}","s":"{state}","sev":"{severity}","ts":"{ts}"}' } } ]
"""


class Subscriber:
    """mosquitto_sub on TOPIC; lines of "topic payload" in a file."""

    def __init__(self, directory, port, topic, name="sub"):
        self.path = os.path.join(directory, name + ".out")
        self.err = os.path.join(directory, name + ".err")
        self.out = open(self.path, "wb")
        self.errf = open(self.err, "wb")
        # stdbuf: mosquitto_sub writes through stdio, fully buffered into a file.
        self.proc = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(port),
                                      "-q", "1", "-d", "-t", topic, "-F", "MSG %t %p"],
                                     stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.errf)
        # -d prints the broker's SUBACK: from then on nothing published is missed.
        wait_for(lambda: b"SUBACK" in open(self.path, "rb").read(), 10, "mosquitto_sub subscribed")

    def messages(self):
        with open(self.path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return [tuple(l[4:].split(" ", 1)) for l in lines if l.startswith("MSG ")]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.errf.close()


def rule_events(g, to):
    return g.query("SELECT value FROM events WHERE kind = 'rule' AND source = 'boiler_high' AND to_state = ? "
                   "ORDER BY id", (to,))


def test_alarms_reach_broker():
    d = tmpdir("rules-mqtt")
    broker = Broker(d).start()
    sub = g = under_prefix = None
    try:
        sub = Subscriber(d, broker.port, "gw-test/alarms/#")
        under_prefix = Subscriber(d, broker.port, "site7/gw-test/alarms/#", "prefixed")
        g = Gateway("rules-mqtt", DRIVERS % {"port": broker.port}, directory=d).start()
        wait_for(lambda: len([m for m in sub.messages() if m[0] == "gw-test/alarms/boiler_high/clear"]) >= 4,
                 30, "4 clear alarms at the broker")
        check(g.stop() == 0, "m2md exits 0")
        ups = [r[0] for r in rule_events(g, "active")]
        downs = [r[0] for r in rule_events(g, "normal")]
        # QoS 1 is at least once: every transition arrives, duplicates may.
        wait_for(lambda: len([m for m in sub.messages() if m[0] == "gw-test/alarms/boiler_high"]) >= len(ups),
                 10, "every raise at the broker (%d)" % len(ups))
        raised = [m for m in sub.messages() if m[0] == "gw-test/alarms/boiler_high"]
        cleared = [m for m in sub.messages() if m[0] == "gw-test/alarms/boiler_high/clear"]
        check(len(ups) >= 4 and len(downs) >= 4, "transitions recorded: %d up, %d down" % (len(ups), len(downs)))
        docs = [json.loads(p) for _, p in raised]
        for doc in docs:
            check(doc["gateway"] == "gw-test" and doc["rule"] == "boiler_high"
                  and doc["point"] == "boiler1/temperature" and doc["state"] == "active"
                  and doc["severity"] == "critical" and doc["unit"] == "C" and doc["value"] > 85
                  and doc["ts"].endswith("Z"), "raise payload: %r" % doc)
        # Exactly: the client re-prints the payload to add "seq", with the one number formatter.
        vals = sorted({doc["value"] for doc in docs})
        check(vals == sorted(set(ups)),
              "the raise values at the broker are those of the events: %r vs %r" % (vals[:3], sorted(ups)[:3]))
        # {prefix} is [mqtt] topic_prefix: an alarm can be published inside the gateway's topics.
        wait_for(lambda: len([m for m in under_prefix.messages()
                              if m[0] == "site7/gw-test/alarms/boiler_high"]) >= len(ups),
                 10, "every raise under {prefix}")
        check(all(isinstance(doc.get("seq"), int) for doc in docs), "each alarm carries the gateway's sequence number")
        for _, p in cleared:
            doc = json.loads(p)
            check(doc["r"] == "boiler_high" and doc["p"] == "boiler1/temperature" and doc["s"] == "normal"
                  and doc["sev"] == "critical" and doc["u"] == "C" and doc["v"] < 80 and doc["ts"][:2] == "20",
                  "clear payload: %r" % doc)
        acts = g.query("SELECT to_state, count(*) FROM events WHERE kind = 'action' AND text LIKE 'mqtt %' "
                       "GROUP BY to_state")
        check(dict(acts).get("error", 0) == 0 and dict(acts).get("ok", 0) >= len(ups) + len(downs),
              "every mqtt action recorded ok: %r" % acts)
    finally:
        if g is not None and g.proc is not None:
            g.kill9()
        if sub is not None:
            sub.stop()
        if under_prefix is not None:
            under_prefix.stop()
        broker.stop()


if __name__ == "__main__":
    if not os.access(MOSQUITTO, os.X_OK) or not shutil.which("mosquitto_sub"):
        print("FAIL: mosquitto and mosquitto_sub are needed (apt-get install -y mosquitto mosquitto-clients)")
        sys.exit(1)
    main([test_alarms_reach_broker])
