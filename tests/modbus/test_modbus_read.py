# SPDX-License-Identifier: MIT
"""m2md's modbus driver against a pymodbus server over TCP: every type and
order, the planner's request counts as the server saw them, and splitting
a merged block after exception 02."""

import math

from mbtest import (DEVICE_ERROR, GOOD, Gateway, Server, check, cycles, device, driver,
                    driver_stats, encode, as_type, latest, main, point, qualities, tmpdir,
                    wait_for)

ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")
VALUES = {
    "int16": -12345,
    "uint16": 54321,
    "int32": -1234567890,
    "uint32": 3456789012,
    "int64": -1234567890123456,
    "uint64": 2 ** 63 + 2048,
    "float32": -273.15,
    "float64": 6.02214076e23,
}


def test_types_and_orders():
    d = tmpdir("mb-types")
    hr, ir = {}, {}
    pts = ""
    expect = {}
    addr = 0
    for type_, value in VALUES.items():
        for order in ORDERS:
            name = "%s_%s" % (type_, order)
            regs = encode(type_, order, value)
            hr[str(addr)] = regs
            pts += point("plc", name=name, table="holding_register", address=addr, type=type_,
                         order=order)
            expect[name] = as_type(type_, value)
            addr += len(regs)
    # The same values in the input registers, default order.
    for type_, value in VALUES.items():
        regs = encode(type_, "ABCD", value)
        ir[str(addr)] = regs
        pts += point("plc", name="in_" + type_, table="input_register", address=addr, type=type_)
        expect["in_" + type_] = as_type(type_, value)
        addr += len(regs)
    # NaN and infinities survive as floats.
    nan_at = addr
    hr[str(addr)] = encode("float32", "CDAB", float("nan"))
    hr[str(addr + 2)] = encode("float64", "DCBA", float("nan"))
    hr[str(addr + 6)] = encode("float32", "ABCD", float("-inf"))
    pts += point("plc", name="nan32", table="holding_register", address=addr, type="float32",
                 order="CDAB")
    pts += point("plc", name="nan64", table="holding_register", address=addr + 2,
                 type="float64", order="DCBA")
    pts += point("plc", name="ninf", table="holding_register", address=addr + 6,
                 type="float32")
    addr += 8
    # Bits of a register, strings in both byte orders.
    hr[str(addr)] = [0x8005]
    for bit, want in ((0, 1), (1, 0), (2, 1), (15, 1)):
        pts += point("plc", name="bit%d" % bit, table="holding_register", address=addr,
                     type="bool", bit=bit, kind="bool")
        expect["bit%d" % bit] = want
    addr += 1
    sn = b"SN-0042 "
    hr[str(addr)] = [int.from_bytes(sn[i:i + 2], "big") for i in range(0, 8, 2)] + [0]
    hr[str(addr + 5)] = [int.from_bytes(sn[i:i + 2][::-1], "big") for i in range(0, 8, 2)]
    pts += point("plc", name="serial", table="holding_register", address=addr, type="string",
                 length=5, kind="string")
    pts += point("plc", name="serial_badc", table="holding_register", address=addr + 5,
                 type="string", length=4, order="BADC", kind="string")
    addr += 9
    # Coils and discrete inputs.
    co = {"3": [1, 0, 1]}
    di = {"7": [0, 1]}
    for a, want in ((3, 1), (4, 0), (5, 1)):
        pts += point("plc", name="coil%d" % a, table="coil", address=a, kind="bool")
        expect["coil%d" % a] = want
    for a, want in ((7, 0), (8, 1)):
        pts += point("plc", name="di%d" % a, table="discrete_input", address=a, kind="bool")
        expect["di%d" % a] = want

    srv = Server(d, "types", units=(3,), config={"init": {"3": {"hr": hr, "ir": ir, "co": co,
                                                                "di": di}}}).start()
    try:
        cfg = driver("plc", transport="tcp", host="127.0.0.1", port=srv.port)
        cfg += device("plc", name="dev", unit_id=3, interval="300ms") + pts
        gw = Gateway("mb-types", cfg, directory=d).start()
        try:
            wait_for(lambda: all(latest(gw, "dev/" + n) for n in list(expect) + ["nan32", "serial"]),
                     15, "a reading of every point")
            for name, want in expect.items():
                value, quality = latest(gw, "dev/" + name)
                check(quality == GOOD, "%s: quality %s" % (name, quality))
                check(value == want, "%s: read %r, expected %r" % (name, value, want))
            for name in ("nan32", "nan64"):
                value, quality = latest(gw, "dev/" + name)
                # SQLite stores NaN as NULL; the reading is still good.
                check(quality == GOOD and (value is None or math.isnan(value)),
                      "%s: %r quality %s" % (name, value, quality))
            check(latest(gw, "dev/ninf") == (float("-inf"), GOOD), "-inf: %r" % (latest(gw, "dev/ninf"),))
            check(latest(gw, "dev/serial") == ("SN-0042", GOOD), "serial: %r" % (latest(gw, "dev/serial"),))
            check(latest(gw, "dev/serial_badc") == ("SN-0042", GOOD),
                  "serial_badc: %r" % (latest(gw, "dev/serial_badc"),))
        finally:
            check(gw.stop() == 0, "m2md exits 0")
        # One request per table, but two for the holding registers: the input
        # registers' 20 addresses (80..99) are a gap above max_gap there.
        first = cycles(srv.requests(3))[0]
        got = sorted((r["fc"], r["addr"], r["count"]) for r in first)
        check(got == [(1, 3, 3), (2, 7, 2), (3, 0, 80), (3, 100, 18), (4, 80, 20)],
              "requests of a cycle: %r" % first)
    finally:
        srv.kill()


LAYOUTS = """
Unit 1: 1,000 contiguous uint16 holding registers: 8 requests.
Unit 2: hr 0, 10 (gap 9), 30 (gap 19 > max_gap 16) and a float32 at 31; input
        registers 0 and 200; coils 0, 1999 (max_gap_bits 1998) and 2000: 2 + 2 + 2.
Unit 3: 25 contiguous registers on a device that takes 10 at a time: 3.
Unit 4: 16 bools on the bits of hr 7 and a uint16 at 8: 1 request of 2 registers.
"""


def test_planner_request_counts():
    d = tmpdir("mb-plan")
    srv = Server(d, "plan", units=(1, 2, 3, 4)).start()
    try:
        cfg = driver("plc", transport="tcp", host="127.0.0.1", port=srv.port, max_gap=16)
        # A long interval: the first cycle runs at start, the next not during the test.
        cfg += device("plc", name="u1", unit_id=1, interval="1h")
        for a in range(1000):
            cfg += point("plc", name="r%d" % a, table="holding_register", address=a)
        cfg += device("plc", name="u2", unit_id=2, interval="1h", max_gap_bits=1998)
        for a in (0, 10, 30):
            cfg += point("plc", name="h%d" % a, table="holding_register", address=a)
        cfg += point("plc", name="f31", table="holding_register", address=31, type="float32")
        for a in (0, 200):
            cfg += point("plc", name="i%d" % a, table="input_register", address=a)
        for a in (0, 1999, 2000):
            cfg += point("plc", name="c%d" % a, table="coil", address=a)
        cfg += device("plc", name="u3", unit_id=3, interval="1h", max_registers=10)
        for a in range(100, 125):
            cfg += point("plc", name="r%d" % a, table="holding_register", address=a)
        cfg += device("plc", name="u4", unit_id=4, interval="1h")
        for b in range(16):
            cfg += point("plc", name="b%d" % b, table="holding_register", address=7,
                         type="bool", bit=b)
        cfg += point("plc", name="w8", table="holding_register", address=8)

        gw = Gateway("mb-plan", cfg, directory=d).start()
        try:
            wait_for(lambda: all(latest(gw, n) for n in ("u1/r999", "u2/c2000", "u3/r124", "u4/w8")),
                     15, "the first cycle of every device")
            # What m2mctl status shows: the plan's requests per cycle per device.
            stats = driver_stats(gw, "plc")
            per_cycle = {u: stats.get("requests_per_cycle." + u) for u in ("u1", "u2", "u3", "u4")}
            check(per_cycle == {"u1": 8, "u2": 6, "u3": 3, "u4": 1},
                  "requests_per_cycle in status: %r" % stats)
            check(all(stats.get("online." + u) == 1 for u in per_cycle), "online in status: %r" % stats)
        finally:
            check(gw.stop() == 0, "m2md exits 0")

        def reqs(unit):
            return sorted((r["fc"], r["addr"], r["count"]) for r in srv.requests(unit))

        check(reqs(1) == [(3, a, 125) for a in range(0, 1000, 125)],
              "1,000 registers in 8 requests: %r" % reqs(1))
        check(reqs(2) == [(1, 0, 2000), (1, 2000, 1), (3, 0, 11), (3, 30, 3), (4, 0, 1), (4, 200, 1)],
              "sparse layout: %r" % reqs(2))
        check(reqs(3) == [(3, 100, 10), (3, 110, 10), (3, 120, 5)],
              "max_registers = 10: %r" % reqs(3))
        check(reqs(4) == [(3, 7, 2)], "bits of one register: %r" % reqs(4))
    finally:
        srv.kill()


def test_exception_02_split():
    d = tmpdir("mb-split")
    srv = Server(d, "split", units=(1,), config={
        "init": {"1": {"hr": {"0": list(range(100))}}},
        "holes": {"1": {"hr": [[50, 50]]}}}).start()
    try:
        cfg = driver("plc", transport="tcp", host="127.0.0.1", port=srv.port)
        cfg += device("plc", name="dev", unit_id=1, interval="400ms")
        for a in range(100):
            cfg += point("plc", name="r%d" % a, table="holding_register", address=a)
        gw = Gateway("mb-split", cfg, directory=d).start()
        try:
            wait_for(lambda: gw.count("dev/r0") >= 4, 15, "four cycles")
            for a in range(100):
                v, q = latest(gw, "dev/r%d" % a)
                if a == 50:
                    check(q == DEVICE_ERROR, "the bad address has bad quality (got %s)" % q)
                else:
                    check(q == GOOD and v == a, "r%d: %r %s" % (a, v, q))
            # Every cycle submitted every point, the bad one included.
            check(gw.count("dev/r50") == gw.count("dev/r49") or
                  abs(gw.count("dev/r50") - gw.count("dev/r49")) <= 1, "r50 never dropped")
            per_cycle = driver_stats(gw, "plc").get("requests_per_cycle.dev")
        finally:
            check(gw.stop() == 0, "m2md exits 0")
        cyc = [[(r["addr"], r["count"]) for r in c] for c in cycles(srv.requests(1))]
        check(len(cyc) >= 3, "cycles: %r" % cyc)
        check(cyc[0][0] == (0, 100), "the first cycle tries the merged block: %r" % cyc[0])
        check(all((0, 100) not in c for c in cyc[1:]), "the merged block is never retried")
        # Later cycles read the remembered split: the same few requests each time.
        stable = cyc[1]
        check(all(c == stable for c in cyc[2:-1]), "stable plan: %r" % cyc)
        check(len(stable) <= 1 + 2 * 7, "few requests after the split: %r" % stable)
        check((50, 1) in stable, "the bad address alone: %r" % stable)
        check(per_cycle == len(stable), "status shows the split plan: %r requests per cycle, "
              "the server saw %d" % (per_cycle, len(stable)))
        covered = sorted(a for s, n in stable for a in range(s, s + n))
        check(covered == list(range(100)), "every address still read")
    finally:
        srv.kill()


def test_exception_02_in_a_gap():
    """Merging across a gap reads addresses no point names; a device without
    them refuses the block, and the split costs no reading at all."""
    d = tmpdir("mb-gap")
    srv = Server(d, "gap", units=(1,), config={
        "init": {"1": {"hr": {"0": list(range(30))}}},
        "holes": {"1": {"hr": [[10, 19]]}}}).start()
    try:
        cfg = driver("plc", transport="tcp", host="127.0.0.1", port=srv.port, max_gap=10)
        cfg += device("plc", name="dev", unit_id=1, interval="300ms")
        for a in list(range(10)) + list(range(20, 30)):
            cfg += point("plc", name="r%d" % a, table="holding_register", address=a)
        gw = Gateway("mb-gap", cfg, directory=d).start()
        try:
            wait_for(lambda: gw.count("dev/r29") >= 3, 15, "three cycles")
            for a in list(range(10)) + list(range(20, 30)):
                q = qualities(gw, "dev/r%d" % a)
                check(q and all(x == GOOD for x in q), "r%d always good: %r" % (a, q))
            check(latest(gw, "dev/r25") == (25, GOOD), "values: %r" % (latest(gw, "dev/r25"),))
            per_cycle = driver_stats(gw, "plc").get("requests_per_cycle.dev")
        finally:
            check(gw.stop() == 0, "m2md exits 0")
        cyc = [[(r["addr"], r["count"]) for r in c] for c in cycles(srv.requests(1))]
        check(cyc[0] == [(0, 30), (0, 10), (20, 10)], "merged, refused, split: %r" % cyc[0])
        check(all(c == [(0, 10), (20, 10)] for c in cyc[1:]), "the split is kept: %r" % cyc)
        check(per_cycle == 2, "2 requests per cycle in status, got %r" % per_cycle)
    finally:
        srv.kill()


if __name__ == "__main__":
    main([test_types_and_orders, test_planner_request_counts, test_exception_02_split,
          test_exception_02_in_a_gap])
