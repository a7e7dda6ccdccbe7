#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""End-to-end latency benchmark (issue 13): a polled value from the device's
answer to a subscriber of the broker.

  device      bench-latency-sim: Modbus TCP (libmodbus server API); every
              register of an answer holds the request's counter, and the
              time the answer left is recorded against it (CLOCK_REALTIME)
  gateway     m2md polling N holding registers every 100 ms (one device,
              one connection), telemetry at QoS 0 to the broker
  broker      a private mosquitto on 127.0.0.1 (set_tcp_nodelay on its side)
  subscriber  bench-latency-sub: stamps each message's arrival (CLOCK_REALTIME,
              the same machine and clock as the device)
  baseline    bench-latency-baseline: libmodbus reads and libmosquitto
              publishes in one loop, nothing stored, the same N, same run

Printed for N = 100, 1,000 and 10,000 (M2M_BENCH_SIZES overrides): latency
p50 / p99 / max (device answer -> subscriber), the p50 of the first message
of each answer (what the pipeline adds before a burst queues up behind it), CPU s per 1,000 readings (all
threads, /proc/PID/task/*/schedstat), Modbus requests/s at the device, peak RSS (VmHWM),
and m2md's loop lag p99 and the p99 of the CPU time of its loop turns
(what m2md's own work held the loop for; medians of its 2 s stats
windows), and how many ms per second the loop thread (the baseline's
only thread) waited for a core while it was runnable. Then the QoS 1
runs: N = 1,000 through the durable outbox at the default commit interval
(100 ms) and at 10 ms, which bounds what a durable message waits
(M2M_BENCH_QOS1=0 leaves them out).
M2M_BENCH_LOOP_FIFO=1 adds a row per size, "rt": the same m2md with all
its threads under SCHED_FIFO (priority 10; needs CAP_SYS_NICE), so that
its loop never waits for a core behind the device, the broker and the
subscriber: what is left of its loop lag is m2md's own.
The machine is shared: the baseline is measured in the same run, figures
are printed, never asserted.

    M2M_BUILD_ROOT=$PWD/build /usr/bin/python3 tests/bench/bench-latency.py [SECONDS]

(an absolute build path: m2md resolves the control socket's relative path
against the config's directory, which would pass the 92-byte limit).
"""

import bisect
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "mqtt"))
from m2mtest import BUILD, Gateway, tmpdir, wait_for  # noqa: E402
from mqttpeer import Broker, mqtt_status  # noqa: E402

TOOLS = os.path.join(BUILD, "tests", "bench")
WARMUP = 4.0


def cpu_seconds(pid):
    """CPU time of all threads of PID, in ns resolution (schedstat), not clock ticks."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # a thread that just ended
    return total / 1e9


def run_delay_s(pid):
    """How long the main thread (m2md's loop, the baseline's only one) waited
    for a core while runnable (the second schedstat field)."""
    with open("/proc/%d/task/%d/schedstat" % (pid, pid)) as f:
        return int(f.read().split()[1]) / 1e9


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def start_ready(args, what):
    """Starts a tool that prints READY (and maybe a port) when it is up."""
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    line = p.stdout.readline().decode()
    if not line.startswith("READY"):
        p.kill()
        raise AssertionError("%s did not start: %r" % (what, line))
    return p, line.split()[1:]


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def read_pairs(path):
    with open(path) as f:
        return [(int(a), int(b)) for a, b in (line.split() for line in f)]


def percentile(v, q):
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def latencies(stamps, arrivals, t0, t1):
    """Answer-to-arrival latencies (ms) of the messages that arrived in [T0, T1),
    and those of the first message of each answer (a block of up to 125)."""
    by_value, first = {}, {}
    for counter, ns in stamps:
        by_value.setdefault(counter % 65536, []).append(ns)
    lat = []
    for value, ns in arrivals:
        if not t0 <= ns < t1:
            continue
        times = by_value.get(value)
        if not times:
            continue
        i = bisect.bisect_right(times, ns) - 1
        if i >= 0:
            ms = (ns - times[i]) / 1e6
            lat.append(ms)
            key = (value, i)
            first[key] = min(first.get(key, ms), ms)
    lat.sort()
    return lat, sorted(first.values())


def m2md_config(port, n, mqtt_port, qos):
    cfg = ('[drivers.plc]\nplugin = "modbus"\ntransport = "tcp"\nhost = "127.0.0.1"\nport = %d\n'
           '[[drivers.plc.devices]]\nname = "d"\nunit_id = 1\ninterval = "100ms"\n' % port)
    cfg += "".join('[[drivers.plc.devices.points]]\nname = "r%d"\ntable = "holding_register"\n'
                   'address = %d\n' % (a, a) for a in range(n))
    cfg += ('[mqtt]\nurl = "mqtt://127.0.0.1:%d"\n[mqtt.telemetry]\nqos = %d\n' % (mqtt_port, qos))
    return cfg


def measure(d, broker, n, seconds, who, qos=0, commit="100ms", loop_fifo=False):
    rt = "-rt" if loop_fifo else ""
    tag = "%s%s-%d-q%d-%s" % (who, rt, n, qos, commit)
    stamps_path = os.path.join(d, tag + "-stamps.txt")
    arrivals_path = os.path.join(d, tag + "-arrivals.txt")
    sim, (port,) = start_ready([os.path.join(TOOLS, "bench-latency-sim"), str(n), stamps_path], "the device")
    sub, _ = start_ready([os.path.join(TOOLS, "bench-latency-sub"), str(broker.port), "#", arrivals_path],
                         "the subscriber")
    gw = proc = None
    lag = turn = "-"
    try:
        if who == "m2md":
            # The commit interval (100 ms by default) is what QoS 1 latency depends on.
            gw = Gateway("bench-latency-%d%s" % (n, rt), m2md_config(int(port), n, broker.port, qos),
                         storage_extra='commit_interval = "%s"\n' % commit,
                         gateway_extra='stats_interval = "2s"\n').start()
            pid = gw.proc.pid
            if loop_fifo:
                # Every thread: with the loop alone above the bus and storage threads,
                # libuv 1.44's uv_async spins (pause, sched_yield) while a sender it
                # preempted is inside uv_async_send, and the loop lag rose to 54 and 64 ms
                # in two runs. Threads created later inherit the policy from the loop.
                try:
                    for tid in os.listdir("/proc/%d/task" % pid):
                        os.sched_setscheduler(int(tid), os.SCHED_FIFO, os.sched_param(10))
                except PermissionError:
                    raise SystemExit("M2M_BENCH_LOOP_FIFO=1: SCHED_FIFO needs CAP_SYS_NICE (run as root)")
            key = "qos0_sent" if qos == 0 else "acked"
            wait_for(lambda: mqtt_status(gw)[key] >= n, 60, "publishing")
        else:
            proc = subprocess.Popen([os.path.join(TOOLS, "bench-latency-baseline"), port, str(broker.port),
                                     str(n), "100"], stdin=subprocess.DEVNULL)
            pid = proc.pid
        time.sleep(WARMUP)
        t0, c0, w0 = time.time_ns(), cpu_seconds(pid), run_delay_s(pid)
        time.sleep(seconds)
        t1, c1, w1 = time.time_ns(), cpu_seconds(pid), run_delay_s(pid)
        hwm = vm_hwm_kib(pid)
        time.sleep(0.3)  # what was answered in the window reaches the subscriber
    finally:
        if gw:
            gw.stop(60)
            p99s = [float(x) for x in re.findall(r"\bstats: .*loop_lag_p99=([0-9.]+)ms", gw.run_log())]
            # The first windows hold the start; the last may be cut short by the stop.
            p99s = sorted(p99s[2:-1] or p99s)
            lag = "%.2f" % percentile(p99s, 0.5) if p99s else "?"
            turns = [float(x) for x in re.findall(r"\bstats: .*loop_turn_cpu_p99=([0-9.]+)ms", gw.run_log())]
            turns = sorted(turns[2:-1] or turns)
            turn = "%.2f" % percentile(turns, 0.5) if turns else "?"
        if proc:
            stop(proc)
        stop(sub)
        stop(sim)
    stamps, arrivals = read_pairs(stamps_path), read_pairs(arrivals_path)
    lat, first = latencies(stamps, arrivals, t0, t1)
    window = (t1 - t0) / 1e9
    requests = sum(1 for _, ns in stamps if t0 <= ns < t1)
    readings = len(lat)
    return {
        "first": percentile(first, 0.5), "p50": percentile(lat, 0.5), "p99": percentile(lat, 0.99), "max": lat[-1] if lat else float("nan"),
        "cpu": (c1 - c0) / (readings / 1000.0) if readings else float("nan"),
        "req_s": requests / window, "readings_s": readings / window, "rss": hwm / 1024.0, "lag": lag,
        "turn": turn, "wait": (w1 - w0) * 1000.0 / ((t1 - t0) / 1e9),
        "expected_s": n * 10.0,
    }


def row(name, r):
    return ("  %-8s %8.2f %8.2f %8.2f %8.1f %10.5f %8.0f %10.0f %8.1f %8s %8s %8.0f"
            % (name, r["first"], r["p50"], r["p99"], r["max"], r["cpu"], r["req_s"], r["readings_s"], r["rss"], r["lag"],
               r["turn"], r["wait"]))


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    sizes = [int(s) for s in os.environ.get("M2M_BENCH_SIZES", "100,1000,10000").split(",")]
    d = tmpdir("bench-latency")
    # The broker is not under test: its own Nagle towards the subscriber
    # would add the subscriber's delayed ACK (~40 ms) to some messages.
    b = Broker(d, extra="set_tcp_nodelay true").start()
    try:
        print("Latency benchmark: device answer -> subscriber, %.0f s windows, %d CPUs, every 100 ms"
              % (seconds, os.cpu_count()), flush=True)
        header = ("  %-8s %8s %8s %8s %8s %10s %8s %10s %8s %8s %8s %8s"
                  % ("", "1st p50", "p50 ms", "p99 ms", "max ms", "CPU s/1k", "req/s", "readings/s", "RSS MiB", "lag p99",
                     "turn p99", "wait/s"))
        for n in sizes:
            print("N = %d holding registers (QoS 0)" % n)
            print(header)
            print(row("m2md", measure(d, b, n, seconds, "m2md")), flush=True)
            print(row("baseline", measure(d, b, n, seconds, "baseline")), flush=True)
            if os.environ.get("M2M_BENCH_LOOP_FIFO") == "1":
                print(row("rt", measure(d, b, n, seconds, "m2md", loop_fifo=True)), flush=True)
        if os.environ.get("M2M_BENCH_QOS1", "1") == "0":
            return
        print("N = 1000, QoS 1 through the outbox (device answer -> commit -> broker -> subscriber)")
        print(header)
        for commit in ("100ms", "10ms"):
            print(row(commit, measure(d, b, 1000, seconds, "m2md", qos=1, commit=commit)), flush=True)
    finally:
        b.stop()


if __name__ == "__main__":
    main()
