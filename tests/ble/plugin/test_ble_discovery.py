# SPDX-License-Identifier: MIT
"""The ble driver against a real D-Bus daemon and the project's BlueZ mock:
the discovery filter it sets (DuplicateData = true), adverts from
InterfacesAdded and PropertiesChanged decoded into readings, duplicates
dropped by the packet counter, rssi and last_seen, unknown devices counted,
malformed adverts counted as decode errors, silent devices stale and then
offline, and a device that BlueZ removed and that comes back."""

import time

from bletest import (DECODE_ERROR, GOOD, STALE, atc1441, check, device, driver, events, latest,
                     main, max_rowid, point, pvvx, readings, rig, stat, wait_for)

ADDR = "A4:C1:38:00:11:22"


def config(**dev_keys):
    keys = dict(name="th1", address=ADDR, format="pvvx")
    keys.update(dev_keys)
    return (driver("ble") + device("ble", **keys)
            + point("ble", name="temperature", unit="°C")
            + point("ble", name="humidity")
            + point("ble", name="rssi")
            + point("ble", name="last_seen"))


def setup(name, **dev_keys):
    """The rig, once m2md has started discovery."""
    r = rig(name, config(**dev_keys))
    bus, bluez, gw = r.__enter__()
    try:
        wait_for(lambda: bluez.discovery()[0], 10, "m2md to start discovery")
    except BaseException:
        r.__exit__(None, None, None)
        raise
    return r, bluez, gw


def test_filter_and_adverts():
    r, bluez, gw = setup("ble-adverts")
    try:
        session, filters, starts, flt = bluez.discovery()
        check(bool(flt.get("DuplicateData")) is True, "m2md sets DuplicateData = true: %r" % flt)
        check(str(flt.get("Transport")) == "le", "and Transport = le: %r" % flt)
        check(filters == 1 and starts == 1, "one filter, one start: %d %d" % (filters, starts))

        t0 = time.time()
        check(bluez.advertise(ADDR, -61, svc=pvvx(ADDR, 23.45, 50.12, counter=1)), "delivered")
        wait_for(lambda: latest(gw, "th1/temperature") == (23.45, GOOD), 10,
                 "the first advert (InterfacesAdded) decoded")
        check(latest(gw, "th1/humidity") == (50.12, GOOD), "humidity: %r" % (latest(gw, "th1/humidity"),))
        check(latest(gw, "th1/rssi") == (-61, GOOD), "rssi: %r" % (latest(gw, "th1/rssi"),))
        seen = latest(gw, "th1/last_seen")
        check(seen[1] == GOOD and t0 - 1 <= seen[0] <= time.time() + 1, "last_seen is now: %r" % (seen,))

        # The same measurement again (the counter did not move): dropped.
        mark = max_rowid(gw)
        bluez.advertise(ADDR, -62, svc=pvvx(ADDR, 23.45, 50.12, counter=1))
        bluez.advertise(ADDR, -63, svc=pvvx(ADDR, 24.5, 49.0, counter=2))
        wait_for(lambda: latest(gw, "th1/temperature") == (24.5, GOOD), 10,
                 "a new measurement (PropertiesChanged) decoded")
        check([v for v, q in readings(gw, "th1/temperature", mark)] == [24.5],
              "the repeat of counter 1 gave no reading: %r" % readings(gw, "th1/temperature", mark))
        wait_for(lambda: stat(gw, "duplicates.th1") == 1, 5, "one duplicate counted")
        check(stat(gw, "decoded.th1") == 2, "two adverts decoded: %r" % stat(gw, "decoded.th1"))

        # Another device, not configured: counted, nothing stored.
        bluez.advertise("11:22:33:44:55:66", -70, svc=pvvx("11:22:33:44:55:66", 1.0, 2.0))
        wait_for(lambda: (stat(gw, "unknown_adverts") or 0) >= 1, 5, "the unknown device counted")

        # A malformed advert: counted, a decode_error reading, the daemon fine.
        mark = max_rowid(gw)
        bluez.advertise(ADDR, -60, svc={"181a": b"\x01\x02\x03"})
        wait_for(lambda: stat(gw, "decode_errors.th1") == 1, 5, "the malformed advert counted")
        wait_for(lambda: [q for v, q in readings(gw, "th1/temperature", mark)] == [DECODE_ERROR], 5,
                 "one decode_error reading")
        bluez.advertise(ADDR, -60, svc=pvvx(ADDR, 25.0, 48.0, counter=3))
        wait_for(lambda: latest(gw, "th1/temperature") == (25.0, GOOD), 10, "and good ones after")
        check(stat(gw, "adverts.th1") >= 5, "adverts counted: %r" % stat(gw, "adverts.th1"))
    finally:
        r.__exit__(None, None, None)


def test_stale_offline_back():
    r, bluez, gw = setup("ble-stale", stale="1s", offline="2s")
    try:
        bluez.advertise(ADDR, -60, svc=pvvx(ADDR, 20.0, 40.0, counter=1))
        wait_for(lambda: latest(gw, "th1/temperature") == (20.0, GOOD), 10, "a reading")
        wait_for(lambda: latest(gw, "th1/temperature")[1] == STALE, 10, "stale after 1s of silence")
        wait_for(lambda: [e[0] for e in events(gw, "th1")][-1:] == ["offline"], 10,
                 "offline after 2s of silence")
        ev = events(gw, "th1")[-1]
        check("no advertisement for 2s" in ev[2], "the reason says why: %r" % (ev,))
        bluez.advertise(ADDR, -60, svc=pvvx(ADDR, 21.0, 40.0, counter=2))
        wait_for(lambda: latest(gw, "th1/temperature") == (21.0, GOOD), 10, "a reading again")
        wait_for(lambda: [e[0] for e in events(gw, "th1")][-1:] == ["online"], 10, "online again")
    finally:
        r.__exit__(None, None, None)


def test_device_removed_and_back():
    r, bluez, gw = setup("ble-removed")
    try:
        bluez.advertise(ADDR, -60, svc=pvvx(ADDR, 20.0, 40.0, counter=1))
        wait_for(lambda: latest(gw, "th1/temperature") == (20.0, GOOD), 10, "a reading")
        check(bluez.mock.RemoveDevice("hci0", ADDR), "BlueZ removes the device (InterfacesRemoved)")
        bluez.advertise(ADDR, -60, svc=pvvx(ADDR, 22.0, 40.0, counter=2))
        wait_for(lambda: latest(gw, "th1/temperature") == (22.0, GOOD), 10,
                 "the device found again (a new InterfacesAdded) is decoded")
    finally:
        r.__exit__(None, None, None)


def test_wrong_format_is_not_a_value():
    # An ATC1441 advert for a device configured as pvvx: 13 bytes, not 15.
    # pvvx firmware may send both formats in turn, so it is another frame of
    # the device, not a malformed one: counted and said, never a value.
    r, bluez, gw = setup("ble-format")
    try:
        bluez.advertise(ADDR, -60, svc=atc1441(ADDR, 19.5, 45))
        wait_for(lambda: stat(gw, "other_frames.th1") == 1, 5, "another frame counted")
        check(stat(gw, "decode_errors.th1") == 0, "not a decode error")
        check(all(q != GOOD for v, q in readings(gw, "th1/temperature")), "and no good value")
        check("in no form of format pvvx" in gw.log_text(), "the log says why nothing decodes")
    finally:
        r.__exit__(None, None, None)


def test_many_devices():
    # 200 sensors declare 1,400 per-device statistics, past the 1,024 the
    # host once allowed: every device has its own, and the last one counts.
    addrs = ["10:00:00:00:%02X:%02X" % (i >> 8, i & 0xff) for i in range(200)]
    cfg = driver("ble") + "".join(device("ble", name="th%d" % i, address=a, format="pvvx")
                                  + point("ble", name="temperature") for i, a in enumerate(addrs))
    with rig("ble-many", cfg) as (bus, bluez, gw):
        wait_for(lambda: bluez.discovery()[0], 10, "m2md to start discovery")
        check(stat(gw, "decoded.th199") == 0, "the 200th device's statistics are declared")
        check("could be declared" not in gw.log_text(), "no statistic was refused")
        bluez.advertise(addrs[199], -60, svc=pvvx(addrs[199], 21.5, 40))
        wait_for(lambda: stat(gw, "decoded.th199") == 1, 5, "the 200th device's advert counted")
        wait_for(lambda: latest(gw, "th199/temperature") == (21.5, GOOD), 5, "and its reading")


if __name__ == "__main__":
    main([test_filter_and_adverts, test_stale_offline_back, test_device_removed_and_back,
          test_wrong_format_is_not_a_value, test_many_devices])
