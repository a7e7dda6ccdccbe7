# SPDX-License-Identifier: MIT
"""The serial driver when the line goes wrong: the port hangs up (socat
killed, as a USB adapter pulled out) and comes back, the port is held by
another process, the device goes silent (stale readings, offline), RS-485
asked of a port that cannot do it, and configurations that must be refused
with file, line and key."""

import fcntl
import os
import pwd
import subprocess
import threading
import time

from sertest import (COMM_ERROR, GOOD, SLOW, STALE, Gateway, PtyPair, check, ctl, driver,
                     events, good_values, main, max_rowid, point, qualities, request, run_check,
                     stats, tmpdir, wait_for)

RMC = "$GNRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A*49\r\n"


def gps(port, **extra):
    cfg = driver("gps", port=port, format="nmea", device="gps", backoff_max="400ms", **extra)
    cfg += point("gps", name="lat", sentence="RMC", field="latitude")
    return cfg


def opened(gw, port, n=1):
    return gw.run_log().count("reading \"%s\"" % port) >= n


def test_hangup_and_reopen():
    d = tmpdir("ser-hup")
    pty = PtyPair(d)
    gw = Gateway("ser-hup", gps(pty.port), directory=d).start()
    try:
        wait_for(lambda: opened(gw, pty.port), 10, "the port opened")
        check('"%s" (%s)' % (pty.port, os.path.realpath(pty.port)) in gw.run_log(),
              "the log names the tty the link stands for")
        pty.write(RMC.encode())
        wait_for(lambda: good_values(gw, "gps/lat"), 5, "a position")
        mark = max_rowid(gw)
        pty.kill()  # the far end goes away: m2md's end hangs up
        wait_for(lambda: any(e[0] == "offline" for e in events(gw, "gps")), 5, "offline")
        wait_for(lambda: COMM_ERROR in qualities(gw, "gps/lat", mark), 5, "a comm error reading")
        off = [e for e in events(gw, "gps") if e[0] == "offline"][0]
        check("hung up" in off[2] or "went away" in off[2], "the reason says so: %r" % (off,))
        # While the port is away, retries fail quietly (one log line per reason).
        time.sleep(1.5 * SLOW)
        check(gw.run_log().count("is not there") <= 1, "a missing port is logged once")
        pty.start()
        wait_for(lambda: opened(gw, pty.port, 2), 10, "reopened after the port came back")
        mark = max_rowid(gw)
        pty.write(RMC.encode())
        wait_for(lambda: GOOD in qualities(gw, "gps/lat", mark), 5, "good after the reopen")
        kinds = [e[0] for e in events(gw, "gps")]
        check(kinds[-1] == "online" and "offline" in kinds, "offline, then online: %r" % kinds)
        st = stats(gw, "gps")
        check(st["port_losses"] == 1, "one port loss counted: %r" % st)
        # Hang up once more, with bytes of a half sentence in flight.
        pty.write(RMC[:30].encode())
        pty.kill()
        wait_for(lambda: stats(gw, "gps")["port_losses"] == 2, 5, "the second loss")
        pty.start()
        wait_for(lambda: opened(gw, pty.port, 3), 10, "reopened again")
        mark = max_rowid(gw)
        pty.write(RMC.encode())
        wait_for(lambda: GOOD in qualities(gw, "gps/lat", mark), 5, "good again")
        check(stats(gw, "gps")["checksum_errors"] == 0,
              "the half sentence from before the loss is not glued to the next: %r"
              % stats(gw, "gps"))
    finally:
        check(gw.stop() == 0, "m2md exits 0")
        pty.kill()


def test_port_held_by_another_process():
    d = tmpdir("ser-held")
    pty = PtyPair(d)
    holder = os.open(pty.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    gw = Gateway("ser-held", gps(pty.port), directory=d).start()
    try:
        wait_for(lambda: "is held by another process" in gw.run_log(), 10, "the clear error")
        wait_for(lambda: any(e[0] == "offline" and "held by another process" in (e[2] or "")
                             for e in events(gw, "gps")), 5, "offline with the reason")
        os.close(holder)
        wait_for(lambda: opened(gw, pty.port), 10, "opened once the other process let go")
        # Now m2md holds it: TIOCEXCL refuses another open (by anyone but root).
        try:
            nobody = pwd.getpwnam("nobody").pw_uid
        except KeyError:
            nobody = None
        if nobody is not None and os.geteuid() == 0:
            os.chmod(pty.port, 0o666)
            os.chmod(os.path.realpath(pty.port), 0o666)
            def open_as_nobody():
                p = subprocess.run(["/usr/bin/python3", "-c",
                                    "import os,sys\ntry:\n os.open(sys.argv[1], os.O_RDWR|os.O_NOCTTY)\n"
                                    " print('opened')\nexcept OSError as e:\n print(e.errno)",
                                    os.path.realpath(pty.port)],
                                   preexec_fn=lambda: os.setuid(nobody), capture_output=True,
                                   timeout=10 * SLOW)
                return p.stdout.decode().strip()

            check(open_as_nobody() == "16", "a second open gets EBUSY (16)")
            # Closing lets go of TIOCEXCL, which a pty keeps while its master is open.
            check(gw.stop() == 0, "m2md exits 0")
            check(open_as_nobody() == "opened", "the port is free for others after m2md")
    finally:
        if gw.proc is not None:
            check(gw.stop() == 0, "m2md exits 0")
        pty.kill()


def test_silent_device_goes_stale():
    d = tmpdir("ser-stale")
    pty = PtyPair(d)
    gw = Gateway("ser-stale", gps(pty.port, stale="400ms"), directory=d).start()
    try:
        wait_for(lambda: opened(gw, pty.port), 10, "the port opened")
        pty.write(RMC.encode())
        wait_for(lambda: good_values(gw, "gps/lat"), 5, "a position")
        mark = max_rowid(gw)
        wait_for(lambda: STALE in qualities(gw, "gps/lat", mark), 5, "a stale reading")
        wait_for(lambda: any(e[0] == "offline" and "silent: no frame for 400ms" in (e[2] or "")
                             for e in events(gw, "gps")), 5, "offline as silent")
        time.sleep(1.0 * SLOW)
        check(qualities(gw, "gps/lat", mark).count(STALE) == 1, "one stale reading per silence")
        mark = max_rowid(gw)
        pty.write(RMC.encode())
        wait_for(lambda: GOOD in qualities(gw, "gps/lat", mark), 5, "fresh again")
        wait_for(lambda: [e[0] for e in events(gw, "gps")][-1:] == ["online"], 5, "online again")
    finally:
        check(gw.stop() == 0, "m2md exits 0")
        pty.kill()


def test_rs485_on_a_pty():
    d = tmpdir("ser-485")
    pty = PtyPair(d)
    gw = Gateway("ser-485", gps(pty.port, rs485=True), directory=d).start()
    try:
        wait_for(lambda: "RS-485 mode (rs485 = true) is not supported by this port" in gw.run_log(),
                 10, "the clear error")
        # The kernel's reason (ENOTTY); under qemu-user, which passes no
        # TIOCSRS485 on, the emulator's (ENOSYS).
        check("Inappropriate ioctl" in gw.run_log() or "Function not implemented" in gw.run_log(),
              "with the kernel's reason (ENOTTY)")
        wait_for(lambda: any(e[0] == "offline" and "RS-485" in (e[2] or "")
                             for e in events(gw, "gps")), 5, "the port offline with the reason")
    finally:
        check(gw.stop() == 0, "m2md exits 0")
        pty.kill()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_flood_stays_bounded():
    """Megabytes of noise as fast as the pty takes them: memory stays flat,
    the loop keeps answering, everything is counted, and the line's next
    good frame is read."""
    d = tmpdir("ser-flood")
    pty = PtyPair(d)
    cfg = driver("f", port=pty.port, format="regex", device="f", max_length=64,
                 pattern=r"^V ([0-9]+)$")
    cfg += point("f", name="v")
    gw = Gateway("ser-flood", cfg, directory=d).start()
    try:
        wait_for(lambda: opened(gw, pty.port), 10, "the port opened")
        pty.write(b"V 1\n")
        wait_for(lambda: good_values(gw, "f/v") == [1], 5, "a first value")
        rss0 = rss_kib(gw.proc.pid)
        noise = os.urandom(1 << 20)
        t0 = time.monotonic()
        lag = []
        for i in range(4):
            pty.write(noise, chunk=65536)
            t = time.monotonic()
            check(ctl(gw, "status", timeout=5).get("ok"), "status answers during the flood")
            lag.append(time.monotonic() - t)
        pty.write(b"\nV 2\n")
        wait_for(lambda: good_values(gw, "f/v") == [1, 2], 30, "the value after the flood")
        st = stats(gw, "f")
        check(st["bytes"] >= 4 << 20, "every byte read: %r" % st)
        check(st["overlong_frames"] > 1000 and st["unused_frames"] > 1000,
              "noise counted as overlong and unused frames: %r" % st)
        grown = rss_kib(gw.proc.pid) - rss0
        check(grown < 4096, "memory stays flat: %d KiB more after 4 MiB of noise" % grown)
        print("flood: 4 MiB in %.2fs, status answered within %.3fs at worst, RSS +%d KiB"
              % (time.monotonic() - t0, max(lag), grown))
    finally:
        check(gw.stop() == 0, "m2md exits 0")
        pty.kill()


def test_hostile_line_against_a_loose_pattern():
    """A pattern that backtracks exponentially, fed lines crafted against
    it: PCRE2's limits stop each match, the stop is counted, the loop keeps
    answering while it works through them, and a good line after them is
    read."""
    d = tmpdir("ser-redos")
    pty = PtyPair(d)
    cfg = driver("r", port=pty.port, format="regex", device="r", max_length=128,
                 pattern=r"^(a+)+b ([0-9]+)$")
    cfg += point("r", name="v", group=2)
    gw = Gateway("ser-redos", cfg, directory=d).start()
    try:
        wait_for(lambda: opened(gw, pty.port), 10, "the port opened")
        n = 2000
        writer = threading.Thread(target=pty.write, args=((b"a" * 40 + b"c 1\n") * n + b"aab 7\n",))
        t0 = time.monotonic()
        writer.start()
        worst = 0
        while writer.is_alive() or not good_values(gw, "r/v"):
            t = time.monotonic()
            check(ctl(gw, "status", timeout=10).get("ok"), "status answers")
            worst = max(worst, time.monotonic() - t)
            if time.monotonic() - t0 > 60 * SLOW:
                raise AssertionError("the good line never came")
        writer.join()
        st = stats(gw, "r")
        check(st["regex_limit_hits"] == n, "each hostile line stopped by a limit: %r" % st)
        check(good_values(gw, "r/v") == [7], "the good line after them is read")
        turn_ms = ctl(gw, "status")["result"]["loop_turn_cpu_ms"]["max_total"]
        print("hostile lines: %d in %.2fs, status answered within %.1f ms at worst, the loop's"
              " longest turn took %.1f ms of CPU" % (n, time.monotonic() - t0, worst * 1000, turn_ms))
        # Each match stops at the limit (about 0.1 ms), and reads shrink while
        # lines are this expensive, so no turn holds the loop for long. What a
        # turn cost the loop thread is m2md's own measure (its CPU clock); the
        # time status took also holds the waits for a core of a busy machine.
        check(turn_ms < 50 * SLOW, "no turn of the loop took 50 ms of CPU or more: %.1f ms" % turn_ms)
    finally:
        check(gw.stop() == 0, "m2md exits 0")
        pty.kill()


BAD = [
    # (config keys, points, the message's key path, words of the message)
    (dict(format="regex", max_length=32, pattern="(unclosed"), [dict(name="x")],
     "drivers.s.pattern", "bad regular expression"),
    (dict(format="nmea", baud=12345), [dict(name="x", sentence="RMC", field="latitude")],
     "drivers.s.baud", "12345 is not a rate"),
    (dict(format="regex", pattern="(a)"), [dict(name="x")], "drivers.s", "max_length"),
    (dict(format="nmea"), [dict(name="x", sentence="RMC", field="latitud")],
     "drivers.s.points[0].field", "RMC has no field \"latitud\""),
    (dict(format="nmea"), [dict(name="x", sentence="RMC", field="status")],
     "drivers.s.points[0].field", "not a number"),
    (dict(format="nmea", speling=1), [dict(name="x", sentence="RMC", field="latitude")],
     "drivers.s.speling", "unknown key"),
    (dict(format="regex", max_length=32, pattern="(a)"), [dict(name="x", group="b")],
     "drivers.s.points[0].group", "no group \"b\""),
    (dict(format="delimited", max_length=32), [dict(name="x", field=0, writable=True)],
     "drivers.s.points[0]", "needs 'write'"),
    (dict(format="delimited", max_length=32), [dict(name="x", field=0, writable=True,
                                                  write="SP{val}")],
     "drivers.s.points[0].write", "placeholder"),
    (dict(format="delimited", max_length=32), [dict(name="x", field=0, request="nope")],
     "drivers.s.points[0].request", "no request named \"nope\""),
    (dict(format="fixed", max_length=8), [dict(name="x", start=4, width=8)],
     "drivers.s.points[0]", "past max_length"),
    (dict(format="nmea", framing="idle"), [dict(name="x", sentence="RMC", field="latitude")],
     "drivers.s:", "idle framing needs 'idle'"),
    (dict(format="nmea", rs485=True, flow_control="rtscts"),
     [dict(name="x", sentence="RMC", field="latitude")], "drivers.s.flow_control", "RS-485"),
]


def test_bad_configs():
    d = tmpdir("ser-bad")
    for i, (keys, points, path, words) in enumerate(BAD):
        cfg = driver("s", port="/dev/ttyUSB9", device="dev", **keys)
        for p in points:
            cfg += point("s", **p)
        g = Gateway("ser-bad", cfg, directory=d)
        code, out, err = run_check(g.config)
        text = out + err
        check(code != 0, "case %d is refused: %s" % (i, text))
        check(path in text and words in text and "m2md.toml:" in text,
              "case %d names %s and says '%s': %s" % (i, path, words, text))
    # And a good one passes without touching the port.
    cfg = driver("s", port="/dev/ttyUSB9", device="dev", format="nmea")
    cfg += point("s", name="x", sentence="GGA", field="altitude")
    cfg += request("s", name="q", command="\\x02Q\\r")
    g = Gateway("ser-bad", cfg, directory=d)
    code, out, err = run_check(g.config)
    check(code == 0, "a good config passes --check: %s" % (out + err))


if __name__ == "__main__":
    main([test_hangup_and_reopen, test_port_held_by_another_process, test_silent_device_goes_stale,
          test_rs485_on_a_pty, test_flood_stays_bounded, test_hostile_line_against_a_loose_pattern,
          test_bad_configs])
