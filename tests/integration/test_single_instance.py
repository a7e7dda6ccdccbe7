# SPDX-License-Identifier: MIT
"""One m2md per database and per control socket: a second instance with the
same database, or only the same socket, exits 1 at once with one line that
names the running one's pid, and leaves the database, the socket and the
first instance alone; `m2md --check` works while one runs; after the first
stops (even by SIGKILL) a new one starts."""

import os
import subprocess

from m2mtest import M2MD, SLOW, Gateway, check, ctl, main, run_check, wait_for

SIM = """
[drivers.a]
plugin = "sim"
[[drivers.a.points]]
name = "a/count"
signal = "counter"
interval = "20ms"
"""


def second(config):
    """Runs a second m2md on CONFIG; returns (exit code, what it printed)."""
    p = subprocess.run([M2MD, "-c", config], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30 * SLOW)
    return p.returncode, (p.stdout + p.stderr).decode()


def test_second_instance_refused():
    g = Gateway("single", SIM).start()
    try:
        pid = g.proc.pid
        wait_for(lambda: g.count("a/count") > 3, 10, "readings of the first instance")
        code, out = second(g.config)
        lines = [line for line in out.splitlines() if line.strip()]
        check(code == 1, "a second m2md on the same config exits 1, not %r:\n%s" % (code, out))
        check(len(lines) == 1 and "pid %d" % pid in lines[0] and g.db in lines[0],
              "one line naming the database and the running pid %d: %r" % (pid, lines))
        check("unclean" not in out, "the second one did not open the database: %r" % out)
        # The same socket with another database: refused too.
        other = Gateway("single-sock", SIM)
        other.socket = g.socket
        other.write_config(SIM)
        code, out = second(other.config)
        check(code == 1 and "pid %d" % pid in out and g.socket in out,
              "the same socket, another database: refused naming the socket: %r %r" % (code, out))
        check(not os.path.exists(other.db), "the refused instance created no database")
        # The first one is untouched and its socket still answers.
        check(g.proc.poll() is None, "the first m2md still runs")
        check(ctl(g, {"cmd": "status"})["ok"], "its control socket still answers")
        # --check needs no lock.
        code, out, err = run_check(g.config)
        check(code == 0, "m2md --check while one runs: %r %r %r" % (code, out, err))
        with open(g.db + ".lock") as f:
            check(f.read().strip() == str(pid), "the lock file holds the pid")
    finally:
        check(g.stop() == 0, "the first m2md exits 0")
    # A killed instance leaves its lock file behind but not the lock.
    g.start()
    g.kill9()
    g.start()
    try:
        check(ctl(g, {"cmd": "status"})["ok"], "a new m2md starts after a SIGKILLed one")
    finally:
        check(g.stop() == 0, "m2md exits 0")


def test_socket_directory_missing():
    """Where no socket can be made, there is no socket lock either: m2md runs
    without its control socket, as before, locked on its database."""
    g = Gateway("single-nosock", SIM)
    g.socket = os.path.join(g.dir, "missing", "m2md.sock")
    g.write_config(SIM)
    g.start()
    try:
        wait_for(lambda: g.count("a/count") > 3, 10, "readings without a control socket")
        check("control socket unavailable" in g.run_log(), "the socket's absence is logged")
    finally:
        check(g.stop() == 0, "m2md exits 0")


if __name__ == "__main__":
    main([test_second_instance_refused, test_socket_directory_missing])
