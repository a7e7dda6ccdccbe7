#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Where m2md's memory goes (issue 13): m2md with N sim points (every 1 s),
MQTT to a local mosquitto and the control socket on, 30 s after the
first messages went out (it has settled by then).

Printed for N = 1,000 and 10,000 (M2M_BENCH_SIZES overrides): RSS, private
and shared memory from /proc/PID/smaps_rollup, and a breakdown from
/proc/PID/smaps by mapping: the heap (brk and anonymous mappings other
than thread stacks: the point registry, SQLite's page cache, the MQTT and
storage queues), thread stacks (the RSS of the mappings the threads' stack
pointers are in), the m2md binary, each shared library, other files. Then
the RSS growth per point between the two sizes. Figures are printed,
never asserted.

    meson test -C build --benchmark -v footprint
"""

import grp
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "mqtt"))
from m2mtest import Gateway, tmpdir, wait_for  # noqa: E402
from mqttpeer import Broker, mqtt_status  # noqa: E402


def rollup(pid):
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def stack_pointers(pid):
    """The stack pointer of each thread (field 29 of /proc/PID/task/TID/stat)."""
    sps = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                sps.append(int(f.read().rsplit(")", 1)[1].split()[26]))
        except (OSError, IndexError, ValueError):
            pass
    return sps


def mappings(pid):
    """(start, end, name, rss kB, private kB) for each mapping."""
    maps, cur = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and not parts[0].endswith(":"):
                start, end = (int(x, 16) for x in parts[0].split("-"))
                cur = [start, end, parts[5] if len(parts) > 5 else "", 0, 0]
                maps.append(cur)
            elif parts[0] == "Rss:":
                cur[3] = int(parts[1])
            elif parts[0] in ("Private_Clean:", "Private_Dirty:"):
                cur[4] += int(parts[1])
    return maps


def breakdown(pid, binary):
    sps = stack_pointers(pid)
    groups = {}
    for start, end, name, rss, priv in mappings(pid):
        if any(start <= sp < end for sp in sps) or name == "[stack]":
            key = "thread stacks"
        elif name in ("", "[heap]"):
            key = "heap (brk + anonymous)"
        elif os.path.realpath(name) == os.path.realpath(binary):
            key = "m2md binary"
        elif ".so" in name:
            key = os.path.basename(name).split(".so")[0]
        else:
            key = "other (%s)" % (name if name.startswith("[") else os.path.basename(name))
        g = groups.setdefault(key, [0, 0])
        g[0] += rss
        g[1] += priv
    return groups


def run(d, broker, n):
    cfg = '[drivers.sim]\nplugin = "sim"\n' + "".join(
        '[[drivers.sim.points]]\nname = "line/p%d"\nsignal = "ramp"\ninterval = "1s"\nunit = "kW"\n' % i
        for i in range(n))
    cfg += '[mqtt]\nurl = "mqtt://127.0.0.1:%d"\n' % broker.port
    g = Gateway("bench-footprint-%d" % n, cfg, storage_extra='commit_interval = "100ms"\n')
    # The control socket's group. An installed gateway's m2md group is in /etc/group
    # (systemd-sysusers writes it), where NSS's "files" finds it. This machine has
    # none, and the lookup would go on to libnss_systemd and libcap (about 0.35 MiB)
    # that an installed gateway never maps: the group of this process stands in.
    cfg += '[control]\nsocket = "%s"\ngroup = "%s"\n' % (g.socket, grp.getgrgid(os.getgid()).gr_name)
    g.write_config(cfg, storage_extra='commit_interval = "100ms"\n')
    g.start()
    try:
        wait_for(lambda: (lambda s: s["qos0_sent"] + s["acked"])(mqtt_status(g)) >= n, 60, "publishing")
        # Settled: SQLite's cache and the message bursts' working set stop growing
        # within about 30 s (RSS +48 KiB from 5 s to 30 s at 1,000 points, then flat to 180 s).
        time.sleep(30)
        pid = g.proc.pid
        return rollup(pid), breakdown(pid, g.binary), len(os.listdir("/proc/%d/task" % pid))
    finally:
        g.stop(60)


def main():
    sizes = [int(s) for s in os.environ.get("M2M_BENCH_SIZES", "1000,10000").split(",")]
    d = tmpdir("bench-footprint")
    b = Broker(d).start()
    rss = {}
    try:
        for n in sizes:
            r, groups, threads = run(d, b, n)
            rss[n] = r.get("Rss", 0)
            private = r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)
            shared = r.get("Shared_Clean", 0) + r.get("Shared_Dirty", 0)
            print("N = %d sim points, MQTT and control socket on, %d threads" % (n, threads))
            print("  RSS %.1f MiB: private %.1f MiB, shared %.1f MiB (PSS %.1f MiB, anonymous %.1f MiB)"
                  % (rss[n] / 1024, private / 1024, shared / 1024, r.get("Pss", 0) / 1024,
                     r.get("Anonymous", 0) / 1024))
            # Anonymous: malloc, stacks and the written pages of libraries' data; the rest are file pages.
            anon = r.get("Anonymous", 0)
            print("  the process's own memory (anonymous) %.1f MiB; pages of mapped files (m2md, libraries)"
                  " %.1f MiB, shared with every process that maps the same files" % (anon / 1024, (rss[n] - anon) / 1024))
            print("  %-28s %8s %8s" % ("mapping", "RSS KiB", "private"))
            for key, (krss, kpriv) in sorted(groups.items(), key=lambda kv: -kv[1][0]):
                if krss:
                    print("  %-28s %8d %8d" % (key, krss, kpriv))
            sys.stdout.flush()
    finally:
        b.stop()
    if len(sizes) >= 2:
        a, z = sizes[0], sizes[-1]
        print("RSS growth from %d to %d points: %.0f bytes per point"
              % (a, z, (rss[z] - rss[a]) * 1024.0 / (z - a)))


if __name__ == "__main__":
    main()
