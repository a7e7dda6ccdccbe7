# SPDX-License-Identifier: MIT
"""GATT through BlueZ: a device with connect = true is connected, its
characteristics mapped by UUID, read on an interval and notified, written
through the core's write path (WriteValue's reply completes the write, a
rejected write fails), and connected again after a disconnect, when the
characteristic objects have new paths."""

import subprocess
import os

from bletest import (GOOD, check, device, driver, latest, main, max_rowid, point, readings, rig,
                     wait_for)
from m2mtest import BUILD, SLOW

ADDR = "C0:FF:EE:00:00:01"
SVC = "181a"
TEMP = "2a6e"     # Temperature, int16 0.01 degC
LEVEL = "2a19"    # Battery Level, uint8 %
SETPOINT = "ff01"


def m2mctl(gw, *args):
    p = subprocess.run([os.path.join(BUILD, "src", "m2mctl"), "--socket", gw.socket] + list(args),
                       capture_output=True, text=True, timeout=30 * SLOW)
    return p.returncode, p.stdout, p.stderr


def test_gatt():
    cfg = (driver("ble", backoff_max="2s")
           + device("ble", name="probe", address=ADDR, connect=True)
           + point("ble", name="temperature", characteristic=TEMP, type="int16", notify=True,
                   scale=0.01)
           + point("ble", name="battery", characteristic=LEVEL, type="uint8", interval="300ms")
           + point("ble", name="setpoint", characteristic=SETPOINT, type="uint16",
                   writable=True, interval="0", notify=False)
           + point("ble", name="rssi"))

    def database(bluez):
        m = bluez.mock
        m.AddCharacteristic("hci0", ADDR, SVC, TEMP, ["read", "notify"], bytes([0x29, 0x09]))
        m.AddCharacteristic("hci0", ADDR, SVC, LEVEL, ["read"], bytes([77]))
        m.AddCharacteristic("hci0", ADDR, SVC, SETPOINT, ["read", "write"], bytes([0, 0]))
    with rig("ble-gatt", cfg, before=database) as (bus, bluez, gw):
        m = bluez.mock
        # The device must be heard once, so that BlueZ has its object.
        wait_for(lambda: bluez.advertise(ADDR, -50), 10, "discovery")
        wait_for(lambda: bool(m.ConnectionInfo("hci0", ADDR)[0]), 15, "m2md connects")
        wait_for(lambda: latest(gw, "probe/battery") == (77, GOOD), 10, "a read characteristic")
        wait_for(lambda: bool(m.CharacteristicInfo("hci0", ADDR, TEMP)[2]), 10, "StartNotify")
        check(m.SetValue("hci0", ADDR, TEMP, bytes([0x10, 0x0a])), "a notification sent")
        wait_for(lambda: latest(gw, "probe/temperature") == (25.76, GOOD), 10,
                 "the notified value (0x0a10 = 2576 x 0.01)")
        reads = int(m.CharacteristicInfo("hci0", ADDR, LEVEL)[1])
        wait_for(lambda: int(m.CharacteristicInfo("hci0", ADDR, LEVEL)[1]) >= reads + 3, 10,
                 "reads on the interval")
        check(bluez.discovery()[0], "discovery running again after the connection")

        code, out, err = m2mctl(gw, "write", "probe/setpoint", "513")
        check(code == 0, "the write succeeds: %s %s" % (out, err))
        writes = [bytes(w) for w in m.CharacteristicInfo("hci0", ADDR, SETPOINT)[0]]
        check(writes == [bytes([0x01, 0x02])], "WriteValue got 513 little endian: %r" % writes)
        m.RejectWrites("hci0", ADDR, SETPOINT, True)
        code, out, err = m2mctl(gw, "write", "probe/setpoint", "7")
        check(code != 0 and "NotPermitted" in (out + err), "a rejected write fails: %s %s" % (out, err))

        # The device drops the connection: m2md connects again, on new paths.
        m.DisconnectDevice("hci0", ADDR)
        wait_for(lambda: int(m.ConnectionInfo("hci0", ADDR)[1]) >= 2 and
                 bool(m.ConnectionInfo("hci0", ADDR)[0]), 20, "connected again")
        m.SetValue("hci0", ADDR, LEVEL, bytes([55]))
        wait_for(lambda: latest(gw, "probe/battery") == (55, GOOD), 10,
                 "reads on the new connection's paths")
        wait_for(lambda: bool(m.CharacteristicInfo("hci0", ADDR, TEMP)[2]), 10, "subscribed again")
        mark = max_rowid(gw)
        m.SetValue("hci0", ADDR, TEMP, bytes([0x00, 0x0a]))
        wait_for(lambda: latest(gw, "probe/temperature") == (25.6, GOOD), 10, "notified again")
        check(len(readings(gw, "probe/temperature", mark)) == 1, "once")


if __name__ == "__main__":
    main([test_gatt])
