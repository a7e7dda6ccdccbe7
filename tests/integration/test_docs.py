# SPDX-License-Identifier: MIT
"""The commands README.md, docs/ and the example configs give for a clone
work from a clone: every `m2md -c conf/X.toml` or `m2md --check -c
conf/X.toml` they show is run (as `--check`) from the source tree with the
build tree's m2md, which finds the build's plugins by itself; each
conf/*.toml is valid as it is; and the README's first run starts and stops
cleanly (its storage and socket moved into a scratch directory with
--conf-dir, so that the test writes nothing outside the build tree)."""

import glob
import os
import re
import signal
import subprocess

from m2mtest import BUILD, M2MD, SLOW, SOURCE, check, main, tmpdir, wait_for

# "build/src/m2md -c conf/m2md.toml", "m2md --check -c conf/mqtt.toml"
COMMAND = re.compile(r"(?:build/src/)?m2md((?: --[a-z-]+(?: [a-z]+)?)*) -c (conf/[\w.-]+\.toml)")


def doc_commands():
    found = set()
    files = [os.path.join(SOURCE, "README.md")] + sorted(glob.glob(os.path.join(SOURCE, "docs", "*.md")))
    files += sorted(glob.glob(os.path.join(SOURCE, "conf", "*.toml")))
    for path in files:
        with open(path) as f:
            for m in COMMAND.finditer(f.read()):
                found.add((os.path.relpath(path, SOURCE), m.group(0), m.group(2)))
    return sorted(found)


def check_config(config):
    p = subprocess.run([M2MD, "--check", "-c", config], cwd=SOURCE, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30 * SLOW)
    return p.returncode, (p.stdout + p.stderr).decode()


def test_documented_commands():
    cmds = doc_commands()
    seen = {(src, cmd) for src, cmd, _ in cmds}
    # The test must not pass by finding nothing.
    check(("README.md", "build/src/m2md -c conf/m2md.toml") in seen,
          "the README's first run is among the commands: %r" % sorted(seen))
    check(("docs/mqtt.md", "m2md --check -c conf/mqtt.toml") in seen,
          "docs/mqtt.md's check is among them: %r" % sorted(seen))
    for src, cmd, config in cmds:
        code, out = check_config(config)
        check(code == 0, "%s: `%s` from a clone: exit %d: %s" % (src, cmd, code, out))
    for config in sorted(glob.glob(os.path.join(SOURCE, "conf", "*.toml"))):
        code, out = check_config(os.path.relpath(config, SOURCE))
        check(code == 0, "%s is valid as it is: %s" % (config, out))


def test_readme_first_run():
    d = tmpdir("docs-first-run")
    with open(os.path.join(d, "scratch.toml"), "w") as f:
        f.write('[storage]\npath = "%s"\n\n[control]\nsocket = "%s"\n'
                % (os.path.join(d, "m2md.db"), os.path.join(d, "m2md.sock")))
    log = open(os.path.join(d, "m2md.log"), "wb")
    p = subprocess.Popen([M2MD, "-c", "conf/m2md.toml", "--log-level", "debug", "--conf-dir", d],
                         cwd=SOURCE, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        def text():
            with open(os.path.join(d, "m2md.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        wait_for(lambda: "started:" in text() or p.poll() is not None, 15, "m2md to start")
        check(p.poll() is None, "the README's first run starts:\n" + text())
        check("plugins from %s\n" % os.path.join(os.path.realpath(BUILD), "plugins") in text(),
              "with the build tree's plugins:\n" + text())
        p.send_signal(signal.SIGTERM)
        check(p.wait(15 * SLOW) == 0, "and stops cleanly:\n" + text())
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()


if __name__ == "__main__":
    main([test_documented_commands, test_readme_first_run])
