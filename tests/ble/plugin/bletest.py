# SPDX-License-Identifier: MIT
"""Helpers for the ble driver's tests: a private D-Bus daemon that m2md
takes for the system bus, the project's BlueZ mock on it
(bluez_mock.py, python3-dbusmock), and advertisement payloads.

Every process a test starts is stopped by PID; every wait is bounded."""

import contextlib
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../integration"))

import dbus  # noqa: E402

from m2mtest import SLOW, Gateway, check, ctl, main, tmpdir, wait_for  # noqa: E402,F401

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bluez_mock.py")
GOOD, STALE, DECODE_ERROR, DEVICE_ERROR, COMM_ERROR = 0, 5, 3, 6, 2


class Bus:
    """A dbus-daemon of our own (session configuration), stopped by PID."""

    def __init__(self, d):
        self.proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, cwd=d)
        self.address = self.proc.stdout.readline().decode().strip()
        check(self.address.startswith("unix:"), "dbus-daemon printed its address: %r" % self.address)
        # m2md (and the scan tool) take it for the system bus.
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self.address
        self.conn = dbus.bus.BusConnection(self.address)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc.stdout.close()


class BlueZ:
    """The mock bluetoothd on BUS: start, kill (a crash), start again."""

    def __init__(self, bus, d):
        self.bus, self.dir, self.proc = bus, d, None

    def start(self, adapter="hci0"):
        self.log = open(os.path.join(self.dir, "bluez-mock.log"), "ab")
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus.address)
        self.proc = subprocess.Popen(["/usr/bin/python3", "-m", "dbusmock", "--template", TEMPLATE],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=env)
        wait_for(lambda: self.bus.conn.name_has_owner("org.bluez") or self.proc.poll() is not None,
                 15, "the BlueZ mock on the bus")
        check(self.proc.poll() is None, "the BlueZ mock runs")
        self.mock = dbus.Interface(self.bus.conn.get_object("org.bluez", "/"), "org.bluez.Mock")
        if adapter:
            self.mock.AddAdapter(adapter)
        return self

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
            self.log.close()
        self.proc = None

    def discovery(self, adapter="hci0"):
        session, filters, starts, flt = self.mock.DiscoveryInfo(adapter)
        return bool(session), int(filters), int(starts), {str(k): v for k, v in flt.items()}

    def advertise(self, addr, rssi=-60, mfr=None, svc=None, adapter="hci0"):
        m = dbus.Dictionary({dbus.UInt16(k): dbus.ByteArray(v) for k, v in (mfr or {}).items()},
                            signature="qay")
        s = dbus.Dictionary({dbus.String(k): dbus.ByteArray(v) for k, v in (svc or {}).items()},
                            signature="say")
        return bool(self.mock.Advertise(adapter, addr, dbus.Int16(rssi), m, s))


def pvvx(addr, temp, hum, mv=2950, pct=87, counter=1, flags=0):
    """A pvvx custom firmware advert (service 0x181a): MAC least significant first."""
    mac = bytes(int(x, 16) for x in reversed(addr.split(":")))
    return {"181a": mac + struct.pack("<hHHBBB", round(temp * 100), round(hum * 100), mv, pct,
                                      counter, flags)}


def atc1441(addr, temp, hum, pct=90, mv=3000, counter=1):
    mac = bytes(int(x, 16) for x in addr.split(":"))
    return {"181a": mac + struct.pack(">hBBHB", round(temp * 10), hum, pct, mv, counter)}


def driver(name="ble", **keys):
    return "[drivers.%s]\nplugin = \"ble\"\n%s\n" % (name, fmt(keys))


def fmt(keys):
    out = ""
    for k, v in keys.items():
        if isinstance(v, bool):
            out += "%s = %s\n" % (k, "true" if v else "false")
        elif isinstance(v, (int, float)):
            out += "%s = %s\n" % (k, v)
        else:
            out += "%s = \"%s\"\n" % (k, v)
    return out


def device(drv="ble", **keys):
    return "[[drivers.%s.devices]]\n%s" % (drv, fmt(keys))


def point(drv="ble", **keys):
    return "[[drivers.%s.devices.points]]\n%s" % (drv, fmt(keys))


def status(gw, name="ble"):
    for d in ctl(gw, {"id": 1, "cmd": "status"})["result"]["drivers"]:
        if d["name"] == name:
            return d
    raise AssertionError("no driver %s in status" % name)


def instance_reason(gw, name="ble"):
    """The instance's offline reason, or None when it is online (or never said)."""
    for dev in status(gw, name).get("devices", []):
        if dev["name"] is None:
            return dev["reason"] if dev["state"] == "offline" else None
    return None


def stat(gw, key, name="ble"):
    return status(gw, name)["stats"].get(key)


def latest(gw, name):
    rows = gw.query("SELECT r.value, r.quality FROM readings r JOIN points p ON p.id = r.point "
                    "WHERE p.name = ? ORDER BY r.rowid DESC LIMIT 1", (name,))
    return rows[0] if rows else None


def readings(gw, name, since_rowid=0):
    return gw.query("SELECT r.value, r.quality FROM readings r JOIN points p ON p.id = r.point "
                    "WHERE p.name = ? AND r.rowid > ? ORDER BY r.rowid", (name, since_rowid))


def max_rowid(gw):
    return gw.query("SELECT coalesce(max(rowid), 0) FROM readings")[0][0]


def events(gw, source=None):
    sql, args = "SELECT kind, source, text FROM events", ()
    if source:
        sql, args = sql + " WHERE source = ?", (source,)
    return gw.query(sql + " ORDER BY id", args)


@contextlib.contextmanager
def rig(name, config, adapter="hci0", bluez_up=True, before=None, gateway_extra=""):
    """A bus, the BlueZ mock (with ADAPTER, unless BLUEZ_UP is false) and
    m2md with CONFIG, for a with block; BEFORE(bluez) runs before m2md
    starts. Everything is stopped by PID afterwards, m2md first."""
    d = tmpdir(name)
    bus = Bus(d)
    bluez = BlueZ(bus, d)
    gw = None
    try:
        if bluez_up:
            bluez.start(adapter=adapter)
        if before:
            before(bluez)
        gw = Gateway(name, config, directory=d, gateway_extra=gateway_extra).start()
        yield bus, bluez, gw
    finally:
        try:
            if gw:
                check(gw.stop() == 0, "m2md exits 0")
        finally:
            bluez.kill()
            bus.stop()
