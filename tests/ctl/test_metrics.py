# SPDX-License-Identifier: MIT
"""The "metrics" verb of the control socket and `m2mctl metrics`, against a
real daemon with the sim driver, the ABI 1.1 and 1.0 fixture plugins and
MQTT to a real mosquitto: the Prometheus text exposition parses with the
Prometheus project's own parser, has the families docs/metrics.md lists,
and its values are those of the status JSON around it (a counter between
the status before and the status after; what does not move, equal). A
reload that replaces a driver leaves one set of its series, the new
instance's; a driver taken out of the config takes its series along.

Arguments: the plugins to load (abi11.so, abi10.so, sim.so), as for test_abi11.py."""

import json
import os
import sys

from prometheus_client.parser import text_string_to_metric_families

from ctltest import SIM, m2mctl
from m2mtest import SOURCE, check, ctl, main, tmpdir, wait_for

sys.path.insert(0, os.path.join(SOURCE, "tests", "mqtt"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "plugin"))
from mqttpeer import Broker  # noqa: E402
from test_abi11 import DRIVERS as FIXTURES, gateway as fixture_gateway  # noqa: E402
from test_mqtt import mqtt_table  # noqa: E402


def config(port, interval="50ms", fixtures=True):
    return SIM.replace('"50ms"', '"%s"' % interval) + (FIXTURES if fixtures else "") + mqtt_table(port)


def gateway(name):
    """A gateway with sim, the fixture plugins of argv and MQTT to a broker of its own."""
    b = Broker(tmpdir(name + "-broker")).start()
    return fixture_gateway(name, config(b.port)), b


def status(g):
    return ctl(g, {"id": 1, "cmd": "status"})["result"]


def scrape(g):
    """The exposition by the verb: {family name: family} and the text."""
    r = ctl(g, {"id": 2, "cmd": "metrics"})
    check(r["ok"] and isinstance(r["result"], str), "metrics answers a text: %r" % r)
    return {f.name: f for f in text_string_to_metric_families(r["result"])}, r["result"]


def sample(fams, family, suffix="", **labels):
    """The value of FAMILY's sample (name FAMILY + SUFFIX) whose labels include LABELS."""
    f = fams.get(family)
    check(f is not None, "family %s is exposed" % family)
    got = [s for s in f.samples
           if s.name == family + suffix and all(s.labels.get(k) == v for k, v in labels.items())]
    check(len(got) == 1, "one sample of %s%s %r: %r" % (family, suffix, labels, f.samples))
    return got[0].value


def driver(st, name):
    return next(d for d in st["drivers"] if d["name"] == name)


def between(what, before, value, after):
    check(before <= value <= after, "%s: %r <= %r <= %r" % (what, before, value, after))


def test_exposition_matches_status():
    g, b = gateway("metrics-verb")
    try:
        wait_for(lambda: (lambda s: s["mqtt"]["state"] == "connected" and s["readings_in"] > 50
                          and s["mqtt"]["sent"] > 0 and driver(s, "fx")["stats"].get("rearms") == 3
                          and s["storage"]["rows_written"] > 0)(status(g)),
                 10, "readings, MQTT messages, the fixture's statistics")
        s1 = status(g)
        fams, text = scrape(g)
        s2 = status(g)

        # The types, as the parser reads them: counters without their _total, infos as gauges.
        types = {"m2md_info": "gauge", "m2md_uptime_seconds": "gauge",
                 "m2md_readings_received": "counter", "m2md_readings_stored": "counter",
                 "m2md_writes": "counter", "m2md_loop_lag_milliseconds": "gauge",
                 "m2md_storage_rows_written": "counter", "m2md_storage_queued": "gauge",
                 "m2md_driver_info": "gauge", "m2md_driver_readings": "counter",
                 "m2md_driver_points": "gauge", "m2md_driver_running": "gauge",
                 "m2md_abi11_rearms": "counter", "m2md_abi11_polls": "counter",
                 "m2md_driver_stat": "gauge", "m2md_mqtt_info": "gauge", "m2md_mqtt_connected": "gauge",
                 "m2md_mqtt_sent": "counter", "m2md_mqtt_outbox_queued": "gauge",
                 "m2md_control_requests": "counter", "m2md_control_clients": "gauge",
                 "m2md_rules_configured": "gauge", "m2md_rules_instances_active": "gauge",
                 "m2md_rules_evaluations": "counter", "m2md_rules_actions": "counter"}
        for name, t in types.items():
            check(name in fams and fams[name].type == t,
                  "%s is a %s: %r" % (name, t, fams.get(name) and fams[name].type))
        check("# TYPE m2md_readings_received_total counter" in text and
              "# TYPE m2md_info gauge" in text, "counters end in _total, infos in _info")

        check(sample(fams, "m2md_info", version=s1["version"], gateway="gw-test") == 1,
              "m2md_info carries the version and the gateway id")
        for key, fam in (("readings_in", "m2md_readings_received"),
                         ("readings_stored", "m2md_readings_stored")):
            between(fam, s1[key], sample(fams, fam, "_total"), s2[key])
        between("rows written", s1["storage"]["rows_written"],
                sample(fams, "m2md_storage_rows_written", "_total"), s2["storage"]["rows_written"])
        check(sample(fams, "m2md_writes", "_total", result="ok") == s1["writes_ok"] == 0,
              "no writes yet")
        between("uptime", s1["uptime_s"], sample(fams, "m2md_uptime_seconds"), s2["uptime_s"])
        check(sample(fams, "m2md_drivers") == 3 and sample(fams, "m2md_drivers_running") == 3,
              "three drivers, all running")

        # Drivers: one info each, and their figures as status shows them.
        for name, plugin in (("sim", "sim"), ("fx", "abi11"), ("old", "abi10")):
            check(sample(fams, "m2md_driver_info", driver=name, plugin=plugin) == 1,
                  "driver info of %s" % name)
            check(sample(fams, "m2md_driver_points", driver=name) == driver(s1, name)["points"],
                  "points of %s" % name)
            check(sample(fams, "m2md_driver_running", driver=name) == 1, "%s runs" % name)
            between("readings of " + name, driver(s1, name)["readings"],
                    sample(fams, "m2md_driver_readings", "_total", driver=name),
                    driver(s2, name)["readings"])
        # Typed statistics (stat_declare): the plugin's name, kind, help and device label.
        st1, st2 = driver(s1, "fx")["stats"], driver(s2, "fx")["stats"]
        check(sample(fams, "m2md_abi11_rearms", "_total", driver="fx", device="") == st1["rearms"] == 3,
              "a declared counter of the whole instance")
        check(fams["m2md_abi11_rearms"].documentation == "Runs of the rearmed timer",
              "the declared help: %r" % fams["m2md_abi11_rearms"].documentation)
        between("polls of dev1", st1["polls.dev1"],
                sample(fams, "m2md_abi11_polls", "_total", driver="fx", device="dev1"), st2["polls.dev1"])
        # The 1.0 plugin's stat(): a gauge named by its statistic. Its "ticks" goes on
        # counting while the scrape runs (a tick came between on a slow machine), so each
        # lies between what status showed before and after, as the counters above.
        old, old2 = driver(s1, "old")["stats"], driver(s2, "old")["stats"]
        check(old, "the 1.0 fixture reports statistics: %r" % old)
        for k, v in old.items():
            between("1.0 stat " + k, v, sample(fams, "m2md_driver_stat", driver="old", stat=k), old2[k])
        # Each statistic status shows is a series of its driver, and no more.
        check(sum(1 for s in fams["m2md_driver_stat"].samples if s.labels["driver"] == "fx") +
              sum(len(f.samples) for n, f in fams.items() if n.startswith("m2md_abi11_"))
              == len(st1), "every statistic of fx once: %r" % sorted(st1))

        # MQTT and the control socket.
        m1, m2 = s1["mqtt"], s2["mqtt"]
        check(sample(fams, "m2md_mqtt_connected") == 1, "connected")
        check(sample(fams, "m2md_mqtt_info", url=m1["url"], client_id=m1["client_id"],
                     protocol=m1["protocol"]) == 1, "the broker's info")
        for key in ("sent", "acked", "connects"):
            between("mqtt " + key, m1[key], sample(fams, "m2md_mqtt_" + key, "_total"), m2[key])
        check(sample(fams, "m2md_mqtt_outbox_max_messages") == m1["outbox"]["max_messages"],
              "the outbox limit")
        between("control requests", s1["control"]["requests"],
                sample(fams, "m2md_control_requests", "_total"), s2["control"]["requests"])
        check(s1["control"]["socket"] == g.socket, "status keeps the socket's path")

        # The rules of ctltest.SIM: "hot" (latched at once) and "frozen" (normal).
        alarms = ctl(g, {"id": 4, "cmd": "rules"})["result"]
        check(sample(fams, "m2md_rules_configured") == 2 and sample(fams, "m2md_rules_instances") == 2,
              "two rules on one point each")
        check(sample(fams, "m2md_rules_instances_active") == len(alarms) == 1,
              "one alarm not normal: %r" % alarms)
        check(sample(fams, "m2md_rules_evaluations", "_total") > 0 and
              sample(fams, "m2md_rules_transitions", "_total") >= 1, "the rules evaluated readings")

        # m2mctl metrics prints the same exposition; --json gives it as one string.
        code, out, err = m2mctl("metrics", socket=g.socket)
        check(code == 0 and out.startswith("# HELP "), "m2mctl metrics: %d %r %r" % (code, out[:80], err))
        printed = {f.name: f for f in text_string_to_metric_families(out)}
        check(set(printed) == set(fams), "m2mctl metrics shows every family: %r" %
              (set(printed) ^ set(fams)))
        code, out, err = m2mctl("--json", "metrics", socket=g.socket)
        check(code == 0 and json.loads(out).startswith("# HELP "), "m2mctl --json metrics: %r" % out[:80])
        code, out, err = m2mctl("metrics", "extra", socket=g.socket)
        check(code == 2, "metrics takes no arguments: %d %r" % (code, err))
        r = ctl(g, {"id": 3, "cmd": "help"})
        check("metrics" in r["result"], "help lists metrics: %r" % r)
    finally:
        g.stop()
        b.stop()


def test_reload_replaces_series():
    g, b = gateway("metrics-reload")
    try:
        wait_for(lambda: driver(status(g), "sim")["readings"] > 100, 10, "sim readings")
        before = sample(scrape(g)[0], "m2md_driver_readings", "_total", driver="sim")
        # A changed section replaces the instance: its counter starts again, once.
        g.write_config(config(b.port, interval="200ms"))
        ctl(g, {"id": 1, "cmd": "reload"})
        wait_for(lambda: status(g)["reloads"] == 1 and
                 all(d["state"] == "running" for d in status(g)["drivers"]) and
                 len(status(g)["drivers"]) == 3, 10, "the reload")
        fams = scrape(g)[0]
        after = sample(fams, "m2md_driver_readings", "_total", driver="sim")
        check(after < before, "the new instance counts from 0: %r < %r" % (after, before))
        check(sample(fams, "m2md_driver_starts", "_total", driver="sim") == 1, "started once")
        check(sample(fams, "m2md_reloads", "_total") == 1, "one reload counted")
        # A driver gone from the config takes its series along; the others stay.
        g.write_config(config(b.port, interval="200ms", fixtures=False))
        ctl(g, {"id": 1, "cmd": "reload"})
        wait_for(lambda: status(g)["reloads"] == 2 and len(status(g)["drivers"]) == 1, 10,
                 "the second reload")
        fams = scrape(g)[0]
        drivers = {s.labels["driver"] for s in fams["m2md_driver_info"].samples}
        check(drivers == {"sim"}, "only sim is left: %r" % drivers)
        check(not any(n.startswith("m2md_abi11_") for n in fams) and "m2md_driver_stat" not in fams,
              "the fixtures' statistics went with them: %r" % sorted(fams))
        check(sample(fams, "m2md_drivers") == 1, "one driver")
    finally:
        g.stop()
        b.stop()


if __name__ == "__main__":
    main([test_exposition_matches_status, test_reload_replaces_series])
