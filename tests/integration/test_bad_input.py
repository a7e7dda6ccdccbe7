# SPDX-License-Identifier: MIT
"""Bad input from outside: each gives one clear error line, nothing
crashes, and no committed reading is lost."""

import glob
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import time

from m2mtest import BUILD, PLUGIN_DIR, Gateway, check, main, run_check, tmpdir, wait_for

SIM = """
[drivers.sim]
plugin = "sim"
[[drivers.sim.points]]
name = "b/count"
signal = "counter"
interval = "2ms"
[[drivers.sim.points]]
name = "b/wave"
signal = "sine"
interval = "2ms"
"""

FIXTURES = os.path.join(BUILD, "tests", "plugin")


def error_lines(text):
    return [l for l in text.splitlines() if l.startswith("<3>")]


def run_once(g, timeout=20, preexec_fn=None):
    """Starts m2md expecting it to refuse to run; returns (exit code, log)."""
    with open(g.log, "ab") as logf:
        start = logf.tell()
        p = subprocess.run([g.binary, "-c", g.config], stdin=subprocess.DEVNULL, stdout=logf,
                           stderr=logf, timeout=timeout, preexec_fn=preexec_fn)
    return p.returncode, g.log_text()[start:]


def drop_privileges():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def test_unwritable_data_dir():
    # As root, permissions do not bind: m2md runs as nobody, who may read but not write.
    g = Gateway("unwritable", SIM, public=os.getuid() == 0)
    data = os.path.join(g.dir, "data")
    os.mkdir(data, 0o755)
    g.write_config(SIM, storage_extra="")
    with open(g.config) as f:
        text = f.read().replace(g.db, os.path.join(data, "m2md.db"))
    with open(g.config, "w") as f:
        f.write(text)
    if os.getuid() == 0:
        code, log = run_once(g, preexec_fn=drop_privileges)
    else:
        os.chmod(data, 0o555)
        code, log = run_once(g)
    errs = error_lines(log)
    check(code == 1, "exit 1 for an unwritable data directory, got %r: %s" % (code, log))
    check(len(errs) == 1 and os.path.join(data, "m2md.db") in errs[0] and "cannot open" in errs[0],
          "one error line naming the database file: %r" % errs)


def test_locked_database():
    g = Gateway("locked", SIM).start()
    wait_for(lambda: g.count() > 100, 10, "rows")
    check(g.stop() == 0, "clean stop")
    before = g.count()
    con = sqlite3.connect(g.db, timeout=1, isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.monotonic()
        code, log = run_once(g)
    finally:
        con.execute("ROLLBACK")
        con.close()
    errs = error_lines(log)
    check(code == 1, "a locked database stops the start with exit 1, got %r: %s" % (code, log))
    check(len(errs) == 1 and "locked" in errs[0] and g.db in errs[0], "one clear line: %r" % errs)
    check(time.monotonic() - t0 < 15, "gives up within a bound")
    check(g.count() == before, "nothing lost")


def test_corrupt_database():
    g = Gateway("corrupt", SIM)
    with open(g.db, "wb") as f:
        f.write(b"this is not a database, it is a shopping list\n" * 200)
    g.start()
    wait_for(lambda: g.count() > 50, 10, "rows in the fresh database")
    moved = glob.glob(g.db + ".corrupt-*")
    check(len(moved) == 1, "the corrupt file was moved aside: %r" % moved)
    with open(moved[0], "rb") as f:
        check(f.read(12) == b"this is not ", "the corrupt file is kept as it was")
    errs = error_lines(g.run_log())
    check(len(errs) == 1 and moved[0] in errs[0], "one error line naming both files: %r" % errs)
    check(g.stop() == 0, "clean stop")

    # With on_corrupt = "fail" the daemon refuses to start instead.
    with open(g.db, "r+b") as f:
        f.seek(0)
        f.write(b"garbage garbage garbage!")
    g.write_config(SIM, storage_extra='on_corrupt = "fail"\n')
    code, log = run_once(g)
    errs = error_lines(log)
    check(code == 1 and len(errs) == 1 and g.db in errs[0], "fail mode: one line, exit 1: %r" % log)


def test_full_disk():
    g = Gateway("full", SIM, gateway_extra='stats_interval = "1s"\n')
    # Make the database first, then cap the size of every file m2md may write.
    g.start()
    wait_for(lambda: g.count() > 100, 10, "rows")
    check(g.stop() == 0, "clean stop")
    limit = os.path.getsize(g.db) + 256 * 1024

    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    def stats():
        lines = [l for l in g.run_log().splitlines() if "stats: uptime=" in l]
        return dict(f.split("=", 1) for f in lines[-1].split() if "=" in f) if lines else None

    g.start(extra_args=["--log-level", "info"], preexec_fn=cap)
    wait_for(lambda: stats() and int(stats()["storage_errors"]) > 0, 30,
             "storage errors counted in the stats line")
    # The queue fills while the disk is full; past queue_limit readings are dropped and counted.
    wait_for(lambda: int(stats()["dropped"]) > 0 or int(stats()["queued"]) > 1000, 30,
             "readings waiting for the disk are bounded and counted")
    check(g.proc.poll() is None, "the daemon survives a full disk")
    committed = g.count()
    code = g.stop(timeout=30)
    check(code == 0, "SIGTERM with a full disk still exits 0 within its bound, got %r" % code)
    log = g.run_log()
    check(len(error_lines(log)) >= 1, "the failing disk is reported")
    # The limit lifted (a new process), every committed row is there and the file is sound.
    g.start()
    wait_for(lambda: g.count() > committed, 10, "writing again after the disk has room")
    check(g.stop() == 0, "clean stop")
    check(g.query("PRAGMA integrity_check") == [("ok",)], "database intact after a full disk")


def private_plugin_dir(name, files, mode=0o755):
    d = tmpdir(name)
    for src, dst in files:
        shutil.copy(src, os.path.join(d, dst))
        os.chmod(os.path.join(d, dst), 0o644)
    os.chmod(d, mode)
    return d


def test_plugin_problems():
    sim = os.path.join(PLUGIN_DIR, "sim.so")
    cases = [
        ("abi", [(os.path.join(FIXTURES, "wrong-major.so"), "fixture.so")], 0o755, "fixture",
         'plugin ABI mismatch: plugin "fixture" was built for ABI 2.1, this m2md provides ABI 1.1'),
        ("groupw", [(sim, "sim.so")], 0o775, "sim", "the plugin directory is writable by group"),
        ("noentry", [(os.path.join(FIXTURES, "no-entry.so"), "fixture.so")], 0o755, "fixture",
         "does not export m2m_plugin_entry()"),
    ]
    for name, files, mode, plugin, expect in cases:
        d = private_plugin_dir("plugins-" + name, files, mode)
        g = Gateway("plugin-" + name, '[drivers.x]\nplugin = "%s"\n' % plugin)
        with open(g.config) as f:
            text = f.read().replace(PLUGIN_DIR, d)
        with open(g.config, "w") as f:
            f.write(text)
        code, out, err = run_check(g.config)
        lines = err.splitlines()
        check(code == 78 and len(lines) == 1 and expect in lines[0] and "drivers.x.plugin" in lines[0],
              "%s: --check gives one line with %r, got %r" % (name, expect, err))
        code, log = run_once(g)
        check(code == 78 and expect in log, "%s: the daemon refuses to start, exit 78: %r" % (name, log))


def test_failing_driver_retried():
    d = private_plugin_dir("plugins-fail", [(os.path.join(PLUGIN_DIR, "sim.so"), "sim.so"),
                                            (os.path.join(FIXTURES, "fail-start.so"), "flaky.so")])
    g = Gateway("failstart", SIM + '[drivers.flaky]\nplugin = "flaky"\nrestart_backoff = "100ms"\n'
                'restart_backoff_max = "400ms"\n')
    with open(g.config) as f:
        text = f.read().replace(PLUGIN_DIR, d)
    with open(g.config, "w") as f:
        f.write(text)
    g.start()
    wait_for(lambda: g.log_text().count("driver flaky: start failed") >= 4, 10, "retries with backoff")
    check(g.count("b/count") > 100, "the other driver runs on")
    log = g.log_text()
    check("driver flaky: start failed: cannot reach the device: Connection refused; retrying in 100ms" in log,
          "the failure names the driver, the reason and the delay")
    check("retrying in 400ms" in log and "retrying in 800ms" not in log, "backoff doubles up to its max")
    fails = g.query("SELECT count(*) FROM events WHERE kind='failed' AND source='flaky'")[0][0]
    check(fails >= 3, "each failure is an event (%d)" % fails)
    check(g.stop() == 0, "clean stop with a failing driver")


if __name__ == "__main__":
    main([test_unwritable_data_dir, test_locked_database, test_corrupt_database, test_full_disk,
          test_plugin_problems, test_failing_driver_retried])
