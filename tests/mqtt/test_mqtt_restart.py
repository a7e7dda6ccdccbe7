# SPDX-License-Identifier: MIT
"""Every committed reading gets its QoS 1 message across restarts of the
gateway: after a kill -9 (the sequence numbers jump to the durable
reservation) and after a clean restart with the counter far above an empty
outbox. A real mosquitto and a subscriber that stays connected while m2md
restarts are the peers; the readings table is the record that every
message is checked against. Rule actions after a crash restart go through
the same outbox and are checked the same way."""

import calendar
import json
import os
import resource
import sqlite3
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from m2mtest import SLOW, Gateway, check, ctl, main, tmpdir, wait_for  # noqa: E402
from mqttpeer import Broker, Subscriber, mqtt_status  # noqa: E402
from test_mqtt import mqtt_table, outbox_rows, sim  # noqa: E402

GW = "gw-test"


def ts_us(iso):
    """'2026-12-01T10:00:00.123456Z' as µs since the epoch (the payload's ts)."""
    whole, frac = iso.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) * 1000000 + int(frac.ljust(6, "0"))


def delivered(sub):
    """(point name, ts µs) of every telemetry message the subscriber got."""
    prefix = "m2m/%s/" % GW
    out = set()
    for topic, payload, _, _ in sub.take():
        if topic.endswith("/status") or not topic.startswith(prefix):
            continue
        out.add((topic[len(prefix):], ts_us(json.loads(payload)["ts"])))
    return out


def committed(g, since=0):
    return set(g.query("SELECT p.name, r.ts FROM readings r JOIN points p ON p.id = r.point WHERE r.ts > ?",
                       (since,)))


def in_outbox(g):
    prefix = "m2m/%s/" % GW
    return {(t[len(prefix):], ts_us(json.loads(bytes(p))["ts"]))
            for t, p in g.query("SELECT topic, payload FROM outbox")}


def check_nothing_lost(g, sub, what, since=0):
    """Waits until every reading committed after SINCE (µs) arrived (or sits in the outbox)."""
    want = committed(g, since)
    check(len(want) > 1000, "%s: readings were committed (%d)" % (what, len(want)))
    left = in_outbox(g)
    deadline = time.monotonic() + 20 * SLOW
    while True:
        missing = want - delivered(sub) - left
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    print("%s: %d committed readings, %d delivered, %d in the outbox, %d without a message"
          % (what, len(want), len(want & delivered(sub)), len(left), len(missing)), flush=True)
    check(not missing, "%s: every committed reading has its message: %r" % (what, sorted(missing)[:10]))


def check_no_bookkeeping_drops(g, what):
    st = mqtt_status(g)
    check(st["outbox"]["dropped_unstored"] == 0, "%s: nothing dropped as unstored: %r" % (what, st["outbox"]))
    check("storage is not committing" not in g.run_log(), "%s: no 'not committing' in the log" % what)


def cleanup(g, sub, b):
    if g.proc:
        g.kill9()
    sub.close()
    b.stop()


def test_kill9_restart():
    d = tmpdir("mqtt-kill-restart")
    b = Broker(d).start()
    sub = Subscriber(b.port, ["m2m/%s/#" % GW])
    g = Gateway("mqtt-kill-restart", sim(10, "10ms") + mqtt_table(b.port))
    try:
        g.start()
        time.sleep(2)
        g.kill9()
        seq = dict(g.query("SELECT key, value FROM meta WHERE key LIKE 'mqtt_seq_%'"))
        g.start()
        time.sleep(2)
        check_no_bookkeeping_drops(g, "after kill -9")
        check(mqtt_status(g)["seq_next"] >= seq["mqtt_seq_reserved"],
              "the second run numbers from the reservation: %r" % seq)
        check(g.stop() == 0, "clean exit")
        check_nothing_lost(g, sub, "kill -9 restart")
    finally:
        cleanup(g, sub, b)


def test_clean_restart_high_seq():
    d = tmpdir("mqtt-clean-restart")
    b = Broker(d).start()
    sub = Subscriber(b.port, ["m2m/%s/#" % GW])
    # A first run without [mqtt] makes the database; its outbox is empty.
    g = Gateway("mqtt-clean-restart", sim(10, "10ms"))
    try:
        g.start()
        time.sleep(0.5)
        check(g.stop() == 0, "clean exit")
        check(not outbox_rows(g), "an empty outbox")
        # As after months of running: the next number far above every row (there are none).
        con = sqlite3.connect(g.db)
        con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('mqtt_seq_next', 987654)")
        con.commit()
        con.close()
        first_run = g.query("SELECT max(ts) FROM readings")[0][0]
        g.write_config(sim(10, "10ms") + mqtt_table(b.port))
        g.start()
        time.sleep(2)
        check(mqtt_status(g)["seq_next"] > 987654, "the clean restart continues at the stored number")
        check_no_bookkeeping_drops(g, "clean restart")
        check(g.stop() == 0, "clean exit")
        check_nothing_lost(g, sub, "clean restart at seq 987654", first_run)
    finally:
        cleanup(g, sub, b)


ALARMS = """
[drivers.sim]
plugin = "sim"
%(points)s
[mqtt]
url = "mqtt://127.0.0.1:%(port)d"
reconnect_min = "50ms"
[mqtt.telemetry]
enabled = false
%(rules)s
"""


def test_rule_actions_after_kill9():
    """Three alarms that clear on the same poll after a crash restart: all
    three on_clear messages reach the broker."""
    d = tmpdir("mqtt-rules-restart")
    b = Broker(d).start()
    sub = Subscriber(b.port, ["alarms/#"])
    points = rules = ""
    for i in range(3):
        points += ('[[drivers.sim.points]]\nname = "acc/in%d"\nsignal = "square"\nbase = 50\namplitude = 50\n'
                   'period = "1s"\ninterval = "50ms"\n' % i)
        rules += ('[[rules]]\nname = "high%d"\npoint = "acc/in%d"\ncondition = ">"\nvalue = 60\nclear = 40\n'
                  'on_raise = [ { mqtt = { topic = "alarms/{rule}/active", qos = 1 } } ]\n'
                  'on_clear = [ { mqtt = { topic = "alarms/{rule}/normal", qos = 1 } } ]\n' % (i, i))
    g = Gateway("mqtt-rules-restart", ALARMS % {"points": points, "rules": rules, "port": b.port})

    def clears(msgs):
        return {t.split("/")[1] for t, _, _, _ in msgs if t.endswith("/normal")}

    try:
        g.start()
        sub.wait(lambda m: len(clears(m)) == 3, 10, "the first clears")
        g.kill9()
        sub.clear()
        g.start()
        sub.wait(lambda m: len(clears(m)) == 3, 10, "all three clears after the kill -9 restart")
        time.sleep(1.2)
        errors = g.query("SELECT source, text FROM events WHERE kind = 'action' AND to_state = 'error'")
        check(not errors, "no rule action refused: %r" % errors[:3])
        check_no_bookkeeping_drops(g, "rule actions after kill -9")
        check(g.stop() == 0, "clean exit")
    finally:
        cleanup(g, sub, b)


def full_queue_run(name, telemetry):
    """A run whose disk fills (RLIMIT_FSIZE) until the storage queue (500
    readings) overflows, then has room again. Returns the gateway (stopped),
    the subscriber's messages and the last MQTT status."""
    d = tmpdir(name)
    b = Broker(d).start()
    sub = Subscriber(b.port, ["m2m/%s/#" % GW])
    g = Gateway(name, sim(10, "10ms"), storage_extra="queue_limit = 500\n")
    g.start()
    wait_for(lambda: g.count() > 100, 10, "rows")
    check(g.stop() == 0, "clean stop")
    first_run = g.query("SELECT max(ts) FROM readings")[0][0]
    limit = os.path.getsize(g.db) + 256 * 1024
    g.write_config(sim(10, "10ms") + mqtt_table(b.port, telemetry), storage_extra="queue_limit = 500\n")

    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    def storage():
        return ctl(g, {"id": 1, "cmd": "status"})["result"]["storage"]

    g.start(preexec_fn=cap)
    try:
        wait_for(lambda: storage()["failing"], 30, "commits failing on the full disk")
        wait_for(lambda: storage()["rows_dropped"] > 1000, 30, "the storage queue overflowing")
        resource.prlimit(g.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        wait_for(lambda: not storage()["failing"], 30, "storage recovering")
        time.sleep(1)
        st = mqtt_status(g)
        dropped = storage()["rows_dropped"]
        check(g.stop() == 0, "clean stop")
        return g, sub, st, dropped, first_run
    finally:
        cleanup(g, sub, b)


def test_full_queue_qos1():
    """QoS 1 carries exactly the committed readings: none of those the full
    queue dropped, every one that was stored."""
    g, sub, st, dropped, first_run = full_queue_run("mqtt-queue-qos1", "")
    want = committed(g, first_run)
    got = delivered(sub)
    extra = got - want
    print("full queue, QoS 1: %d dropped by storage, %d committed, %d delivered, %d delivered but not stored"
          % (dropped, len(want), len(got), len(extra)), flush=True)
    check(not extra, "nothing published that is not stored: %r" % sorted(extra)[:10])
    check(st["telemetry"]["unstored_skipped"] == dropped,
          "every reading storage dropped was skipped, counted: %r vs %d" % (st["telemetry"], dropped))
    check(not (want - got - in_outbox(g)), "every committed reading delivered or in the outbox")


def test_full_queue_qos0():
    """QoS 0 is a live view: by default it goes on while storage drops, counted;
    with unstored = "drop" it carries only what was stored."""
    g, sub, st, dropped, first_run = full_queue_run("mqtt-queue-qos0", "[mqtt.telemetry]\nqos = 0\n")
    got = delivered(sub)
    extra = got - committed(g, first_run)
    print("full queue, QoS 0 publish: %d dropped by storage, %d published unstored"
          % (dropped, st["telemetry"]["unstored_published"]), flush=True)
    check(st["telemetry"]["unstored"] == "publish", "publish is the default at QoS 0")
    check(st["telemetry"]["unstored_published"] == dropped, "counted: %r" % st["telemetry"])
    check(len(extra) >= dropped * 0.9, "the unstored readings were published (QoS 0 may lose some)")
    g, sub, st, dropped, first_run = full_queue_run("mqtt-queue-qos0-drop",
                                                    '[mqtt.telemetry]\nqos = 0\nunstored = "drop"\n')
    extra = delivered(sub) - committed(g, first_run)
    check(not extra and st["telemetry"]["unstored_skipped"] == dropped,
          "unstored = drop: nothing published that is not stored (%d extra), %r" % (len(extra), st["telemetry"]))


if __name__ == "__main__":
    main([test_kill9_restart, test_clean_restart_high_seq, test_rule_actions_after_kill9, test_full_queue_qos1,
          test_full_queue_qos0])
