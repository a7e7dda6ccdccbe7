# SPDX-License-Identifier: MIT
"""Writes through the modbus driver, verified at a pymodbus server: every
write function code and the encoding per type and order, read-back
verification, a value the type cannot hold refused with zero frames on the
wire, and non-writable or out-of-limits targets refused before anything is
sent. The writes are made by a rule's write action (docs/rules.md), the
core's write path that MQTT commands and m2mctl share."""

import os
import threading
import time

from mbtest import (BUILD, GOOD, Gateway, Server, as_type, check, ctl, device, driver, encode,
                    latest, main, point, run_check, tmpdir, toml_value, wait_for, writes)

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


def test_ctl_writes():
    """Writes asked on the control socket (as m2mctl does): the result goes
    back to the caller; refusals put zero frames on the wire."""
    d = tmpdir("mb-write-ctl")
    srv = Server(d, "c", units=(1, 2), config={
        "init": {"1": {"hr": {"50": [4]}}},
        "holes": {"1": {"hr": [[60, 60]]}},
        "stuck": {"1": {"hr": [[50, 50]]}}}).start()
    try:
        cfg = driver("plc", transport="tcp", host="127.0.0.1", port=srv.port)
        # Polled once at start: afterwards every frame at the server is a write's.
        cfg += device("plc", name="dev", unit_id=1, interval="1h")
        cfg += point("plc", name="ro", table="holding_register", address=0)
        cfg += point("plc", name="lim", table="holding_register", address=1, writable=True,
                     min=0, max=100)
        cfg += point("plc", name="sp", table="holding_register", address=2, type="int16",
                     scale=0.1, writable=True)
        cfg += point("plc", name="okv", table="holding_register", address=3, writable=True,
                     verify=True)
        cfg += point("plc", name="stuck", table="holding_register", address=50, writable=True,
                     verify=True)
        cfg += point("plc", name="hole", table="holding_register", address=60, writable=True,
                     interval="2h")
        cfg += point("plc", name="coil", table="coil", address=5, kind="bool", writable=True)
        cfg += point("plc", name="di", table="discrete_input", address=5, kind="bool")
        cfg += device("plc", name="multi", unit_id=2, interval="1h", write_multiple=True)
        cfg += point("plc", name="coil", table="coil", address=7, kind="bool", writable=True)
        cfg += point("plc", name="u16", table="holding_register", address=4, writable=True)
        cfg += point("plc", name="bit", table="holding_register", address=6, type="bool", bit=3,
                     kind="bool", writable=True)
        gw = Gateway("mb-write-ctl", cfg, directory=d).start()
        try:
            wait_for(lambda: latest(gw, "dev/ro") and latest(gw, "multi/u16"), 10, "the first polls")
            time.sleep(0.3)
            srv.clear_log()

            # Refused by the core before the driver: not writable, beyond limits,
            # not a number the point takes, a read-only table.
            for name, value in (("dev/ro", 1), ("dev/lim", 101), ("dev/lim", -1),
                                ("dev/coil", 2), ("dev/di", 1), ("dev/nosuch", 1)):
                r = ctl(gw, "write", point=name, value=value)
                check(r.get("ok") is False and r.get("error"),
                      "write %s = %r refused with a reason: %r" % (name, value, r))
            # Refused by the driver: 70000 is no uint16.
            r = ctl(gw, "write", point="dev/okv", value=70000)
            check(r.get("ok") is False and "uint16" in r.get("error", ""),
                  "70000 refused for a uint16: %r" % r)
            time.sleep(0.3)
            check(srv.requests() == [], "zero frames on the wire: %r" % srv.requests())

            # Accepted: the caller gets ok once the device confirmed.
            for name, value in (("dev/lim", 100), ("dev/sp", 0.3), ("dev/okv", 65535),
                                ("dev/coil", 1), ("multi/coil", 1), ("multi/u16", 513),
                                ("multi/bit", 1)):
                r = ctl(gw, "write", point=name, value=value)
                check(r.get("ok") is True, "write %s = %r: %r" % (name, value, r))
            got = [(w["unit"], w["fc"], w["addr"], w["values"]) for w in writes(srv)]
            check(got == [(1, 6, 1, [100]), (1, 6, 2, [3]), (1, 6, 3, [65535]), (1, 5, 5, [1]),
                          (2, 15, 7, [1]), (2, 16, 4, [513]), (2, 16, 6, [8])],
                  "the writes at the server: %r" % got)
            check((1, 3, 3, 1) in [(r["unit"], r["fc"], r["addr"], r["count"])
                                   for r in srv.requests()], "okv was read back")

            # The device refuses (exception 02): the caller hears why.
            r = ctl(gw, "write", point="dev/hole", value=1)
            check(r.get("ok") is False and "exception 2" in r.get("error", "") and
                  "illegal data address" in r.get("error", ""), "exception reported: %r" % r)
            # The device takes the write but keeps its old value: verify catches it.
            r = ctl(gw, "write", point="dev/stuck", value=9)
            check(r.get("ok") is False and "read-back" in r.get("error", "") and
                  "0x0009" in r.get("error", "") and "0x0004" in r.get("error", ""),
                  "read-back mismatch reported: %r" % r)
            ev = gw.query("SELECT kind, text FROM events WHERE kind LIKE 'write%' ORDER BY id")
            check(len(ev) >= 2, "writes are events: %r" % ev)
        finally:
            check(gw.stop() == 0, "m2md exits 0")
    finally:
        srv.kill()


ROUNDTRIP = {
    "int16": -2, "uint16": 65000, "int32": -70000, "uint32": 4000000000,
    "int64": -(2 ** 40) - 3, "uint64": 2 ** 53 - 1, "float32": -1.25, "float64": -1e-300,
}


def test_roundtrip_every_type_and_order():
    """Every type in every order, negative where it can be: written through
    m2md, checked at the server against an independent encoder, and read
    back through m2md as the same value."""
    d = tmpdir("mb-roundtrip")
    srv = Server(d, "rt", units=(1,)).start()
    try:
        cfg = driver("plc", transport="tcp", host="127.0.0.1", port=srv.port)
        cfg += device("plc", name="dev", unit_id=1, interval="200ms")
        addr, where = 0, {}
        for type_ in ROUNDTRIP:
            for order in ("ABCD", "CDAB", "BADC", "DCBA"):
                name = "%s_%s" % (type_, order)
                cfg += point("plc", name=name, table="holding_register", address=addr,
                             type=type_, order=order, writable=True)
                where[name] = addr
                addr += len(encode(type_, order, 0))
        gw = Gateway("mb-roundtrip", cfg, directory=d).start()
        try:
            wait_for(lambda: latest(gw, "dev/float64_DCBA"), 10, "the first poll")
            for name in where:
                type_, order = name.split("_")
                r = ctl(gw, "write", point="dev/" + name, value=ROUNDTRIP[type_])
                check(r.get("ok") is True, "write %s: %r" % (name, r))
            at = {w["addr"]: w["values"] for w in writes(srv)}
            for name, a in where.items():
                type_, order = name.split("_")
                want = encode(type_, order, ROUNDTRIP[type_])
                check(at.get(a) == want, "%s at the server: %r, expected %r" % (name, at.get(a), want))
            mark = max(r["t"] for r in srv.requests())

            def read_back():
                return all(latest(gw, "dev/" + n) == (as_type(n.split("_")[0],
                                                                ROUNDTRIP[n.split("_")[0]]), GOOD)
                           for n in where)
            wait_for(read_back, 10, "every value read back")
            check(any(r["fc"] == 3 and r["t"] > mark for r in srv.requests()), "read back by a poll")
        finally:
            check(gw.stop() == 0, "m2md exits 0")
    finally:
        srv.kill()


def test_writes_ahead_of_polls():
    """A write queued behind polls on a busy bus goes next, not last."""
    d = tmpdir("mb-urgent")
    srv = Server(d, "u", units=(1,)).start()
    try:
        cfg = driver("plc", transport="tcp", host="127.0.0.1", port=srv.port, timeout="10s")
        cfg += device("plc", name="dev", unit_id=1, interval="1h")
        # Five groups (one per interval), each its own work item on the bus.
        for i, ms in enumerate((50, 60, 70, 80, 90)):
            cfg += point("plc", name="p%d" % i, table="holding_register", address=i,
                         interval="%dms" % ms)
        cfg += point("plc", name="w", table="holding_register", address=20, writable=True)
        gw = Gateway("mb-urgent", cfg, directory=d).start()
        reply = {}
        try:
            wait_for(lambda: all(latest(gw, "dev/p%d" % i) for i in range(5)), 10, "polls")
            srv.pause()       # the bus thread waits in one request ...
            time.sleep(0.5)   # ... while the other groups queue their polls
            mark = len(srv.requests())

            def ask():
                reply.update(ctl(gw, "write", point="dev/w", value=42, timeout=20))
            t = threading.Thread(target=ask)
            t.start()
            time.sleep(0.3)
            srv.resume()
            t.join(30)
            check(reply.get("ok") is True, "write: %r" % reply)
            wait_for(lambda: len(srv.requests()) >= mark + 5, 10, "the queued polls")
        finally:
            srv.resume()
            check(gw.stop() == 0, "m2md exits 0")
        after = [(r["fc"], r["addr"]) for r in srv.requests()[mark:]]
        pos = [i for i, (fc, a) in enumerate(after) if fc == 6]
        check(pos and pos[0] <= 1, "the write went first after the request on the wire: %r" % after)
        check(all(fc == 3 for fc, a in after[:pos[0]]), "only a read before it: %r" % after)
        check(sum(1 for fc, a in after[pos[0]:] if fc == 3) >= 3,
              "polls were queued when the write came: %r" % after)
    finally:
        srv.kill()


if __name__ == "__main__":
    main([test_writes_at_the_server, test_refused_at_config, test_ctl_writes,
          test_roundtrip_every_type_and_order, test_writes_ahead_of_polls])
