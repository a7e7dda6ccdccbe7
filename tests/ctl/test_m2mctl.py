# SPDX-License-Identifier: MIT
"""Every m2mctl command against a running m2md with the sim driver, in the
human and the --json form, with the exit status of each failure; history and
events with the daemon stopped."""

import csv
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import time

from ctltest import M2MCTL, SIM, Gateway, m2mctl
from m2mtest import SLOW, check, ctl_raw, main, wait_for


def one_line(err):
    return err.count("\n") == 1 and err.startswith("m2mctl: ")


def test_commands():
    g = Gateway("m2mctl", SIM).start()
    s = g.socket
    try:
        wait_for(lambda: g.count("boiler1/temperature") >= 5, 10, "readings")

        code, out, err = m2mctl("status", socket=s)
        check(code == 0, "status: %d %s" % (code, err))
        for word in ("m2md", "gw-test", "loop lag", "sim", "running", "STORAGE", "MQTT", "ALARMS"):
            check(word in out, "status shows %r:\n%s" % (word, out))
        code, out, err = m2mctl("status", "--json", socket=s)
        st = json.loads(out)
        check(st["version"] and st["uptime_s"] >= 0 and "p99" in st["loop_lag_ms"], "status json basics")
        drv = st["drivers"][0]
        check(drv["name"] == "sim" and drv["state"] == "running" and drv["last_error"] == "",
              "driver state and last error: %r" % drv)
        check("readings_per_s" in drv and "readings_per_s" in st, "readings per second")
        for k in ("rows_written", "rows_per_s", "db_bytes", "rows_dropped", "queued"):
            check(k in st["storage"], "storage %s" % k)
        check(isinstance(st["alarms"], list), "alarms listed")
        time.sleep(2.2)
        st = json.loads(m2mctl("status", "--json", socket=s)[1])
        check(st["readings_per_s"] > 10, "a rate after 2 s: %r" % st["readings_per_s"])
        check(st["drivers"][0]["readings_per_s"] > 10, "a driver rate")
        check(st["storage"]["rows_per_s"] > 0, "a write rate")
        check(len(st["alarms"]) == 1 and st["alarms"][0]["rule"] == "hot", "the active alarm: %r" % st["alarms"])

        # The socket from the environment, and from the config with -c.
        code, out, err = m2mctl("status", env={"M2M_SOCKET": s})
        check(code == 0, "M2M_SOCKET is used: %s" % err)
        code, out, err = m2mctl("-c", g.config, "status")
        check(code == 0, "-c finds the socket in [control]: %s" % err)

        code, out, err = m2mctl("points", socket=s)
        check(code == 0 and "boiler1/temperature" in out and "pump1/flow" in out, "points:\n" + out)
        code, out, err = m2mctl("points", "--device", "boiler1", "--json", socket=s)
        pts = json.loads(out)
        check(sorted(p["name"] for p in pts) == ["boiler1/burner", "boiler1/setpoint", "boiler1/temperature"],
              "points --device: %r" % [p["name"] for p in pts])
        code, out, err = m2mctl("points", "--device", "nope", socket=s)
        check(code == 5 and one_line(err), "an unknown device exits 5: %d %r" % (code, err))

        code, out, err = m2mctl("read", "boiler1/setpoint", socket=s)
        check(code == 0 and out.startswith("boiler1/setpoint 70"), "read: %r" % out)
        code, out, err = m2mctl("read", "boiler1/setpoint", "--json", socket=s)
        check(json.loads(out)["value"] == 70, "read --json")
        code, out, err = m2mctl("read", "nope/nope", socket=s)
        check(code == 5 and one_line(err) and "unknown point" in err, "unknown point: %d %r" % (code, err))

        # Writes go through the core's checks and reach the sim driver.
        code, out, err = m2mctl("write", "boiler1/setpoint", "42.5", socket=s)
        check(code == 0, "write: %d %r" % (code, err))
        wait_for(lambda: json.loads(m2mctl("read", "boiler1/setpoint", "--json", socket=s)[1])["value"] == 42.5,
                 5, "the written value to be read back")
        code, out, err = m2mctl("write", "boiler1/burner", "off", socket=s)
        check(code == 0, "write off to a bool")
        code, out, err = m2mctl("write", "boiler1/temperature", "3", socket=s)
        check(code == 6 and one_line(err) and "not writable" in err, "read-only point: %d %r" % (code, err))
        code, out, err = m2mctl("write", "boiler1/setpoint", "500", socket=s)
        check(code == 6 and one_line(err), "outside the limits: %d %r" % (code, err))
        code, out, err = m2mctl("write", "boiler1/setpoint", "warm", socket=s)
        check(code == 2 and one_line(err) and "cannot parse value" in err, "unparsable: %d %r" % (code, err))
        code, out, err = m2mctl("write", "boiler1/setpoint", "nan", socket=s)
        check(code == 2, "nan does not parse as a value")
        code, out, err = m2mctl("write", "nope/nope", "1", socket=s)
        check(code == 5 and one_line(err), "write to an unknown point: %d" % code)
        def write_events():
            rows = g.query("SELECT source, to_state FROM events WHERE kind = 'write' ORDER BY id")
            return rows if len(rows) >= 5 else None
        # Two accepted writes, three refusals (the unknown point included); committed in the background.
        writes = wait_for(write_events, 5, "the write events to be committed")
        check(("ctl:uid=%d" % os.geteuid(), "ok") in writes, "the write event names the uid: %r" % writes)
        check(sum(1 for w in writes if w[1] == "refused") >= 2, "refusals are events: %r" % writes)

        code, out, err = m2mctl("rules", socket=s)
        check(code == 0 and "hot" in out and "boiler1/temperature" in out, "rules:\n" + out)
        code, out, err = m2mctl("rules", "--json", socket=s)
        check([(a["rule"], a["state"]) for a in json.loads(out)] == [("hot", "active")],
              "rules --json lists the alarms that are not normal: %s" % out)
        code, out, err = m2mctl("rules", "--all", "--json", socket=s)
        check(sorted((a["rule"], a["state"]) for a in json.loads(out)) == [("frozen", "normal"), ("hot", "active")],
              "rules --all lists the normal rules too: %s" % out)
        code, out, err = m2mctl("rules", "--all", socket=s)
        check(code == 0 and "frozen" in out and "normal" in out, "rules --all:\n" + out)
        code, out, err = m2mctl("ack", "hot", socket=s)
        check(code == 0 and "1 alarm" in out, "ack: %d %r %r" % (code, out, err))
        check(json.loads(m2mctl("rules", "--json", socket=s)[1])[0]["state"] == "acked", "acked")
        code, out, err = m2mctl("ack", "nope", socket=s)
        check(code == 5 and one_line(err), "ack of an unknown rule: %d %r" % (code, err))

        # tail: live readings, filtered by a pattern, as JSON lines.
        p = subprocess.Popen([M2MCTL, "-s", s, "--json", "tail", "pump1/*"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        lines = []
        deadline = time.monotonic() + 10 * SLOW
        while len(lines) < 5 and time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            lines.append(json.loads(line))
        p.send_signal(signal.SIGINT)
        p.wait(5)
        check(len(lines) == 5 and all(x["point"] == "pump1/flow" for x in lines), "tail: %r" % lines)
        check(lines[1]["value"] > lines[0]["value"], "live counter values")
        p = subprocess.Popen([M2MCTL, "-s", s, "tail"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = p.stdout.readline().decode()
        p.kill()
        p.wait()
        check("good" in line and ("boiler1/" in line or "pump1/" in line), "human tail: %r" % line)

        code, out, err = m2mctl("reload", socket=s)
        check(code == 0, "reload: %r" % err)
        wait_for(lambda: "configuration reloaded" in g.run_log(), 10, "the reload")
        code, out, err = m2mctl("reload", "--json", socket=s)
        check(json.loads(out)["reloading"] is True, "reload --json")

        p = subprocess.Popen([M2MCTL, "-s", s, "status", "--watch", "--interval", "0.2", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        frames = [json.loads(p.stdout.readline()) for _ in range(3)]
        p.send_signal(signal.SIGINT)
        check(p.wait(5) == 0, "status --watch ends cleanly on Ctrl-C")
        check(all("uptime_s" in f for f in frames) and frames[2]["uptime_s"] > frames[0]["uptime_s"],
              "--watch refreshes")

        # Usage errors: one line, exit 2.
        for args in (["frobnicate"], [], ["read"], ["write", "x"], ["status", "extra"], ["--bogus", "status"],
                     ["history", "x", "--since", "yesterday"], ["--json", "--csv", "status"]):
            code, out, err = m2mctl(*args, socket=s)
            check(code == 2, "%r exits 2, got %d" % (args, code))
            check(out == "", "%r prints nothing on stdout" % args)
        code, out, err = m2mctl("--help")
        check(code == 0 and "Exit status" in out, "--help documents exit codes")
    finally:
        check(g.stop() == 0, "m2md exits cleanly")

    # The daemon is gone: live commands say so in one line and exit 3.
    for args in (["status"], ["write", "boiler1/setpoint", "1"], ["tail"]):
        code, out, err = m2mctl(*args, socket=s)
        check(code == 3 and one_line(err) and "not running" in err, "%r without m2md: %d %r" % (args, code, err))
    code, out, err = m2mctl("status", socket=os.path.join(g.dir, "nowhere", "m2md.sock"))
    check(code == 3 and "not running" in err, "a missing socket")

    # history and events read the database with the daemon stopped.
    code, out, err = m2mctl("-c", g.config, "history", "pump1/flow", "--since", "1h")
    check(code == 0 and "TIME" in out and len(out.splitlines()) > 5, "history: %r %r" % (out[:200], err))
    code, out, err = m2mctl("-c", g.config, "history", "pump1/flow", "--since", "1h", "--json")
    rows = json.loads(out)
    check(len(rows) > 5 and all(r["quality"] == "good" for r in rows), "history --json")
    vals = [r["value"] for r in rows]
    check(vals == sorted(vals), "in time order")
    code, out, err = m2mctl("-c", g.config, "history", "boiler1/temperature", "--csv", "--limit", "3")
    rows = list(csv.reader(io.StringIO(out)))
    check(rows[0] == ["time", "ts_us", "value", "unit", "quality"] and len(rows) == 4, "csv: %r" % rows)
    check(rows[1][3] == "C", "the unit in csv")
    code, out, err = m2mctl("-c", g.config, "history", "pump1/flow", "--since", "2000-01-01T00:00:00Z",
                            "--until", "2000-01-02", "--json")
    check(code == 0 and json.loads(out) == [], "an empty range is empty, not an error")
    code, out, err = m2mctl("-c", g.config, "history", "nope/nope")
    check(code == 5 and one_line(err), "history of an unknown point: %d %r" % (code, err))
    code, out, err = m2mctl("-c", g.config, "events", "--since", "1h", "--json")
    ev = json.loads(out)
    kinds = {e["kind"] for e in ev}
    check({"write", "rule", "reload"} <= kinds, "events: %r" % kinds)
    code, out, err = m2mctl("-c", g.config, "events", "--limit", "2")
    check(code == 0 and len(out.splitlines()) == 3, "events --limit: %r" % out)
    code, out, err = m2mctl("-c", os.path.join(g.dir, "missing.toml"), "history", "x")
    check(code == 2 and one_line(err), "a missing config: %d %r" % (code, err))
    os.rename(g.db, g.db + ".away")
    code, out, err = m2mctl("-c", g.config, "history", "pump1/flow")
    check(code == 8 and one_line(err), "a missing database exits 8: %d %r" % (code, err))
    os.rename(g.db + ".away", g.db)


EXACT = """
[drivers.sim]
plugin = "sim"
[[drivers.sim.points]]
name = "meter/voltage"
unit = "°C"
signal = "constant"
value = 51.400000000000006
interval = "50ms"
[[drivers.sim.points]]
name = "meter/a_point_with_a_name_much_longer_than_its_column"
unit = "kWh/m³·h"
signal = "constant"
value = 123456789.25
writable = true
min = 0
max = 90
interval = "50ms"
[[drivers.sim.points]]
name = "meter/switch"
kind = "bool"
signal = "constant"
value = 1
writable = true
interval = "50ms"

[[rules]]
name = "never"
point = "meter/voltage"
condition = ">"
value = 1000
"""


def test_exact_and_readable():
    """JSON numbers are exact (shortest round-trip doubles, integer
    timestamps) from the daemon and from m2mctl --json; tables align with
    UTF-8 units and long names; a rule never raised shows "-" as its time;
    refused writes say why in words."""
    g = Gateway("m2mctl-exact", EXACT).start()
    s = g.socket
    try:
        wait_for(lambda: g.count("meter/voltage") >= 2, 10, "readings")
        code, raw, err = m2mctl("read", "meter/voltage", "--json", socket=s)
        check(code == 0 and re.search(r'"value":\s*51.400000000000006\b', raw),
              "read --json keeps 51.400000000000006: %r" % raw)
        check(re.search(r'"ts":\s*\d{16}\b[^.e]', raw), "ts is an integer: %r" % raw)
        for cmd in (["points"], ["read", "meter/voltage"], ["status"]):
            code, raw, err = m2mctl(*(cmd + ["--json"]), socket=s)
            check(code == 0 and not re.search(r"\d[eE][+-]?\d", raw),
                  "%r --json has no exponent form: %r" % (cmd, raw[:400]))
        # The daemon's own reply, not m2mctl's rendering of it.
        line = ctl_raw(g, {"id": 1, "cmd": "points"})
        check("51.400000000000006" in line and "123456789.25" in line, "the daemon's reply: %r" % line)
        for ts in re.findall(r'"ts":([^,}]*)', line):
            check(re.fullmatch(r"\d+", ts), "every ts is an integer: %r" % ts)

        code, out, err = m2mctl("points", socket=s)
        lines = out.splitlines()
        col = lines[0].index("QUALITY")
        for row in lines[1:]:
            check(row[col - 1] == " " and row[col:].split()[0] in ("good", "out_of_range"),
                  "QUALITY column aligned in %r:\n%s" % (row, out))
        check("°C" in out, "the unit is shown: %s" % out)

        code, out, err = m2mctl("rules", "--all", socket=s)
        row = [x for x in out.splitlines() if x.startswith("never")]
        check(row and row[0].split()[-1] == "-" and "1970" not in out,
              "a rule never raised has no time: %r" % out)

        code, out, err = m2mctl("write", "meter/switch", "2", socket=s)
        check(code == 6 and "expected 0 or 1" in err and "Invalid argument" not in err,
              "bool refusal in words: %r" % err)
        code, out, err = m2mctl("write", "meter/a_point_with_a_name_much_longer_than_its_column",
                                "555.5", socket=s)
        check(code == 6 and "value 555.5 is above max 90" in err, "limit refusal in words: %r" % err)
        code, out, err = m2mctl("write", "meter/nope", "1", socket=s)
        check(code == 5 and "unknown point 'meter/nope'" in err, "unknown point: %r" % err)
        wait_for(lambda: g.query("SELECT count(*) FROM events WHERE kind = 'write'")[0][0] >= 3, 5,
                 "the refusals as events")
        texts = [r[0] for r in g.query("SELECT text FROM events WHERE kind = 'write' ORDER BY id")]
        check(any("expected 0 or 1" in t for t in texts) and
              not any("No such file" in t or "Invalid argument" in t for t in texts),
              "events say why in words: %r" % texts)
        check("No such file" not in g.run_log() and "Invalid argument" not in g.run_log(),
              "the log says why in words")
    finally:
        check(g.stop() == 0, "m2md exits cleanly")
    # An event's value and time, as m2mctl events --json prints them from the database.
    con = sqlite3.connect(g.db)
    con.execute("INSERT INTO events(ts, kind, source, value, text) VALUES "
                "(1796113194548450, 'test', 'test', 51.400000000000006, 'exact')")
    con.commit()
    con.close()
    code, raw, err = m2mctl("-c", g.config, "events", "--json", "--limit", "1")
    check(code == 0 and re.search(r'"ts":\s*1796113194548450\b', raw) and
          "51.400000000000006" in raw, "events --json is exact: %r" % raw)
    code, raw, err = m2mctl("-c", g.config, "history", "meter/voltage", "--json", "--limit", "1")
    check(code == 0 and "51.400000000000006" in raw, "history --json is exact: %r" % raw)
    code, raw, err = m2mctl("-c", g.config, "history", "meter/voltage", "--csv", "--limit", "1")
    check(code == 0 and ",51.400000000000006," in raw, "history --csv is exact: %r" % raw)


def test_history_while_running():
    """WAL lets a read-only reader in while the daemon writes."""
    g = Gateway("m2mctl-live", SIM).start()
    try:
        wait_for(lambda: g.count("pump1/flow") >= 10, 10, "readings")
        code, out, err = m2mctl("-c", g.config, "history", "pump1/flow", "--json")
        check(code == 0 and len(json.loads(out)) >= 10, "history while m2md runs: %r" % err)
    finally:
        g.stop()


if __name__ == "__main__":
    main([test_commands, test_exact_and_readable, test_history_while_running])
