# SPDX-License-Identifier: MIT
"""A private mosquitto broker and a paho subscriber for the MQTT tests and
the benchmark. The broker listens on 127.0.0.1 on a port picked free, is
started and stopped by PID, and every wait is bounded."""

import json
import os
import signal
import socket
import subprocess
import threading
import time

import paho.mqtt.client as paho

from m2mtest import SLOW, ctl, wait_for  # noqa: F401  (ctl: for the tests importing it from here)

MOSQUITTO = "/usr/sbin/mosquitto"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    """mosquitto with its own config file. EXTRA is appended to the config;
    PERSIST_DIR turns persistence on (for a subscriber session that must
    survive SIGKILL of the broker: see Broker.bootstrap_session)."""

    def __init__(self, directory, port=None, extra="", persist_dir=None, listener_extra=""):
        self.dir = directory
        self.port = port or free_port()
        self.conf = os.path.join(directory, "mosquitto-%d.conf" % self.port)
        self.log = os.path.join(directory, "mosquitto-%d.log" % self.port)
        self.proc = None
        lines = ["listener %d 127.0.0.1" % self.port, listener_extra, "allow_anonymous true",
                 # Nothing held back in the broker's memory where SIGKILL can lose it.
                 "max_inflight_messages 0", "max_queued_messages 0"]
        if os.geteuid() == 0:
            # mosquitto started as root drops to user mosquitto, who cannot read the test's files.
            import pwd
            lines.append("user %s" % pwd.getpwuid(os.getuid()).pw_name)
        if persist_dir:
            lines += ["persistence true", "persistence_location %s/" % persist_dir,
                      "autosave_interval 3600"]
        else:
            lines += ["persistence false"]
        lines.append(extra)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("mosquitto did not start on port %d: %s"
                                         % (self.port, open(self.log).read()[-2000:]))
                time.sleep(0.02)

    def kill9(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait(10)
            self.logf.close()
            self.proc = None

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.logf.close()
            self.proc = None

    def __del__(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


class Subscriber:
    """A paho client on its own thread that records every message. With
    SESSION (a client id) it keeps a persistent session (clean_session
    false), so the broker queues QoS 1 messages for it while it is away."""

    def __init__(self, port, topics, session=None, v5=False, qos=1, tls=None):
        self.lock = threading.Lock()
        self.messages = []  # (topic, payload bytes, properties, retain)
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.topics = topics
        self.qos = qos
        self.v5 = v5
        if v5:
            self.c = paho.Client(client_id=session or "", protocol=paho.MQTTv5)
        else:
            self.c = paho.Client(client_id=session or "", clean_session=session is None)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.on_disconnect = lambda *a: self.connected.clear()
        self.c.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        if v5:
            self.c.connect_async("127.0.0.1", port, keepalive=30, clean_start=session is None)
        else:
            self.c.connect_async("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        if not self.connected.wait(10):
            raise AssertionError("the test subscriber could not connect to port %d" % port)
        if not self.subscribed.wait(10):
            raise AssertionError("the test subscriber could not subscribe")

    def _on_connect(self, c, userdata, flags, rc, props=None):
        if (rc if isinstance(rc, int) else rc.value) != 0:
            return
        # Subscribing again at every connect also covers a broker that lost the session.
        for t in self.topics:
            c.subscribe(t, self.qos)
        self.connected.set()

    def _on_message(self, c, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload, getattr(msg, "properties", None), msg.retain))

    def take(self):
        with self.lock:
            return list(self.messages)

    def clear(self):
        with self.lock:
            self.messages = []

    def drain(self):
        """Takes the messages received since the last drain (or clear) and
        forgets them: for a long run that must not keep every message."""
        with self.lock:
            msgs, self.messages = self.messages, []
        return msgs

    def wait(self, pred, timeout, what):
        timeout *= SLOW
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.take()
            v = pred(msgs)
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %ss waiting for %s (%d messages)"
                                     % (timeout, what, len(msgs)))
            time.sleep(0.05)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def persistent_broker(d, topics):
    """A broker in D that keeps one subscriber session (to TOPICS) across
    SIGKILL: the session is saved by a clean stop before the test starts
    and autosave never runs again, so every restart comes back with it (and
    nothing else). Returns the broker and the subscriber."""
    b = Broker(d, persist_dir=d).start()
    sub = None
    try:
        sub = Subscriber(b.port, topics, session="seq-checker-%d" % b.port)
        b.stop()
        b.start()
        wait_for(lambda: sub.connected.is_set(), 10, "the subscriber to reconnect")
    except BaseException:
        if sub:
            sub.close()
        b.kill9()
        raise
    return b, sub


def seqs(messages, suffix_filter=None):
    """The seq of every JSON telemetry message, in arrival order."""
    out = []
    for topic, payload, _, _ in messages:
        if topic.endswith("/status") or "/set" in topic:
            continue
        try:
            out.append(json.loads(payload)["seq"])
        except (ValueError, KeyError, TypeError):
            pass
    return out


def publish(port, topic, payload, v5=False, correlation=None, retain=False, qos=1):
    """Publishes one message and waits for it to leave."""
    if v5:
        c = paho.Client(protocol=paho.MQTTv5)
    else:
        c = paho.Client()
    c.connect("127.0.0.1", port, 30)
    c.loop_start()
    props = None
    if correlation is not None:
        from paho.mqtt.properties import Properties
        from paho.mqtt.packettypes import PacketTypes
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = correlation
    info = c.publish(topic, payload, qos=qos, retain=retain, properties=props) if v5 else \
        c.publish(topic, payload, qos=qos, retain=retain)
    info.wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


def mqtt_status(g):
    return ctl(g, {"id": 1, "cmd": "status"})["result"]["mqtt"]
