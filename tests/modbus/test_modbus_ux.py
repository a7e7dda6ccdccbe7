# SPDX-License-Identifier: MIT
"""What an integrator sees of a Modbus device through m2mctl, against
pymodbus: a string point round-trips through `read` and `history` (table,
CSV, JSON); coils, discrete inputs and type = "bool" are bools without
kind = "bool"; an exception code is shown with its name; a device polled
at two intervals shows requests per cycle per poll group; a value a
register cannot hold is refused in words."""

import csv
import io
import json
import os
import subprocess

from mbtest import GOOD, Server, ctl, device, driver, driver_stats, latest, point, tmpdir
from m2mtest import BUILD, SLOW, Gateway, check, main, wait_for

M2MCTL = os.path.join(BUILD, "src", "m2mctl")


def m2mctl(*args):
    p = subprocess.run([M2MCTL] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=20 * SLOW)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_integrator_view():
    d = tmpdir("mb-ux")
    sn = b"SN-0042 "
    hr = {"0": [int.from_bytes(sn[i:i + 2], "big") for i in range(0, 8, 2)] + [0, 0x0005, 7]}
    srv = Server(d, "ux", units=(1,), config={
        "init": {"1": {"hr": hr, "co": {"3": [1, 0]}, "di": {"7": [1]}}},
        "holes": {"1": {"hr": [[40, 40]]}}}).start()
    try:
        cfg = driver("plc", transport="tcp", host="127.0.0.1", port=srv.port)
        cfg += device("plc", name="dev", unit_id=1, interval="200ms")
        cfg += point("plc", name="serial", table="holding_register", address=0, type="string",
                     length=5, kind="string")
        cfg += point("plc", name="flag", table="holding_register", address=5, type="bool", bit=2)
        cfg += point("plc", name="coil3", table="coil", address=3, writable=True)
        cfg += point("plc", name="di7", table="discrete_input", address=7)
        cfg += point("plc", name="level", table="holding_register", address=6, writable=True)
        cfg += point("plc", name="hole", table="holding_register", address=40)
        # A second interval: a second poll group of the same device.
        cfg += point("plc", name="slow", table="holding_register", address=20, interval="1h")
        gw = Gateway("mb-ux", cfg, directory=d).start()
        try:
            wait_for(lambda: latest(gw, "dev/serial") and latest(gw, "dev/hole") and
                     latest(gw, "dev/slow") and gw.count("dev/level") >= 2, 15, "readings")
            pts = {p["name"]: p for p in ctl(gw, "points")["result"]}
            for name in ("dev/flag", "dev/coil3", "dev/di7"):
                check(pts[name]["kind"] == "bool", "%s is a bool without kind: %r" % (name, pts[name]))
            check(pts["dev/level"]["kind"] == "number", "a register stays a number")

            code, out, err = m2mctl("-s", gw.socket, "read", "dev/serial")
            check(code == 0 and out.startswith("dev/serial SN-0042 (good"), "read a string: %r" % out)
            code, out, err = m2mctl("-s", gw.socket, "read", "dev/hole")
            check(code == 0 and "device_error: illegal data address (2)" in out,
                  "read shows the exception by name: %r %r" % (out, err))
            code, out, err = m2mctl("-s", gw.socket, "points")
            row = [x for x in out.splitlines() if x.startswith("dev/hole")]
            check(row and row[0].endswith("device_error: illegal data address (2)"),
                  "points shows it too: %r" % out)

            stats = driver_stats(gw, "plc")
            check(stats.get("requests_per_cycle.dev@200ms") == 4 and
                  stats.get("requests_per_cycle.dev@1h") == 1 and
                  "requests_per_cycle.dev" not in stats,
                  "requests per cycle per poll group: %r" % stats)

            code, out, err = m2mctl("-s", gw.socket, "write", "dev/level", "555.5")
            check(code != 0 and "refused: value 555.5 does not fit uint16" in err,
                  "a value the register cannot hold, in words: %r" % err)
        finally:
            check(gw.stop() == 0, "m2md exits 0")
        # An unchanged string is stored once (on change), as documented.
        check(gw.count("dev/serial") == 1 and gw.count("dev/level") >= 2,
              "strings on change, numbers every poll: %d %d"
              % (gw.count("dev/serial"), gw.count("dev/level")))
        code, out, err = m2mctl("-c", gw.config, "history", "dev/serial")
        check(code == 0 and out.splitlines()[1].split()[1] == "SN-0042",
              "history of a string (table): %r %r" % (out, err))
        code, out, err = m2mctl("-c", gw.config, "history", "dev/serial", "--csv")
        rows = list(csv.reader(io.StringIO(out)))
        check(rows[1][2] == "SN-0042" and rows[1][4] == "good", "history --csv: %r" % rows)
        code, out, err = m2mctl("-c", gw.config, "history", "dev/serial", "--json")
        rows = json.loads(out)
        check(rows[0]["value"] == "SN-0042" and isinstance(rows[0]["ts"], int),
              "history --json: %r" % rows)
    finally:
        srv.kill()


if __name__ == "__main__":
    main([test_integrator_view])
