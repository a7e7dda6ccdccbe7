# SPDX-License-Identifier: MIT
"""The serial driver under valgrind in the real daemon: a polled, written
scale and an NMEA port, with garbage, a hang-up and reopen, a reload that
recreates the driver, and a stop, with no memory errors and no leaks."""

import shutil
import signal

from sertest import (GOOD, Gateway, PtyPair, check, ctl, driver, good_values, main, point,
                     qualities, request, tmpdir, wait_for)

RMC = b"$GNRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A*49\r\n"


def config(scale_port, gps_port, interval="100ms"):
    cfg = driver("scale", port=scale_port, format="regex", device="scale", max_length=64,
                 backoff_max="300ms")
    cfg += request("scale", name="w", command="W\r", interval=interval, timeout="200ms",
                   response="^W ")
    cfg += point("scale", name="w", request="w", pattern=r"^W ([0-9.]+)$")
    cfg += point("scale", name="sp", writable=True, write="S{value:.1f}\r", ack="^OK$",
                 write_timeout="500ms", pattern=r"^S=(.*)$")
    cfg += driver("gps", port=gps_port, format="nmea", device="gps", backoff_max="300ms",
                  stale="1s")
    cfg += point("gps", name="lat", sentence="RMC", field="latitude")
    cfg += point("gps", name="mode", sentence="RMC", field="mode", kind="string")
    return cfg


def answer(pty):
    """Answers what the driver asked since the last call."""
    data = pty.read(0)
    for cmd in data.split(b"\r"):
        if cmd == b"W":
            pty.write(b"W 7.5\r\n")
        elif cmd.startswith(b"S"):
            pty.write(b"OK\r\n")
    return data


def test_valgrind():
    vg = shutil.which("valgrind")
    check(vg is not None, "valgrind is installed (tools/install-deps test installs it)")
    d = tmpdir("ser-vg")
    scale, gps = PtyPair(d, "scale"), PtyPair(d, "gps")
    g = Gateway("ser-vg", config(scale.port, gps.port), directory=d)
    g.wrapper = [vg, "--quiet", "--error-exitcode=99", "--leak-check=full",
                 "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                 "--track-fds=no", "--log-file=" + g.dir + "/valgrind.log"]
    try:
        g.start()
        wait_for(lambda: answer(scale) is not None and 7.5 in good_values(g, "scale/w"), 60,
                 "a polled weight under valgrind", interval=0.1)
        gps.write(b"\x00\xffnoise" + RMC + RMC[:20] + b"\r\n" + RMC, chunk=7)
        wait_for(lambda: len(good_values(g, "gps/lat")) >= 2, 60, "positions under valgrind")
        reply = {}

        def write_acked():
            answer(scale)
            return reply.get("ok")

        import threading
        t = threading.Thread(target=lambda: reply.update(ctl(g, "write", timeout=60,
                                                              point="scale/sp", value=3)))
        t.start()
        wait_for(lambda: not t.is_alive() or write_acked(), 60, "the write", interval=0.05)
        t.join(60)
        check(reply.get("ok"), "the write was acknowledged: %r" % reply)
        gps.kill()
        wait_for(lambda: "the port" in g.log_text() and 2 in qualities(g, "gps/lat"), 60,
                 "the hang-up under valgrind")
        gps.start()
        wait_for(lambda: g.log_text().count('reading "%s"' % gps.port) >= 2, 60, "reopened")
        g.write_config(config(scale.port, gps.port, interval="150ms"))
        g.signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in g.log_text(), 60, "reload under valgrind")
        n = len(good_values(g, "scale/w"))
        wait_for(lambda: answer(scale) is not None and len(good_values(g, "scale/w")) > n, 60,
                 "polls after the reload", interval=0.1)
        code = g.stop(timeout=60)
        with open(g.dir + "/valgrind.log") as f:
            report = f.read()
        check(code == 0, "exit 0 under valgrind (99 = valgrind found errors), got %r:\n%s"
              % (code, report))
        check("definitely lost" not in report, "no definite leaks:\n" + report)
        check(GOOD in qualities(g, "gps/lat"), "good positions were stored")
    finally:
        if g.proc is not None:
            g.stop(timeout=60)
        scale.kill()
        gps.kill()


if __name__ == "__main__":
    main([test_valgrind])
