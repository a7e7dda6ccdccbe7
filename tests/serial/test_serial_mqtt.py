# SPDX-License-Identifier: MIT
"""The serial driver's readings through to a real broker: a GPS receiver on a
socat pty, m2md publishing to a private mosquitto, a paho subscriber
checking what arrives: the position (equal to pynmea2's reading of the same
sentence), the fix as a JSON boolean, the mode letter as a string, and only
sentences with a valid fix giving positions."""

import json
import os
import sys

import pynmea2

from sertest import SOURCE, Gateway, PtyPair, check, driver, main, point, tmpdir, wait_for

sys.path.insert(0, os.path.join(SOURCE, "tests", "mqtt"))

from mqttpeer import Broker, Subscriber  # noqa: E402

RMC = "$GNRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A*49\r\n"
RMC_V = "$GNRMC,083600.00,V,4717.11500,N,00833.91600,E,0.010,77.50,091202,,,N*5F\r\n"


def test_gps_to_mqtt():
    d = tmpdir("ser-mqtt")
    b = Broker(d).start()
    sub = Subscriber(b.port, ["#"])
    pty = PtyPair(d)
    cfg = driver("gps", port=pty.port, format="nmea", device="gps")
    cfg += point("gps", name="lat", sentence="RMC", field="latitude", unit="deg")
    cfg += point("gps", name="fix", sentence="RMC", field="status", kind="bool", on="A")
    cfg += point("gps", name="mode", sentence="RMC", field="mode", kind="string")
    cfg += '[mqtt]\nurl = "mqtt://127.0.0.1:%d"\nreconnect_min = "50ms"\n' % b.port
    gw = Gateway("ser-mqtt", cfg, directory=d).start()
    try:
        wait_for(lambda: 'reading "%s"' % pty.port in gw.run_log(), 10, "the port opened")

        def data(suffix):
            return [json.loads(p) for t, p, _, _ in sub.take() if t.endswith(suffix)]

        pty.write((RMC_V + RMC).encode(), chunk=5)
        sub.wait(lambda m: data("/gps/mode") and data("/gps/lat"), 10, "the readings")
        lat = data("/gps/lat")
        want = pynmea2.parse(RMC.strip()).latitude
        check(len(lat) == 1 and abs(lat[0]["value"] - want) < 1e-9 and lat[0]["unit"] == "deg",
              "one position, from the valid sentence, as pynmea2 reads it: %r (%r)" % (lat, want))
        fix = [p["value"] for p in data("/gps/fix")]
        check(fix == [False, True], "the fix as booleans: %r" % fix)
        mode = [p["value"] for p in data("/gps/mode")]
        check(mode == ["N", "A"], "the mode letters as strings: %r" % mode)
    finally:
        check(gw.stop() == 0, "m2md exits 0")
        sub.close()
        b.stop()
        pty.kill()


if __name__ == "__main__":
    main([test_gps_to_mqtt])
