# SPDX-License-Identifier: MIT
"""The serial driver with text protocols, against devices the test plays on
the far end of a socat pty pair:

 - a weighing scale polled with two commands in turn ("W\\r" for the weight,
   "T\\r" for the tare), answering after a delay, with unsolicited event
   lines in between, a setpoint written with a command template and
   acknowledged ("OK") or refused ("ERR"), and a mute spell (timeouts,
   retries, the device offline and back);
 - a sensor that sends semicolon-separated values with decimal commas;
 - a meter with fixed columns."""

import threading
import time

from sertest import (DECODE_ERROR, GOOD, SLOW, TIMEOUT, Device, Gateway, PtyPair, check, ctl,
                     driver, events, good_values, main, max_rowid, point, qualities, readings,
                     request, stats, tmpdir, wait_for)


class Scale(Device):
    """The scale: answers each command after DELAY s, one at a time, and
    records whether a command came while it was still answering one."""

    def __init__(self, pty, delay=0.03):
        super().__init__(pty)
        self.delay = delay
        self.weight, self.stable, self.tare, self.setpoint = 12.34, True, 0.5, None
        self.mute = False
        self.refuse = False
        self.commands = []
        self.overlaps = 0
        self.lock = threading.Lock()

    def handle(self, cmd):
        with self.lock:
            self.commands.append((time.monotonic(), cmd))
        self.answer(cmd)

    def answer(self, cmd):
        if self.mute:
            return
        time.sleep(self.delay)
        # Anything that arrived while the scale was busy is a second request in flight.
        late = self.pty.read(0)
        if late:
            self.overlaps += 1
        if cmd == "W":
            line = "%s,GS,%+09.2fkg" % ("ST" if self.stable else "US", self.weight)
        elif cmd == "T":
            line = "TARE %.2f" % self.tare
        elif cmd.startswith("SP"):
            if self.refuse:
                line = "ERR 3"
            else:
                self.setpoint = cmd[2:]
                line = "OK"
        else:
            line = "?"
        self.pty.write(line.encode() + b"\r\n")

    def sent(self, prefix):
        with self.lock:
            return [c for _, c in self.commands if c.startswith(prefix)]


def ms(n):
    """N milliseconds as a config duration, longer on a slow machine (M2M_TEST_SLOW)."""
    return "%dms" % int(n * SLOW)


PATTERN = r"^(?<state>ST|US),GS,(?<w>[-+ ]?[0-9.]+)kg$"


def scale_config(port):
    cfg = driver("scale", port=port, format="regex", device="scale", max_length=64,
                 backoff_max="500ms")
    cfg += request("scale", name="weight", command="W\\r", interval="200ms", timeout=ms(150),
                   retries=1, response="^(ST|US),")
    cfg += request("scale", name="tare", command="T\r", interval="300ms", timeout=ms(150),
                   retries=0, response="^TARE ")
    cfg += point("scale", name="weight", unit="kg", request="weight", pattern=PATTERN, group="w")
    cfg += point("scale", name="stable", kind="bool", request="weight", pattern=PATTERN,
                 group="state", on="ST", off="US")
    cfg += point("scale", name="tare", request="tare", pattern=r"^TARE ([0-9.]+)$")
    cfg += point("scale", name="door", kind="string", pattern=r"^EVT,door,(\w+)$")
    cfg += point("scale", name="setpoint", writable=True, min=0, max=100,
                 write="SP{value:.1f}\r", ack="^OK$", nak="^ERR", write_timeout=ms(300),
                 pattern=r"^SP=(.*)$")
    return cfg


def text_value(gw, name):
    rows = gw.query("SELECT r.value, r.quality FROM readings r JOIN points p ON p.id = r.point "
                    "WHERE p.name = ? ORDER BY r.rowid DESC LIMIT 1", (name,))
    return rows[0] if rows else None


def test_scale_polled_and_written():
    d = tmpdir("ser-scale")
    pty = PtyPair(d)
    scale = Scale(pty)
    scale.start()
    gw = Gateway("ser-scale", scale_config(pty.port), directory=d).start()
    try:
        wait_for(lambda: 12.34 in good_values(gw, "scale/weight"), 10, "the polled weight")
        wait_for(lambda: 0.5 in good_values(gw, "scale/tare"), 10, "the tare, the second request")
        check(good_values(gw, "scale/stable")[-1] == 1, "stable by match")
        scale.weight, scale.stable = -3.5, False
        wait_for(lambda: good_values(gw, "scale/weight")[-1:] == [-3.5], 5, "the new weight")
        wait_for(lambda: good_values(gw, "scale/stable")[-1:] == [0], 5, "unstable")

        # Unsolicited lines between the answers are parsed too.
        pty.write(b"EVT,door,open\r\n")
        wait_for(lambda: text_value(gw, "scale/door") == ("open", GOOD), 5, "the door event")

        # Writes: acknowledged, refused by the device, refused by the limits.
        before = len(scale.sent("SP"))
        r = ctl(gw, "write", point="scale/setpoint", value=42.25)
        check(r.get("ok"), "write acknowledged: %r" % r)
        check(scale.sent("SP")[before:] == ["SP42.2"] or scale.sent("SP")[before:] == ["SP42.3"],
              "the command as the template renders it: %r" % scale.sent("SP")[before:])
        scale.refuse = True
        r = ctl(gw, "write", point="scale/setpoint", value=7)
        check(not r.get("ok") and "refused" in r.get("error", ""),
              "a NAK fails the write: %r" % r)
        scale.refuse = False
        sent = len(scale.sent("SP"))
        r = ctl(gw, "write", point="scale/setpoint", value=150)
        check(not r.get("ok"), "above max is refused: %r" % r)
        r = ctl(gw, "write", point="scale/weight", value=1)
        check(not r.get("ok"), "a point that is not writable is refused: %r" % r)
        time.sleep(0.3 * SLOW)
        check(len(scale.sent("SP")) == sent, "refused writes send nothing: %r" % scale.sent("SP"))

        # Mute: timeouts after a retry, the device offline, then back.
        mark = max_rowid(gw)
        w_before = len(scale.sent("W"))
        scale.mute = True
        wait_for(lambda: TIMEOUT in qualities(gw, "scale/weight", mark), 5, "a timeout reading")
        wait_for(lambda: TIMEOUT in qualities(gw, "scale/tare", mark), 5, "the tare times out too")
        r = ctl(gw, "write", point="scale/setpoint", value=10)
        check(not r.get("ok") and "acknowledgement" in r.get("error", ""),
              "an unacknowledged write times out: %r" % r)
        wait_for(lambda: any(e[0] == "offline" and "timeout: no answer to request" in (e[2] or "")
                             for e in events(gw, "scale")), 5, "an offline event")
        logged = 'no answer to request "weight" within %s (2 attempts)' % ms(150)
        wait_for(lambda: logged in gw.run_log(), 5, "the weight request's timeout, with its retry")
        st = stats(gw, "scale")
        check(st["timeouts"] >= 2, "timeouts counted: %r" % st)
        scale.mute = False
        mark = max_rowid(gw)
        wait_for(lambda: GOOD in qualities(gw, "scale/weight", mark), 5, "good again")
        wait_for(lambda: [e[0] for e in events(gw, "scale")][-1:] == ["online"], 5,
                 "the scale online again")
        sent_w = scale.sent("W")[w_before:]
        check(len(sent_w) >= 2, "the weight request was sent again while mute: %r" % sent_w)
        check(scale.overlaps == 0, "one request in flight at a time (%d overlaps)" % scale.overlaps)
        # Both requests ran in turn throughout.
        cmds = [c for _, c in scale.commands]
        check(cmds.count("T") >= 3 and cmds.count("W") >= 5, "both requests polled: %r" % cmds)
        bad = [q for q in qualities(gw, "scale/weight") if q not in (GOOD, TIMEOUT)]
        check(not bad, "the weight is good or timeout, nothing else: %r" % bad)
    finally:
        check(gw.stop() == 0, "m2md exits 0")
        scale.stop()
        pty.kill()


def test_delimited_sensor():
    d = tmpdir("ser-csv")
    pty = PtyPair(d)
    cfg = driver("env", port=pty.port, format="delimited", separator=";", decimal=",",
                 device="env", max_length=80, baud=115200, parity="even", stop_bits=2,
                 data_bits=7, flow_control="xonxoff")
    cfg += point("env", name="temp", field=0, unit="°C")
    cfg += point("env", name="hum", field=1)
    cfg += point("env", name="state", field=2, kind="string")
    cfg += point("env", name="alarm", field=3, kind="bool", on="ALARM")
    gw = Gateway("ser-csv", cfg, directory=d).start()
    try:
        wait_for(lambda: "reading \"%s\"" % pty.port in gw.run_log(), 10, "the port opened")
        pty.write(b"23,5;45,1;\"ok; fine\";-\r\n")
        pty.write(b"-1,25 ; 50 ;warm;ALARM\r\n", chunk=3, pause=0.002)
        pty.write(b"x;51;;alarm\r\n")
        pty.write(b"1;2;\"open quote\r\n")
        pty.write(b"7;;done;-\n")
        wait_for(lambda: text_value(gw, "env/state") == ("done", GOOD), 10, "the last line")
        check(good_values(gw, "env/temp") == [23.5, -1.25, 7], "temperatures: %r"
              % readings(gw, "env/temp"))
        check(qualities(gw, "env/temp").count(DECODE_ERROR) == 1, "'x' is a decode error")
        check(good_values(gw, "env/hum") == [45.1, 50, 51], "humidity: %r" % readings(gw, "env/hum"))
        check(good_values(gw, "env/alarm") == [0, 1, 1, 0], "alarm by match, case ignored: %r"
              % readings(gw, "env/alarm"))
        texts = [r[0] for r in readings(gw, "env/state")]
        check(texts == ["ok; fine", "warm", "done"], "texts, a quoted separator kept: %r" % texts)
        st = stats(gw, "env")
        check(st["invalid_frames"] == 1, "the open quote is an invalid frame: %r" % st)
    finally:
        check(gw.stop() == 0, "m2md exits 0")
        pty.kill()


def test_fixed_columns_and_start_end_framing():
    d = tmpdir("ser-fixed")
    pty = PtyPair(d)
    # A meter's telegram: STX, fixed columns, ETX.
    cfg = driver("meter", port=pty.port, format="fixed", device="meter", framing="start_end",
                 start="\\x02", end="\\x03", max_length=32)
    cfg += point("meter", name="energy", start=0, width=8)
    cfg += point("meter", name="power", start=8, width=6)
    cfg += point("meter", name="id", start=14, width=4, kind="string")
    gw = Gateway("ser-fixed", cfg, directory=d).start()
    try:
        wait_for(lambda: "reading \"%s\"" % pty.port in gw.run_log(), 10, "the port opened")
        pty.write(b"noise\x02 1234.50 -12.5M001\x03\x02" + b"9" * 40 + b"\x03junk")
        pty.write(b"\x02    0.25   7.0M002\x03", chunk=1, pause=0.001)
        wait_for(lambda: text_value(gw, "meter/id") == ("M002", GOOD), 10, "the second telegram")
        check(good_values(gw, "meter/energy") == [1234.5, 0.25], "energy: %r"
              % readings(gw, "meter/energy"))
        check(good_values(gw, "meter/power") == [-12.5, 7.0], "power: %r"
              % readings(gw, "meter/power"))
        st = stats(gw, "meter")
        check(st["overlong_frames"] == 1 and st["garbage_bytes"] >= 9,
              "the 40-byte telegram is overlong, the noise garbage: %r" % st)
    finally:
        check(gw.stop() == 0, "m2md exits 0")
        pty.kill()


class MultiDrop(Device):
    """Two devices on one RS-485 line, addressed "#01R\\r" and "#02R\\r";
    a muted one does not answer."""

    def __init__(self, pty):
        super().__init__(pty)
        self.values = {"01": "12.5", "02": "7.25"}
        self.muted = set()

    def handle(self, cmd):
        addr = cmd[1:3]
        if cmd.startswith("#") and addr in self.values and addr not in self.muted:
            self.pty.write((">%s %s\r\n" % (addr, self.values[addr])).encode())


def test_multidrop_line():
    d = tmpdir("ser-485bus")
    pty = PtyPair(d)
    line = MultiDrop(pty)
    line.start()
    cfg = driver("bus", port=pty.port, format="regex", max_length=32)
    for addr in ("01", "02"):
        cfg += request("bus", name="r" + addr, device="m" + addr, command="#%sR\\r" % addr,
                       interval="150ms", timeout=ms(100), retries=0, response="^>%s " % addr)
        cfg += point("bus", name="m%s/v" % addr, request="r" + addr,
                     pattern=r"^>%s ([0-9.]+)$" % addr)
    gw = Gateway("ser-485bus", cfg, directory=d).start()
    try:
        wait_for(lambda: 12.5 in good_values(gw, "m01/v") and 7.25 in good_values(gw, "m02/v"),
                 10, "both devices polled")
        line.muted.add("02")
        mark = max_rowid(gw)
        wait_for(lambda: TIMEOUT in qualities(gw, "m02/v", mark), 5, "device 02 times out")
        wait_for(lambda: any(e[0] == "offline" for e in events(gw, "m02")), 5, "m02 offline")
        line.values["01"] = "13"
        wait_for(lambda: 13 in good_values(gw, "m01/v", mark), 5, "device 01 still polled")
        check(all(q == GOOD for q in qualities(gw, "m01/v", mark)), "device 01 stays good")
        check([e[0] for e in events(gw, "m01")] == ["online"], "m01 never went offline: %r"
              % events(gw, "m01"))
        line.muted.clear()
        wait_for(lambda: [e[0] for e in events(gw, "m02")][-1:] == ["online"], 5, "m02 back")
    finally:
        check(gw.stop() == 0, "m2md exits 0")
        line.stop()
        pty.kill()


def test_idle_framing():
    d = tmpdir("ser-idle")
    pty = PtyPair(d)
    cfg = driver("bin", port=pty.port, format="regex", device="bin", framing="idle",
                 idle=ms(200), max_length=16, pattern=r"^R([0-9]+)$")
    cfg += point("bin", name="r")
    gw = Gateway("ser-idle", cfg, directory=d).start()
    try:
        wait_for(lambda: "reading \"%s\"" % pty.port in gw.run_log(), 10, "the port opened")
        pty.write(b"R1")
        pty.write(b"23")
        wait_for(lambda: good_values(gw, "bin/r") == [123], 5, "one frame of two writes")
        pty.write(b"R4")
        wait_for(lambda: good_values(gw, "bin/r") == [123, 4], 5, "a pause ends a frame")
        time.sleep(0.6 * SLOW)
        pty.write(b"5")
        wait_for(lambda: stats(gw, "bin")["unused_frames"] == 1, 5, "the lone '5' is a frame")
        pty.write(b"R" + b"9" * 30)
        wait_for(lambda: stats(gw, "bin")["overlong_frames"] == 1, 5, "an overlong frame")
        time.sleep(0.6 * SLOW)
        pty.write(b"R6")
        wait_for(lambda: good_values(gw, "bin/r")[-1:] == [6], 5, "in step again after it")
    finally:
        check(gw.stop() == 0, "m2md exits 0")
        pty.kill()


if __name__ == "__main__":
    main([test_scale_polled_and_written, test_delimited_sensor,
          test_fixed_columns_and_start_end_framing, test_multidrop_line, test_idle_framing])
