#!/usr/bin/python3
# The CAN codec against an independent decoder: Debian's python3-canmatrix
# (cantools is not packaged in Debian 12).
#
# Writes DBC files of random messages: Intel and Motorola signals of 1 to
# 64 bits at any start bit that fits, signed and unsigned, IEEE float and
# double, factors and offsets, CAN FD sizes up to 64 bytes, 11- and 29-bit
# ids (J1939 among them), simple multiplexing (M / mN) and extended
# multiplexing (a multiplexer under a multiplexer, mNM, with SG_MUL_VAL_
# ranges). Random frames of each message are decoded by both: our codec
# through tests/can/can-decode.c, and canmatrix. The set of signals present
# must be the same, the raw bits and raw numbers equal exactly, the
# physical values equal to the precision of a double. J1939 fields of
# random 29-bit ids are compared with canmatrix's ArbitrationId.
#   test_can_oracle.py CAN-DECODE [FRAMES]     (default 12000 frames)
import collections
import math
import os
import random
import subprocess
import sys
import tempfile

import canmatrix.formats

FD_SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 12, 16, 20, 24, 32, 48, 64]
FACTORS = ["1", "1", "0.1", "0.5", "-2", "0.00390625", "3.3", "1e-3", "125"]
OFFSETS = ["0", "0", "-40", "12.5", "-1000", "0.25"]


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def layout(rng, size, length, big_endian):
    """A start bit (DBC numbering) for LENGTH bits inside SIZE bytes."""
    lin = rng.randrange(0, size * 8 - length + 1)
    if not big_endian:
        return lin
    # Motorola: LIN counts from the MSB of byte 0 down; the start bit is the MSB.
    return lin // 8 * 8 + 7 - lin % 8


class Gen:
    def __init__(self, rng):
        self.rng = rng
        self.lines = []
        self.after = []
        self.ids = set()
        self.messages = []  # (id, extended, size, name)

    def new_id(self, extended):
        while True:
            i = self.rng.randrange(0, 1 << 29) if extended else self.rng.randrange(0, 0x800)
            if (i, extended) not in self.ids:
                self.ids.add((i, extended))
                return i

    def signal(self, msg_id, size, name, mux="", length=None, kind=None):
        rng = self.rng
        kind = kind or rng.choices(["int", "float", "double"], [85, 10, 5])[0]
        if kind == "float" and size < 4 or kind == "double" and size < 8:
            kind = "int"
        if length is None:
            length = {"float": 32, "double": 64}.get(kind) or min(rng.choice(
                [1, 2, 3, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, rng.randrange(1, 65)]), size * 8)
        be = rng.random() < 0.5
        start = layout(rng, size, length, be)
        # A multiplexer is unsigned: its raw value selects (canmatrix would sign-extend it).
        sign = "-" if rng.random() < 0.5 and not mux.endswith("M") else "+"
        factor, offset = (rng.choice(FACTORS), rng.choice(OFFSETS))
        if kind != "int" and rng.random() < 0.7:
            factor, offset = "1", "0"
        self.lines.append(' SG_ %s %s: %d|%d@%d%s (%s,%s) [0|0] "" Node' % (
            name, mux + " " if mux else "", start, length, 0 if be else 1, sign, factor, offset))
        if kind != "int":
            self.after.append("SIG_VALTYPE_ %d %s : %d;" % (msg_id, name, 1 if kind == "float" else 2))

    def message(self, n):
        rng = self.rng
        extended = rng.random() < 0.4
        size = rng.choice(FD_SIZES)
        i = self.new_id(extended)
        dbc_id = i | (0x80000000 if extended else 0)
        name = "M%d" % n
        self.lines.append("")
        self.lines.append("BO_ %d %s: %d Node" % (dbc_id, name, size))
        kind = rng.choices(["plain", "mux", "extmux"], [60, 25, 15])[0]
        if kind == "mux":
            bits = rng.randrange(1, 4)
            self.signal(dbc_id, size, "Mux", "M", length=bits, kind="int")
            for k in range(rng.randrange(1, 6)):
                self.signal(dbc_id, size, "S%d" % k, "m%d" % rng.randrange(0, 1 << bits))
        elif kind == "extmux":
            bits = rng.randrange(1, 4)
            self.signal(dbc_id, size, "Mux", "M", length=bits, kind="int")
            sub_sel = rng.randrange(0, 1 << bits)
            self.signal(dbc_id, size, "Sub", "m%dM" % sub_sel, length=rng.randrange(1, 4), kind="int")
            self.after.append("SG_MUL_VAL_ %d Sub Mux %d-%d;" % (dbc_id, sub_sel, sub_sel))
            for k in range(rng.randrange(1, 6)):
                parent = rng.choice(["Mux", "Sub"])
                lo = rng.randrange(0, 1 << bits if parent == "Mux" else 4)
                hi = min(lo + rng.randrange(0, 3), (1 << bits) - 1 if parent == "Mux" else 7)
                ranges = ["%d-%d" % (lo, hi)]
                if rng.random() < 0.3:
                    ranges.append("%d-%d" % (hi + 1, hi + 1 + rng.randrange(0, 2)))
                self.signal(dbc_id, size, "X%d" % k, "m%d" % lo)
                self.after.append("SG_MUL_VAL_ %d X%d %s %s;" % (dbc_id, k, parent, ", ".join(ranges)))
        for k in range(rng.randrange(1 if kind == "plain" else 0, 8)):
            self.signal(dbc_id, size, "P%d" % k)
        self.messages.append((i, extended, size, name))
        if size > 8:
            self.after.append('BA_ "VFrameFormat" BO_ %d %d;' % (dbc_id, 3 if extended else 2))

    def text(self, n_messages):
        for n in range(n_messages):
            self.message(n)
        head = ['VERSION ""', "", "NS_ :", "\tCM_", "\tSIG_VALTYPE_", "", "BS_:", "", "BU_: Node"]
        attrs = ['BA_DEF_ BO_ "VFrameFormat" ENUM "StandardCAN","ExtendedCAN","StandardCAN_FD","ExtendedCAN_FD";',
                 'BA_DEF_DEF_ "VFrameFormat" "StandardCAN";']
        return "\n".join(head + self.lines + [""] + attrs + self.after) + "\n"


def ours(helper, path, requests):
    p = subprocess.run([helper, path], input="".join(requests), capture_output=True, text=True)
    if p.returncode != 0:
        fail("can-decode %s: %s" % (path, p.stderr.strip()))
    return p.stdout.splitlines()


def close(a, b, scale):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    # A double's rounding of raw * factor and of the sum, with room to spare.
    return abs(a - b) <= 8 * sys.float_info.epsilon * scale + 1e-300


def compare_frame(frame, line, decoded, where, counts):
    mine = {}
    for item in line.split():
        name, _, value = item.partition("=")
        mine[name] = None if value == "-" else value.split(",")
    present = {k for k, v in mine.items() if v is not None}
    for k in mine:
        # S: under a simple multiplexer; Sub and X: extended multiplexing.
        kind = "extended" if k == "Sub" or k.startswith("X") else "simple" if k.startswith("S") else None
        if kind:
            counts[kind + (" present" if k in present else " absent")] += 1
    if present != set(decoded):
        fail("%s: present signals differ: ours %s, canmatrix %s" % (where, sorted(present), sorted(decoded)))
    for name, d in decoded.items():
        raw_hex, number, phys = mine[name]
        s = d.signal
        raw = d.raw_value
        number, phys = float(number), float(phys)
        if s.is_float:
            ok = (math.isnan(number) and math.isnan(raw)) or number == float(raw)
        else:
            ok = int(raw_hex, 16) == raw & ((1 << s.size) - 1) and number == float(raw)
        if not ok:
            fail("%s: %s raw: ours %s (%r), canmatrix %r" % (where, name, raw_hex, number, raw))
        if s.is_float and not math.isfinite(raw):
            theirs = float(raw) * float(s.factor) + float(s.offset)
        else:
            theirs = float(s.raw2phys(raw))
        scale = abs(float(raw) * float(s.factor)) + abs(float(s.offset)) if math.isfinite(float(raw)) else 1
        if not close(phys, theirs, scale):
            fail("%s: %s physical: ours %.17g, canmatrix %.17g" % (where, name, phys, theirs))
    return len(decoded)


def check_j1939(helper, path, rng, n):
    ids = [rng.randrange(0, 1 << 29) for _ in range(n)]
    ids += [0x0CF00400, 0x18FEF117, 0x18EF1234, 0x18EAFFF9, 0x19FEF100, 0x00F0AB00]
    lines = ours(helper, path, ["J %d\n" % i for i in ids])
    for i, line in zip(ids, lines):
        a = canmatrix.ArbitrationId(id=i, extended=True)
        # canmatrix gives no destination for PDU2 (broadcast); ours is 0xff, the global address.
        dest = 0xff if a.j1939_destination is None else a.j1939_destination
        theirs = "%d %d %d %d" % (a.pgn, a.j1939_source, dest, a.j1939_priority)
        if line != theirs:
            fail("J1939 id 0x%08x: ours %s, canmatrix %s" % (i, line, theirs))
    return len(ids)


def main():
    helper = sys.argv[1]
    want = int(sys.argv[2]) if len(sys.argv) > 2 else 12000
    seed = int(os.environ.get("M2M_CAN_ORACLE_SEED", "1"))
    rng = random.Random(seed)
    frames = signals = files = 0
    counts = collections.Counter()
    with tempfile.TemporaryDirectory(prefix="can-oracle-") as tmp:
        while frames < want:
            gen = Gen(rng)
            text = gen.text(12)
            path = os.path.join(tmp, "random%d.dbc" % files)
            with open(path, "w") as f:
                f.write(text)
            db = canmatrix.formats.loadp_flat(path)
            requests, expect = [], []
            for i, extended, size, name in gen.messages:
                frame_db = db.frame_by_name(name)
                if frame_db is None:
                    fail("%s: canmatrix lost message %s" % (path, name))
                for _ in range(100):
                    data = bytes(rng.randrange(256) for _ in range(size))
                    requests.append("F %d %d %s\n" % (i, 1 if extended else 0, data.hex()))
                    expect.append((name, data, frame_db))
            lines = ours(helper, path, requests)
            if len(lines) != len(expect):
                fail("%s: %d answers for %d frames" % (path, len(lines), len(expect)))
            for (name, data, frame_db), line in zip(expect, lines):
                where = "seed %d, %s, %s %s" % (seed, path, name, data.hex())
                signals += compare_frame(data, line, frame_db.decode(bytearray(data)), where, counts)
            frames += len(expect)
            files += 1
        j = check_j1939(helper, path, rng, 2000)
    print("%d random DBC files, %d frames, %d signal values and %d J1939 ids agree with canmatrix" % (
        files, frames, signals, j))
    print("multiplexed signals: " + ", ".join("%s %d" % kv for kv in sorted(counts.items())))
    # A generator that stopped making a case would leave it untested.
    for kind in ("simple present", "simple absent", "extended present", "extended absent"):
        if counts[kind] < 100:
            fail("only %d multiplexed signals %s" % (counts[kind], kind))


if __name__ == "__main__":
    main()
