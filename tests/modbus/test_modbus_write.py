# SPDX-License-Identifier: MIT
"""Writes through the modbus driver, verified at a pymodbus server: every
write function code and the encoding per type and order, read-back
verification, a value the type cannot hold refused with zero frames on the
wire, and non-writable or out-of-limits targets refused before anything is
sent. The writes are made by a rule's write action (docs/rules.md), the
core's write path that MQTT commands and m2mctl share."""

import os
import time

from mbtest import (BUILD, Gateway, Server, check, device, driver, encode, main, point,
                    run_check, tmpdir, wait_for)

TARGETS = [
    # name, table, address, type, order, value, expected fc, extra keys
    ("coil", "coil", 3, "bool", None, True, 5, {}),
    ("u16", "holding_register", 10, "uint16", None, 54321, 6, {}),
    ("i16", "holding_register", 11, "int16", "BADC", -2, 6, {}),
    ("i32", "holding_register", 12, "int32", "CDAB", -123456, 16, {}),
    ("f32", "holding_register", 14, "float32", "BADC", 1.5, 16, {}),
    ("f64", "holding_register", 16, "float64", "DCBA", -0.25, 16, {}),
    ("u64", "holding_register", 20, "uint64", "ABCD", 2 ** 40 + 7, 16, {}),
    ("checked", "holding_register", 24, "uint16", None, 777, 6, {"verify": True}),
]


def rule(name, trigger, actions):
    acts = ", ".join("{ write = { point = \"%s\", value = %s, rate_limit = \"0\" } }" % (p, v)
                     for p, v in actions)
    return ('[[rules]]\nname = "%s"\npoint = "%s"\ncondition = ">"\nvalue = 0\n'
            'on_raise = [ %s ]\n' % (name, trigger, acts))


def toml_value(v):
    return ("true" if v else "false") if isinstance(v, bool) else repr(v)


def write_events(gw):
    return gw.query("SELECT kind, source, text FROM events WHERE kind LIKE 'write%' ORDER BY id")


def test_writes_at_the_server():
    d = tmpdir("mb-write")
    srv = Server(d, "w", units=(1,), config={
        "init": {"1": {"hr": {"100": [1], "30": [0x00f0]}}}}).start()
    try:
        cfg = driver("plc", transport="tcp", host="127.0.0.1", port=srv.port)
        cfg += device("plc", name="dev", unit_id=1, interval="1h")
        cfg += point("plc", name="trigger", table="holding_register", address=100)
        actions = []
        for name, tbl, addr, type_, order, value, fc, extra in TARGETS:
            keys = dict(name=name, table=tbl, address=addr, type=type_, writable=True)
            if order:
                keys["order"] = order
            if type_ == "bool":
                keys["kind"] = "bool"
            keys.update(extra)
            cfg += point("plc", **keys)
            actions.append(("dev/" + name, toml_value(value)))
        # A bit of a register: read, modify, write.
        cfg += point("plc", name="flag", table="holding_register", address=30, type="bool",
                     bit=0, kind="bool", writable=True)
        actions.append(("dev/flag", "true"))
        # 70000 passes the core (no limits) but not uint16: refused, no frame.
        cfg += point("plc", name="small", table="holding_register", address=40, type="uint16",
                     writable=True)
        actions.append(("dev/small", "70000"))
        cfg += point("plc", name="frac", table="holding_register", address=41, type="int16",
                     writable=True)
        actions.append(("dev/frac", "2.5"))
        cfg += rule("fire", "dev/trigger", actions)

        gw = Gateway("mb-write", cfg, directory=d).start()
        try:
            wait_for(lambda: len([r for r in srv.requests(1) if r["fc"] in (5, 6, 15, 16)]) >= 9,
                     15, "the writes at the server")
            time.sleep(0.5)
            log = gw.log_text()
        finally:
            check(gw.stop() == 0, "m2md exits 0")

        writes = [r for r in srv.requests(1) if r["fc"] in (5, 6, 15, 16)]
        by_addr = {}
        for r in writes:
            by_addr.setdefault(r["addr"], []).append(r)
        for name, tbl, addr, type_, order, value, fc, extra in TARGETS:
            got = by_addr.get(addr, [])
            check(len(got) == 1, "%s: one write at %d: %r" % (name, addr, got))
            w = got[0]
            check(w["fc"] == fc, "%s: function code %d, expected %d" % (name, w["fc"], fc))
            want = [1 if value else 0] if type_ == "bool" else encode(type_, order or "ABCD", value)
            check(w["values"] == want, "%s: wrote %r, expected %r" % (name, w["values"], want))
        check([w["values"] for w in by_addr.get(30, [])] == [[0x00f1]],
              "bit 0 set, the other bits kept: %r" % by_addr.get(30))
        check(40 not in by_addr and 41 not in by_addr,
              "unrepresentable values never reach the wire: %r" % writes)
        reads = [(r["fc"], r["addr"]) for r in srv.requests(1) if r["fc"] in (1, 3)]
        check((3, 24) in reads, "the verified write was read back: %r" % reads)
        check((3, 30) in reads, "the bit write read the register first")
        check("70000" in log and "uint16" in log, "the refusal says why")
    finally:
        srv.kill()


def test_refused_at_config():
    """A rule may not write a read-only point or outside its limits: refused
    before m2md starts, so no frame is ever sent."""
    d = tmpdir("mb-write-cfg")
    head = ('[gateway]\nid = "gw-test"\nplugin_dir = "%s"\n[storage]\npath = "%s"\n'
            % (os.path.join(BUILD, "plugins"), os.path.join(d, "m2md.db")))
    base = driver("plc", transport="tcp", host="127.0.0.1", port=1502)
    base += device("plc", name="dev", unit_id=1)
    base += point("plc", name="t", table="holding_register", address=0)
    base += point("plc", name="ro", table="holding_register", address=1)
    base += point("plc", name="lim", table="holding_register", address=2, writable=True, max=100)
    path = os.path.join(d, "m2md.toml")
    for target, value, want in (("dev/ro", "1", "writable"), ("dev/lim", "101", "limits")):
        with open(path, "w") as f:
            f.write(head + base + rule("r", "dev/t", [(target, value)]))
        code, out, err = run_check(path)
        check(code == 78, "%s: refused (exit %d: %s)" % (target, code, err.strip()))
        check(want in err, "%s: %r in %r" % (target, want, err.strip()))


if __name__ == "__main__":
    main([test_writes_at_the_server, test_refused_at_config])
