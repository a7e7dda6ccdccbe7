#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The daemon's TOML parser runs as its own process, m2md-toml
(src/config-toml-exec.c): m2md maps neither libstdc++ nor toml++ nor
libsystemd; it finds the parser beside itself; and a parser that is
missing, crashes or answers garbage is reported with the file's name and
never takes the daemon down (a reload keeps the running configuration)."""

import atexit
import os
import shutil
import signal
import stat
import subprocess
import tempfile

from m2mtest import BUILD, M2MD, PLUGIN_DIR, SLOW, Gateway, check, main, wait_for

PARSER = os.path.join(BUILD, "src", "m2md-toml")
SIM = '[drivers.sim]\nplugin = "sim"\n[[drivers.sim.points]]\nname = "line/p1"\nsignal = "ramp"\ninterval = "100ms"\n'
CONFIG = '''[gateway]
id = "parser-test"
plugin_dir = "%s"
[storage]
path = "%s/m2md.db"
[control]
socket = "%s/m2md.sock"
''' + SIM.replace("%", "%%")


def needed(binary):
    out = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
    return [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def copy_of_m2md(name, parser_script=None, with_parser=True):
    """m2md in a directory of its own, with the real parser beside it, a
    script in its place, or none. Outside the build tree, where m2md would
    otherwise find the build's parser."""
    d = tempfile.mkdtemp(prefix="m2md-%s-" % name, dir="/tmp")
    atexit.register(shutil.rmtree, d, True)
    shutil.copy2(M2MD, d)
    target = os.path.join(d, "m2md-toml")
    if parser_script is not None:
        with open(target, "w") as f:
            f.write("#!/bin/sh\n" + parser_script + "\n")
        os.chmod(target, 0o755)
    elif with_parser:
        shutil.copy2(PARSER, target)
    cfg = os.path.join(d, "m2md.toml")
    with open(cfg, "w") as f:
        f.write(CONFIG % (PLUGIN_DIR, d, d))
    return d, os.path.join(d, "m2md"), cfg


def run_check(binary, cfg):
    p = subprocess.run([binary, "--check", "-c", cfg], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30 * SLOW)
    return p.returncode, p.stdout + p.stderr


def test_no_cxx_runtime_in_the_daemon():
    libs = needed(M2MD)
    # (libgcc_s is not one of them: 32-bit ARM C programs link it for their own helpers.)
    for lib in ("libstdc++", "libtomlplusplus", "libsystemd"):
        check(not any(n.startswith(lib) for n in libs), "m2md does not link %s: %s" % (lib, libs))
    check(any(n.startswith("libtomlplusplus") for n in needed(PARSER)), "m2md-toml links toml++")


def test_parser_beside_the_binary():
    _, binary, cfg = copy_of_m2md("parser-beside")
    code, out = run_check(binary, cfg)
    check(code == 0, "a copy of m2md with its parser beside it checks its config: %d %s" % (code, out))


def test_parser_crashes():
    _, binary, cfg = copy_of_m2md("parser-crash", "kill -SEGV $$")
    code, out = run_check(binary, cfg)
    check(code != 0, "a crashed parser fails the check (%d)" % code)
    check("m2md.toml: the configuration parser" in out and "killed by signal 11" in out,
          "the crash is reported with the file's name: %s" % out)


def test_parser_fails():
    _, binary, cfg = copy_of_m2md("parser-fails", "exit 3")
    code, out = run_check(binary, cfg)
    check(code != 0 and "failed (exit status 3)" in out, "a failing parser is reported: %d %s" % (code, out))


def test_parser_answers_garbage():
    _, binary, cfg = copy_of_m2md("parser-garbage", "cat /dev/stdin; printf 'M2MT'")
    code, out = run_check(binary, cfg)
    check(code != 0 and "answer is malformed" in out, "a malformed answer is reported: %d %s" % (code, out))


def test_parser_missing():
    _, binary, cfg = copy_of_m2md("parser-missing", with_parser=False)
    code, out = run_check(binary, cfg)
    if any(os.path.exists(p) for p in ("/usr/libexec/m2md/m2md-toml", "/usr/local/libexec/m2md/m2md-toml")):
        return  # an installed parser stands in for the missing one
    # posix_spawn says why; where it cannot (under qemu-user) the child's exit status 127 does.
    check(code != 0 and "cannot run the configuration parser" in out
          and ("No such file" in out or "missing or not executable" in out),
          "a missing parser is named: %d %s" % (code, out))


def test_reload_survives_a_crashing_parser():
    d, binary, _ = copy_of_m2md("parser-reload")
    g = Gateway("parser-reload", SIM, directory=d)
    g.binary = binary
    g.start()
    try:
        # The parser breaks after the start; a reload must keep what runs.
        parser = os.path.join(d, "m2md-toml")
        os.unlink(parser)
        with open(parser, "w") as f:
            f.write("#!/bin/sh\nkill -SEGV $$\n")
        os.chmod(parser, stat.S_IRWXU)
        g.signal(signal.SIGHUP)
        wait_for(lambda: "reload failed" in g.run_log(), 10, "the failed reload to be logged")
        check("killed by signal 11" in g.run_log(), "the reload names the crash: %s" % g.run_log())
        check(g.proc.poll() is None, "m2md still runs after the parser crashed")
        n = g.count("line/p1")
        wait_for(lambda: g.count("line/p1") > n, 10, "readings to go on after the failed reload")
    finally:
        check(g.stop() == 0, "clean stop")


if __name__ == "__main__":
    main([test_no_cxx_runtime_in_the_daemon, test_parser_beside_the_binary, test_parser_crashes,
          test_parser_fails, test_parser_answers_garbage, test_parser_missing,
          test_reload_survives_a_crashing_parser])
