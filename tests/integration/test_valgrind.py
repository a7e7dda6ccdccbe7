# SPDX-License-Identifier: MIT
"""The daemon under valgrind: start, ingest, reload, stop, with no memory
errors and no leaks."""

import shutil
import signal

from m2mtest import Gateway, check, main, wait_for

SIM = """
[drivers.sim]
plugin = "sim"
[[drivers.sim.points]]
name = "v/count"
signal = "counter"
interval = "20ms"
[[drivers.sim.points]]
name = "v/temp"
signal = "integrate"
input = "v/burner"
rate_on = 1
rate_off = -1
interval = "20ms"
deadband = 0.1
[[drivers.sim.points]]
name = "v/burner"
kind = "bool"
signal = "constant"
value = 1
writable = true
interval = "20ms"
"""


def test_valgrind():
    vg = shutil.which("valgrind")
    check(vg is not None, "valgrind is installed (tools/install-deps test installs it)")
    g = Gateway("valgrind", SIM)
    g.wrapper = [vg, "--quiet", "--error-exitcode=99", "--leak-check=full",
                 "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                 "--track-fds=no", "--log-file=" + g.dir + "/valgrind.log"]
    g.start()
    wait_for(lambda: g.count("v/count") >= 20, 60, "rows under valgrind")
    g.write_config(SIM.replace("value = 1", "value = 0"))
    g.signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in g.log_text(), 60, "reload under valgrind")
    wait_for(lambda: g.count("v/count") >= 40, 60, "rows after reload")
    code = g.stop(timeout=60)
    with open(g.dir + "/valgrind.log") as f:
        report = f.read()
    check(code == 0, "exit 0 under valgrind (99 = valgrind found errors), got %r:\n%s" % (code, report))
    check("definitely lost" not in report, "no definite leaks:\n" + report)


if __name__ == "__main__":
    main([test_valgrind])
