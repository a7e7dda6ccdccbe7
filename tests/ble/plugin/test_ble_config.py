# SPDX-License-Identifier: MIT
"""The ble driver's configuration as m2md --check sees it (errors with
file:line:key, the key file refused when group or others can read it),
and the scan tool: m2md-ble-scan lists what BlueZ hears and prints a
snippet that m2md accepts as it is."""

import os
import subprocess
import threading
import time

from bletest import BlueZ, Bus, check, device, driver, main, point, pvvx, wait_for
from m2mtest import BUILD, SLOW, run_check, tmpdir

ADDR = "A4:C1:38:00:11:22"
KEY = "231d39c1d7cc1ab1aee224cd096db932"


def write_config(d, body):
    path = os.path.join(d, "m2md.toml")
    with open(path, "w") as f:
        f.write('[gateway]\nid = "t"\n[storage]\npath = "%s"\n%s' % (os.path.join(d, "db"), body))
    return path


def bthome(key_file):
    return (driver("ble", key_file=key_file)
            + device("ble", name="door", address=ADDR, format="bthome")
            + point("ble", name="temperature"))


def test_key_file():
    d = tmpdir("ble-keys")
    keys = os.path.join(d, "ble-keys")
    with open(keys, "w") as f:
        f.write("# bind keys\n%s %s\n" % (ADDR.lower(), KEY))
    os.chmod(keys, 0o640)
    code, out, err = run_check(write_config(d, bthome(keys)))
    check(code != 0, "a key file readable by its group is refused")
    check("accessible by group or others" in err and "chmod 600" in err and keys in err,
          "with a message that says why and what to do: %s" % err)
    check(":3: drivers.ble.key_file" in err or "drivers.ble.key_file" in err,
          "naming the key: %s" % err)
    os.chmod(keys, 0o600)
    code, out, err = run_check(write_config(d, bthome(keys)))
    check(code == 0, "a key file only its owner reads is taken: %s" % err)
    with open(keys, "w") as f:
        f.write("%s not-a-key\n" % ADDR)
    code, out, err = run_check(write_config(d, bthome(keys)))
    check(code != 0 and "line 1" in err, "a bad key line is an error with its line: %s" % err)


def test_config_errors():
    d = tmpdir("ble-cfg")
    cases = [
        (device("ble", name="a", format="pvvx") + point("ble", name="temperature"),
         "needs either 'address'"),
        (device("ble", name="a", address="A4:C1:38", format="pvvx") + point("ble", name="temperature"),
         "expected an address"),
        (device("ble", name="a", address=ADDR, format="xiaomi") + point("ble", name="t"),
         "unknown format \"xiaomi\""),
        (device("ble", name="a", id="x", format="pvvx") + point("ble", name="temperature"),
         "carries no stable id"),
        (device("ble", name="a", address=ADDR, format="raw") + point("ble", name="t", offset=2),
         "needs 'source'"),
        (device("ble", name="a", address=ADDR, format="pvvx", stale="10s", offline="5s")
         + point("ble", name="temperature"), "'offline' must not be shorter"),
        (device("ble", name="a", address=ADDR, format="pvvx") + point("ble", name="temperature", register=1),
         "unknown key 'register'"),
        # A misspelt field would never get a value.
        (device("ble", name="a", address=ADDR, format="pvvx") + point("ble", name="temprature"),
         "format pvvx has no field 'temprature'"),
        (device("ble", name="a", address=ADDR, format="bthome") + point("ble", name="t", field="humid"),
         "format bthome has no field 'humid'"),
    ]
    for body, want in cases:
        code, out, err = run_check(write_config(d, driver("ble") + body))
        check(code != 0 and want in err, "%r: %s" % (want, err))
        check("m2md.toml:" in err and "drivers.ble" in err, "file:line:key: %s" % err)
    ok = (driver("ble") + device("ble", name="tag", address=ADDR, format="raw")
          + point("ble", name="level", source="manufacturer", company=0x0499, offset=1,
                  type="int16", order="little", scale=0.1))
    code, out, err = run_check(write_config(d, ok))
    check(code == 0, "a raw device: %s" % err)


def test_scan_tool():
    d = tmpdir("ble-scan")
    bus = Bus(d)
    bluez = BlueZ(bus, d).start()
    stop = threading.Event()

    def play():
        n = 0
        while not stop.is_set():
            n += 1
            bluez.advertise(ADDR, -58, svc=pvvx(ADDR, 21.5, 45.0, counter=n % 256))
            bluez.advertise("11:22:33:44:55:66", -80, mfr={0x0075: b"\x01\x02"})
            time.sleep(0.1)
    t = threading.Thread(target=play)
    t.start()
    try:
        p = subprocess.run([os.path.join(BUILD, "plugins", "ble", "m2md-ble-scan"), "--seconds", "2",
                            "--all"], capture_output=True, text=True, timeout=30 * SLOW)
    finally:
        stop.set()
        t.join()
        bluez.kill()
        bus.stop()
    check(p.returncode == 0, "the scan runs: %s" % p.stderr)
    out = p.stdout
    check("2 devices heard on hci0" in out and "1 in a format m2md decodes" in out, out)
    check('address = "%s"' % ADDR in out and 'format = "pvvx"' in out, "the pvvx device: %s" % out)
    for field in ("temperature", "humidity", "battery", "voltage"):
        check('name = "%s"' % field in out, "its field %s: %s" % (field, out))
    check("11:22:33:44:55:66" in out and "no known format" in out, "--all lists the other: %s" % out)
    code, _, err = run_check(write_config(d, driver("ble") + out))
    check(code == 0, "the snippet is a config m2md accepts: %s\n%s" % (err, out))


if __name__ == "__main__":
    main([test_key_file, test_config_errors, test_scan_tool])
