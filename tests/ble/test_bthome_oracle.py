#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""BTHome v2 packets encrypted by python3-cryptography's AES-CCM, an
implementation independent of the decoder's (nettle), with objects drawn at
random from a table written here from the specification; the decoder must
read back every value, refuse altered packets, wrong keys, replayed
counters and plaintext from a device with a key, and report a repeated
packet as a duplicate.

usage: test_bthome_oracle.py BLE-ADV-DUMP
"""
import errno
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bleadv import close, mac_text, run_dump  # noqa: E402

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM
except ImportError:
    sys.exit("python3-cryptography is missing (tools/install-deps test)")

# id: (field, bytes, signed, factor), from the BTHome v2 object table.
OBJECTS = {
    0x01: ("battery", 1, False, 1), 0x02: ("temperature", 2, True, 0.01),
    0x03: ("humidity", 2, False, 0.01), 0x04: ("pressure", 3, False, 0.01),
    0x05: ("illuminance", 3, False, 0.01), 0x06: ("mass_kg", 2, False, 0.01),
    0x08: ("dewpoint", 2, True, 0.01), 0x09: ("count", 1, False, 1),
    0x0A: ("energy", 3, False, 0.001), 0x0B: ("power", 3, False, 0.01),
    0x0C: ("voltage", 2, False, 0.001), 0x0D: ("pm2_5", 2, False, 1),
    0x12: ("co2", 2, False, 1), 0x14: ("moisture", 2, False, 0.01),
    0x1A: ("door", 1, False, 1), 0x21: ("motion", 1, False, 1),
    0x2E: ("humidity", 1, False, 1), 0x3D: ("count", 2, False, 1),
    0x3E: ("count", 4, False, 1), 0x3F: ("rotation", 2, True, 0.1),
    0x43: ("current", 2, False, 0.001), 0x45: ("temperature", 2, True, 0.1),
    0x4C: ("gas", 4, False, 0.001), 0x50: ("timestamp", 4, False, 1),
    0x57: ("temperature", 1, True, 1), 0x58: ("temperature", 1, True, 0.35),
    0x5B: ("count", 4, True, 1), 0x5C: ("power", 4, True, 0.01),
    0x62: ("speed", 4, True, 0.000001), 0x63: ("acceleration", 4, True, 0.000001),
}

SPEC_KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
SPEC_MAC = bytes.fromhex("5448E68F80A5")


def encrypt(key, mac, info, counter, plain):
    nonce = mac + b"\xd2\xfc" + bytes([info]) + counter.to_bytes(4, "little")
    sealed = AESCCM(key, tag_length=4).encrypt(nonce, plain, None)
    return bytes([info]) + sealed[:-4] + counter.to_bytes(4, "little") + sealed[-4:]


def random_objects(rng):
    """Objects in id order, with the values they must decode to."""
    ids = sorted(rng.choice(list(OBJECTS)) for _ in range(rng.randint(1, 6)))
    data, want, seen = b"", [], {}
    for i in ids:
        name, size, signed, factor = OBJECTS[i]
        lo, hi = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if signed else (0, (1 << 8 * size) - 1)
        raw = rng.randint(lo, hi)
        data += bytes([i]) + raw.to_bytes(size, "little", signed=signed)
        seen[name] = seen.get(name, 0) + 1
        want.append((name if seen[name] == 1 else f"{name}_{seen[name]}", raw * factor))
    return data, want


def line(key, mac, svc):
    k = f"key={key.hex()} " if key else ""
    return f"bthome {k}addr={mac_text(mac)} svc=fcd2:{svc.hex()}"


def main():
    dump = sys.argv[1]
    rng = random.Random(int(os.environ.get("BLE_ORACLE_SEED", "16")))

    # The encrypter itself reproduces the specification's example.
    spec = encrypt(SPEC_KEY, SPEC_MAC, 0x41, 0x33221100, bytes.fromhex("02CA0903BF13"))
    assert spec.hex() == "41a47266c95f730011223378237214", spec.hex()

    cases = []  # (input line, expected result, expected values or None)
    cases.append((line(SPEC_KEY, SPEC_MAC, spec), 2, [("temperature", 25.06), ("humidity", 50.55)]))
    for dev in range(20):
        key = rng.randbytes(16)
        mac = rng.randbytes(6)
        counter = rng.randint(0, 1 << 30)
        info = rng.choice([0x41, 0x45])  # with and without the trigger flag
        for _ in range(10):
            counter += rng.randint(1, 1000)
            data, want = random_objects(rng)
            svc = encrypt(key, mac, info, counter, data)
            cases.append((line(key, mac, svc), len(want), want))
            r = rng.random()
            if r < 0.2:  # the same packet again: a duplicate
                cases.append((line(key, mac, svc), 0, []))
            elif r < 0.35:  # an older one: a replay
                old = encrypt(key, mac, info, counter - rng.randint(1, 50), data)
                cases.append((line(key, mac, old), -errno.ESTALE, None))
            elif r < 0.5:  # one bit flipped anywhere but the device info byte
                bad = bytearray(svc)
                pos = rng.randrange(1, len(bad))
                bad[pos] ^= 1 << rng.randrange(8)
                cases.append((line(key, mac, bytes(bad)), -errno.EACCES, None))
            elif r < 0.6:
                cases.append((line(rng.randbytes(16), mac, svc), -errno.EACCES, None))
            elif r < 0.7:  # plaintext while a key is configured
                cases.append((line(key, mac, b"\x40" + data), -errno.EACCES, None))
        # plaintext devices with no key
        data, want = random_objects(rng)
        cases.append((line(None, rng.randbytes(6), b"\x40" + data), len(want), want))

    answers = run_dump(dump, [c[0] for c in cases])
    checked = 0
    for (inline, want_r, want), (r, vals) in zip(cases, answers):
        if r != want_r:
            sys.exit(f"FAIL {inline}: result {r}, want {want_r} ({vals})")
        if want is None:
            continue
        if len(vals) != len(want):
            sys.exit(f"FAIL {inline}: {vals}, want {want}")
        for name, v in want:
            g = vals.get(name, "")
            if not g.startswith("n:") or not close(float(g[2:]), v):
                sys.exit(f"FAIL {inline}: {name} {g}, want {v}")
            checked += 1
    print(f"{len(cases)} packets, {checked} values agree with AES-CCM from python3-cryptography")


if __name__ == "__main__":
    main()
