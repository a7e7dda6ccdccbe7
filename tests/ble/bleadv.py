# SPDX-License-Identifier: MIT
"""What the BLE decoder tests share: running tests/ble/ble-adv-dump over
advertisements written as text lines, and reading its answers."""
import subprocess


def run_dump(dump, lines):
    """One answer per line: (result, {field: "n:NUMBER" or "s:TEXT"})."""
    out = subprocess.run([dump], input="".join(l + "\n" for l in lines), capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert len(out) == len(lines), (len(out), len(lines))
    answers = []
    for o in out:
        fields = o.split("\t")
        vals = {}
        for f in fields[1:]:
            name, _, v = f.partition("=")
            vals[name] = v
        answers.append((int(fields[0]), vals))
    return answers


def mac_text(mac):
    return ":".join(f"{b:02X}" for b in mac)


def close(a, b, rel=1e-9):
    return abs(a - b) <= rel * (1 + abs(b))
