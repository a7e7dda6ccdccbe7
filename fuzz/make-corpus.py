#!/usr/bin/python3
# Writes the seed corpora of fuzz/corpus/<target>/ from the readable
# definitions below and the example configs. Run it again after changing an
# input format or conf/*.toml; crash inputs added by hand (named crash-*)
# are kept.
import os
import shutil
import struct
import sys

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
corpus = os.path.join(top, "fuzz", "corpus")

# Enums of plugins/modbus/mb-codec.h.
COIL, DISCRETE_INPUT, INPUT_REGISTER, HOLDING_REGISTER = range(4)
BOOL, INT16, UINT16, INT32, UINT32, INT64, UINT64, FLOAT32, FLOAT64, STRING = range(10)
ABCD, CDAB, BADC, DCBA = range(4)


def regs(fmt, *values):
    """Bytes of VALUES, big-endian unless FMT says "<" (the DCBA order)."""
    return struct.pack(fmt if fmt[0] in "<>" else ">" + fmt, *values)


def swap_words(b):
    w = [b[i:i + 2] for i in range(0, len(b), 2)]
    return b"".join(reversed(w))


def swap_bytes(b):
    return b"".join(b[i + 1:i + 2] + b[i:i + 1] for i in range(0, len(b), 2))


def codec(type_, order, arg, data):
    """fuzz-mb-codec: type, order, bit or length, then the registers."""
    return bytes([type_, order, arg]) + data


def answer(table, max_gap, max_count, start, points, replies):
    """fuzz-mb-answer: the plan's parameters, the points, then each request's reply.
    For bits the target takes max_count in steps of 8 (1 + 8n): the nearest below."""
    out = bytes([table, max_gap, (max_count - 1) if table >= INPUT_REGISTER else (max_count - 1) // 8,
                 len(points) - 1]) + struct.pack(">H", start)
    for gap, type_, order, arg in points:
        out += bytes([gap, type_, order, arg])
    for status, data in replies:
        out += bytes([status]) + data
    return out


# Status bytes of fuzz-mb-answer: exception 02, a timeout (the device is
# down for the rest of the cycle), another exception, an answer.
EXC02, TIMEOUT, EXC04, OK = 0, 1, 2, 3

def adv(addr, *sections, key=None, raw=()):
    """fuzz-ble-adv: flags, [key], address, raw fields, then (type, id, data) sections:
    type 0 service data of a 16-bit UUID, 1 of a 128-bit UUID, 2 manufacturer data."""
    out = bytes([1 if key else 0]) + (bytes.fromhex(key) if key else b"") + bytes.fromhex(addr.replace(":", ""))
    out += bytes([len(raw)]) + b"".join(raw)
    for type_, id_, data in sections:
        out += bytes([type_]) + (bytes.fromhex(id_) if type_ == 1 else struct.pack(">H", id_))
        out += bytes([len(data)]) + data
    return out


def j1939(name, address, have_range, lo, hi, messages):
    """fuzz-j1939-claim.c: our NAME, the preferred address, the range, then messages."""
    return struct.pack("<QBBBB", name, address, have_range, lo, hi) + b"".join(messages)


def claimed(sa, name):
    return struct.pack("<BBBB", 0, sa, 0xFF, 8) + struct.pack("<Q", name)


def request(da, pgn=0xEE00):
    return struct.pack("<BBBB", 1, 0x20, da, 3) + struct.pack("<I", pgn)[:3]


def other(pgn, sa, n):
    return struct.pack(">BBBBH", 2, sa, 0xFF, n, pgn) + bytes(range(n))


def tick():
    return b"\x03\x00\x00\x00"


def raw_field(source, ident, offset, type_, order, bit=0, scaled=False):
    """One raw field of fuzz-ble-adv: source (0 manufacturer, 1 service), its id, where, what."""
    return bytes([source | (2 if scaled else 0)]) + struct.pack(">H", ident) + bytes([offset, type_, order | bit << 4])


BTHOME_KEY = "231d39c1d7cc1ab1aee224cd096db932"
seeds = {
    "ble-adv": {
        # The BTHome specification's examples: plaintext, then encrypted with its key.
        "bthome-plain": adv("54:48:E6:8F:80:A5", (0, 0xFCD2, bytes.fromhex("4002ca0903bf13"))),
        "bthome-encrypted": adv("54:48:E6:8F:80:A5", (0, 0xFCD2, bytes.fromhex("41a47266c95f730011223378237214")),
                                key=BTHOME_KEY),
        "bthome-encrypted-nokey": adv("54:48:E6:8F:80:A5",
                                      (0, 0xFCD2, bytes.fromhex("4187b90011223372b0231f"))),
        "bthome-plain-key": adv("54:48:E6:8F:80:A5", (0, 0xFCD2, bytes.fromhex("4400093a013c0103530548656c6c6f")),
                                key=BTHOME_KEY),
        "bthome-objects": adv("A4:C1:38:00:00:01", (0, 0xFCD2, bytes.fromhex(
            "40000a0161020c0903bf1304138a0105138a140c020c2101451101530548656c6c6f540201025c02fbffff"
            "62806967fff100010204f2000106"))),
        # Ruuvi's data format 5 test vectors: valid, maximum, minimum, invalid.
        "ruuvi-valid": adv("CB:B8:33:4C:88:4F", (2, 0x0499, bytes.fromhex("0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F"))),
        "ruuvi-max": adv("CB:B8:33:4C:88:4F", (2, 0x0499, bytes.fromhex("057FFFFFFEFFFE7FFF7FFF7FFFFFDEFEFFFECBB8334C884F"))),
        "ruuvi-min": adv("CB:B8:33:4C:88:4F", (2, 0x0499, bytes.fromhex("058001000000008001800180010000000000CBB8334C884F"))),
        "ruuvi-invalid": adv("CB:B8:33:4C:88:4F", (2, 0x0499, bytes.fromhex("058000FFFFFFFF800080008000FFFFFFFFFFFFFFFFFFFFFF"))),
        "atc1441": adv("A4:C1:38:11:22:33", (0, 0x181A, bytes.fromhex("A4C13811223300E130570B8612"))),
        "pvvx": adv("A4:C1:38:11:22:33", (0, 0x181A, bytes.fromhex("33221138C1A4D108CC12860B571205"))),
        "ibeacon": adv("00:11:22:33:44:55", (2, 0x004C, bytes.fromhex("0215E2C56DB5DFFB48D2B060D0F5A71096E000010002C5"))),
        "eddystone-uid": adv("00:11:22:33:44:55", (0, 0xFEAA, bytes.fromhex("00E800112233445566778899AABBCCDDEEFF0000"))),
        "eddystone-url": adv("00:11:22:33:44:55", (0, 0xFEAA, bytes.fromhex("10EB01676f6f676c6500"))),
        "eddystone-tlm": adv("00:11:22:33:44:55", (0, 0xFEAA, bytes.fromhex("20000BB817800000010000002710"))),
        # raw fields over manufacturer data and a 128-bit service UUID
        "raw": adv("00:11:22:33:44:55", (2, 0x0969, bytes.fromhex("fa0063000041c80000")),
                   (1, "6e400001b5a3f393e0a9e50e24dcca9e", bytes.fromhex("0002")),
                   raw=(raw_field(0, 0x0969, 0, 3, 3, scaled=True), raw_field(0, 0x0969, 2, 0, 0, bit=1),
                        raw_field(0, 0x0969, 5, 11, 0))),
        # several formats in one advertisement
        "mixed": adv("00:11:22:33:44:55", (2, 0x004C, bytes.fromhex("0215E2C56DB5DFFB48D2B060D0F5A71096E000010002C5")),
                     (0, 0xFCD2, bytes.fromhex("4002ca09")), (0, 0x181A, bytes.fromhex("A4C13811223300E130570B8612"))),
    },
    "j1939-claim": {
        # Ours: NAME 0x80..., preferring 0x80, then 0x80-0x87. A higher NAME's claim of
        # 0x80 is answered, a Request to all and one to us too; then a lower NAME takes
        # 0x80 and one holds 0x81, the 250 ms pass on 0x82, and a lower NAME's Cannot
        # Claim frees nothing of ours.
        "range.bin": j1939(0x8000000000000010, 0x80, 1, 0x80, 0x87, [
            claimed(0x80, 0x9000000000000000), request(0xFF), request(0x80),
            claimed(0x81, 0x0000000000000005), claimed(0x80, 0x0000000000000001), tick(),
            claimed(0xFE, 0x0000000000000003), request(0x82)]),
        # Only a static address: a lower NAME's claim leaves Cannot Claim, and after it
        # claims are recorded but never answered.
        "static.bin": j1939(0x4000000000000000, 0x30, 0, 0, 0, [
            tick(), claimed(0x30, 0x0000000000000100), claimed(0x30, 0x5000000000000000),
            other(0xFECA, 0x30, 8), request(0xFF)]),
        # A range without a preferred address, every address taken by lower NAMEs.
        "full.bin": j1939(0x8000000000000000, 0xFF, 1, 0x10, 0x12, [
            claimed(0x11, 1), claimed(0x12, 2), claimed(0x10, 3)]),
    },
    "mb-codec": {
        # The demo boiler's temperature: float32 21.5 in input registers 0-1.
        "float32-abcd": codec(FLOAT32, ABCD, 0, regs("f", 21.5)),
        "float32-cdab": codec(FLOAT32, CDAB, 0, swap_words(regs("f", 21.5))),
        "float32-badc-nan": codec(FLOAT32, BADC, 0, bytes.fromhex("c07f0000")),
        "float64-abcd": codec(FLOAT64, ABCD, 0, regs("d", 3.14159)),
        "float64-dcba": codec(FLOAT64, DCBA, 0, regs("<d", -0.001)),
        "int16-pressure": codec(INT16, ABCD, 0, regs("h", 150)),
        "int16-negative": codec(INT16, BADC, 0, swap_bytes(regs("h", -5))),
        "uint16-max": codec(UINT16, ABCD, 0, regs("H", 65535)),
        # The demo's burner_starts: uint32 in CDAB order.
        "uint32-cdab": codec(UINT32, CDAB, 0, swap_words(regs("I", 123456))),
        "int32-min": codec(INT32, ABCD, 0, regs("i", -2147483648)),
        "int64-dcba": codec(INT64, DCBA, 0, regs("<q", -9007199254740993)),
        "uint64-big": codec(UINT64, ABCD, 0, regs("Q", 18446744073709551615)),
        "bool-bit3": codec(BOOL, ABCD, 3, regs("H", 0x0008)),
        "string-abcd": codec(STRING, ABCD, 5, b"BOILER-01\0"),
        "string-badc": codec(STRING, BADC, 4, swap_bytes(b"FW 2.1  ")),
        "string-binary": codec(STRING, ABCD, 3, bytes.fromhex("41ff1b42 0043".replace(" ", ""))),
    },
    "mb-answer": {
        # The demo boiler's input registers: temperature float32 @0, pressure int16 @2.
        "boiler-input": answer(INPUT_REGISTER, 16, 125, 0,
                               [(0, FLOAT32, ABCD, 0), (0, INT16, ABCD, 0)],
                               [(OK, regs("f", 21.5) + regs("h", 150))]),
        # Coils and discrete inputs: one byte of packed bits per eight.
        "coils": answer(COIL, 64, 2000, 0,
                        [(0, BOOL, 0, 0), (3, BOOL, 0, 0), (0, BOOL, 0, 0)],
                        [(OK, bytes([0b00010001]))]),
        "discrete-gap": answer(DISCRETE_INPUT, 4, 16, 10,
                               [(0, BOOL, 0, 0), (9, BOOL, 0, 0)],
                               [(OK, b"\x01"), (OK, b"\x01")]),
        # A holding-register block the device refuses with exception 02,
        # read again in halves, the second half refused with exception 04.
        "holding-split": answer(HOLDING_REGISTER, 16, 125, 100,
                                [(0, UINT16, ABCD, 0), (2, INT32, CDAB, 0),
                                 (1, FLOAT64, DCBA, 0), (0, UINT16, ABCD, 0)],
                                [(EXC02, b""), (OK, regs("H", 7) + b"\0\0\0\0" + regs("i", -3)),
                                 (EXC04, b"")]),
        # Bits of one register, and a string beside them.
        "bits-and-string": answer(HOLDING_REGISTER, 0, 10, 40,
                                  [(0, BOOL, 0, 0), (1, BOOL, 0, 5), (1, BOOL, 0, 15),
                                   (0, STRING, ABCD, 3)],
                                  [(OK, regs("H", 0x8021) + b"PLC-7\0\0\0")]),
        # Two blocks, a gap too wide between them; the first times out, so the
        # second is not asked for.
        "timeout": answer(INPUT_REGISTER, 2, 125, 0,
                          [(0, UINT16, ABCD, 0), (10, UINT16, ABCD, 0)],
                          [(TIMEOUT, b"")]),
        # Too long for one request: the planner splits by max_count.
        "max-count": answer(INPUT_REGISTER, 8, 4, 0,
                            [(0, FLOAT32, ABCD, 0), (0, FLOAT32, ABCD, 0), (0, UINT16, 0, 0)],
                            [(OK, regs("f", 1.0) + regs("f", -1.0)), (OK, regs("H", 1))]),
    },
    "mqtt-command": {
        "number": b"m2m/gw-01/boiler1/setpoint/set\n21.5",
        "bool": b"m2m/gw-01/boiler1/burner/set\ntrue",
        "object-id-string": b'm2m/gw-01/boiler1/setpoint/set\n{"value": 22, "id": "abc"}',
        "object-id-number": b'm2m/gw-01/boiler1/burner/set\n{"value":false,"id":7}',
        "value-string": b'm2m/gw-01/boiler1/setpoint/set\n{"value":"22"}',
        "id-object": b'm2m/gw-01/boiler1/setpoint/set\n{"value":1,"id":{"a":1}}',
        "empty": b"m2m/gw-01/boiler1/setpoint/set\n",
        "other-gateway": b"m2m/gw-02/boiler1/setpoint/set\n1",
        "result-topic": b"m2m/gw-01/boiler1/setpoint/set/result\n{\"ok\":true}",
        "bad-point": b"m2m/gw-01/boi ler/set point/set\n1",
    },
    "ctl-request": {
        # What m2mctl sends (ctl_request_format): one JSON object per line.
        "status": b'{"id":1,"cmd":"status"}\n',
        "points-device": b'{"id":2,"cmd":"points","device":"boiler1"}\n',
        "read": b'{"id":3,"cmd":"read","point":"boiler1/temperature"}\n',
        "write-now": b'{"id":4,"cmd":"write","point":"boiler1/now","value":21.5}\n',
        "write-later": b'{"id":5,"cmd":"write","point":"boiler1/later","value":true}\n{"id":6,"cmd":"help"}\n',
        "write-fail": b'{"id":7,"cmd":"write","point":"boiler1/fail","value":0}\n',
        "write-read-only": b'{"id":8,"cmd":"write","point":"boiler1/temperature","value":1}\n',
        "rules-all": b'{"id":9,"cmd":"rules","all":true}\n{"id":10,"cmd":"rules"}\n',
        "ack": b'{"id":11,"cmd":"ack","rule":"boiler_high","point":"boiler1/temperature"}\n',
        "reload": b'{"id":12,"cmd":"reload"}\n',
        "tail": b'{"id":13,"cmd":"tail","point":"boiler1/*"}\n{"id":14,"cmd":"status"}\n',
        # socat and shell scripts: CRLF, blank keep-alive lines, no final newline.
        "pipelined": b'\n{"cmd":"help"}\r\n\r\n{"id":null,"cmd":"points"}\n{"id":15,"cmd":"read"}',
        "errors": b'not json\n[1,2]\n{"id":"x","cmd":"status"}\n{"cmd":""}\n{"cmd":"write","value":"1"}\n',
        "oversize": b'{"id":16,"cmd":"status","pad":"' + b"x" * 300 + b'"}\n',
    },
}

configs_bad = [
    "driver-plugin-unknown.toml", "mqtt-template-placeholder.toml", "mqtt-url-port.toml",
    "point-duplicate-across-drivers.toml", "point-min-max.toml", "rule-clear-above-raise.toml",
    "rule-pattern-no-match.toml", "rule-write-read-only.toml", "sim-integrate-no-input.toml",
    "size-unit.toml", "syntax-duplicate-key.toml", "syntax-unterminated-string.toml",
]


def write(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    for target, files in seeds.items():
        d = os.path.join(corpus, target)
        if os.path.isdir(d):
            for name in os.listdir(d):
                if not name.startswith("crash-"):
                    os.unlink(os.path.join(d, name))
        for name, data in files.items():
            write(target, name, data)
    d = os.path.join(corpus, "config")
    if os.path.isdir(d):
        for name in os.listdir(d):
            if not name.startswith("crash-"):
                os.unlink(os.path.join(d, name))
    os.makedirs(d, exist_ok=True)
    for name in sorted(os.listdir(os.path.join(top, "conf"))):
        if name.endswith(".toml"):
            shutil.copy(os.path.join(top, "conf", name), os.path.join(d, name))
    # A config and a conf.d drop-in (fuzz-config.c splits at the mark).
    with open(os.path.join(top, "conf", "m2md.toml"), "rb") as f:
        main_file = f.read()
    with open(os.path.join(top, "conf", "mqtt.toml"), "rb") as f:
        dropin = f.read()
    with open(os.path.join(d, "dropin-mqtt.toml"), "wb") as f:
        f.write(main_file.rstrip(b"\n") + b"\n#--- conf.d\n" + dropin)
    for name in configs_bad:
        shutil.copy(os.path.join(top, "tests", "configs", "bad", name), os.path.join(d, "bad-" + name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
