# SPDX-License-Identifier: MIT
"""The modbus driver when things go wrong: a device that stops answering
(bad quality with a reason, an offline event, the other bus unaffected,
back online after), a server that restarts (reconnect), and a unit that
goes silent on a shared RTU line (the other unit on the line unaffected)."""

import time

from mbtest import (COMM_ERROR, GOOD, TIMEOUT, Gateway, PtyPair, Server, check, device, driver,
                    events, latest, main, max_rowid, point, qualities, tmpdir, wait_for)


def two_point_device(drv, name, unit, interval="100ms"):
    return (device(drv, name=name, unit_id=unit, interval=interval)
            + point(drv, name="a", table="holding_register", address=0)
            + point(drv, name="b", table="holding_register", address=1, type="int16"))


def rate(gw, name, seconds):
    """Good readings of NAME over the next SECONDS."""
    start = max_rowid(gw)
    time.sleep(seconds)
    return sum(1 for q in qualities(gw, name, start) if q == GOOD)


def test_device_stops_answering():
    d = tmpdir("mb-stop")
    init = {"init": {"1": {"hr": {"0": [7, 65535]}}}}
    sa = Server(d, "a", config=init).start()
    sb = Server(d, "b", config=init).start()
    try:
        cfg = driver("busa", transport="tcp", host="127.0.0.1", port=sa.port, timeout="150ms",
                     retries=0, backoff_max="1s")
        cfg += two_point_device("busa", "deva", 1)
        cfg += driver("busb", transport="tcp", host="127.0.0.1", port=sb.port, timeout="150ms")
        cfg += two_point_device("busb", "devb", 1)
        gw = Gateway("mb-stop", cfg, directory=d).start()
        try:
            wait_for(lambda: latest(gw, "deva/a") == (7, GOOD) and latest(gw, "devb/b") == (-1, GOOD),
                     10, "good readings on both buses")
            baseline = rate(gw, "devb/a", 1.0)
            check(baseline >= 5, "bus b polls at its interval (%d in 1s)" % baseline)

            sa.pause()  # the device stops answering; its TCP connection stays up
            mark = max_rowid(gw)
            wait_for(lambda: TIMEOUT in qualities(gw, "deva/a", mark), 10,
                     "a timeout reading of deva")
            wait_for(lambda: any(e[0] == "offline" and e[2].startswith("timeout: no answer within 150ms")
                                 for e in events(gw, "deva")), 5, "an offline event for deva")
            check(all(q in (GOOD, TIMEOUT) for q in qualities(gw, "deva/b", mark)),
                  "deva's points go bad with quality timeout")
            during = rate(gw, "devb/a", 1.5)
            check(during >= baseline * 1.5 * 0.7,
                  "bus b unaffected: %d good readings in 1.5s (baseline %d/s)" % (during, baseline))
            check(all(q == GOOD for q in qualities(gw, "devb/a", mark)), "bus b stays good")

            sa.resume()
            mark = max_rowid(gw)
            wait_for(lambda: GOOD in qualities(gw, "deva/a", mark), 10,
                     "deva good again (backoff_max 1s)")
            wait_for(lambda: [e[0] for e in events(gw, "deva")][-1:] == ["online"], 5,
                     "an online event for deva")
            kinds = [e[0] for e in events(gw, "deva")]
            check(kinds == ["online", "offline", "online"], "events of deva: %r" % kinds)
            check([e[0] for e in events(gw, "devb")] == ["online"], "devb never went offline")
        finally:
            check(gw.stop() == 0, "m2md exits 0")
    finally:
        sa.kill()
        sb.kill()


def test_reconnect_after_restart():
    d = tmpdir("mb-restart")
    srv = Server(d, "r", config={"init": {"1": {"hr": {"0": [11, 12]}}}}).start()
    port = srv.port
    try:
        cfg = driver("plc", transport="tcp", host="127.0.0.1", port=port, timeout="200ms",
                     backoff_max="500ms")
        cfg += two_point_device("plc", "dev", 1)
        gw = Gateway("mb-restart", cfg, directory=d).start()
        try:
            wait_for(lambda: latest(gw, "dev/a") == (11, GOOD), 10, "a good reading")
            srv.kill()
            mark = max_rowid(gw)
            wait_for(lambda: COMM_ERROR in qualities(gw, "dev/a", mark), 10,
                     "a comm error reading while the server is down")
            wait_for(lambda: "offline" in [e[0] for e in events(gw, "dev")], 5, "offline event")
            time.sleep(1.0)
            srv.start(port=port)
            mark = max_rowid(gw)
            wait_for(lambda: GOOD in qualities(gw, "dev/a", mark), 10, "good again after restart")
            check(latest(gw, "dev/b")[1] in (GOOD, COMM_ERROR), "dev/b read")
            wait_for(lambda: [e[0] for e in events(gw, "dev")] == ["online", "offline", "online"],
                     5, "online, offline, online")
            # While down, the device was tried with backoff, not at every tick.
            log = gw.log_text()
            check(log.count("connecting to") == 1, "a connect failure is logged once per outage: %d"
                  % log.count("connecting to"))
        finally:
            check(gw.stop() == 0, "m2md exits 0")
    finally:
        srv.kill()


def test_rtu_multidrop():
    d = tmpdir("mb-rtu")
    pty = PtyPair(d)
    srv = Server(d, "line", units=(1, 2), rtu=pty.a, baud=19200, parity="N", config={
        "init": {"1": {"hr": {"0": [101, 102]}}, "2": {"hr": {"0": [201, 202]}}}})
    try:
        srv.start()
        cfg = driver("line", transport="rtu", device=pty.b, baud=19200, parity="none",
                     timeout="200ms", retries=0, backoff_max="1s")
        cfg += two_point_device("line", "m1", 1, interval="200ms")
        cfg += two_point_device("line", "m2", 2, interval="200ms")
        gw = Gateway("mb-rtu", cfg, directory=d).start()
        try:
            wait_for(lambda: latest(gw, "m1/a") == (101, GOOD) and latest(gw, "m2/a") == (201, GOOD),
                     15, "both slaves on one line")
            check(latest(gw, "m1/b") == (102, GOOD) and latest(gw, "m2/b") == (202, GOOD),
                  "both points of both slaves")
            units = sorted({r["unit"] for r in srv.requests()})
            check(units == [1, 2], "the server saw both unit ids: %r" % units)

            srv.mute(2)
            mark = max_rowid(gw)
            wait_for(lambda: TIMEOUT in qualities(gw, "m2/a", mark), 10, "m2 times out")
            mark = max_rowid(gw)
            time.sleep(1.0)
            q1 = qualities(gw, "m1/a", mark)
            check(len(q1) >= 3 and all(q == GOOD for q in q1),
                  "m1 on the same line stays good: %r" % q1)
            srv.mute(2, False)
            mark = max_rowid(gw)
            wait_for(lambda: GOOD in qualities(gw, "m2/a", mark), 10, "m2 back")
            kinds = [e[0] for e in events(gw, "m2")]
            check(kinds == ["online", "offline", "online"], "events of m2: %r" % kinds)
        finally:
            check(gw.stop() == 0, "m2md exits 0")
    finally:
        srv.kill()
        pty.kill()


def test_rs485_refused_by_the_line():
    """rs485 = true on a line that cannot do it (a pty has no RS-485 mode):
    a clear log line, bad readings with a reason, an offline event."""
    d = tmpdir("mb-rs485")
    pty = PtyPair(d)
    try:
        cfg = driver("line", transport="rtu", device=pty.b, baud=19200, parity="none",
                     rs485=True, timeout="100ms", retries=0, backoff_max="1s")
        cfg += two_point_device("line", "m1", 1, interval="200ms")
        gw = Gateway("mb-rs485", cfg, directory=d).start()
        try:
            wait_for(lambda: COMM_ERROR in qualities(gw, "m1/a"), 10, "a comm error reading")
            wait_for(lambda: "offline" in [e[0] for e in events(gw, "m1")], 5, "offline event")
            log = gw.log_text()
            check('enabling RS-485 mode (rs485 = true) on "rtu:%s" failed' % pty.b in log,
                  "the log names RS-485: %s" % log[-1500:])
            check(GOOD not in qualities(gw, "m1/a"), "no good reading")
        finally:
            check(gw.stop() == 0, "m2md exits 0")
    finally:
        pty.kill()


if __name__ == "__main__":
    main([test_device_stops_answering, test_reconnect_after_restart, test_rtu_multidrop,
          test_rs485_refused_by_the_line])
