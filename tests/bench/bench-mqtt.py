#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""MQTT benchmark: m2md's telemetry to a local mosquitto beside a plain
libmosquitto publisher loop (bench-mqtt-baseline) measured in the same run.

  1. QoS 0 and QoS 1: messages/s and CPU seconds per 1,000 messages. m2md
     runs the sim driver faster than it can publish, so its figure is its
     capacity (sim, normalization, SQLite and MQTT together, all its
     threads); the baseline publishes pre-formatted messages of the same
     size and nothing else.
  2. Outbox drain: the broker is down for an outage (60 s, or
     M2M_BENCH_OUTAGE seconds) while telemetry at QoS 1 fills the outbox;
     then the broker comes back and the drain rate is measured until the
     backlog is gone (live telemetry keeps flowing meanwhile).

It is a benchmark, not a test: it never fails because the machine is slow.
Usage: bench-mqtt.py [--seconds N]   (M2M_BUILD_ROOT points at the build)
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "mqtt"))
from m2mtest import BUILD, Gateway, tmpdir, wait_for  # noqa: E402
from mqttpeer import Broker, ctl, mqtt_status  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
BASELINE = os.path.join(BUILD, "tests", "bench", "bench-mqtt-baseline")
# Points at 1 ms: more than the gateway can publish, so its rate is its capacity.
POINTS = int(os.environ.get("M2M_BENCH_POINTS", "400"))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def sim(points, interval):
    return '[drivers.sim]\nplugin = "sim"\n' + "".join(
        '[[drivers.sim.points]]\nname = "line/p%d"\nsignal = "ramp"\ninterval = "%s"\nunit = "kW"\n'
        % (i, interval) for i in range(points))


def mqtt(port, qos, extra=""):
    return ('[mqtt]\nurl = "mqtt://127.0.0.1:%d"\nreconnect_min = "50ms"\nreconnect_max = "200ms"\n'
            '[mqtt.telemetry]\nqos = %d\n%s' % (port, qos, extra))


def baseline(port, qos, count):
    p = subprocess.run([BASELINE, str(port), str(qos), str(count), "10000" if qos == 0 else "100"],
                       capture_output=True, timeout=300, check=True)
    r = json.loads(p.stdout)
    return r["messages"] / r["wall_s"], r["cpu_s"] / r["messages"] * 1000


def m2md_rate(d, port, qos, seconds, points=None, interval="1ms"):
    """Messages/s m2md publishes (QoS 0: written; QoS 1: acknowledged) and CPU s per 1,000."""
    points = points or POINTS
    # No drain_rate cap here: this measures what the gateway can do, not the default's limit.
    g = Gateway("bench-mqtt-q%d" % qos, sim(points, interval) + mqtt(port, qos, "[mqtt.outbox]\ndrain_rate = 0\n"),
                storage_extra='synchronous = "normal"\n', directory=None)
    g.start()
    try:
        key = "qos0_sent" if qos == 0 else "acked"
        wait_for(lambda: mqtt_status(g)[key] > 1000, 20, "publishing")
        time.sleep(1)
        r0, c0, t0 = ctl(g, {"id": 1, "cmd": "status"})["result"], cpu_seconds(g.proc.pid), time.monotonic()
        time.sleep(seconds)
        r1, c1, t1 = ctl(g, {"id": 1, "cmd": "status"})["result"], cpu_seconds(g.proc.pid), time.monotonic()
        s0, s1 = r0["mqtt"], r1["mqtt"]
        n = s1[key] - s0[key]
        # When readings outrun publishing, the CPU figure also pays for storing the excess.
        extra = {"readings_per_s": int((r1["readings_in"] - r0["readings_in"]) / (t1 - t0)),
                 "qos0_dropped": s1["qos0_dropped"] - s0["qos0_dropped"], "outbox": s1["outbox"]["queued"],
                 "outbox_dropped": s1["outbox"]["dropped"]}
        return n / (t1 - t0), (c1 - c0) / n * 1000 if n else float("nan"), extra
    finally:
        g.stop(60)


def drain(d, outage):
    """Outbox drain after OUTAGE seconds without a broker, at 5,000 messages/s of telemetry."""
    b = Broker(d)
    g = Gateway("bench-mqtt-drain", sim(50, "10ms") + mqtt(b.port, 1, "[mqtt.outbox]\nmax_messages = 10000000\n"))
    g.start()
    try:
        time.sleep(outage)
        st = mqtt_status(g)
        backlog = st["outbox"]["queued"]
        b.start()
        a0, c0, t0 = st["acked"], cpu_seconds(g.proc.pid), time.monotonic()
        wait_for(lambda: mqtt_status(g)["outbox"]["queued"] < 2000, 600, "the outbox to drain")
        st1, c1, t1 = mqtt_status(g), cpu_seconds(g.proc.pid), time.monotonic()
        n = st1["acked"] - a0
        return backlog, n / (t1 - t0), (c1 - c0) / n * 1000, t1 - t0
    finally:
        g.stop(60)
        b.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    outage = float(os.environ.get("M2M_BENCH_OUTAGE", "60"))
    d = tmpdir("bench-mqtt")
    b = Broker(d).start()
    try:
        print("MQTT benchmark: local mosquitto, %s-second windows, %d CPUs" % (args.seconds, os.cpu_count()),
              flush=True)
        # Capacity: more readings than m2md can publish. Then QoS 1 at a rate it
        # sustains, where the CPU figure is not inflated by storing what waits.
        runs = [(0, POINTS, "1ms", "capacity"), (1, POINTS, "1ms", "capacity, overloaded"),
                (1, 60, "2ms", "30,000/s offered")]
        base = {}
        for qos, points, interval, label in runs:
            if qos not in base:
                base[qos] = baseline(b.port, qos, 200000 if qos == 0 else 100000)
            brate, bcpu = base[qos]
            rate, cpu, extra = m2md_rate(d, b.port, qos, args.seconds, points, interval)
            print("QoS %d (%s): m2md %9.0f msg/s %7.4f CPU s/1000 msgs | baseline %9.0f msg/s %7.4f CPU s/1000 msgs"
                  " | rate ratio %.2f, CPU ratio %.1f  (%s)"
                  % (qos, label, rate, cpu, brate, bcpu, rate / brate, cpu / bcpu,
                     ", ".join("%s=%s" % kv for kv in sorted(extra.items()))), flush=True)
    finally:
        b.stop()
    backlog, rate, cpu, secs = drain(d, outage)
    print("outbox drain after a %.0f s outage: %d messages queued, drained at %.0f msg/s "
          "(%.1f s, %.4f CPU s/1000 msgs, live telemetry at 5000 msg/s included)"
          % (outage, backlog, rate, secs, cpu), flush=True)


if __name__ == "__main__":
    main()
