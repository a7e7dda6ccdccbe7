#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The ble driver under load (issue 16's benchmark): 200 simulated pvvx
thermometers advertising 10 times a second each through the BlueZ mock
(tests/ble/plugin/bluez_mock.py), 2,000 adverts/s for 20 s, with
DuplicateData on as the driver sets it, into m2md's storage.

Printed, never asserted: CPU s per 1,000 adverts of m2md and, in the same
run, of dbus-monitor receiving and printing the same signals (the
yardstick: a program that parses every advert and does nothing else);
adverts dropped (sent by the mock while discovery ran, not reported by the
driver); m2md's loop lag p99 (median and worst of its 2 s stats windows);
and the decoders' own ns per advert (bench-ble-decode) as a share of
m2md's CPU per advert, the rest being D-Bus parsing, storage and the core.

    M2M_BUILD_ROOT=build /usr/bin/python3 tests/bench/bench-ble.py
    M2M_BENCH_SECONDS=5 M2M_BENCH_RATE=1000 ... (shorter, lighter)
"""

import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ble", "plugin"))
from bletest import device, driver, point, rig, status, wait_for  # noqa: E402
from m2mtest import BUILD  # noqa: E402

DEVICES = int(os.environ.get("M2M_BENCH_DEVICES", "200"))
RATE = int(os.environ.get("M2M_BENCH_RATE", "2000"))
SECONDS = float(os.environ.get("M2M_BENCH_SECONDS", "20"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def start_profile(pid, d):
    """perf sampling m2md's CPU (cpu-clock, so it works without hardware
    counters), when perf is installed; None otherwise."""
    if subprocess.run(["sh", "-c", "command -v perf"], capture_output=True).returncode != 0:
        return None
    out = os.path.join(d, "perf.data")
    p = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-o", out, "-p", str(pid)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p, out


# Where a sample's time goes, by the shared object or symbol it was in.
GROUPS = [
    ("decoding (ble-adv)", lambda dso, sym: sym.startswith(("ble_adv_", "ble_dec_", "ble_put", "ble_bthome",
                                                            "ble_raw", "ble_seen", "ble_get", "ble_sign"))),
    ("D-Bus (sd-bus, and reading its messages)", lambda dso, sym: dso.startswith("libsystemd")
     or sym.startswith("ble_dbus_")),
    ("SQLite", lambda dso, sym: dso.startswith("libsqlite3")),
    ("kernel (sockets, scheduling)", lambda dso, sym: dso.startswith("[kernel")),
    ("libc", lambda dso, sym: dso.startswith("libc.so")),
]


def stop_profile(prof):
    """{group: share of m2md's samples} from the profile, or None."""
    if prof is None:
        return None
    p, out = prof
    p.send_signal(2)
    p.wait(30)
    rep = subprocess.run(["perf", "report", "-i", out, "--stdio", "--no-children", "-F", "overhead,dso,sym",
                          "--percent-limit", "0"], capture_output=True, text=True)
    shares = {g: 0.0 for g, _ in GROUPS}
    shares["the rest (m2md's core, the ble plugin's own code, other libraries)"] = 0.0
    for line in rep.stdout.splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[[.k]\]\s+(\S+)", line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(3)
        for g, match in GROUPS:
            if match(dso, sym):
                shares[g] += pct
                break
        else:
            shares["the rest (m2md's core, the ble plugin's own code, other libraries)"] += pct
    return shares if sum(shares.values()) > 0 else None


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else float("nan")


def main():
    addrs = ["10:00:00:00:%02X:%02X" % (i >> 8, i & 0xff) for i in range(DEVICES)]
    cfg = driver("ble") + "".join(
        device("ble", name="th%d" % i, address=a, format="pvvx", stale="60s") + point("ble", name="temperature")
        for i, a in enumerate(addrs))
    decode = subprocess.run([os.path.join(BUILD, "tests", "bench", "bench-ble-decode")],
                            capture_output=True, text=True, check=True).stdout
    decode_ns = float(re.search(r"decode_ns=([0-9.]+)", decode).group(1))
    bthome_ns = float(re.search(r"bthome_ns=([0-9.]+)", decode).group(1))

    monitor = None
    with rig("bench-ble", cfg, gateway_extra='stats_interval = "2s"\n') as (bus, bluez, gw):
        try:
            wait_for(lambda: bluez.discovery()[0] and bluez.discovery()[3].get("DuplicateData"), 15,
                     "discovery with DuplicateData")
            monitor = subprocess.Popen(
                ["dbus-monitor", "--address", bus.address,
                 "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
            procs = {"m2md": gw.proc.pid, "monitor": monitor.pid, "mock": bluez.proc.pid,
                     "dbus-daemon": bus.proc.pid}
            st0 = status(gw)["stats"]
            log0 = len(gw.run_log())
            c0 = {k: cpu_s(pid) for k, pid in procs.items()}
            prof = start_profile(gw.proc.pid, d=os.path.dirname(gw.config))
            t0 = time.monotonic()
            bluez.mock.Flood("hci0", addrs, RATE, SECONDS)
            wait_for(lambda: bool(bluez.mock.FloodInfo()[2]), SECONDS * 3 + 30, "the flood to end")
            sent, seen, _, flood_s = bluez.mock.FloodInfo()
            # What is still in the sockets drains; then the counters stop moving.
            last = None
            for _ in range(50):
                n = status(gw)["stats"].get("reports", 0)
                if n == last:
                    break
                last = n
                time.sleep(0.2)
            wall = time.monotonic() - t0
            c1 = {k: cpu_s(pid) for k, pid in procs.items()}
            shares = stop_profile(prof)
            st1 = status(gw)["stats"]
            log = gw.run_log()[log0:]
        finally:
            if monitor:
                monitor.terminate()
                monitor.wait(10)

    reports = st1.get("reports", 0) - st0.get("reports", 0)
    decoded = sum(v for k, v in st1.items() if k.startswith("decoded.")) - \
        sum(v for k, v in st0.items() if k.startswith("decoded."))
    def total(prefix):
        return sum(v for k, v in st1.items() if k.startswith(prefix)) - \
            sum(v for k, v in st0.items() if k.startswith(prefix))

    dups, errors, others = total("duplicates."), total("decode_errors."), total("other_frames.")
    p99s = [float(x) for x in re.findall(r"\bstats: .*loop_lag_p99=([0-9.]+)ms", log)]
    per_k = {k: (c1[k] - c0[k]) / max(int(seen), 1) * 1000 for k in c0}
    m2md_us = per_k["m2md"] * 1000  # µs per advert
    print("ble: %d devices, %d adverts/s for %.1f s (flood took %.1f s, %.1f s with the drain)"
          % (DEVICES, RATE, SECONDS, flood_s, wall))
    print("  adverts: sent %d, seen by discovery clients %d, reported by m2md %d, decoded %d, "
          "duplicates %d, decode errors %d, other frames %d, dropped %d"
          % (sent, seen, reports, decoded, dups, errors, others, int(seen) - reports))
    print("  CPU s per 1,000 adverts: m2md %.4f, dbus-monitor (yardstick) %.4f, ratio %.2f; "
          "the mock %.4f, dbus-daemon %.4f"
          % (per_k["m2md"], per_k["monitor"], per_k["m2md"] / per_k["monitor"] if per_k["monitor"] else
             float("nan"), per_k["mock"], per_k["dbus-daemon"]))
    print("  loop lag p99 of the 2 s windows: median %.2f ms, worst %.2f ms (%d windows)"
          % (median(p99s), max(p99s) if p99s else float("nan"), len(p99s)))
    if shares:
        print("  where m2md's CPU went (perf, cpu-clock samples):")
        for g, pct in shares.items():
            print("    %5.1f%%  %s" % (pct, g))
    else:
        print("  (perf is not installed: no profile of m2md's CPU)")
    print("  decoding: %.0f ns per pvvx advert (%.0f ns per encrypted BTHome advert) of m2md's %.1f us "
          "per advert = %.1f%%; the rest is D-Bus parsing, storage and the core"
          % (decode_ns, bthome_ns, m2md_us, 100 * decode_ns / 1000 / m2md_us if m2md_us else float("nan")))


if __name__ == "__main__":
    main()
