# SPDX-License-Identifier: MIT
"""m2md --check on modbus configs: each mistake is refused with exit 78 and
one line that names the place and what was expected; good configs pass."""

import os

from mbtest import check, main, run_check, tmpdir, BUILD

HEAD = """[gateway]
id = "gw-test"
plugin_dir = "%s"
[storage]
path = "%s"
"""

DRIVER = """
[drivers.plc]
plugin = "modbus"
host = "127.0.0.1"
[[drivers.plc.devices]]
name = "dev"
"""


def toml(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return '"%s"' % v if isinstance(v, str) else str(v)


def pt(**keys):
    body = "".join("%s = %s\n" % (k, toml(v)) for k, v in keys.items())
    return "[[drivers.plc.devices.points]]\n" + body


GOOD = [
    ("every table", DRIVER + pt(name="c", table="coil", address=0)
     + pt(name="d", table="discrete_input", address=0)
     + pt(name="i", table="input_register", address=0, type="float64", order="DCBA")
     + pt(name="h", table="holding_register", address=65534, type="int32", order="CDAB")),
    ("bits of one register", DRIVER + pt(name="b0", table="holding_register", address=5,
                                         type="bool", bit=0)
     + pt(name="b1", table="holding_register", address=5, type="bool", bit=1)),
    ("rtu", """
[drivers.plc]
plugin = "modbus"
transport = "rtu"
device = "/dev/ttyUSB0"
baud = 115200
parity = "none"
stop_bits = 2
rs485 = true
[[drivers.plc.devices]]
name = "dev"
unit_id = 247
""" + pt(name="a", table="holding_register", address=0)),
    ("string", DRIVER + pt(name="sn", table="input_register", address=0, type="string",
                           length=8, kind="string", order="BADC")),
    ("writable with verify", DRIVER + pt(name="w", table="holding_register", address=1,
                                         writable=True, verify=True, type="float32")),
]

BAD = [
    ("float32 on a coil", DRIVER + pt(name="a", table="coil", address=0, type="float32"),
     "type float32 does not fit table coil"),
    ("address out of range", DRIVER + pt(name="a", table="holding_register", address=70000),
     "address"),
    ("runs past the end", DRIVER + pt(name="a", table="holding_register", address=65535,
                                      type="uint32"),
     "runs past address 65535"),
    ("overlap", DRIVER + pt(name="a", table="holding_register", address=10, type="float32")
     + pt(name="b", table="holding_register", address=11), "overlaps point \"a\""),
    ("duplicate", DRIVER + pt(name="a", table="coil", address=3)
     + pt(name="b", table="coil", address=3), "overlaps point \"a\""),
    ("duplicate bit", DRIVER + pt(name="a", table="holding_register", address=3, type="bool", bit=4)
     + pt(name="b", table="holding_register", address=3, type="bool", bit=4), "overlaps"),
    ("bit of a register overlapping a value", DRIVER
     + pt(name="a", table="holding_register", address=3, type="uint32")
     + pt(name="b", table="holding_register", address=4, type="bool", bit=4), "overlaps"),
    ("missing bit", DRIVER + pt(name="a", table="holding_register", address=3, type="bool"),
     "needs 'bit'"),
    ("bit out of range", DRIVER + pt(name="a", table="holding_register", address=3,
                                     type="bool", bit=16), "bit"),
    ("bit on a coil", DRIVER + pt(name="a", table="coil", address=3, bit=1), "unknown key 'bit'"),
    ("missing table", DRIVER + pt(name="a", address=3), "missing key 'table'"),
    ("bad table", DRIVER + pt(name="a", table="holding", address=3), "table"),
    ("missing address", DRIVER + pt(name="a", table="coil"), "missing key 'address'"),
    ("bad type", DRIVER + pt(name="a", table="holding_register", address=0, type="int8"), "type"),
    ("bad order", DRIVER + pt(name="a", table="holding_register", address=0, type="int32",
                              order="ABDC"), "order"),
    ("order of a string", DRIVER + pt(name="a", table="holding_register", address=0,
                                      type="string", length=2, kind="string", order="CDAB"),
     "order CDAB does not apply to a string"),
    ("string without length", DRIVER + pt(name="a", table="holding_register", address=0,
                                          type="string", kind="string"), "needs 'length'"),
    ("string without kind", DRIVER + pt(name="a", table="holding_register", address=0,
                                        type="string", length=4), "kind = \\\"string\\\""),
    ("writable input register", DRIVER + pt(name="a", table="input_register", address=0,
                                            writable=True), "read-only"),
    ("verify without writable", DRIVER + pt(name="a", table="holding_register", address=0,
                                            verify=True), "needs writable = true"),
    ("too wide for the device", DRIVER.replace('name = "dev"', 'name = "dev"\nmax_registers = 2')
     + pt(name="a", table="holding_register", address=0, type="float64"), "max_registers = 2"),
    ("no points", DRIVER, "needs 'points'"),
    ("no devices", '\n[drivers.plc]\nplugin = "modbus"\nhost = "127.0.0.1"\n', "'devices'"),
    ("no host", DRIVER.replace('host = "127.0.0.1"\n', '') + pt(name="a", table="coil", address=0),
     "missing key 'host'"),
    ("unknown driver key", DRIVER.replace('host = "127.0.0.1"', 'host = "127.0.0.1"\nbaud = 9600')
     + pt(name="a", table="coil", address=0), "unknown key 'baud'"),
    ("unit id 0 on rtu", """
[drivers.plc]
plugin = "modbus"
transport = "rtu"
device = "/dev/ttyUSB0"
[[drivers.plc.devices]]
name = "dev"
unit_id = 0
""" + pt(name="a", table="coil", address=0), "unit_id"),
    ("odd baud", """
[drivers.plc]
plugin = "modbus"
transport = "rtu"
device = "/dev/ttyUSB0"
baud = 12345
[[drivers.plc.devices]]
name = "dev"
""" + pt(name="a", table="coil", address=0), "not a standard rate"),
    ("duplicate unit id", DRIVER + pt(name="a", table="coil", address=0)
     + '[[drivers.plc.devices]]\nname = "dev2"\n' + pt(name="b", table="coil", address=0),
     "unit_id 1 is already device \"dev\""),
    ("bad interval", DRIVER + pt(name="a", table="coil", address=0, interval="10us"),
     "interval"),
    ("max_gap too large", DRIVER.replace('host = "127.0.0.1"', 'host = "127.0.0.1"\nmax_gap = 500')
     + pt(name="a", table="coil", address=0), "max_gap"),
]


def test_configs():
    d = tmpdir("mb-config")
    head = HEAD % (os.path.join(BUILD, "plugins"), os.path.join(d, "m2md.db"))
    path = os.path.join(d, "m2md.toml")
    for what, text in GOOD:
        with open(path, "w") as f:
            f.write(head + text)
        code, out, err = run_check(path)
        check(code == 0, "%s: accepted (exit %d: %s)" % (what, code, err.strip()))
    for what, text, want in BAD:
        with open(path, "w") as f:
            f.write(head + text)
        code, out, err = run_check(path)
        lines = [l for l in err.splitlines() if l.strip()]
        check(code == 78, "%s: exit 78, got %d (%s)" % (what, code, err.strip()))
        check(len(lines) == 1, "%s: one error line: %r" % (what, lines))
        check(want.replace("\\", "") in err, "%s: %r in %r" % (what, want, err.strip()))
        check(err.startswith(path + ":"), "%s: names the file and line: %r" % (what, err.strip()))


if __name__ == "__main__":
    main([test_configs])
