#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark of the serial driver (issue 15): the real m2md reading a socat
pty pair, beside a baseline in the same run (bench-serial-raw: a plain C
program that reads the same pty and only splits lines).

Scenarios:
  nmea   a GNSS receiver's sentences at 115200 baud equivalent (11,000
         bytes/s) for SECONDS, seven points (positions, speed, altitude,
         satellites, dilution, fix)
  regex  200,000 short lines ("V 12345") matched by a regular expression,
         as fast as the pty takes them, one point

Printed per scenario: frames and frames/s, m2md's CPU seconds per 1,000
frames from /proc/PID/stat (all its threads: the loop that reads and
parses, the storage thread that commits every reading), the baseline's
CPU per 1,000 lines on the same bytes, their ratio, and the loop lag p99
m2md reports when it exits. Targets of the issue: m2md <= 3x the
baseline's CPU per frame, loop lag p99 <= 2 ms. A benchmark does not fail
because the machine is slow or busy: it prints and exits 0 unless
something broke.

    M2M_BUILD_ROOT=build /usr/bin/python3 tests/serial/bench_serial.py [SECONDS]
"""

import functools
import os
import re
import subprocess
import sys
import time

from sertest import BUILD, Gateway, PtyPair, driver, point, stats, tmpdir, wait_for

CLK_TCK = os.sysconf("SC_CLK_TCK")
RAW = os.path.join(BUILD, "tests", "serial", "bench-serial-raw")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cs(body):
    return "%02X" % functools.reduce(lambda a, c: a ^ ord(c), body, 0)


def nmea_stream(nbytes):
    """Sentences of a u-blox receiver at 10 Hz, times moving on, NBYTES long."""
    out, t = [], 0
    size = 0
    while size < nbytes:
        hh, mm, ss = (t // 36000) % 24, (t // 600) % 60, (t // 10) % 60
        stamp = "%02d%02d%02d.%02d" % (hh, mm, ss, (t % 10) * 10)
        lat = "4717.%05d" % (11437 + t % 1000)
        for body in ("GNRMC,%s,A,%s,N,00833.91522,E,0.004,77.52,091202,,,A" % (stamp, lat),
                     "GNGGA,%s,%s,N,00833.91590,E,1,08,1.01,499.6,M,48.0,M,," % (stamp, lat),
                     "GNGSA,A,3,10,12,25,32,,,,,,,,,1.45,0.83,1.19,1",
                     "GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00",
                     "GNVTG,77.52,T,,M,0.004,N,0.008,K,A"):
            s = "$%s*%s\r\n" % (body, cs(body))
            out.append(s)
            size += len(s)
        t += 1
    return "".join(out).encode()


def feed(pty, data, rate):
    """Writes DATA at RATE bytes/s (None: as fast as the pty takes it)."""
    if rate is None:
        pty.write(data, chunk=65536)
        return
    step = rate // 100
    t0 = time.monotonic()
    for i in range(0, len(data), step):
        pty.write(data[i:i + step])
        delay = t0 + (i + step) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def run_m2md(name, cfg_points, data, rate):
    d = tmpdir("bench-ser-" + name)
    pty = PtyPair(d)
    cfg = driver("s", port=pty.port, device="s", **cfg_points[0])
    for p in cfg_points[1]:
        cfg += point("s", **p)
    # The default commit interval, not the tests' 50 ms.
    gw = Gateway("bench-ser-" + name, cfg, storage_extra='commit_interval = "100ms"\n',
                 directory=d).start()
    lines = data.count(b"\n")
    try:
        wait_for(lambda: 'reading "%s"' % pty.port in gw.run_log(), 10, "the port opened")
        # What m2md costs with nothing on the line (its timers, the storage
        # thread's commits), to tell the driver's share apart.
        c, t = cpu_seconds(gw.proc.pid), time.monotonic()
        time.sleep(3)
        idle = (cpu_seconds(gw.proc.pid) - c) / (time.monotonic() - t)
        cpu0, t0 = cpu_seconds(gw.proc.pid), time.monotonic()
        feed(pty, data, rate)
        # The CPU is taken before each status request, which costs m2md too,
        # and requests are rare, so that the harness does not weigh in.
        while True:
            time.sleep(0.25)
            t1, cpu1 = time.monotonic(), cpu_seconds(gw.proc.pid)
            st = stats(gw, "s")
            if st["frames"] >= lines or t1 - t0 > 600:
                break
        # Storage commits every 50 ms: let the last commit land before counting.
        time.sleep(0.3)
    finally:
        code = gw.stop()
        pty.kill()
    lag = re.search(r"final stats:.*loop_lag_p99=([0-9.]+)ms", gw.log_text())
    dropped = re.search(r"final stats:.* dropped=([0-9]+)", gw.log_text())
    # Wall time to the last frame: the sleep of the last wait is not the driver's.
    wall = rate and len(data) / rate or t1 - t0
    return dict(frames=st["frames"], wall=wall, cpu=cpu1 - cpu0, code=code,
                idle=idle * (t1 - t0),
                lag=float(lag.group(1)) if lag else float("nan"),
                dropped=int(dropped.group(1)) if dropped else -1, stored=gw.count())


def run_baseline(name, data, rate):
    d = tmpdir("bench-ser-raw-" + name)
    pty = PtyPair(d)
    lines = data.count(b"\n")
    p = subprocess.Popen([RAW, pty.port, str(lines)], stdout=subprocess.PIPE)
    try:
        if p.stdout.readline().strip() != b"READY":
            raise AssertionError("bench-serial-raw did not start")
        feed(pty, data, rate)
        out = p.communicate(timeout=600)[0].split()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        pty.kill()
    return dict(lines=int(out[0]), cpu=float(out[1]))


def report(name, m, b):
    per_k = 1000 * m["cpu"] / max(m["frames"], 1)
    base_k = 1000 * b["cpu"] / max(b["lines"], 1)
    print("%-6s %d frames in %.2fs (%.0f frames/s), %d readings stored, %d dropped"
          % (name, m["frames"], m["wall"], m["frames"] / m["wall"], m["stored"], m["dropped"]))
    print("       m2md %.4f CPU s per 1,000 frames, baseline %.4f, ratio %.2f (target <= 3)"
          % (per_k, base_k, per_k / base_k if base_k else float("inf")))
    print("       of which m2md idle (timers, commits) %.4f; above idle %.4f CPU s per 1,000 "
          "frames" % (1000 * m["idle"] / max(m["frames"], 1),
                      1000 * (m["cpu"] - m["idle"]) / max(m["frames"], 1)))
    print("       loop lag p99 %.3f ms (target <= 2 ms)" % m["lag"])


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    failed = False
    nmea = nmea_stream(11000 * seconds)
    nmea_cfg = (dict(format="nmea"), [
        dict(name="lat", sentence="RMC", field="latitude"),
        dict(name="lon", sentence="RMC", field="longitude"),
        dict(name="speed", sentence="RMC", field="speed_kmh"),
        dict(name="alt", sentence="GGA", field="altitude"),
        dict(name="sats", sentence="GGA", field="satellites"),
        dict(name="hdop", sentence="GGA", field="hdop"),
        dict(name="fix", sentence="RMC", field="status", kind="bool", on="A")])
    lines = b"".join(b"V %d\r\n" % (i % 100000) for i in range(200000))
    regex_cfg = (dict(format="regex", max_length=32, pattern=r"^V ([0-9]+)$"), [dict(name="v")])
    for name, cfg, data, rate in (("nmea", nmea_cfg, nmea, 11000),
                                  ("regex", regex_cfg, lines, None)):
        b = run_baseline(name, data, rate)
        m = run_m2md(name, cfg, data, rate)
        report(name, m, b)
        if m["code"] != 0 or m["frames"] != data.count(b"\n") - data.count(b"\r\n\r\n"):
            print("       BROKEN: exit %r, frames %d of %d" % (m["code"], m["frames"],
                                                           data.count(b"\n")))
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
