# SPDX-License-Identifier: MIT
"""Helpers for the integration tests: run the real m2md from the build tree
against real files, and read what it wrote with SQLite.

Every wait is bounded; every process a test starts is stopped by PID."""

import atexit
import glob
import json
import os
import signal
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("M2M_BUILD_ROOT", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE = os.environ.get("M2M_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../.."))
M2MD = os.path.join(BUILD, "src", "m2md")
PLUGIN_DIR = os.path.join(BUILD, "plugins")
# Under valgrind or sanitizers everything is slower: scale the bounds.
SLOW = float(os.environ.get("M2M_TEST_SLOW", "1"))

passed = 0


def check(cond, what):
    global passed
    if not cond:
        raise AssertionError(what)
    passed += 1


def ctl(g, request, timeout=10):
    """One request (a dict) on the gateway's control socket, as m2mctl sends
    it; returns the reply as a dict. Bounded by TIMEOUT."""
    return json.loads(ctl_raw(g, request, timeout))


def ctl_raw(g, request, timeout=10):
    """As ctl(), but returns the reply line as the daemon wrote it (str)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout * SLOW)
    try:
        s.connect(g.socket)
        s.sendall((json.dumps(request) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            check(chunk, "the daemon answers")
            buf += chunk
        return buf.decode()
    finally:
        s.close()


def toml_value(v):
    """V as a TOML value: a boolean, a number, or a string."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v)


def table(header, **keys):
    """A TOML table: "[HEADER]" (or HEADER itself when it is "[[...]]") and KEYS."""
    lines = ["[%s]" % header if not header.startswith("[") else header]
    lines += ["%s = %s" % (k, toml_value(v)) for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def wait_for(pred, timeout, what, interval=0.05):
    """Polls PRED until it returns a true value; fails after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout * SLOW, what))
        time.sleep(interval)


def tmpdir(name):
    base = os.path.join(BUILD, "tests", "tmp")
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix=name + "-", dir=base)


_public = None


def public_build():
    """A copy of m2md, its parser, m2mctl and the plugins in a directory every user may
    traverse, for tests that run them as another user: the build tree may
    sit below a private directory (a clone made in `mktemp -d` is 0700).
    Made once per test process and removed at its exit."""
    global _public
    if _public is None:
        d = tempfile.mkdtemp(prefix="m2md-public-", dir="/tmp")
        atexit.register(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        os.mkdir(os.path.join(d, "plugins"))
        os.chmod(os.path.join(d, "plugins"), 0o755)
        for f in glob.glob(os.path.join(PLUGIN_DIR, "*.so")):
            shutil.copy2(f, os.path.join(d, "plugins"))
        # m2md runs the configuration parser beside it (src/config-toml-exec.c).
        for f in (M2MD, os.path.join(BUILD, "src", "m2mctl"), os.path.join(BUILD, "src", "m2md-toml")):
            shutil.copy2(f, d)
        _public = d
    return _public


class Gateway:
    """One m2md process with its own directory, config and database. PUBLIC
    runs it from public_build(), in a directory there, so that another user
    can run or reach it."""

    def __init__(self, name, drivers_toml, storage_extra="", gateway_extra="", directory=None,
                 public=False):
        self.binary, self.plugin_dir = M2MD, PLUGIN_DIR
        if public:
            base = public_build()
            self.binary, self.plugin_dir = os.path.join(base, "m2md"), os.path.join(base, "plugins")
            directory = tempfile.mkdtemp(prefix=name + "-", dir=base)
            os.chmod(directory, 0o755)
        self.dir = directory or tmpdir(name)
        self.config = os.path.join(self.dir, "m2md.toml")
        self.db = os.path.join(self.dir, "m2md.db")
        self.log = os.path.join(self.dir, "m2md.log")
        self.socket = os.path.join(self.dir, "m2md.sock")
        self.proc = None
        self.write_config(drivers_toml, storage_extra, gateway_extra)

    def write_config(self, drivers_toml, storage_extra="", gateway_extra=""):
        if "commit_interval" not in storage_extra:
            storage_extra = 'commit_interval = "50ms"\n' + storage_extra
        if "stats_interval" not in gateway_extra:
            gateway_extra = 'stats_interval = "0"\n' + gateway_extra
        control = ""
        if "[control]" not in drivers_toml:
            control = '[control]\nsocket = "%s"\n' % self.socket
        text = ('[gateway]\nid = "gw-test"\nplugin_dir = "%s"\n%s\n'
                '[storage]\npath = "%s"\n%s\n%s%s\n'
                % (self.plugin_dir, gateway_extra, self.db, storage_extra, control, drivers_toml))
        tmp = self.config + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config)

    def start(self, extra_args=(), preexec_fn=None, wait_ready=True):
        self.logf = open(self.log, "ab")
        # Only what this run logs counts; the log file is shared by restarts.
        self.log_start = self.logf.tell()
        wrapper = list(getattr(self, "wrapper", []))
        self.proc = subprocess.Popen(wrapper + [self.binary, "-c", self.config, "--log-level", "debug"] + list(extra_args),
                                     stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
                                     preexec_fn=preexec_fn)
        if wait_ready:
            wait_for(lambda: "started:" in self.log_text()[self.log_start:] or self.proc.poll() is not None,
                     10, "m2md to start")
            check(self.proc.poll() is None, "m2md is running:\n" + self.log_text())
        return self

    def log_text(self):
        """The whole log, of every run of this gateway."""
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def run_log(self):
        """What the current (or last) run logged."""
        return self.log_text()[getattr(self, "log_start", 0):]

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("m2md did not exit within %ss of SIGTERM" % timeout)
        self.logf.close()
        self.proc = None
        return code

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.logf.close()
        self.proc = None

    def query(self, sql, args=()):
        """Reads the database through a separate read-only connection (as m2mctl does)."""
        con = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=5)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def point_id(self, name):
        rows = self.query("SELECT id FROM points WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    def values(self, name):
        return [r[0] for r in self.query(
            "SELECT value FROM readings r JOIN points p ON p.id = r.point "
            "WHERE p.name = ? ORDER BY r.rowid", (name,))]

    def count(self, name=None):
        if name is None:
            return self.query("SELECT count(*) FROM readings")[0][0]
        return self.query("SELECT count(*) FROM readings r JOIN points p ON p.id = r.point "
                          "WHERE p.name = ?", (name,))[0][0]

    def __del__(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


def run_check(config_path, conf_dir=None):
    """m2md --check: returns (exit code, stdout, stderr)."""
    args = [M2MD, "--check", "-c", config_path]
    if conf_dir:
        args += ["--conf-dir", conf_dir]
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=30 * SLOW)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def main(tests):
    """Runs each test function; prints a summary line meson and CI can read."""
    failed = 0
    for t in tests:
        print("-- %s" % t.__name__, flush=True)
        try:
            t()
        except Exception as e:  # report and go on, so one run shows every failure
            failed += 1
            print("FAIL %s: %s" % (t.__name__, e), flush=True)
            import traceback
            traceback.print_exc()
    print("%d checks passed, %d tests failed" % (passed, failed))
    sys.exit(1 if failed else 0)
