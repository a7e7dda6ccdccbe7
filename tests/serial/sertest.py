# SPDX-License-Identifier: MIT
"""Helpers for the serial integration tests: a socat pty pair (the test
holds the device's end, m2md the other), config snippets, and reads of what
m2md stored. Every wait is bounded; every process is stopped by PID.
Run with /usr/bin/python3 (Debian's pynmea2)."""

import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("M2M_SOURCE_ROOT", os.path.join(HERE, "../.."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))

import m2mtest  # noqa: E402
from m2mtest import (BUILD, SLOW, Gateway, check, main, run_check, table, tmpdir,  # noqa: E402,F401
                     toml_value, wait_for)

# Qualities as stored (enum m2m_quality).
GOOD, TIMEOUT, COMM_ERROR, DECODE_ERROR, STALE = 0, 1, 2, 3, 5


class PtyPair:
    """socat pty pair: DEV is the device's end (the test's), PORT m2md's.
    The test opens DEV raw and writes and reads it as the device would."""

    def __init__(self, directory, name="tty"):
        self.dev = os.path.join(directory, name + "-dev")
        self.port = os.path.join(directory, name + "-port")
        self.logpath = os.path.join(directory, name + "-socat.log")
        self.proc = None
        self.fd = None
        self.start()

    def start(self):
        errf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            ["socat", "-d", "-d", "pty,raw,echo=0,link=" + self.dev,
             "pty,raw,echo=0,link=" + self.port],
            stdin=subprocess.DEVNULL, stdout=errf, stderr=errf)
        errf.close()
        wait_for(lambda: os.path.exists(self.dev) and os.path.exists(self.port), 10, "socat ptys")
        self.fd = os.open(self.dev, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        return self

    def write(self, data, chunk=None, pause=0.0):
        """Writes DATA whole, or CHUNK bytes at a time with PAUSE between."""
        step = chunk or len(data)
        for i in range(0, len(data), step):
            part = data[i:i + step]
            while part:
                try:
                    n = os.write(self.fd, part)
                    part = part[n:]
                except BlockingIOError:
                    time.sleep(0.005)
            if pause:
                time.sleep(pause)

    def read(self, timeout=0.0):
        """What m2md wrote to the device so far (waiting up to TIMEOUT for the first byte)."""
        deadline = time.monotonic() + timeout * SLOW
        out = b""
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except BlockingIOError:
                chunk = b""
            except OSError:
                chunk = b""
            out += chunk
            if chunk:
                continue
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(0.01)

    def kill(self):
        """Kills socat: m2md's end hangs up (the unplug of a USB adapter)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait(10)
        self.proc = None
        for p in (self.dev, self.port):
            if os.path.islink(p):
                os.unlink(p)


class Device(threading.Thread):
    """A device on the far end of PTY that answers commands ending in '\\r':
    handle(cmd) gets each command (text) in order. stop() ends it."""

    def __init__(self, pty):
        super().__init__(daemon=True)
        self.pty = pty
        self.stopping = False

    def run(self):
        buf = b""
        while not self.stopping:
            buf += self.pty.read(0.02)
            while b"\r" in buf:
                cmd, buf = buf.split(b"\r", 1)
                self.handle(cmd.decode("latin-1"))

    def handle(self, cmd):
        raise NotImplementedError

    def stop(self):
        self.stopping = True
        self.join(5)


def driver(name, **keys):
    return table("drivers." + name, plugin="serial", **keys)


def point(drv, **keys):
    return table("[[drivers.%s.points]]" % drv, **keys)


def request(drv, **keys):
    return table("[[drivers.%s.requests]]" % drv, **keys)


def readings(gw, name, since_rowid=0):
    """(value, quality, ts) of NAME in order."""
    return gw.query("SELECT r.value, r.quality, r.ts FROM readings r JOIN points p ON p.id = r.point "
                    "WHERE p.name = ? AND r.rowid > ? ORDER BY r.rowid", (name, since_rowid))


def good_values(gw, name, since_rowid=0):
    return [r[0] for r in readings(gw, name, since_rowid) if r[1] == GOOD]


def qualities(gw, name, since_rowid=0):
    return [r[1] for r in readings(gw, name, since_rowid)]


def max_rowid(gw):
    return gw.query("SELECT coalesce(max(rowid), 0) FROM readings")[0][0]


def events(gw, source=None):
    sql = "SELECT kind, source, text FROM events"
    args = ()
    if source is not None:
        sql += " WHERE source = ?"
        args = (source,)
    return gw.query(sql + " ORDER BY id", args)


def ctl(gw, cmd, timeout=10, **args):
    return m2mtest.ctl(gw, dict(id=1, cmd=cmd, **args), timeout)


def driver_status(gw, name):
    reply = ctl(gw, "status")
    check(reply.get("ok"), "status answered: %r" % reply)
    for d in reply["result"]["drivers"]:
        if d["name"] == name:
            return d
    raise AssertionError("no driver %s in status: %r" % (name, reply))


def stats(gw, name):
    return driver_status(gw, name)["stats"]
