# SPDX-License-Identifier: MIT
"""The host side of plugin ABI 1.1 through the real daemon, with the
fixture plugins of fixtures/abi11.c: timer_update, HUP and ERR on fd watches
against real kernel peers (a socketpair, a pty, a UDP socket refused over
loopback), device_state in events, status, points and m2mctl, and
stat_declare/stat_set; beside it, a plugin built for ABI 1.0 keeps running.

Arguments: the fixture plugins abi11.so and abi10.so."""

import errno
import json
import os
import shutil
import subprocess
import sys
import time

from m2mtest import BUILD, SLOW, Gateway, check, ctl, main, tmpdir, wait_for

M2MCTL = os.path.join(BUILD, "src", "m2mctl")
READ, WRITE, HUP, ERR = 1, 2, 4, 8

DRIVERS = """
[drivers.fx]
plugin = "abi11"
[[drivers.fx.points]]
name = "dev1/value"
[[drivers.fx.points]]
name = "dev2/value"
[[drivers.fx.points]]
name = "ctl/step"
writable = true

[drivers.old]
plugin = "abi10"
[[drivers.old.points]]
name = "legacy/value"
"""


def m2mctl(g, *args):
    p = subprocess.run([M2MCTL, "-s", g.socket] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=20 * SLOW)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def driver(g, name):
    for d in ctl(g, {"id": 1, "cmd": "status"})["result"]["drivers"]:
        if d["name"] == name:
            return d
    raise AssertionError("no driver %s in status" % name)


def points(g):
    return {p["name"]: p for p in ctl(g, {"id": 1, "cmd": "points"})["result"]}


def device_events(g, *sources):
    marks = ",".join("?" * len(sources))
    return g.query("SELECT kind, source, from_state, to_state, text FROM events "
                   "WHERE source IN (%s) AND kind IN ('online', 'offline') ORDER BY id" % marks,
                   sources)


def step(g, value):
    code, out, err = m2mctl(g, "write", "ctl/step", str(value))
    check(code == 0, "write ctl/step %s: %d %r" % (value, code, err))


def gateway(name="abi11", drivers=DRIVERS, binary=None):
    """A started gateway with the fixture plugins of the command line (and
    BINARY instead of m2md: the test daemon of tests/module)."""
    d = tmpdir(name)
    plugins = os.path.join(d, "plugins")
    os.mkdir(plugins, 0o755)
    for so in sys.argv[1:]:
        shutil.copy(so, plugins)
        os.chmod(os.path.join(plugins, os.path.basename(so)), 0o644)
    g = Gateway(name, drivers, directory=d)
    g.plugin_dir = plugins
    if binary:
        g.binary = binary
    g.write_config(drivers)
    return g.start()


def test_loop_services(g):
    """timer_update, fd watches and stat_declare, as the fixture saw them."""
    want = ("rearms", "repeats", "spin_ms", "socketpair_hup_events", "socketpair_read_events",
            "pty_slave_events", "pty_master_events", "udp_err_again_events", "udp_as_read_events")
    stats = wait_for(lambda: (lambda s: all(k in s for k in want) and s["rearms"] >= 3 and s)(
        driver(g, "fx")["stats"]), 10, "the fixture's watches and timers")
    time.sleep(0.3 * SLOW)
    stats = driver(g, "fx")["stats"]
    # The one-shot timer was armed for a minute: it ran only because timer_update took, and
    # it ran again each time it rearmed itself from its callback after firing.
    check(stats["rearms"] == 3, "a fired timer rearmed twice runs three times: %r" % stats)
    check(stats["repeats"] == 1, "a repeating timer rearmed to an hour runs once: %r" % stats)
    # Before libuv 1.48, a timer rearmed to 0 from its callback would run again in the same
    # pass over the timers, for ever; the host makes each run wait for the loop's next ms.
    check(stats["spin_ms"] >= 40, "50 runs of a timer rearmed to 0 took 50 loop iterations: %r" % stats)
    check(stats["socketpair_hup_events"] == READ | HUP,
          "a socketpair whose peer closed: READ|HUP for a watch that asked: %r" % stats)
    check(stats["socketpair_read_events"] == READ,
          "the same without HUP asked: READ only: %r" % stats)
    check(stats["pty_slave_events"] == ERR | HUP,
          "a pty whose master closed (a hung-up tty): ERR|HUP: %r" % stats)
    check(stats["pty_master_events"] == HUP,
          "a pty master whose slave closed, watched for HUP only: %r" % stats)
    check(stats["udp_err_events"] == ERR and stats["udp_err_so_error"] == errno.ECONNREFUSED,
          "a refused datagram is ERR, its error in SO_ERROR: %r" % stats)
    check(stats["udp_err_update"] == 0 and stats["udp_err_again_events"] == ERR,
          "io_update watches again after ERR, and the next error arrives: %r" % stats)
    check(stats["udp_as_read_events"] == READ,
          "without ERR asked, an error is READ as in ABI 1.0: %r" % stats)
    check(stats["same_handle"] == 1, "the same name and device: the same handle: %r" % stats)
    for k in ("bad_name", "bad_kind", "empty_device"):
        check(stats[k] == -errno.EINVAL, "stat_declare refuses %s: %r" % (k, stats))
    polls = stats["polls.dev1"]
    wait_for(lambda: driver(g, "fx")["stats"]["polls.dev1"] > polls, 5, "stat_set of polls.dev1")


def test_device_state(g):
    """device_state: one event per change, the state in status, points and m2mctl."""
    devs = wait_for(lambda: driver(g, "fx")["devices"], 5, "devices in status")
    now_us = time.time() * 1e6
    check([(x["name"], x["state"], x["reason"]) for x in devs] ==
          [("dev1", "offline", "connection refused"), ("dev2", "online", "")],
          "status: each device, the last reason: %r" % devs)
    check(all(isinstance(x["since_us"], int) and abs(x["since_us"] - now_us) < 60e6 for x in devs),
          "since_us is the time of the change: %r" % devs)
    check(driver(g, "old")["devices"] == [], "a 1.0 driver has an empty list: %r" % driver(g, "old"))
    wait_for(lambda: len(device_events(g, "dev1", "dev2")) >= 2, 5, "device events")
    evs = device_events(g, "dev1", "dev2")
    check(evs == [("offline", "dev1", None, "offline", "no answer for 3 polls"),
                  ("online", "dev2", None, "online", "answering")],
          "one event per change, the same state again ignored: %r" % evs)

    code, out, err = m2mctl(g, "status")
    check(code == 0 and "  device dev1 offline for " in out and ": connection refused" in out and
          "device dev2" not in out, "m2mctl status shows the offline device and why:\n" + out)
    pts = points(g)
    check(pts["dev1/value"]["device"]["state"] == "offline" and
          pts["dev1/value"]["device"]["reason"] == "connection refused" and
          pts["dev1/value"]["device"]["name"] == "dev1", "points: dev1 offline: %r" % pts["dev1/value"])
    check(pts["dev2/value"]["device"]["state"] == "online", "points: dev2 online: %r" % pts["dev2/value"])
    check("device" not in pts["ctl/step"] and "device" not in pts["legacy/value"],
          "no device state where none was reported: %r" % pts)
    code, out, err = m2mctl(g, "points")
    rows = {r.split()[0]: r for r in out.splitlines()[1:]}
    check("(device dev1 offline for " in rows["dev1/value"] and
          rows["dev1/value"].endswith(": connection refused)"),
          "m2mctl points: dev1/value's device offline and why:\n" + out)
    check(rows["dev2/value"].endswith("good"), "m2mctl points: dev2/value as before:\n" + out)
    code, out, err = m2mctl(g, "read", "dev1/value")
    lines = out.splitlines()
    check(code == 0 and len(lines) == 2 and lines[0].startswith("dev1/value ") and
          lines[1].startswith("  device dev1 offline for ") and lines[1].endswith(": connection refused"),
          "m2mctl read: the device offline under the value: %r" % out)
    code, out, err = m2mctl(g, "read", "dev2/value")
    check(code == 0 and len(out.splitlines()) == 1, "m2mctl read of an online device: one line: %r" % out)

    step(g, 1)
    wait_for(lambda: len(device_events(g, "dev1")) == 2, 5, "dev1 online")
    check(device_events(g, "dev1")[-1] == ("online", "dev1", "offline", "online", "answering again"),
          "online again, from_state offline: %r" % device_events(g, "dev1"))
    check(driver(g, "fx")["devices"][0] == dict(driver(g, "fx")["devices"][0], state="online", reason=""),
          "status: dev1 online, no reason: %r" % driver(g, "fx")["devices"])
    step(g, 4)
    step(g, 2)
    wait_for(lambda: device_events(g, "fx"), 5, "the instance offline")
    check(device_events(g, "dev1", "dev2", "fx")[-2:] ==
          [("online", "dev1", "offline", "online", "answering again"),
           ("offline", "fx", None, "offline", "bus down")],
          "online repeated: no event; the whole instance: source is the driver: %r"
          % device_events(g, "dev1", "dev2", "fx"))
    pts = points(g)
    for name in ("dev1/value", "dev2/value", "ctl/step"):
        check(pts[name]["device"] == dict(pts[name]["device"], name=None, state="offline", reason="bus down"),
              "an offline instance: every point offline: %r" % pts[name])
    code, out, err = m2mctl(g, "status")
    check("  all devices offline for " in out and ": bus down" in out, "m2mctl status:\n" + out)
    code, out, err = m2mctl(g, "points")
    check("(all devices offline for " in out, "m2mctl points:\n" + out)
    step(g, 3)
    wait_for(lambda: len(device_events(g, "fx")) == 2, 5, "the instance online")
    pts = points(g)
    check(pts["dev1/value"]["device"]["name"] == "dev1" and pts["ctl/step"]["device"]["name"] is None and
          pts["ctl/step"]["device"]["state"] == "online", "per device again: %r" % pts)


def test_abi_1_0(g):
    """The plugin built for ABI 1.0 runs beside it: readings, stats, an fd watch, an event."""
    wait_for(lambda: g.count("legacy/value") >= 3, 10, "readings of the 1.0 plugin")
    d = driver(g, "old")
    check(d["state"] == "running" and d["last_error"] == "", "the 1.0 driver runs: %r" % d)
    check(d["stats"]["ticks"] > 0 and d["stats"]["socketpair_read_events"] == READ,
          "its stat() and its watch: %r" % d["stats"])
    check(g.query("SELECT count(*) FROM events WHERE source = 'old' AND kind = 'fixture'")[0][0] == 1,
          "its event")
    check("fixture started (ABI 1.0 view)" in g.run_log(), "its log line")


def test_host():
    g = gateway()
    try:
        test_loop_services(g)
        test_device_state(g)
        test_abi_1_0(g)
    finally:
        check(g.stop() == 0, "m2md exits cleanly")


if __name__ == "__main__":
    main([test_host])
