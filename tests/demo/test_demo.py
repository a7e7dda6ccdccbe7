# SPDX-License-Identifier: MIT
"""tools/demo, the README's first command, run headless for a bounded time:
the real m2md polls tools/boiler-sim over Modbus TCP and keeps the boiler
between 80 and 85 °C; the thermostat's switches and alarms reach the
demo's private mosquitto; every process the demo started is gone when it
exits. Then the interactive mode, stopped with Ctrl-C (SIGINT to its
process group, as a terminal sends it), leaves nothing running either."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from m2mtest import BUILD, SLOW, SOURCE, check, main, tmpdir, wait_for  # noqa: E402

DEMO = os.path.join(SOURCE, "tools", "demo")
SECONDS = 30
TIME_SCALE = 4.0

# boiler-sim's defaults (tools/boiler-sim.c) and the poll interval of
# conf/demo.toml: what bounds the overshoot.
HEAT = 1.5       # °C/s added by the burner
TAU = 120.0      # s, time constant of the losses
AMBIENT = 20.0   # °C
INTERVAL = 0.25  # s

# In simulated °C per real second, the fastest the water can move near the
# band: warming at 80 °C with the burner on, cooling at 85 °C with it off.
RISE = (HEAT - (80 - AMBIENT) / TAU) * TIME_SCALE
FALL = ((85 - AMBIENT) / TAU) * TIME_SCALE
# The rule acts on the first reading past a threshold, which can be up to
# one poll interval late; the burner write then waits for the poll in
# progress on the bus and goes out. Allow one interval for each, plus the
# scheduling slack of a loaded machine.
LATENCY = 2 * INTERVAL + 0.25 * SLOW
OVER = RISE * LATENCY
UNDER = FALL * LATENCY


def run_dir(name):
    # Short: the control socket's path must fit sun_path.
    return tmpdir(name)


def demo_args(run, *extra):
    return ["bash", DEMO, "--no-install", "--no-build", "--build-dir", BUILD, "--run-dir", run,
            "--time-scale", str(TIME_SCALE)] + list(extra)


def started_pids(run):
    with open(os.path.join(run, "demo.pids")) as f:
        return [(name, int(pid)) for name, pid in (line.split() for line in f if line.strip())]


def alive(pid):
    """True when PID is a live process (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def check_nothing_left(run):
    pids = started_pids(run)
    names = {n for n, _ in pids}
    check({"mosquitto", "mosquitto_sub", "boiler-sim", "m2md"} <= names,
          "the demo started every part: %r" % pids)
    left = [(n, p) for n, p in pids if alive(p)]
    for n, p in left:  # leave the machine clean even when the check fails
        os.kill(p, signal.SIGKILL)
    check(not left, "nothing the demo started is still running: %r" % left)


def query(db, sql, args=()):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def test_headless_closed_loop():
    run = run_dir("demo")
    t0 = time.monotonic()
    p = subprocess.run(demo_args(run, "--headless", str(SECONDS)), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=(SECONDS + 60) * SLOW)
    took = time.monotonic() - t0
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    print(out)
    print("headless demo took %.1fs" % took)
    check(p.returncode == 0, "the demo exits 0: %d\n%s" % (p.returncode, err))
    check("every part ran for %ds and stopped cleanly" % SECONDS in out, "the demo says it ran")
    check_nothing_left(run)

    db = os.path.join(run, "m2md-demo.db")
    temps = [r[0] for r in query(db, "SELECT value FROM readings WHERE point = "
                                     "(SELECT id FROM points WHERE name = 'boiler1/temperature') "
                                     "AND quality = 0 ORDER BY rowid")]
    check(len(temps) > 50, "temperature readings stored: %d" % len(temps))
    first = next((i for i, v in enumerate(temps) if v >= 80), None)
    check(first is not None, "the boiler warmed up to 80 °C: max %g" % max(temps))
    inside = temps[first:]
    print("temperature after reaching 80: %.2f .. %.2f (allowed %.2f .. %.2f)"
          % (min(inside), max(inside), 80 - UNDER, 85 + OVER))
    check(max(inside) > 85 and min(inside) < 80, "the loop cycled: %g..%g" % (min(inside), max(inside)))
    check(max(inside) <= 85 + OVER, "at most %.2f °C over 85: max %g" % (OVER, max(inside)))
    check(min(inside) >= 80 - UNDER, "at most %.2f °C under 80: min %g" % (UNDER, min(inside)))

    # What the PLC itself saw when its coil was written: the real switch points.
    with open(os.path.join(run, "boiler-sim.log")) as f:
        switches = re.findall(r"burner (on|off) at (-?[0-9.]+)", f.read())
    offs = [float(t) for s, t in switches if s == "off"]
    ons = [float(t) for s, t in switches if s == "on"]
    check(len(offs) >= 3 and len(ons) >= 2, "the PLC's burner switched: %r" % switches)
    # The PLC prints three decimals: 79.9996 shows as 80.000.
    eps = 0.0005
    check(all(85 - eps < t <= 85 + OVER for t in offs), "burner off between 85 and %.2f: %r" % (85 + OVER, offs))
    check(all(80 - UNDER <= t < 80 + eps for t in ons), "burner on between %.2f and 80: %r" % (80 - UNDER, ons))

    ev = query(db, "SELECT from_state, to_state, value FROM events WHERE kind = 'rule' "
                   "AND source = 'boiler1_thermostat' ORDER BY id")
    ups = [e for e in ev if e[:2] == ("normal", "active")]
    downs = [e for e in ev if e[:2] == ("active", "normal")]
    check(len(ups) >= 3 and len(downs) >= 2, "rule transitions both ways: %d up, %d down" % (len(ups), len(downs)))
    check(all(v > 85 for _, _, v in ups) and all(v < 80 for _, _, v in downs), "at the thresholds: %r" % ev)
    writes = query(db, "SELECT value, to_state FROM events WHERE kind = 'write' "
                       "AND source = 'rule:boiler1_thermostat'")
    check({w[0] for w in writes} == {0.0, 1.0} and all(w[1] == "ok" for w in writes),
          "burner writes of both values succeeded: %r" % writes[:6])
    check(not query(db, "SELECT 1 FROM events WHERE kind = 'rule' AND source != 'boiler1_thermostat'"),
          "no other alarm was raised")

    # The broker: the demo's mosquitto_sub recorded what reached it, and
    # was stopped after m2md, so it saw m2md's last messages too.
    with open(os.path.join(run, "mqtt.log")) as f:
        mqtt = [line.split(" ", 1) for line in f.read().splitlines()]
    alarms = [json.loads(payload) for topic, payload in mqtt
              if topic == "m2m/demo/alarms/boiler1_thermostat"]
    print("%d MQTT messages, %d thermostat alarms" % (len(mqtt), len(alarms)))
    # A switch in the last moments before the stop may still wait in the
    # outbox (written before it is published, kept for the next start):
    # what reached the broker is the transitions in order, the rest is in
    # the outbox, nothing is lost. The value is printed with 15 digits.
    waiting = [json.loads(r[0]) for r in query(db, "SELECT payload FROM outbox WHERE topic = "
                                                   "'m2m/demo/alarms/boiler1_thermostat' ORDER BY seq")]
    print("%d alarm messages still in the outbox" % len(waiting))
    check(len(alarms) + len(waiting) == len(ev) and len(alarms) >= len(ev) - 1 and
          all(a["state"] == e[1] and abs(a["value"] - e[2]) < 1e-9 for a, e in zip(alarms + waiting, ev)),
          "every thermostat transition reached the broker, in order: %d messages (%d in the outbox) "
          "for %d transitions" % (len(alarms), len(waiting), len(ev)))
    check(all(a["gateway"] == "demo" and a["point"] == "boiler1/temperature" for a in alarms),
          "alarm payloads name the gateway and the point: %r" % alarms[:1])
    status = [json.loads(payload)["state"] for topic, payload in mqtt if topic == "m2m/demo/status"]
    check(status[:1] == ["online"] and status[-1:] == ["offline"],
          "birth and clean goodbye on the status topic: %r" % status)
    telemetry = [json.loads(payload)["value"] for topic, payload in mqtt
                 if topic == "m2m/demo/boiler1/temperature"]
    check(len(telemetry) > 50 and max(telemetry) > 85, "temperature telemetry: %d messages" % len(telemetry))
    mq = query(db, "SELECT to_state, count(*) FROM events WHERE kind = 'action' "
                   "AND text LIKE 'mqtt %' GROUP BY to_state")
    check(dict(mq).keys() == {"ok"}, "every alarm publish succeeded: %r" % mq)


def test_ctrl_c_stops_everything():
    run = run_dir("demo-int")
    log = open(os.path.join(run, "demo.out"), "wb")
    # A session of its own: its process group stands for the terminal's foreground job.
    p = subprocess.Popen(demo_args(run), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         start_new_session=True)
    try:
        def text():
            with open(os.path.join(run, "demo.out"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        wait_for(lambda: "Ctrl-C stops the demo" in text() or p.poll() is not None, 30,
                 "the demo to start")
        check(p.poll() is None, "the demo runs until interrupted:\n" + text())
        time.sleep(2)
        os.killpg(p.pid, signal.SIGINT)
        code = p.wait(20 * SLOW)
        check(code == 0, "Ctrl-C ends the demo with 0: %d\n%s" % (code, text()))
        check("stopping the demo" in text(), "it says it stops")
        check_nothing_left(run)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        log.close()


if __name__ == "__main__":
    main([test_headless_closed_loop, test_ctrl_c_stops_everything])
