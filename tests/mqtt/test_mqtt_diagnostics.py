# SPDX-License-Identifier: MIT
"""What status and the log say about the MQTT connection, against a real
mosquitto: a TLS broker whose certificate names another host is told apart
from one signed by a CA the gateway does not trust, and `outbox.queued`
is 0 once an idle outbox has drained."""

import os
import subprocess
import sys

from m2mtest import Gateway, check, main, tmpdir, wait_for
from mqttpeer import MOSQUITTO, Broker, ctl, mqtt_status
from test_mqtt import make_certs, mqtt_table, sim


def wrong_name_cert(d):
    """A server certificate from the test CA that names only another host."""
    def run(*args):
        subprocess.run(args, check=True, capture_output=True, cwd=d, timeout=60)
    with open(os.path.join(d, "ext-wrong"), "w") as f:
        f.write("subjectAltName=DNS:elsewhere.example\n")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "wrong.key", "-out", "wrong.csr", "-subj", "/CN=elsewhere.example")
    run("openssl", "x509", "-req", "-in", "wrong.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "wrong.crt", "-days", "2", "-extfile", "ext-wrong")
    return os.path.join(d, "wrong.crt"), os.path.join(d, "wrong.key")


def failing(name, drivers):
    """Starts a gateway whose connects fail; returns its status and log once two attempts failed."""
    g = Gateway(name, drivers).start()
    try:
        st = wait_for(lambda: (lambda s: s if s["connect_failures"] >= 2 else None)(mqtt_status(g)), 10,
                      "refused TLS attempts")
        check(st["connects"] == 0, "%s never connects: %r" % (name, st))
        return st["last_error"], g.run_log()
    finally:
        g.stop()


def test_tls_wrong_host_and_wrong_ca():
    d = tmpdir("mqtt-tls-names")
    c = make_certs(d)
    crt, key = wrong_name_cert(d)
    b = Broker(d, listener_extra="cafile %s\ncertfile %s\nkeyfile %s" % (c["ca.crt"], crt, key)).start()
    try:
        err, log = failing("mqtt-tls-host", sim(1, "50ms") + mqtt_table(
            b.port, 'ca_file = "%s"\n' % c["ca.crt"], "mqtts"))
        check("host name verification failed" in err and "certificate verify failed" in err,
              "a certificate for another host says so: %r" % err)
        check("host name verification failed" in log, "and the log says it")
        err, log = failing("mqtt-tls-ca", sim(1, "50ms") + mqtt_table(
            b.port, 'ca_file = "%s"\n' % c["other-ca.crt"], "mqtts"))
        check("certificate verify failed" in err and "host name" not in err,
              "an untrusted CA is not called a host name mismatch: %r" % err)
        check("cannot connect to mqtts://" in log and "host name" not in log, "nor in the log")
    finally:
        b.stop()


RULE = """
[drivers.sim]
plugin = "sim"
[[drivers.sim.points]]
name = "tank/level"
signal = "constant"
value = 0
writable = true
interval = "1s"

[[rules]]
name = "tank_high"
point = "tank/level"
condition = ">"
value = 50
on_raise = [ { mqtt = { topic = "{gateway}/alarms/{rule}", qos = 1 } } ]
on_clear = [ { mqtt = { topic = "{gateway}/alarms/{rule}/clear", qos = 1 } } ]
"""


def test_outbox_queued_when_drained():
    """Rule alarms are the only QoS 1 traffic: once the broker acknowledged
    them all and nothing new comes, the outbox is empty, and status says 0."""
    d = tmpdir("mqtt-queued")
    b = Broker(d).start()
    g = Gateway("mqtt-queued", RULE + mqtt_table(b.port, "[mqtt.telemetry]\nenabled = false\n")).start()
    try:
        wait_for(lambda: mqtt_status(g)["state"] == "connected", 10, "connected")
        for i, v in enumerate((80, 10, 80, 10, 80)):
            rep = ctl(g, {"id": i, "cmd": "write", "point": "tank/level", "value": v})
            check(rep["ok"], "write %g: %r" % (v, rep))
            wait_for(lambda: mqtt_status(g)["acked"] >= i + 1, 10, "alarm message %d acknowledged" % (i + 1))
        st = wait_for(lambda: (lambda s: s if s["outbox"]["queued"] == 0 else None)(mqtt_status(g)), 5,
                      "outbox.queued 0 once drained (last: %r)" % mqtt_status(g)["outbox"])
        check(st["acked"] == 5 and st["outbox"]["in_memory"] == 0 and st["outbox"]["inflight"] == 0,
              "drained: %r" % st)
        check(g.query("SELECT count(*) FROM outbox")[0][0] == 0, "and the table is empty")
        check(g.stop() == 0, "m2md exits 0")
    finally:
        if g.proc:
            g.kill9()
        b.stop()


if __name__ == "__main__":
    if not os.access(MOSQUITTO, os.X_OK):
        print("FAIL: mosquitto is needed (apt-get install -y mosquitto mosquitto-clients)")
        sys.exit(1)
    main([test_tls_wrong_host_and_wrong_ca, test_outbox_queued_when_drained])
