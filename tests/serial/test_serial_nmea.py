# SPDX-License-Identifier: MIT
"""The serial driver reading GPS receivers and marine instruments: the real
m2md on one end of a socat pty pair, the test writing the device's end.

The capture mixes what real receivers send (u-blox GN talkers, a SiRF that
ends lines with \\r\\r\\n, a receiver without a fix sending empty fields,
3-digit longitudes, a 100-byte sentence beyond the standard's 82) with what
a line does to them (bad, missing and lower-case checksums, a 120-byte
sentence, binary garbage between sentences, a half sentence cut by a pause).
It is written byte by byte, then in bursts of odd sizes. Every value m2md
stores must equal what pynmea2 (python3-nmea2, an independent parser) reads
from the same bytes, in the same order, with the driver's rules applied on
the oracle's side: a bad or missing checksum drops the sentence, an empty
field gives no reading, a position needs a valid fix."""

import datetime
import functools
import math
import time

import pynmea2

from sertest import (Gateway, PtyPair, check, driver, good_values, main, max_rowid, point,
                     readings, stats, tmpdir, wait_for)


def cs(body):
    return "%02X" % functools.reduce(lambda a, c: a ^ ord(c), body, 0)


def sentence(body, ending="\r\n", checksum="good"):
    if checksum == "good":
        return "$%s*%s%s" % (body, cs(body), ending)
    if checksum == "lower":
        return "$%s*%s%s" % (body, cs(body).lower(), ending)
    if checksum == "bad":
        return "$%s*%02X%s" % (body, int(cs(body), 16) ^ 0x5A, ending)
    return "$%s%s" % (body, ending)


def capture():
    """(bytes, [(sentence text or None, accepted)]) of a realistic stream."""
    parts = []

    def add(body, ending="\r\n", checksum="good"):
        parts.append((sentence(body, ending, checksum).encode(), body, checksum))

    def raw(data):
        parts.append((data, None, None))

    # A u-blox M8 with a fix (GN talker, mode D).
    add("GNRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A")
    add("GNGGA,083559.00,4717.11399,N,00833.91590,E,1,08,1.01,499.6,M,48.0,M,,")
    add("GNGSA,A,3,10,12,25,32,,,,,,,,,1.45,0.83,1.19,1")
    # A SiRF receiver: \r\r\n endings, 3-digit western longitude.
    add("GPRMC,225446,A,4916.45,N,12311.12,W,000.5,054.7,191194,020.3,E", "\r\r\n")
    add("GPGGA,225446,4916.45,N,12311.12,W,2,11,0.8,38.2,M,-17.1,M,3.2,0120", "\r\r\n")
    raw(b"\x00\xff\xb5\x62\x01\x07\x5c\x00garbage\xfe")
    # No fix: empty fields, status V, quality 0.
    add("GPRMC,,V,,,,,,,,,,N")
    add("GPGGA,,,,,,0,00,99.99,,,,,,")
    # Status V but a stale position: gated.
    add("GNRMC,083600.00,V,4717.11500,N,00833.91600,E,0.010,77.50,091202,,,N")
    # Lower-case checksum: accepted. Bad and missing: refused.
    add("GNRMC,083601.00,A,4717.11500,S,00833.91600,W,1.250,180.00,091202,,,A", checksum="lower")
    add("GNRMC,083602.00,A,1111.11111,N,02222.22222,E,9.999,1.00,091202,,,A", checksum="bad")
    add("GNRMC,083603.00,A,3333.33333,N,04444.44444,E,8.888,2.00,091202,,,A", checksum="none")
    # A half sentence, then a new one before its end: both in one line, and
    # the second is read (a '$' never occurs inside a sentence).
    raw(b"$GNGGA,083604.00,4717.1")
    add("GNGGA,083605.00,4717.11600,N,00833.91700,E,1,09,0.95,501.0,M,48.0,M,,")
    # 100 bytes from '$' to the checksum: accepted (longer than the standard's 82).
    add("GNGGA,083606.000000,4717.1160000000,N,00833.9170000000,E,1,12,0.90,502.000000,M,48.000000,M,,")
    # 120 bytes: refused.
    add("GNGGA,083607.000000,4717.1160000000000000,N,00833.9170000000000000,E,1,12,0.90,"
        "503.00000000000,M,48.000000,M,,")
    # Marine instruments: heading, air temperature in XDR, depth.
    add("HEHDT,274.07,T")
    add("IIXDR,C,19.52,C,TempAir,P,1.02481,B,Barometer,H,62.1,P,Humidity")
    add("SDDBT,36.9,f,11.2,M,6.1,F")
    add("GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00")
    add("IIXDR,C,,C,TempAir,P,1.01000,B,Barometer")
    raw(b"\r\n\r\n\x1b[2J")
    add("HEHDT,001.50,T", "\n")
    data = b"".join(p[0] for p in parts)
    return data, [(p[1], p[2]) for p in parts if p[1] is not None]


POINTS = [
    # name, sentence, address keys
    ("lat", "RMC", dict(field="latitude")),
    ("lon", "RMC", dict(field="longitude")),
    ("speed", "RMC", dict(field="speed_knots")),
    ("course", "RMC", dict(field="course")),
    ("alt", "GGA", dict(field="altitude")),
    ("fix", "GGA", dict(field="fix_quality")),
    ("sats", "GGA", dict(field="satellites")),
    ("hdop", "GGA", dict(field="hdop")),
    ("pdop", "GNGSA", dict(field="pdop")),
    ("heading", "HDT", dict(field="heading")),
    ("air", "XDR", dict(xdr="TempAir")),
    ("pressure", "XDR", dict(xdr="Barometer")),
    ("depth", "DBT", dict(field="depth_meters")),
    ("depth_ft", "DBT", dict(index=0)),
]


def oracle(accepted):
    """What each point must hold, from pynmea2's reading of the sentences
    the driver accepts (checksum present and right, at most 102 bytes)."""
    want = {name: [] for name, _, _ in POINTS}
    for body, checksum in accepted:
        if checksum in ("bad", "none") or len(body) + 4 > 102:
            continue
        msg = pynmea2.parse("$%s*%s" % (body, cs(body)), check=True)
        t = msg.sentence_type
        valid = (t == "RMC" and msg.status == "A") or (t == "GGA" and int(msg.gps_qual or 0) > 0)

        def put(name, value, gated=False):
            if value in (None, "") or (gated and not valid):
                return
            want[name].append(float(value))

        if t == "RMC":
            if msg.lat:
                put("lat", msg.latitude, True)
                put("lon", msg.longitude, True)
            put("speed", msg.spd_over_grnd, True)
            put("course", msg.true_course, True)
        elif t == "GGA":
            if msg.altitude is not None:
                put("alt", msg.altitude, True)
            put("fix", msg.gps_qual)
            put("sats", msg.num_sats)
            put("hdop", msg.horizontal_dil)
        elif t == "GSA" and msg.talker == "GN":
            put("pdop", msg.pdop)
        elif t == "HDT":
            put("heading", msg.heading)
        elif t == "XDR":
            for i in range(0, len(msg.data) - 3, 4):
                kind, value, unit, nm = msg.data[i:i + 4]
                if nm == "TempAir":
                    put("air", value or None)
                if nm == "Barometer":
                    put("pressure", value or None)
        elif t == "DBT":
            put("depth", msg.depth_meters)
            put("depth_ft", msg.depth_feet)
    return want


def gps_config(port, **extra):
    cfg = driver("gps", port=port, format="nmea", device="gps", backoff_max="500ms", **extra)
    for name, sent, keys in POINTS:
        cfg += point("gps", name=name, sentence=sent, **keys)
    cfg += point("gps", name="status", sentence="RMC", field="status", kind="string")
    cfg += point("gps", name="fixed", sentence="RMC", field="status", kind="bool", on="A", off="V")
    return cfg


def compare(gw, want, since, what):
    for name, values in want.items():
        got = good_values(gw, "gps/" + name, since)
        check(len(got) == len(values) and all(math.isclose(a, b, rel_tol=0, abs_tol=1e-9)
                                              for a, b in zip(got, values)),
              "%s: gps/%s is %r, pynmea2 reads %r" % (what, name, got, values))


def test_receivers_byte_by_byte_and_in_bursts():
    d = tmpdir("ser-nmea")
    pty = PtyPair(d)
    gw = Gateway("ser-nmea", gps_config(pty.port), directory=d).start()
    try:
        data, accepted = capture()
        want = oracle(accepted)
        check(len(want["lat"]) == 3 and len(want["heading"]) == 2,
              "the oracle sees the capture as written: %r" % want)
        wait_for(lambda: "reading \"%s\"" % pty.port in gw.run_log(), 10, "the port opened")
        for what, chunk, pause in (("byte by byte", 1, 0.0005), ("in bursts", 37, 0.003),
                                   ("at once", None, 0)):
            since = max_rowid(gw)
            pty.write(data, chunk, pause)
            wait_for(lambda: len(good_values(gw, "gps/heading", since)) == 2, 20,
                     "the last sentence (%s)" % what)
            compare(gw, want, since, what)
            texts = gw.query("SELECT count(*) FROM readings r JOIN points p ON p.id = r.point "
                             "WHERE p.name = 'gps/status'")[0][0]
            check(texts >= 1, "the status text is stored")
            fixed = [r[0] for r in readings(gw, "gps/fixed", since)]
            check(fixed == [1, 1, 0, 0, 1], "RMC status as a bool by match: %r" % fixed)
        st = stats(gw, "gps")
        check(st["checksum_errors"] == 3 * 2, "a bad and a missing checksum per pass: %r" % st)
        check(st["invalid_frames"] == 3 * 2, "the 120-byte sentence and the cut one: %r" % st)
        check(st["frames"] >= 3 * len(accepted), "frames counted: %r" % st)
        check(st["unused_frames"] == 3, "the GSV no point takes is counted: %r" % st)
        check(st["garbage_bytes"] == 3 * (16 + 4 + 23),
              "noise and the cut head before sentences are garbage: %r" % st)
        status = gw.query("SELECT r.value FROM readings r JOIN points p ON p.id = r.point "
                          "WHERE p.name = 'gps/status' ORDER BY r.rowid DESC LIMIT 1")[0][0]
        check(status == "A", "the text point holds the last status: %r" % status)
    finally:
        check(gw.stop() == 0, "m2md exits 0")
        pty.kill()


def test_sentence_timestamp():
    d = tmpdir("ser-nmea-ts")
    pty = PtyPair(d)
    cfg = driver("gps", port=pty.port, format="nmea", device="gps", timestamp="sentence")
    cfg += point("gps", name="lat", sentence="RMC", field="latitude")
    cfg += point("gps", name="alt", sentence="GGA", field="altitude")
    cfg += point("gps", name="sats", sentence="GGA", field="satellites")
    gw = Gateway("ser-nmea-ts", cfg, directory=d).start()
    try:
        wait_for(lambda: "reading \"%s\"" % pty.port in gw.run_log(), 10, "the port opened")
        rmc = "GNRMC,235959.50,A,4717.11437,N,00833.91522,E,0.004,77.52,311225,,,A"
        pty.write(sentence(rmc).encode())
        wait_for(lambda: readings(gw, "gps/lat"), 10, "the RMC reading")
        ts = readings(gw, "gps/lat")[0][2]
        msg = pynmea2.parse(sentence(rmc).strip())
        expect = int(msg.datetime.replace(tzinfo=datetime.timezone.utc).timestamp() * 1e6)
        check(ts == expect, "the reading carries the sentence's time: %d, pynmea2 %d" % (ts, expect))
        # Without a fix the receiver's clock is its power-on default: the arrival time is kept.
        before = time.time()
        pty.write(sentence("GNGGA,000013.00,,,,,0,03,99.99,,,,,,").encode())
        wait_for(lambda: readings(gw, "gps/sats"), 10, "the GGA reading")
        ts = readings(gw, "gps/sats")[0][2]
        check(abs(ts / 1e6 - before) < 60, "an invalid sentence keeps the arrival time: %d" % ts)
    finally:
        check(gw.stop() == 0, "m2md exits 0")
        pty.kill()


if __name__ == "__main__":
    main([test_receivers_byte_by_byte_and_in_bursts, test_sentence_timestamp])
