# SPDX-License-Identifier: MIT
"""m2mctl status shows each driver's statistics without knowing any
plugin's names: summed per name over the devices, in the order the daemon
lists them, from both shapes of the status JSON (the "stats" object of
"name.device" keys, and the "metrics" list of typed statistics, which
wins when both are there). The daemon's side is a peer on a Unix socket
that answers the documented protocol with a status this test writes, so
that the new shape is covered before a daemon sends it."""

import json
import os
import socket
import threading

from ctltest import m2mctl
from m2mtest import check, main, tmpdir


def status(drivers):
    return {"version": "9.9.9", "gateway": "gw-stats", "pid": 1, "uptime_s": 61,
            "loop_lag_ms": {"p50": 0.1, "p99": 0.2, "max": 0.3},
            "readings_in": 10, "readings_per_s": 1.0,
            "storage": {"rows_written": 1, "rows_per_s": 0, "db_bytes": 4096, "rows_dropped": 0,
                        "queued": 0, "failing": False},
            "alarms": [], "drivers": drivers}


def driver(name, plugin, **extra):
    d = {"name": name, "plugin": plugin, "state": "running", "last_error": "", "points": 2,
         "readings": 5, "readings_per_s": 0.5}
    d.update(extra)
    return d


class Peer:
    """Answers every request on PATH with RESULT, as m2md's control socket would."""

    def __init__(self, path, result):
        self.result = result
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                line = c.makefile("rb").readline()
                req = json.loads(line)
                c.sendall(json.dumps({"id": req["id"], "ok": True, "result": self.result}).encode() + b"\n")

    def close(self):
        self.sock.close()


def run_status(name, drivers):
    path = os.path.join(tmpdir(name), "m2md.sock")
    peer = Peer(path, status(drivers))
    try:
        code, out, err = m2mctl("status", socket=path)
    finally:
        peer.close()
    check(code == 0, "m2mctl status against the peer: %d %s" % (code, err))
    return out.splitlines()


def row_and_stats(lines, name):
    """The driver's table row and the statistics lines under it."""
    i = next(i for i, l in enumerate(lines) if l.startswith(name + " "))
    j = i + 1
    while j < len(lines) and lines[j].startswith("  "):
        j += 1
    return lines[i], lines[i + 1:j]


def test_stats_object():
    """Today's shape: "name.device" keys, summed per name, first-seen order."""
    stats = {"polls.u1": 10, "polls.u2": 5, "requests_per_cycle.dev@200ms": 4,
             "requests_per_cycle.dev@1h": 1, "online.u1": 1, "online.u2": 0, "errors.u1": 0,
             "uptime_ratio": 0.25}
    lines = run_status("ctl-stats-object", [driver("plc", "modbus", stats=stats),
                                            driver("sim", "sim", stats={})])
    header = next(l for l in lines if l.startswith("DRIVER"))
    check(header.split() == ["DRIVER", "PLUGIN", "STATE", "POINTS", "READINGS/S", "LAST", "ERROR"],
          "no plugin's names in the header: %r" % header)
    row, under = row_and_stats(lines, "plc")
    check(row.split()[:5] == ["plc", "modbus", "running", "2", "0.5"], "the driver row: %r" % row)
    check(under == ["  polls 15   requests_per_cycle 5   online 1   errors 0   uptime_ratio 0.25"],
          "statistics under the row: %r" % under)
    row, under = row_and_stats(lines, "sim")
    check(under == [], "a driver without statistics has no line: %r" % under)


def test_metrics_list():
    """The typed shape: a "metrics" list; the "stats" object beside it is not counted again."""
    metrics = [
        {"name": "frames", "device": "can0", "kind": "counter", "value": 1234567, "help": "Frames."},
        {"name": "frames", "device": "can1", "kind": "counter", "value": 3, "help": "Frames."},
        {"name": "bus_load", "device": "can0", "kind": "gauge", "value": 0.25, "help": "Load."},
        {"name": "restarts", "device": "", "kind": "counter", "value": 2, "help": "Restarts."},
    ]
    stats = {"frames.can0": 1234567, "frames.can1": 3, "bus_load.can0": 0.25, "restarts": 2}
    lines = run_status("ctl-stats-list", [driver("can", "can", metrics=metrics, stats=stats)])
    row, under = row_and_stats(lines, "can")
    check(under == ["  frames 1234570   bus_load 0.25   restarts 2"], "typed statistics: %r" % under)


def test_many_stats():
    """Long lists wrap before 100 columns; beyond what a table holds, --json has the rest."""
    stats = {"statistic_number_%02d.dev" % i: i for i in range(40)}
    lines = run_status("ctl-stats-many", [driver("big", "x", stats=stats)])
    row, under = row_and_stats(lines, "big")
    check(len(under) > 1 and all(len(l) <= 100 for l in under), "wrapped lines: %r" % under)
    shown = " ".join(under).split()
    for i in range(32):
        check("statistic_number_%02d" % i in shown, "statistic %d shown" % i)
    check("statistic_number_32" not in shown, "the table holds 32 names")
    check(under[-1].endswith("(more in --json)"), "the rest is counted: %r" % under[-1])


if __name__ == "__main__":
    main([test_stats_object, test_metrics_list, test_many_stats])
