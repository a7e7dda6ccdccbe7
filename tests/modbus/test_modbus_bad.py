# SPDX-License-Identifier: MIT
"""The modbus driver against answers that are wrong on purpose (mbbad.py):
wrong byte counts, short answers, an unexpected function code, exception
codes valid and invalid, another request's transaction id, another
device's unit id, half a frame. Each device's readings go bad with the
reason that fits, the well-behaved device on the same connection stays
good throughout, and m2md neither crashes nor stops."""

import os
import subprocess
import time

from mbtest import (DECODE_ERROR, DEVICE_ERROR, GOOD, PYTHON, TIMEOUT, Gateway, check, ctl, device,
                    driver, driver_stats, events, latest, main, max_rowid, point, qualities,
                    tmpdir, wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))

# unit: (what it does, the quality its readings must have, what the offline
# event must say, or None when the device stays online)
UNITS = {
    1: ("answers correctly", GOOD, None),
    2: ("byte count too large", DECODE_ERROR, "byte count 6, expected 4"),
    3: ("byte count too small", DECODE_ERROR, "byte count 2, expected 4"),
    4: ("function code 4 in the answer to 3", DECODE_ERROR, "function code 4, expected 3"),
    # An exception is a valid answer: the device is there and says no.
    5: ("exception 04", DEVICE_ERROR, None),
    6: ("exception code 0x63", DECODE_ERROR, "exception code 99, which Modbus does not define"),
    7: ("another transaction id", DECODE_ERROR, "transaction id"),
    # libmodbus 3.1.6 (Debian 12) checks neither the unit id nor the MBAP
    # length of a TCP answer; the driver frames its reads and checks them.
    8: ("another unit id", DECODE_ERROR, "unit id 99, expected 8"),
    9: ("half a frame, then silence", TIMEOUT, "timeout"),
    10: ("MBAP length field 3", DECODE_ERROR, "MBAP length field 3, expected 7"),
    11: ("a frame past 260 bytes", DECODE_ERROR, "a frame longer than 260 bytes"),
}


def start_bad_server(d):
    port_file = os.path.join(d, "bad.port")
    errf = open(os.path.join(d, "bad-server.log"), "ab")
    proc = subprocess.Popen([PYTHON, os.path.join(HERE, "mbbad.py"), port_file],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf)
    errf.close()
    wait_for(lambda: os.path.exists(port_file) or proc.poll() is not None, 10, "mbbad.py")
    check(proc.poll() is None, "mbbad.py runs")
    with open(port_file) as f:
        return proc, int(f.read())


def test_malformed_answers():
    d = tmpdir("mb-bad")
    proc, port = start_bad_server(d)
    try:
        cfg = driver("plc", transport="tcp", host="127.0.0.1", port=port, timeout="200ms",
                     retries=1, backoff_max="500ms")
        for unit in UNITS:
            cfg += device("plc", name="u%d" % unit, unit_id=unit, interval="100ms")
            cfg += point("plc", name="a", table="holding_register", address=0)
            cfg += point("plc", name="b", table="holding_register", address=1)
        cfg += device("plc", name="u12", unit_id=12, interval="100ms")
        cfg += point("plc", name="a", table="holding_register", address=0)
        cfg += point("plc", name="b", table="holding_register", address=100)
        gw = Gateway("mb-bad", cfg, directory=d).start()
        try:
            wait_for(lambda: all(latest(gw, "u%d/b" % u) for u in UNITS) and latest(gw, "u12/b"),
                     15, "a reading of every device")
            time.sleep(1.5)
            for unit, (what, want, _) in UNITS.items():
                got = set(qualities(gw, "u%d/a" % unit)) | set(qualities(gw, "u%d/b" % unit))
                check(got == {want}, "unit %d (%s): qualities %r, expected only %r"
                      % (unit, what, sorted(got), want))
            check(latest(gw, "u1/a") == (1000, GOOD) and latest(gw, "u1/b") == (1001, GOOD),
                  "the good device's values: %r %r" % (latest(gw, "u1/a"), latest(gw, "u1/b")))
            # Bad values never pass as numbers.
            bad = gw.query("SELECT count(*) FROM readings WHERE quality != 0 AND value IS NOT NULL")
            check(bad[0][0] == 0, "bad readings carry no value: %r" % bad)
            # A device that answers with valid frames is online; one that
            # answers only garbage, or not at all, is offline with what was wrong.
            stats = driver_stats(gw, "plc")
            for unit, (what, _, offline) in UNITS.items():
                evs = events(gw, "u%d" % unit)
                kinds = [e[0] for e in evs]
                if offline is None:
                    check("offline" not in kinds and stats.get("online.u%d" % unit) == 1,
                          "unit %d (%s) is online: %r %r" % (unit, what, kinds,
                                                            stats.get("online.u%d" % unit)))
                    continue
                check(kinds[:1] == ["offline"] and "online" not in kinds,
                      "unit %d (%s) is offline, never online: %r" % (unit, what, evs))
                check(offline in evs[0][2], "unit %d: the offline event says %r: %r"
                      % (unit, offline, evs[0][2]))
                check(stats.get("online.u%d" % unit) == 0, "unit %d: online stat 0: %r"
                      % (unit, stats.get("online.u%d" % unit)))
                check(("u%d offline: " % unit) in gw.log_text(), "unit %d: logged" % unit)
            # The exception code is kept with its name.
            r = ctl(gw, "read", point="u5/a")["result"]
            check(r["quality"] == "device_error" and r["detail"] == "server device failure (4)",
                  "the exception of unit 5: %r" % r)
            # Bad answers of a device that is otherwise online: an event with what was wrong.
            check(latest(gw, "u12/a") == (1000, GOOD) and latest(gw, "u12/b")[1] == DECODE_ERROR,
                  "unit 12: %r %r" % (latest(gw, "u12/a"), latest(gw, "u12/b")))
            evs = events(gw, "u12")
            check([e[0] for e in evs] == ["online", "bad_answer"] and "transaction id" in evs[1][2],
                  "unit 12 online, one bad_answer event (rate-limited): %r" % evs)
            check(stats.get("bad_answers.u12", 0) >= 1, "bad answers counted: %r" % stats)
            # The silent device holds the shared connection for its timeouts,
            # so the good one is polled less often, but it is polled.
            mark = max_rowid(gw)
            wait_for(lambda: qualities(gw, "u1/a", mark).count(GOOD) >= 3, 10,
                     "m2md still polling the good device")
            check(gw.proc.poll() is None, "m2md still runs")
        finally:
            check(gw.stop() == 0, "m2md exits 0")
    finally:
        proc.kill()
        proc.wait(10)


if __name__ == "__main__":
    main([test_malformed_answers])
