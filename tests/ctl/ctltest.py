# SPDX-License-Identifier: MIT
"""Helpers for the control socket tests: a raw client, m2mctl runs, and a
gateway with the sim driver."""

import json
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from m2mtest import BUILD, SLOW, Gateway, public_build  # noqa: E402,F401

M2MCTL = os.path.join(BUILD, "src", "m2mctl")

SIM = """
[drivers.sim]
plugin = "sim"
[[drivers.sim.points]]
name = "boiler1/temperature"
unit = "C"
signal = "sine"
base = 60
amplitude = 5
period = "2s"
interval = "50ms"
[[drivers.sim.points]]
name = "boiler1/burner"
kind = "bool"
signal = "constant"
value = 1
writable = true
interval = "50ms"
[[drivers.sim.points]]
name = "boiler1/setpoint"
signal = "constant"
value = 70
writable = true
min = 20
max = 90
interval = "50ms"
[[drivers.sim.points]]
name = "pump1/flow"
signal = "counter"
value = 0
step = 1
interval = "50ms"

[[rules]]
name = "hot"
point = "boiler1/temperature"
condition = ">"
value = 10
latch = true
severity = "critical"

[[rules]]
name = "frozen"
point = "boiler1/temperature"
condition = "<"
value = -50
"""


class Client:
    """A raw connection speaking the protocol line by line."""

    def __init__(self, path, timeout=5):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout * SLOW)
        self.s.connect(path)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def line(self):
        """The next line as parsed JSON, or None when the daemon closed the connection."""
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, obj):
        self.send(json.dumps(obj) + "\n")
        return self.line()

    def closed(self):
        """True when the daemon closes the connection (after any pending lines)."""
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            # Closed while our unread request bytes were still queued on its side.
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


def m2mctl(*args, socket=None, env=None, timeout=20, user=None):
    """Runs m2mctl; returns (exit status, stdout, stderr)."""
    # Another user runs the public copy: the build tree may be private.
    cmd = [M2MCTL if user is None else os.path.join(public_build(), "m2mctl")]
    if socket:
        cmd += ["-s", socket]
    cmd += list(args)
    if user is not None:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
    e = dict(os.environ)
    e.pop("M2M_SOCKET", None)
    if env:
        e.update(env)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=e,
                       timeout=timeout * SLOW)
    return p.returncode, p.stdout.decode(), p.stderr.decode()
