# SPDX-License-Identifier: MIT
"""The systemd unit: its exposure score, the directives the service needs,
and the notify protocol the daemon speaks (READY, STATUS, WATCHDOG from the
loop at the period the manager asks for, RELOADING on SIGHUP, STOPPING)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

from ctltest import SIM, Gateway
from m2mtest import BUILD, SLOW, check, main, wait_for

UNIT = os.path.join(BUILD, "systemd", "m2md.service")


def unit_lines():
    with open(UNIT) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def test_exposure():
    tool = shutil.which("systemd-analyze")
    check(tool is not None, "systemd-analyze is installed (tools/install-deps test)")
    p = subprocess.run([tool, "security", "--offline=true", "--no-pager", UNIT],
                       capture_output=True, timeout=60)
    out = p.stdout.decode() + p.stderr.decode()
    m = re.search(r"Overall exposure level for m2md\.service:\s*([0-9.]+)", out)
    check(m is not None, "an overall exposure level in:\n" + out[-2000:])
    score = float(m.group(1))
    print("exposure %.1f" % score)
    check(score <= 2.0, "exposure %.1f <= 2.0" % score)


def test_directives():
    lines = unit_lines()
    want = ["Type=notify", "User=m2md", "Group=m2md", "SupplementaryGroups=dialout",
            "StateDirectory=m2md", "RuntimeDirectory=m2md", "ConfigurationDirectory=m2md",
            # SIGHUP to the main process, without needing procps' /bin/kill.
            "ExecReload=/bin/sh -c 'kill -HUP \"$MAINPID\"'", "DeviceAllow=char-ttyS rw",
            # ttyUSB, ttyACM and ttyAMA by major: their drivers may load after
            # the unit started, when a name would no longer be resolved.
            "DeviceAllow=char-188 rw", "DeviceAllow=char-166 rw", "DeviceAllow=char-204 rw",
            "DevicePolicy=closed", "NoNewPrivileges=yes", "ProtectSystem=strict"]
    for w in want:
        check(w in lines, "the unit has %s" % w)
    check(any(re.fullmatch(r"WatchdogSec=\d+s?", line) for line in lines), "a watchdog")
    fams = [line for line in lines if line.startswith("RestrictAddressFamilies=")]
    check(len(fams) == 1, "one RestrictAddressFamilies line")
    got = set(fams[0].split("=", 1)[1].split())
    check({"AF_UNIX", "AF_INET", "AF_INET6", "AF_CAN", "AF_NETLINK"} <= got,
          "sockets for D-Bus, MQTT, Modbus TCP and SocketCAN stay allowed: %r" % got)
    exe = [line for line in lines if line.startswith("ExecStart=")]
    check(len(exe) == 1 and "/m2md -c " in exe[0], "ExecStart runs m2md with its config: %r" % exe)
    # PrivateUsers= would hide group dialout; PrivateDevices= every tty.
    check("PrivateUsers=yes" not in lines and "PrivateDevices=yes" not in lines,
          "serial lines stay reachable")
    # @privileged holds chown: the daemon must not need it (see bind_socket).
    check("SystemCallFilter=~@privileged @resources" in lines, "privileged system calls are filtered")
    named = [line for line in lines if re.fullmatch(r"DeviceAllow=char-tty(USB|ACM|AMA)\b.*", line)]
    check(not named, "no hot-pluggable tty class allowed by name: %r" % named)
    # ip (iproute2) drops its capabilities with capset and exits when that
    # fails; a later allow-list line puts it back after ~@privileged.
    filters = [line for line in lines if line.startswith("SystemCallFilter=")]
    check("SystemCallFilter=capset" in filters
          and filters.index("SystemCallFilter=capset") > filters.index("SystemCallFilter=~@privileged @resources"),
          "capset allowed after the privileged calls are filtered: %r" % filters)
    check(lines.count("CapabilityBoundingSet=") == 1, "an empty capability bounding set")


class NotifySocket:
    """The manager's side of sd_notify: a datagram socket the daemon writes to."""

    def __init__(self, path):
        self.path = path
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(path)
        self.s.settimeout(0.1)
        self.messages = []

    def drain(self):
        try:
            while True:
                self.messages.append(self.s.recv(4096).decode())
        except socket.timeout:
            pass
        return self.messages

    def seen(self, word):
        self.drain()
        return any(word in m for m in self.messages)


def test_notify():
    g = Gateway("systemd-notify", SIM)
    n = NotifySocket(os.path.join(g.dir, "notify"))
    env = dict(os.environ, NOTIFY_SOCKET=n.path, WATCHDOG_USEC="400000")
    env.pop("WATCHDOG_PID", None)
    g.proc = subprocess.Popen([os.path.join(BUILD, "src", "m2md"), "-c", g.config],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env)
    try:
        wait_for(lambda: n.seen("READY=1"), 10, "READY=1")
        check(n.seen("STATUS="), "a STATUS= line")
        n.messages.clear()
        t0 = time.monotonic()
        wait_for(lambda: sum("WATCHDOG=1" in m for m in n.drain()) >= 5, 10, "five WATCHDOG=1")
        took = time.monotonic() - t0
        # Fed every WATCHDOG_USEC/2 = 200 ms: five in about a second, not a burst.
        check(took >= 0.6, "the watchdog is fed at a period derived from WATCHDOG_USEC (%.2fs)" % took)
        n.messages.clear()
        g.proc.send_signal(signal.SIGHUP)

        def ready_after_reloading():
            m = n.drain()
            r = [i for i, x in enumerate(m) if "RELOADING=1" in x]
            return r and any("READY=1" in x for x in m[r[0]:])
        wait_for(ready_after_reloading, 10, "RELOADING=1 and then READY=1")
        g.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: n.seen("STOPPING=1"), 10, "STOPPING=1")
        check(g.proc.wait(15 * SLOW) == 0, "a clean exit")
    finally:
        if g.proc.poll() is None:
            g.proc.kill()
            g.proc.wait()
        g.proc = None


if __name__ == "__main__":
    main([test_exposure, test_directives, test_notify])
