#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Checks of tools/vm-test that need more than a shell, run inside the VM.

    vmcheck.py probe FLAG           inside the unit's sandbox (m2md-probe.service,
                                    made from the installed m2md.service): ttyS1,
                                    AF_CAN raw/BCM/J1939, ip, the system D-Bus; then
                                    waits for FLAG and talks to /dev/ttyUSB0
    vmcheck.py ping DEV WORD [CGROUP]  PING/PONG with the host's peer on DEV,
                                    from inside CGROUP when given
    vmcheck.py plug                 asks the host (over ttyS1) to plug in a USB
                                    serial adapter
    vmcheck.py levels UNIT          the journal priorities of UNIT's messages

Each check prints `RESULT name PASS|FAIL detail`; the host-side peer
(tools/vm/peer.py) answers `PING word` with `PONG word` on every line it plays.
"""

import errno
import json
import os
import select
import socket
import struct
import subprocess
import sys
import termios
import time
import tty

CAN_IF = "vcan0"
CAN_FRAME = "=IB3x8s"


def result(name, ok, detail):
    print("RESULT %s %s %s" % (name, "PASS" if ok else "FAIL", detail), flush=True)
    return ok


def oserr(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e, OSError) and e.errno else str(e)


def exchange(dev, send, want, timeout=20):
    """Writes SEND to the tty DEV (raw mode) and reads until WANT arrives."""
    fd = os.open(dev, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        tty.setraw(fd)
        termios.tcflush(fd, termios.TCIOFLUSH)
        os.write(fd, send)
        buf = b""
        deadline = time.monotonic() + timeout
        while want not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no %r within %d s (read %r)" % (want, timeout, buf[-60:]))
            if select.select([fd], [], [], left)[0]:
                buf += os.read(fd, 256)
        return buf
    finally:
        os.close(fd)


def ping(dev, word, timeout=20):
    """Returns (ok, detail) of one PING/PONG with the peer playing DEV."""
    try:
        st = os.stat(dev)
        where = "%s (char %d:%d)" % (dev, os.major(st.st_rdev), os.minor(st.st_rdev))
        exchange(dev, b"PING %s\n" % word.encode(), b"PONG %s\n" % word.encode(), timeout)
        return True, "%s: wrote PING %s, read PONG %s as uid %d" % (where, word, word, os.getuid())
    except (OSError, TimeoutError) as e:
        return False, "%s: %s" % (dev, oserr(e))


def can_socket(proto, kind=socket.SOCK_RAW):
    s = socket.socket(socket.AF_CAN, kind, proto)
    s.settimeout(5)
    return s


def can_expect(rx, can_id, data):
    """Reads frames from the raw socket RX until one with CAN_ID and DATA."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        cid, dlc, payload = struct.unpack(CAN_FRAME, rx.recv(16))
        if cid == can_id and payload[:dlc] == data:
            return
    raise TimeoutError("no frame %x#%s" % (can_id, data.hex()))


def check_can():
    """AF_CAN from inside the sandbox: each protocol sends, a raw socket reads."""
    ok = True
    checks = []
    try:
        rx = can_socket(socket.CAN_RAW)
        rx.bind((CAN_IF,))
    except OSError as e:
        for name in ("raw", "bcm", "j1939"):
            ok &= result("sandbox-can-" + name, False, "raw socket for reading: %s" % oserr(e))
        return ok

    def raw():
        tx = can_socket(socket.CAN_RAW)
        tx.bind((CAN_IF,))
        tx.send(struct.pack(CAN_FRAME, 0x123, 4, b"\xde\xad\xbe\xef"))
        can_expect(rx, 0x123, b"\xde\xad\xbe\xef")
        return "sent and read 123#DEADBEEF on %s" % CAN_IF
    checks.append(("raw", raw))

    def bcm():
        s = can_socket(socket.CAN_BCM, socket.SOCK_DGRAM)
        s.connect((CAN_IF,))
        head = struct.pack("@3I4l2I0q", socket.CAN_BCM_TX_SEND, 0, 0, 0, 0, 0, 0, 0x321, 1)
        s.send(head + struct.pack(CAN_FRAME, 0x321, 2, b"\xbc\x01"))
        can_expect(rx, 0x321, b"\xbc\x01")
        return "TX_SEND of 321#BC01 read back"
    checks.append(("bcm", bcm))

    def j1939():
        s = can_socket(socket.CAN_J1939, socket.SOCK_DGRAM)
        s.bind((CAN_IF, socket.J1939_NO_NAME, socket.J1939_NO_PGN, 0x20))
        s.sendto(b"\x01\x02\x03", (CAN_IF, socket.J1939_NO_NAME, 0x0EF00, 0x30))
        # Priority 6, PGN 0xEF00 to address 0x30 from 0x20, extended frame.
        can_expect(rx, 0x18EF3020 | socket.CAN_EFF_FLAG, b"\x01\x02\x03")
        return "PGN 0xEF00 from 0x20 to 0x30 read as 18EF3020#010203"
    checks.append(("j1939", j1939))

    for name, fn in checks:
        try:
            ok &= result("sandbox-can-" + name, True, fn())
        except (OSError, TimeoutError) as e:
            ok &= result("sandbox-can-" + name, False, oserr(e))
    return ok


def run(name, argv, want):
    try:
        p = subprocess.run(argv, capture_output=True, timeout=40, text=True)
    except (OSError, subprocess.TimeoutExpired) as e:
        return result(name, False, "%s: %s" % (argv[0], e))
    out = (p.stdout + p.stderr).strip().replace("\n", " | ")
    ok = p.returncode == 0 and want in p.stdout
    return result(name, ok, "%s exited %d: %s" % (" ".join(argv), p.returncode, out[:160]))


def probe(flag):
    """The checks that must run under the unit's own sandbox."""
    result("sandbox-identity", True, "uid %d gid %d groups %s" % (os.getuid(), os.getgid(), os.getgroups()))
    ok, detail = ping("/dev/ttyS1", "sandbox-ttyS1")
    result("sandbox-ttyS1", ok, detail)
    check_can()
    # ip drops its capabilities first (capset) and exits 1 when that fails.
    run("sandbox-ip", ["ip", "-d", "link", "show", "dev", CAN_IF], "vcan")
    run("sandbox-dbus", ["busctl", "--system", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                         "org.freedesktop.DBus", "GetNameOwner", "s", "org.freedesktop.DBus"], "org.freedesktop.DBus")
    # The host plugs the adapter in only now, after this unit started.
    print("WAITING", flush=True)
    deadline = time.monotonic() + 300
    while not os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.2)
    ok, detail = ping("/dev/ttyUSB0", "sandbox-ttyUSB0")
    result("sandbox-hotplug-ttyUSB", ok, "adapter plugged in after the unit started; " + detail)


def main(argv):
    if len(argv) == 2 and argv[0] == "probe":
        probe(argv[1])
        return 0
    if len(argv) in (3, 4) and argv[0] == "ping":
        if len(argv) == 4:
            # Into the running service's cgroup: its device filter applies to
            # every process there, root included.
            with open(os.path.join(argv[3], "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        ok, detail = ping(argv[1], argv[2])
        print(detail)
        return 0 if ok else 1
    if argv == ["plug"]:
        try:
            exchange("/dev/ttyS1", b"PLUG\n", b"PLUGGED\n", 30)
        except (OSError, TimeoutError) as e:
            print("plug: %s" % oserr(e))
            return 1
        return 0
    if len(argv) == 2 and argv[0] == "levels":
        p = subprocess.run(["journalctl", "-u", argv[1], "-o", "json", "--no-pager",
                            "--output-fields=PRIORITY,MESSAGE,SYSLOG_IDENTIFIER"],
                           capture_output=True, text=True, timeout=60)
        prios = {}
        raw = 0
        for line in p.stdout.splitlines():
            e = json.loads(line)
            if e.get("SYSLOG_IDENTIFIER") != "m2md":
                continue
            prios[int(e["PRIORITY"])] = prios.get(int(e["PRIORITY"]), 0) + 1
            raw += str(e.get("MESSAGE", "")).startswith("<")
        print(" ".join("%d:%d" % kv for kv in sorted(prios.items())) + " prefixes-left:%d" % raw)
        return 0 if {3, 6} <= set(prios) and raw == 0 else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
