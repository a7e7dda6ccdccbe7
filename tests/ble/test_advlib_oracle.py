#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""npm's advlib-ble (with advlib-ble-manufacturers and advlib-ble-services)
as an independent decoder of Ruuvi data format 5, iBeacon and Eddystone
UID/URL/TLM: random packets of each, decoded by both; every value must
agree. advlib-ble reads Ruuvi's "not available" sentinels as numbers, so
where the packet holds a sentinel m2md must emit nothing and advlib's value
is not compared. (The advlib-ble-services release pinned here has no
BTHome decoder: BTHome is checked against the specification's vectors and
the AES-CCM oracle.)

tools/install-deps test installs the pinned packages into
${XDG_CACHE_HOME:-~/.cache}/m2md/node (or $M2M_NODE_MODULES); the test
fails when they are missing and uses no network.

usage: test_advlib_oracle.py BLE-ADV-DUMP ADVLIB-DECODE.JS
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bleadv import close, run_dump  # noqa: E402

def pinned():
    """The name@version list of tools/install-deps, the one place that pins them."""
    top = os.environ.get("M2M_SOURCE_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    with open(os.path.join(top, "tools", "install-deps")) as f:
        for line in f:
            m = re.match(r"node_pkgs=\((.*)\)", line)
            if m:
                return [p.rsplit("@", 1) for p in m.group(1).split()]
    sys.exit("FAIL: no node_pkgs in tools/install-deps")


def node_modules():
    d = os.environ.get("M2M_NODE_MODULES")
    if not d:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(cache, "m2md", "node", "node_modules")
    missing = []
    for name, version in pinned():
        try:
            with open(os.path.join(d, name, "package.json")) as f:
                if json.load(f).get("version") != version:
                    missing.append(f"{name}@{version}")
        except OSError:
            missing.append(f"{name}@{version}")
    if missing or not shutil.which("node"):
        sys.exit(f"FAIL: {' '.join(missing) or 'node'} missing in {d}: run tools/install-deps test")
    return d


def ruuvi(rng):
    """Data format 5 with each field at random, a sentinel now and then; the expected values."""
    def pick(lo, hi, sentinel):
        return sentinel if rng.random() < 0.15 else rng.randint(lo, hi)

    t = pick(-32767, 32767, -32768)
    h = pick(0, 40000, 0xFFFF)
    p = pick(0, 65534, 0xFFFF)
    acc = [pick(-32767, 32767, -32768) for _ in range(3)]
    bat = pick(0, 2046, 2047)
    tx = pick(0, 30, 31)
    mov = pick(0, 254, 0xFF)
    seq = pick(0, 65534, 0xFFFF)
    mac = bytes([0xFF] * 6) if rng.random() < 0.1 else rng.randbytes(6)
    data = bytes([5]) + t.to_bytes(2, "big", signed=True) + h.to_bytes(2, "big") + p.to_bytes(2, "big")
    data += b"".join(a.to_bytes(2, "big", signed=True) for a in acc)
    data += (bat << 5 | tx).to_bytes(2, "big") + bytes([mov]) + seq.to_bytes(2, "big") + mac
    # m2md field -> (advlib's value from its JSON, factor to m2md's unit), None where a sentinel
    want = {
        "temperature": None if t == -32768 else (lambda j: j["temperature"]),
        "humidity": None if h == 0xFFFF else (lambda j: j["relativeHumidity"]),
        "pressure": None if p == 0xFFFF else (lambda j: j["pressure"] / 100),
        "voltage": None if bat == 2047 else (lambda j: j["batteryVoltage"]),
        "tx_power": None if tx == 31 else (lambda j: j["txPower"]),
        "movement_counter": None if mov == 0xFF else (lambda j: j["isMotionDetectedCycle"]),
        "measurement_sequence": None if seq == 0xFFFF else (lambda j: j["txCycle"]),
        "mac": None if mac == bytes([0xFF] * 6) else (lambda j: ":".join(
            j["deviceIds"][0][i:i + 2] for i in range(0, 12, 2)).upper()),
    }
    want["@id"] = want["mac"]
    for i, axis in enumerate("xyz"):
        want[f"acceleration_{axis}"] = None if acc[i] == -32768 else (lambda j, i=i: j["acceleration"][i])
    return f"ruuvi mfr=0499:{data.hex()}", "1bff9904" + data.hex(), want


def ibeacon(rng):
    data = bytes([0x02, 0x15]) + rng.randbytes(20) + bytes([rng.randrange(256)])
    want = {
        "present": lambda j: 1,
        "tx_power": lambda j: j["txPower"],
        "major": lambda j: int(j["deviceIds"][0].split("/")[1], 16),
        "minor": lambda j: int(j["deviceIds"][0].split("/")[2], 16),
        "@id": lambda j: "{0}-{1}-{2}-{3}-{4}/{5}/{6}".format(
            (u := j["deviceIds"][0].split("/"))[0][:8], u[0][8:12], u[0][12:16], u[0][16:20], u[0][20:],
            int(u[1], 16), int(u[2], 16)),
    }
    return f"ibeacon mfr=004c:{data.hex()}", "1aff4c00" + data.hex(), want


URL_CHARS = [c for c in range(0x21, 0x7F)] + list(range(14))


def eddystone(rng):
    kind = rng.choice(["uid", "url", "tlm"])
    if kind == "uid":
        data = bytes([0x00, rng.randrange(256)]) + rng.randbytes(16) + (b"\0\0" if rng.random() < 0.5 else b"")
        want = {"present": lambda j: 1, "tx_power": lambda j: j["txPower"],
                "@id": lambda j: j["deviceIds"][0],
                "namespace": lambda j: j["deviceIds"][0].split("/")[0],
                "instance": lambda j: j["deviceIds"][0].split("/")[1]}
    elif kind == "url":
        data = bytes([0x10, rng.randrange(256), rng.randrange(4)])
        data += bytes(rng.choice(URL_CHARS) for _ in range(rng.randint(1, 17)))
        want = {"present": lambda j: 1, "tx_power": lambda j: j["txPower"], "url": lambda j: j["uri"]}
    else:
        mv = 0 if rng.random() < 0.15 else rng.randint(1, 65535)
        temp = 0x8000 if rng.random() < 0.15 else rng.randint(0, 65535)
        data = bytes([0x20, 0x00]) + mv.to_bytes(2, "big") + temp.to_bytes(2, "big") + rng.randbytes(8)
        want = {"present": lambda j: 1,
                "battery_voltage": None if mv == 0 else (lambda j: j["batteryVoltage"]),
                "temperature": None if temp == 0x8000 else (lambda j: j["temperature"]),
                "adv_count": lambda j: j["txCount"], "uptime": lambda j: j["uptime"] / 1000}
    ad = bytes([len(data) + 3, 0x16, 0xAA, 0xFE]) + data
    return f"eddystone svc=feaa:{data.hex()}", ad.hex(), want


def main():
    dump, js = sys.argv[1], sys.argv[2]
    mods = node_modules()
    rng = random.Random(int(os.environ.get("BLE_ORACLE_SEED", "16")))
    cases = [g(rng) for g in (ruuvi, ibeacon, eddystone) for _ in range(300)]
    ours = run_dump(dump, [c[0] for c in cases])
    theirs = subprocess.run(["node", js, mods], input="".join(c[1] + "\n" for c in cases),
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(theirs) == len(cases)
    compared = skipped = 0
    for (line, ad, want), (r, vals), t in zip(cases, ours, theirs):
        j = json.loads(t)
        if r < 0:
            sys.exit(f"FAIL {line}: m2md refused it ({r} {vals}); advlib: {t}")
        got = {k: v for k, v in vals.items()}
        for field, fn in want.items():
            g = got.pop(field, None)
            if fn is None:
                if g is not None:
                    sys.exit(f"FAIL {line}: {field}={g} where the packet says not available")
                skipped += 1
                continue
            w = fn(j)
            if g is None:
                sys.exit(f"FAIL {line}: no {field}, advlib has {w} ({t})")
            if g.startswith("n:") and isinstance(w, (int, float)):
                ok = close(float(g[2:]), float(w))
            else:
                ok = g[2:] == str(w)
            if not ok:
                sys.exit(f"FAIL {line}: {field}={g[2:]}, advlib {w} ({t})")
            compared += 1
        if got:
            sys.exit(f"FAIL {line}: fields not compared: {got}")
    print(f"{len(cases)} packets, {compared} values agree with advlib-ble, {skipped} not available in both")


if __name__ == "__main__":
    main()
