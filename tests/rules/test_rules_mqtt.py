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
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from m2mtest import SLOW, SOURCE, Gateway, check, main, tmpdir, wait_for  # noqa: E402

# /usr/sbin is not on every user's PATH.
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

DRIVERS = """
[mqtt]
url = "mqtt://127.0.0.1:%(port)d"

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
             { mqtt = { topic = "{gateway}/alarms/{rule}", qos = 1 } } ]
on_clear = [ { write = { point = "boiler1/burner", value = 1, rate_limit = "100ms" } },
             { mqtt = { topic = "{gateway}/alarms/{rule}/clear", qos = 1, payload = '{"r":"{rule}","p":"{point}","v":{value},"u":"{unit}","s":"{state}","sev":"{severity}","ts":"{ts}"}' } } ]
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    """A private mosquitto with its own config; stopped by PID."""

    def __init__(self, directory):
        self.port = free_port()
        self.conf = os.path.join(directory, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % self.port)
        self.log = open(os.path.join(directory, "mosquitto.log"), "wb")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        wait_for(self.listening, 10, "mosquitto to listen on %d" % self.port)

    def listening(self):
        check(self.proc.poll() is None, "mosquitto is running")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Subscriber:
    """mosquitto_sub on TOPIC; lines of "topic payload" in a file."""

    def __init__(self, directory, port, topic):
        self.path = os.path.join(directory, "sub.out")
        self.err = os.path.join(directory, "sub.err")
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
    broker = Broker(d)
    sub = g = None
    try:
        sub = Subscriber(d, broker.port, "gw-test/alarms/#")
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
        # Within a few ulps: the client re-prints a JSON payload with cJSON to add "seq".
        vals = sorted({doc["value"] for doc in docs})
        check(len(vals) == len(set(ups)) and all(abs(a - b) <= 1e-9 * abs(b) for a, b in zip(vals, sorted(set(ups)))),
              "the raise values at the broker are those of the events: %r vs %r" % (vals[:3], sorted(ups)[:3]))
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
        broker.stop()


if __name__ == "__main__":
    with open(os.path.join(SOURCE, "src", "mqtt.c")) as f:
        if "placeholder" in f.read(2000):
            # Not a pass: meson reports SKIP until the MQTT client exists.
            print("SKIP: src/mqtt.c is still a placeholder; no MQTT client to test")
            sys.exit(77)
    if not os.access(MOSQUITTO, os.X_OK) or not shutil.which("mosquitto_sub"):
        print("FAIL: mosquitto and mosquitto_sub are needed (apt-get install -y mosquitto mosquitto-clients)")
        sys.exit(1)
    main([test_alarms_reach_broker])
