# SPDX-License-Identifier: MIT
"""The MQTT north side against a real mosquitto: topics and payloads, birth
and will, the durable outbox across broker and gateway crashes, TLS, the
command topic, and what bad brokers and bad input get."""

import json
import os
import random
import resource
import signal
import subprocess
import time

from m2mtest import SLOW, Gateway, check, main, tmpdir, wait_for
from mqttpeer import Broker, Subscriber, ctl, free_port, mqtt_status, persistent_broker, publish, seqs

GW = "gw-test"
TELEMETRY = ["m2m/%s/+/+" % GW]


def sim(points, interval="10ms", device="line"):
    """POINTS ramp points at INTERVAL: 1000 readings/s for 10 points at 10ms."""
    text = '[drivers.sim]\nplugin = "sim"\n'
    for i in range(points):
        text += ('[[drivers.sim.points]]\nname = "%s/p%d"\nsignal = "ramp"\ninterval = "%s"\nunit = "kW"\n'
                 % (device, i, interval))
    return text


def mqtt_table(port, extra="", scheme="mqtt", host="127.0.0.1"):
    return ('[mqtt]\nurl = "%s://%s:%d"\nreconnect_min = "50ms"\nreconnect_max = "500ms"\n'
            'keepalive = "5s"\n%s\n' % (scheme, host, port, extra))


def outbox_rows(g):
    return [(k, json.loads(bytes(p))) for k, p in g.query("SELECT seq, payload FROM outbox ORDER BY seq")]


def test_topics_and_payloads():
    d = tmpdir("mqtt-topics")
    b = Broker(d).start()
    sub = Subscriber(b.port, ["site7/#"])
    extra = ('topic_prefix = "site7"\n[mqtt.telemetry]\ntopic = "{prefix}/{gateway}/data/{device}/{point}"\n'
             'retain = true\n')
    g = Gateway("mqtt-topics", sim(2, "50ms") + '[[drivers.sim.points]]\nname = "line/on"\nsignal = "square"\nbase = 0.5\namplitude = 0.5\nperiod = "200ms"\n'
                'kind = "bool"\ninterval = "50ms"\n' + mqtt_table(b.port, extra)).start()
    try:
        sub.wait(lambda m: len([x for x in m if "/data/" in x[0]]) >= 30, 10, "telemetry")
        msgs = sub.take()
        status = [json.loads(p) for t, p, _, _ in msgs if t == "site7/%s/status" % GW]
        check(status and status[0]["state"] == "online", "birth message: %r" % status[:1])
        check(status[0]["drivers"] == ["sim"] and status[0]["version"], "birth carries drivers and version")
        data = [(t, json.loads(p)) for t, p, _, _ in msgs if "/data/" in t]
        topics = {t for t, _ in data}
        check(topics == {"site7/%s/data/line/p0" % GW, "site7/%s/data/line/p1" % GW, "site7/%s/data/line/on" % GW},
              "topics from the template: %r" % topics)
        for t, p in data:
            check(set(p) == {"ts", "value", "unit", "quality", "seq"}, "json payload fields: %r" % p)
            check(p["quality"] == "good" and p["ts"].endswith("Z"), "quality and ts: %r" % p)
            check(p["unit"] == ("kW" if not t.endswith("/on") else ""), "unit: %r" % p)
            if t.endswith("/on"):
                check(isinstance(p["value"], bool), "a bool point publishes true/false: %r" % p)
        s = [p["seq"] for _, p in data]
        check(s == sorted(s) and len(set(s)) == len(s), "seq strictly increasing over the gateway")
        # A late subscriber gets the retained last value of each point and the retained status.
        late = Subscriber(b.port, ["site7/%s/data/line/p0" % GW, "site7/%s/status" % GW])
        late.wait(lambda m: len({x[0] for x in m if x[3]}) >= 2, 10, "retained telemetry and status")
        late.close()
        st = mqtt_status(g)
        check(st["state"] == "connected" and st["connects"] == 1, "status: %r" % st)
        # SIGKILL: the broker publishes the will.
        sub.clear()
        g.kill9()
        sub.wait(lambda m: any(t.endswith("/status") and json.loads(p)["state"] == "offline"
                               for t, p, _, _ in m), 10, "the will after SIGKILL")
    finally:
        if g.proc:
            g.kill9()
        sub.close()
        b.stop()


def test_batch_and_clean_stop():
    d = tmpdir("mqtt-batch")
    b = Broker(d).start()
    sub = Subscriber(b.port, ["m2m/#"])
    drivers = sim(3, "20ms", "dev_a").replace("[drivers.sim]\nplugin = \"sim\"\n", "[drivers.sim]\nplugin = \"sim\"\n", 1)
    drivers += sim(2, "20ms", "dev_b").split("\n", 2)[2]
    extra = '[mqtt.telemetry]\nmode = "batch"\ninterval = "200ms"\nqos = 0\n'
    g = Gateway("mqtt-batch", drivers + mqtt_table(b.port, extra)).start()
    try:
        sub.wait(lambda m: len([x for x in m if x[0].endswith("/dev_b")]) >= 4, 10, "batches")
        batches = [(t, json.loads(p)) for t, p, _, _ in sub.take() if not t.endswith("/status")]
        check({t for t, _ in batches} == {"m2m/%s/dev_a" % GW, "m2m/%s/dev_b" % GW}, "one topic per device")
        for t, p in batches:
            want = {"p0", "p1", "p2"} if t.endswith("dev_a") else {"p0", "p1"}
            check(set(p["points"]) == want, "one object per device with its points: %r" % p)
            check("seq" in p and "ts" in p, "batch carries seq and ts")
            check(all(set(v) == {"ts", "value", "unit", "quality"} for v in p["points"].values()), "point fields")
        sub.clear()
        check(g.stop() == 0, "clean exit")
        sub.wait(lambda m: any(t.endswith("/status") and json.loads(p)["state"] == "offline"
                               for t, p, _, _ in m), 10, "offline on a clean stop")
    finally:
        if g.proc:
            g.kill9()
        sub.close()
        b.stop()


def test_reload():
    """SIGHUP: new topics apply without reconnecting, a new broker gets a
    reconnect with the sequence continuing, and no [mqtt] stops the client."""
    d = tmpdir("mqtt-reload")
    b = Broker(d).start()
    sub = Subscriber(b.port, ["m2m/#"])
    # A host name: resolved off the loop, every address tried in turn.
    g = Gateway("mqtt-reload", sim(1, "50ms") + mqtt_table(b.port, host="localhost")).start()
    b2 = None
    try:
        sub.wait(lambda m: [x for x in m if x[0] == "m2m/%s/line/p0" % GW], 10, "telemetry")
        g.write_config(sim(1, "50ms") + mqtt_table(
            b.port, '[mqtt.telemetry]\ntopic = "{prefix}/{gateway}/v2/{device}/{point}"\n', host="localhost"))
        g.signal(signal.SIGHUP)
        sub.wait(lambda m: [x for x in m if x[0] == "m2m/%s/v2/line/p0" % GW], 10, "the new topic")
        check(mqtt_status(g)["connects"] == 1, "a topic change needs no reconnect")
        last = max(seqs(sub.take()))
        b2 = Broker(d).start()
        sub2 = Subscriber(b2.port, ["m2m/#"])
        g.write_config(sim(1, "50ms") + mqtt_table(b2.port))
        g.signal(signal.SIGHUP)
        got = sub2.wait(lambda m: seqs(m)[5:], 10, "telemetry at the new broker")
        check(min(got) > last, "the sequence goes on across the reconnect")
        sub.wait(lambda m: any(t.endswith("/status") and json.loads(p)["state"] == "offline"
                               for t, p, _, _ in m), 10, "the old connection's will")
        g.write_config(sim(1, "50ms"))
        g.signal(signal.SIGHUP)
        sub2.wait(lambda m: any(t.endswith("/status") and json.loads(p)["state"] == "offline"
                                for t, p, _, _ in m), 10, "offline when [mqtt] is removed")
        wait_for(lambda: "mqtt" not in ctl(g, {"id": 1, "cmd": "status"})["result"], 10,
                 "the client gone from status")
        # Back again: a new client of the same run goes on with the sequence.
        last = max(seqs(sub2.take()))
        g.write_config(sim(1, "50ms") + mqtt_table(b2.port))
        g.signal(signal.SIGHUP)
        sub2.wait(lambda m: [s for s in seqs(m) if s > last][3:], 10, "telemetry after [mqtt] came back")
        every = seqs(sub2.take())
        check(every == sorted(set(every)), "the second client went on from the first: no number twice")
        sub2.close()
        check(g.stop() == 0, "clean exit")
    finally:
        if g.proc:
            g.kill9()
        sub.close()
        b.stop()
        if b2:
            b2.stop()


def test_silent_broker():
    """A broker that stops answering: keepalive notices, attempts time out,
    and the gateway is back when the broker is."""
    d = tmpdir("mqtt-silent")
    b = Broker(d).start()
    g = Gateway("mqtt-silent", sim(1, "50ms") + mqtt_table(b.port, 'connect_timeout = "1s"\n')).start()
    try:
        wait_for(lambda: mqtt_status(g)["state"] == "connected", 10, "connected")
        os.kill(b.proc.pid, signal.SIGSTOP)
        st = wait_for(lambda: (lambda s: s if s["disconnects"] >= 1 else None)(mqtt_status(g)), 20,
                      "keepalive to notice the silent broker")
        check("keepalive" in st["last_error"].lower(), "the error names keepalive: %r" % st["last_error"])
        st = wait_for(lambda: (lambda s: s if s["connect_failures"] >= 1 else None)(mqtt_status(g)), 10,
                      "an attempt to time out")
        check("no answer within" in g.run_log(), "the timeout is logged")
        os.kill(b.proc.pid, signal.SIGCONT)
        wait_for(lambda: mqtt_status(g)["connects"] == 2, 10, "reconnected when the broker answers again")
    finally:
        if b.proc:
            os.kill(b.proc.pid, signal.SIGCONT)
        g.stop()
        b.stop()


def test_broker_refuses_messages():
    """MQTT 5: a PUBACK that refuses a message (an ACL) deletes it, counted
    and logged, instead of blocking the outbox behind it for ever.
    mosquitto 2.0.11 also drops the connection after each refusal, so the
    outbox drains one refused message per connection; the refusal, sent
    just before the close, must be read before the connection is given up
    (or the message goes again at the next connection, and again). The
    backlog is made while the broker is out of reach and the readings stop
    before the gateway is pointed at it, so its size does not depend on
    how fast the machine is."""
    d = tmpdir("mqtt-acl")
    acl = os.path.join(d, "acl")
    with open(acl, "w") as f:
        f.write("topic readwrite m2m/%s/status\ntopic readwrite m2m/%s/line/p0\n"
                "topic read m2m/#\n" % (GW, GW))
    # TCP_NODELAY on the broker's side: otherwise Nagle can hold the refusal
    # back behind the previous PUBACK, and the broker's close discards it.
    b = Broker(d, extra="acl_file %s\nset_tcp_nodelay true" % acl).start()
    sub = Subscriber(b.port, ["m2m/%s/+/+" % GW])
    g = Gateway("mqtt-acl", sim(2, "20ms") + mqtt_table(free_port(), 'protocol = "5"\n')).start()
    try:
        wait_for(lambda: g.count("line/p1") >= 30, 20, "a backlog of readings while the broker is out of reach")
        g.write_config(sim(2, "1h") + mqtt_table(b.port, 'protocol = "5"\n'))
        g.signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in g.log_text(), 20, "the reload")
        st = wait_for(lambda: (lambda s: s if s["connects"] and s["outbox"]["queued"] == 0 else None)(
            mqtt_status(g)), 60, "the outbox to empty behind the refused messages")
        check(g.query("SELECT count(*) FROM outbox")[0][0] == 0, "refused messages deleted from the table")
        n0, n1 = g.count("line/p0"), g.count("line/p1")
        check(n1 >= 30, "readings of the refused point: %d" % n1)
        check(st["rejected"] == n1, "each refused message counted once: %d refused, %d readings of p1"
              % (st["rejected"], n1))
        check(st["connects"] <= st["rejected"] + 1,
              "each connection the broker closed taught its refusal: %d connections for %d refusals"
              % (st["connects"], st["rejected"]))
        got = sub.wait(lambda m: (lambda s: s if len(s) >= n0 else None)(
            {json.loads(p)["seq"] for t, p, _, _ in m if t.endswith("/p0")}), 20, "every reading of p0")
        check(len(got) == n0, "nothing else lost: %d of %d readings of p0 arrived" % (len(got), n0))
        check(not [x for x in sub.take() if x[0].endswith("/p1")], "the refused point never arrives")
        check("broker refused message" in g.run_log(), "logged")
    finally:
        g.stop()
        sub.close()
        b.stop()


def test_full_disk():
    """A full disk: nothing is published that is not stored, so telemetry
    pauses; when there is room again it resumes with nothing missing."""
    d = tmpdir("mqtt-disk")
    b = Broker(d).start()
    sub = Subscriber(b.port, ["m2m/%s/+/+" % GW])
    g = Gateway("mqtt-disk", sim(10, "10ms") + mqtt_table(b.port))
    g.start()
    wait_for(lambda: g.count() > 100, 10, "rows")
    check(g.stop() == 0, "clean stop")
    limit = os.path.getsize(g.db) + 256 * 1024

    def cap():
        # Only the soft limit: the test lifts it again on the running process.
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    def storage():
        return ctl(g, {"id": 1, "cmd": "status"})["result"]["storage"]

    sub.clear()
    g.start(preexec_fn=cap)
    try:
        wait_for(lambda: storage()["failing"], 30, "commits failing on the full disk")
        time.sleep(0.5)
        before = len(seqs(sub.take()))
        time.sleep(1.5)
        check(len(seqs(sub.take())) == before and storage()["failing"],
              "nothing published while nothing can be stored")
        resource.prlimit(g.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        wait_for(lambda: not storage()["failing"], 30, "storage recovering")
        got = sub.wait(lambda m: (lambda s: s if len(s) > before + 2000 else None)(seqs(m)), 20,
                       "telemetry resuming")
        missing = set(range(min(got), max(got) + 1)) - set(got)
        check(not missing, "nothing lost across the full disk: %r" % sorted(missing)[:10])
        check(g.stop() == 0, "clean stop")
    finally:
        if g.proc:
            g.kill9()
        sub.close()
        b.stop()


def test_broker_restarts_lose_nothing():
    d = tmpdir("mqtt-restarts")
    b, sub = persistent_broker(d, TELEMETRY)
    g = Gateway("mqtt-restarts", sim(10, "10ms") + mqtt_table(b.port)).start()
    try:
        sub.wait(lambda m: len(m) > 500, 15, "telemetry flowing")
        for i in range(20):
            time.sleep(0.4 + random.random() * 0.4)
            # mosquitto sends the PUBACK before it writes the message to its
            # subscribers, so a SIGKILL in between loses a message the broker
            # accepted: that loss is the broker's, not the gateway's. So the
            # gateway is held still until the broker has finished what it
            # accepted, then the broker is frozen and the gateway goes on
            # sending into it: at the SIGKILL the gateway has messages in
            # flight that were never acknowledged, and must send them again.
            g.signal(signal.SIGSTOP)
            time.sleep(0.05)
            b.proc.send_signal(signal.SIGSTOP)
            g.signal(signal.SIGCONT)
            time.sleep(0.15)
            b.kill9()
            time.sleep(0.2 + random.random() * 0.6)
            before = len(sub.take())
            b.start()
            sub.wait(lambda m: len(m) > before + 200, 20, "delivery after restart %d" % (i + 1))
        time.sleep(1)
        st = mqtt_status(g)
        check(g.stop() == 0, "clean exit")
        seq_next = g.query("SELECT value FROM meta WHERE key = 'mqtt_seq_next'")[0][0]
        left = {p["seq"] for _, p in outbox_rows(g)}
        want = set(range(1, seq_next)) - left
        deadline = time.monotonic() + 20 * SLOW
        while True:
            got = seqs(sub.take())
            missing = want - set(got)
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        dups = len(got) - len(set(got))
        print("broker killed 20 times: %d messages, %d duplicates at the subscriber, %d missing, "
              "%d resent by m2md, %d left in the outbox, %d reconnects"
              % (len(want), dups, len(missing), st["resent"], len(left), st["connects"] - 1), flush=True)
        check(not missing, "no sequence number missing: %r" % sorted(missing)[:20])
        check(st["connects"] >= 21, "reconnected after every restart: %r" % st)
        check(st["resent"] > 0, "messages in flight at the kills were sent again")
        check(st["outbox"]["dropped"] == 0, "nothing dropped")
    finally:
        if g.proc:
            g.kill9()
        sub.close()
        b.kill9()


def test_gateway_killed_during_outage():
    d = tmpdir("mqtt-outage")
    b, sub = persistent_broker(d, TELEMETRY)
    g = Gateway("mqtt-outage", sim(10, "10ms") + mqtt_table(b.port)).start()
    try:
        sub.wait(lambda m: len(m) > 200, 15, "telemetry flowing")
        b.kill9()
        time.sleep(1.5)
        g.kill9()
        first = outbox_rows(g)
        committed = {p["seq"] for _, p in first}
        check(len(committed) > 500, "the outage filled the outbox: %d rows" % len(committed))
        check(all(k == p["seq"] for k, p in first), "rows are keyed by their seq")
        g.start()
        time.sleep(1)
        b.start()
        got = sub.wait(lambda m: (lambda s: s if committed <= set(s) else None)(seqs(m)), 30,
                       "everything committed before the kill")
        later = [s for s in got if s > max(committed)]
        check(later, "the second run publishes too")
        # After an unclean stop numbers restart above the durable reservation: never reused.
        second_run = [p["seq"] for _, p in outbox_rows(g)] + later
        check(min(second_run) > max(committed), "no number of the first run used again")
        wait_for(lambda: mqtt_status(g)["outbox"]["queued"] < 100, 20, "the outbox to drain")
        print("gateway killed during the outage: %d committed messages delivered after restart"
              % len(committed), flush=True)
        check(g.stop() == 0, "clean exit")
    finally:
        if g.proc:
            g.kill9()
        sub.close()
        b.kill9()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_certs(d):
    def run(*args):
        subprocess.run(args, check=True, capture_output=True, cwd=d, timeout=60)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        run("openssl", "req", "-x509", *key, "-keyout", ca + ".key", "-out", ca + ".crt", "-days", "2",
            "-subj", "/CN=m2m test " + ca)
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        run("openssl", "req", *key, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
        run("openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", "ext")
    return {n: os.path.join(d, n) for n in ("ca.crt", "other-ca.crt", "server.crt", "server.key",
                                             "client.crt", "client.key")}


def test_tls():
    d = tmpdir("mqtt-tls")
    c = make_certs(d)
    plain = free_port()
    b = Broker(d, listener_extra="cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true"
               % (c["ca.crt"], c["server.crt"], c["server.key"]),
               extra="listener %d 127.0.0.1" % plain).start()
    sub = Subscriber(plain, ["m2m/#"])
    tls = 'ca_file = "%s"\ncert_file = "%s"\nkey_file = "%s"\n'
    # By name: the certificate is checked against "localhost".
    g = Gateway("mqtt-tls", sim(1, "50ms") + mqtt_table(
        b.port, tls % (c["ca.crt"], c["client.crt"], c["client.key"]), "mqtts", host="localhost")).start()
    try:
        sub.wait(lambda m: len(seqs(m)) >= 5, 10, "telemetry over TLS")
        check(mqtt_status(g)["state"] == "connected", "connected over TLS")
        g.stop()
        bad = Gateway("mqtt-tls-bad", sim(1, "50ms") + mqtt_table(
            b.port, tls % (c["other-ca.crt"], c["client.crt"], c["client.key"]), "mqtts")).start()
        try:
            st = wait_for(lambda: (lambda s: s if s["connect_failures"] >= 2 else None)(mqtt_status(bad)), 10,
                          "refused TLS attempts")
            check(st["state"] != "connected" and st["connects"] == 0, "a wrong CA never connects: %r" % st)
            check("certificate verify failed" in st["last_error"], "the error says why: %r" % st["last_error"])
            check("cannot connect to mqtts://" in bad.run_log(), "and the log says it")
        finally:
            bad.stop()
        # TLS to a closed port and to a listener that is not TLS: failures, quickly,
        # without spinning in the handshake until connect_timeout.
        for port, what in ((free_port(), "refused"), (plain, "reset")):
            bad = Gateway("mqtt-tls-" + what, sim(1, "50ms") + mqtt_table(port, 'ca_file = "%s"\n' % c["ca.crt"],
                                                                        "mqtts")).start()
            try:
                cpu0 = cpu_seconds(bad.proc.pid)
                st = wait_for(lambda: (lambda s: s if s["connect_failures"] >= 3 else None)(mqtt_status(bad)), 5,
                              "TLS attempts failing (%s)" % what)
                # A close during the handshake shows as a reset, an unexpected EOF (when
                # OpenSSL reads it) or a refusal (when TLS consumed the socket error first).
                err = st["last_error"].lower()
                check(what in err or "refused" in err or "eof" in err, "the error: %r" % st["last_error"])
                time.sleep(1)
                check(cpu_seconds(bad.proc.pid) - cpu0 < 1.5, "no busy loop in the handshake")
            finally:
                bad.stop()
    finally:
        if g.proc:
            g.kill9()
        sub.close()
        b.stop()


def test_commands():
    d = tmpdir("mqtt-cmd")
    b = Broker(d).start()
    sub = Subscriber(b.port, ["m2m/%s/+/+/set/result" % GW, "m2m/%s/valve/pos" % GW], v5=True)
    drivers = ('[drivers.sim]\nplugin = "sim"\n'
               '[[drivers.sim.points]]\nname = "valve/pos"\nsignal = "constant"\nwritable = true\n'
               'min = 0\nmax = 100\ninterval = "50ms"\n'
               '[[drivers.sim.points]]\nname = "valve/temp"\nsignal = "ramp"\ninterval = "50ms"\n')
    extra = 'protocol = "5"\n[mqtt.telemetry]\npayload = "value"\n[mqtt.commands]\nenabled = true\nmax_payload = "1KiB"\n'
    g = Gateway("mqtt-cmd", drivers + mqtt_table(b.port, extra)).start()
    topic = "m2m/%s/valve/pos/set" % GW

    def replies(m):
        return [(t, json.loads(p), pr) for t, p, pr, _ in m if t.endswith("/set/result")]

    def ask(t, payload, **kw):
        n = len(replies(sub.take()))
        publish(b.port, t, payload, v5=True, **kw)
        return sub.wait(lambda m: replies(m)[n:], 10, "a reply to %r" % payload[:40])[0]

    try:
        wait_for(lambda: mqtt_status(g)["state"] == "connected", 10, "connected")
        time.sleep(0.3)  # the subscription is in place
        # Value payloads: the bare number, and the seq as an MQTT 5 user property.
        tele = sub.wait(lambda m: [x for x in m if x[0].endswith("/valve/pos")], 10, "telemetry")
        check(tele[0][1] == b"0", "bare value payload: %r" % tele[0][1])
        check(dict(tele[0][2].UserProperty).get("seq"), "seq as a user property")

        t, p, props = ask(topic, "17", correlation=b"req-1")
        check(p == {"ok": True} and t == topic + "/result", "ok reply: %r" % p)
        check(props.CorrelationData == b"req-1", "MQTT 5 correlation data echoed")
        sub.wait(lambda m: [x for x in m if x[0].endswith("/valve/pos") and x[1] == b"17"], 10,
                 "the written value read back")
        t, p, _ = ask(topic, json.dumps({"value": 42, "id": "abc"}))
        check(p == {"id": "abc", "ok": True}, "json command with id: %r" % p)
        sub.wait(lambda m: [x for x in m if x[0].endswith("/valve/pos") and x[1] == b"42"], 10, "42 read back")

        bad = [
            (topic, "not a number", "malformed"),
            (topic, json.dumps({"value": "high", "id": 7}), "malformed"),
            (topic, json.dumps({"value": 5, "id": [1]}), "malformed"),
            (topic, "", "malformed"),
            (topic, "9" * 2000, "too large"),
            (topic, "150", "limits"),
            ("m2m/%s/valve/temp/set" % GW, "5", "not writable"),
            ("m2m/%s/nodev/x/set" % GW, "5", "unknown point"),
        ]
        for t, payload, want in bad:
            rt, p, _ = ask(t, payload)
            check(p["ok"] is False and want in p["error"], "%r answered %r" % (payload[:30], p))
            check(rt == t + "/result", "reply topic %s" % rt)
        time.sleep(0.3)
        vals = [x[1] for x in sub.take() if x[0].endswith("/valve/pos")]
        check(vals[-1] == b"42", "no bad command wrote anything: %r" % vals[-3:])
        writes = g.query("SELECT count(*) FROM events WHERE kind = 'write' AND source = 'mqtt' "
                         "AND to_state != 'refused'")[0][0]
        st = mqtt_status(g)["commands"]
        check(st["ok"] == 2 and st["failed"] == len(bad), "command counters: %r" % st)
        check(writes <= 4, "only the two good commands reached the driver (%d write events)" % writes)
        # A retained command is refused at once (MQTT 5 keeps its flag: retain-as-published),
        # and again when the broker hands it over at the next connect (test_mqtt_retained.py).
        rt, p, _ = ask(topic, "3", retain=True)
        check(p["ok"] is False and "retained" in p["error"], "a live retained command is refused: %r" % p)
        g.stop()
        n = len(replies(sub.take()))
        g.start()
        rt, p, _ = sub.wait(lambda m: replies(m)[n:], 10, "the reply to the retained command")[0]
        check(p["ok"] is False and "retained" in p["error"], "a retained command is refused: %r" % p)
        publish(b.port, topic, "", retain=True)  # clear it
        sub.clear()
        sub.wait(lambda m: [x for x in m if x[0].endswith("/valve/pos")], 10, "telemetry after restart")
        vals = [x[1] for x in sub.take() if x[0].endswith("/valve/pos")]
        check(vals[-1] == b"0", "the retained command wrote nothing: %r" % vals[-3:])
    finally:
        if g.proc:
            g.kill9()
        sub.close()
        b.stop()


def test_unreachable_and_refused():
    d = tmpdir("mqtt-refused")
    g = Gateway("mqtt-unreachable", sim(1, "50ms") + mqtt_table(free_port())).start()
    try:
        st = wait_for(lambda: (lambda s: s if s["connect_failures"] >= 3 else None)(mqtt_status(g)), 10,
                      "failed attempts")
        check(st["state"] != "connected" and "refused" in st["last_error"].lower(), "clear error: %r" % st)
        check("cannot connect to mqtt://127.0.0.1" in g.run_log(), "logged")
        wait_for(lambda: g.count() > 0, 10, "readings stored all the same")
    finally:
        g.stop()
    pw = os.path.join(d, "passwd")
    subprocess.run(["mosquitto_passwd", "-b", "-c", pw, "gw", "right"], check=True, capture_output=True, timeout=30)
    b = Broker(d, extra="password_file %s" % pw)
    b.conf_text = open(b.conf).read().replace("allow_anonymous true", "allow_anonymous false")
    open(b.conf, "w").write(b.conf_text)
    b.start()
    wrong = os.path.join(d, "wrong.pass")
    open(wrong, "w").write("wrong\n")
    right = os.path.join(d, "right.pass")
    open(right, "w").write("right\n")
    g = Gateway("mqtt-badpass", sim(1, "50ms") + mqtt_table(b.port, 'username = "gw"\npassword_file = "%s"\n' % wrong))
    g.start()
    try:
        st = wait_for(lambda: (lambda s: s if s["connect_failures"] >= 2 else None)(mqtt_status(g)), 10,
                      "refused attempts")
        check("not authori" in st["last_error"], "bad credentials said so: %r" % st["last_error"])
        check("right" not in g.run_log() and "wrong" not in g.run_log().replace("wrong.pass", ""),
              "the password is never logged")
        g.stop()
        g.write_config(sim(1, "50ms") + mqtt_table(b.port, 'username = "gw"\npassword_file = "%s"\n' % right))
        g.start()
        wait_for(lambda: mqtt_status(g)["state"] == "connected", 10, "connected with the right password")
    finally:
        g.stop()
        b.stop()


def test_outbox_bounds():
    d = tmpdir("mqtt-bounds")
    port = free_port()
    g = Gateway("mqtt-bounds", sim(10, "10ms") + mqtt_table(port, "[mqtt.outbox]\nmax_messages = 300\n")).start()
    try:
        st = wait_for(lambda: (lambda s: s if s["outbox"]["dropped"] > 500 else None)(mqtt_status(g)), 10,
                      "drops by max_messages")
        check(st["outbox"]["queued"] <= 400, "the outbox stays near its bound: %r" % st["outbox"])
        check(g.query("SELECT count(*) FROM outbox")[0][0] <= 400, "the table too")
        check("dropped (oldest first)" in g.run_log(), "drops are logged")
        b = Broker(d, port=port).start()
        sub = Subscriber(port, ["m2m/#"])
        try:
            got = sub.wait(lambda m: (lambda s: s if len(s) > 400 else None)(seqs(m)), 10, "delivery")
            check(got[0] > 500, "the oldest were dropped, the newest kept: first seq %d" % got[0])
            check(g.query("SELECT count(*) FROM events WHERE kind = 'mqtt' AND to_state = 'dropped'")[0][0] > 0,
                  "drops are events")
        finally:
            sub.close()
            b.stop()
    finally:
        g.stop()


if __name__ == "__main__":
    main([test_topics_and_payloads, test_batch_and_clean_stop, test_commands, test_tls, test_reload,
          test_silent_broker, test_unreachable_and_refused, test_broker_refuses_messages,
          test_outbox_bounds, test_full_disk, test_gateway_killed_during_outage,
          test_broker_restarts_lose_nothing])
