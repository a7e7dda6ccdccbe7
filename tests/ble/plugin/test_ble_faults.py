# SPDX-License-Identifier: MIT
"""The ble driver when BlueZ forgets things: the adapter powered off and on,
discovery stopped behind its back, bluetoothd killed and started again,
and BlueZ absent when m2md starts. Nothing resumes by itself in BlueZ, so
each time the driver must set the filter and start discovery again, and
adverts must be decoded again."""

from bletest import (GOOD, check, device, driver, instance_reason, latest, main, point, pvvx, rig,
                     wait_for)

ADDR = "A4:C1:38:00:11:22"
CONFIG = (driver("ble", backoff_max="2s") + device("ble", name="th1", address=ADDR, format="pvvx")
          + point("ble", name="temperature"))


def advert_until(bluez, gw, temp, counter, what):
    """Advertises until the reading arrives: right after a re-arm the
    driver's StartDiscovery may still be on its way."""
    def step():
        bluez.advertise(ADDR, -60, svc=pvvx(ADDR, temp, 40.0, counter=counter))
        return latest(gw, "th1/temperature") == (temp, GOOD)
    wait_for(step, 15, what, interval=0.2)


def run(name, body, **kw):
    with rig(name, CONFIG, **kw) as (bus, bluez, gw):
        body(bus, bluez, gw)


def test_power_cycle():
    def body(bus, bluez, gw):
        wait_for(lambda: bluez.discovery()[0], 10, "discovery")
        advert_until(bluez, gw, 20.0, 1, "a reading")
        bluez.mock.SetPowered("hci0", False)
        wait_for(lambda: instance_reason(gw) == "adapter hci0 is powered off", 10,
                 "the instance offline while the adapter is off")
        check(not bluez.advertise(ADDR, -60, svc=pvvx(ADDR, 30.0, 40.0, counter=9)),
              "no adverts while powered off")
        bluez.mock.SetPowered("hci0", True)
        wait_for(lambda: bluez.discovery()[0], 10, "discovery started again after power on")
        session, filters, starts, flt = bluez.discovery()
        check(filters == 2 and starts == 2 and bool(flt.get("DuplicateData")),
              "the filter set again (the power cycle dropped it): %r" % (bluez.discovery(),))
        advert_until(bluez, gw, 21.0, 2, "readings again")
        wait_for(lambda: instance_reason(gw) is None, 5, "the instance online again")
    run("ble-power", body)


def test_discovery_stopped():
    def body(bus, bluez, gw):
        wait_for(lambda: bluez.discovery()[0], 10, "discovery")
        bluez.mock.StopDiscoveryBehindClients("hci0")
        wait_for(lambda: bluez.discovery()[2] == 2 and bluez.discovery()[0], 10,
                 "discovery started again after it stopped")
        advert_until(bluez, gw, 22.0, 1, "readings")
    run("ble-stopped", body)


def test_bluetoothd_restart():
    def body(bus, bluez, gw):
        wait_for(lambda: bluez.discovery()[0], 10, "discovery")
        advert_until(bluez, gw, 20.0, 1, "a reading")
        bluez.kill()
        wait_for(lambda: (instance_reason(gw) or "").startswith("bluetoothd stopped"), 10,
                 "the instance offline: bluetoothd left the bus")
        bluez.start()  # a new bluetoothd: no filter, no session
        wait_for(lambda: bluez.discovery()[0], 15, "discovery set up on the new bluetoothd")
        check(bool(bluez.discovery()[3].get("DuplicateData")), "with the filter")
        advert_until(bluez, gw, 23.0, 2, "readings from the new bluetoothd")
        check(gw.proc.poll() is None, "m2md kept running")
    run("ble-restart", body)


def test_bluez_absent_at_start():
    def body(bus, bluez, gw):
        wait_for(lambda: (instance_reason(gw) or "").startswith("bluetoothd is not running"), 10,
                 "a driver failure, not a daemon failure: %r" % instance_reason(gw))
        check(gw.proc.poll() is None, "m2md runs without BlueZ")
        bluez.start()
        wait_for(lambda: bluez.discovery()[0], 15, "discovery once BlueZ is there")
        advert_until(bluez, gw, 24.0, 1, "readings")
    run("ble-absent", body, bluez_up=False)


def test_adapter_added_later():
    def body(bus, bluez, gw):
        wait_for(lambda: instance_reason(gw) == "adapter hci0 not found", 10, "no adapter yet")
        bluez.mock.AddAdapter("hci0")
        wait_for(lambda: bluez.discovery()[0], 10, "discovery when the adapter appears")
        advert_until(bluez, gw, 25.0, 1, "readings")
    run("ble-late", body, adapter=None)


if __name__ == "__main__":
    main([test_power_cycle, test_discovery_stopped, test_bluetoothd_restart,
          test_bluez_absent_at_start, test_adapter_added_later])
