# SPDX-License-Identifier: MIT
"""Helpers for the Modbus integration tests: pymodbus servers (mbserver.py)
and socat pty pairs started and stopped by PID, config snippets, and an
independent encoder of the word/byte orders (Python's struct module).

Every wait is bounded. Run with /usr/bin/python3 (Debian's pymodbus)."""

import json
import os
import select
import signal
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("M2M_SOURCE_ROOT", os.path.join(HERE, "../.."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))

import m2mtest  # noqa: E402
from m2mtest import (BUILD, SLOW, Gateway, check, main, run_check, table, tmpdir,  # noqa: E402,F401
                     toml_value, wait_for)

PYTHON = "/usr/bin/python3"
SERVER = os.path.join(HERE, "mbserver.py")

# Qualities as stored (enum m2m_quality).
GOOD, TIMEOUT, COMM_ERROR, DECODE_ERROR, DEVICE_ERROR = 0, 1, 2, 3, 6


class Server:
    """One mbserver.py process: TCP on 127.0.0.1 or RTU on a tty."""

    def __init__(self, directory, name, units=(1,), config=None, rtu=None, baud=19200,
                 parity="N"):
        self.dir = directory
        self.name = name
        self.units = units
        self.rtu = rtu
        self.baud = baud
        self.parity = parity
        self.log = os.path.join(directory, name + "-requests.log")
        self.out = os.path.join(directory, name + "-server.log")
        self.config = os.path.join(directory, name + "-config.json")
        self.mute_dir = os.path.join(directory, name + "-mute")
        os.makedirs(self.mute_dir, exist_ok=True)
        with open(self.config, "w") as f:
            json.dump(config or {}, f)
        self.proc = None
        self.port = 0

    def start(self, port=None):
        args = [PYTHON, SERVER, "--units", ",".join(str(u) for u in self.units),
                "--config", self.config, "--log", self.log, "--mute-dir", self.mute_dir]
        if self.rtu:
            args += ["--rtu", self.rtu, "--baud", str(self.baud), "--parity", self.parity]
        else:
            args += ["--tcp", str(self.port if port is None else port)]
        errf = open(self.out, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=errf)
        errf.close()
        deadline = time.monotonic() + 20 * SLOW
        line = b""
        while time.monotonic() < deadline and self.proc.poll() is None:
            # READY is the first line and arrives whole.
            if select.select([self.proc.stdout], [], [], 0.1)[0]:
                line = self.proc.stdout.readline()
                break
        if not line.startswith(b"READY"):
            self.kill()
            with open(self.out, "rb") as f:
                raise AssertionError("mbserver %s did not start: %s" % (self.name, f.read()[-2000:]))
        self.port = int(line.split()[1]) or self.port
        return self

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait(10)
            self.proc.stdout.close()
        self.proc = None

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def mute(self, unit, on=True):
        path = os.path.join(self.mute_dir, "mute-%d" % unit)
        if on:
            open(path, "w").close()
        elif os.path.exists(path):
            os.unlink(path)

    def requests(self, unit=None):
        if not os.path.exists(self.log):
            return []
        out = []
        with open(self.log) as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # being written
                r = json.loads(line)
                if unit is None or r["unit"] == unit:
                    out.append(r)
        return out

    def clear_log(self):
        open(self.log, "w").close()


def cycles(requests, gap=0.08):
    """Splits a request log into poll cycles: requests closer than GAP s."""
    out = []
    for r in requests:
        if out and r["t"] - out[-1][-1]["t"] <= gap:
            out[-1].append(r)
        else:
            out.append([r])
    return out


class PtyPair:
    """socat pty pair: two connected ttys, A for the server, B for m2md."""

    def __init__(self, directory):
        self.a = os.path.join(directory, "ttyA")
        self.b = os.path.join(directory, "ttyB")
        self.errf = open(os.path.join(directory, "socat.log"), "ab")
        self.proc = subprocess.Popen(
            ["socat", "-d", "-d", "pty,raw,echo=0,link=" + self.a, "pty,raw,echo=0,link=" + self.b],
            stdin=subprocess.DEVNULL, stdout=self.errf, stderr=self.errf)
        wait_for(lambda: os.path.exists(self.a) and os.path.exists(self.b), 10, "socat ptys")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.errf.close()


def driver(name, **keys):
    return table("drivers." + name, plugin="modbus", **keys)


def device(drv, **keys):
    return table("[[drivers.%s.devices]]" % drv, **keys)


def point(drv, **keys):
    return table("[[drivers.%s.devices.points]]" % drv, **keys)


FORMATS = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "int64": ">q",
           "uint64": ">Q", "float32": ">f", "float64": ">d"}


def encode(type_, order, value):
    """Registers in address order for VALUE, per the order names of
    docs/modbus.md: word order reversed for CDAB/DCBA, bytes swapped in each
    word for BADC/DCBA. Written from the definition, not from the C code."""
    b = struct.pack(FORMATS[type_], value)
    words = [b[i:i + 2] for i in range(0, len(b), 2)]
    if order in ("CDAB", "DCBA"):
        words.reverse()
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


def as_type(type_, value):
    """VALUE as the type holds it (float32 rounding)."""
    return struct.unpack(FORMATS[type_], struct.pack(FORMATS[type_], value))[0]


def latest(gw, name):
    rows = gw.query("SELECT r.value, r.quality FROM readings r JOIN points p ON p.id = r.point "
                    "WHERE p.name = ? ORDER BY r.rowid DESC LIMIT 1", (name,))
    return rows[0] if rows else None


def qualities(gw, name, since_rowid=0):
    return [r[0] for r in gw.query(
        "SELECT r.quality FROM readings r JOIN points p ON p.id = r.point "
        "WHERE p.name = ? AND r.rowid > ? ORDER BY r.rowid", (name, since_rowid))]


def max_rowid(gw):
    return gw.query("SELECT coalesce(max(rowid), 0) FROM readings")[0][0]


def events(gw, source=None):
    sql = "SELECT kind, source, text FROM events"
    args = ()
    if source:
        sql += " WHERE source = ?"
        args = (source,)
    return gw.query(sql + " ORDER BY id", args)


def ctl(gw, cmd, timeout=10, **args):
    """One request CMD with ARGS on m2md's control socket; the reply as a dict."""
    return m2mtest.ctl(gw, dict(id=1, cmd=cmd, **args), timeout)


def driver_stats(gw, name):
    """The stats a driver published, as m2mctl status shows them."""
    reply = ctl(gw, "status")
    check(reply.get("ok"), "status answered: %r" % reply)
    for d in reply["result"]["drivers"]:
        if d["name"] == name:
            return d["stats"]
    raise AssertionError("no driver %s in status: %r" % (name, reply))


def writes(srv, unit=None):
    """Write requests (FC 5, 6, 15, 16) the server saw."""
    return [r for r in srv.requests(unit) if r["fc"] in (5, 6, 15, 16)]
