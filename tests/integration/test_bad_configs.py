# SPDX-License-Identifier: MIT
"""Every malformed config in tests/configs/bad gives exit 78 and exactly one
error line that names the file, the line, the key path and what was
expected. The first line of each file says what that error must contain:
'# expect: :LINE: PATH: message'."""

import glob
import os

from m2mtest import PLUGIN_DIR, SOURCE, check, main, run_check, tmpdir

BAD = os.path.join(SOURCE, "tests", "configs", "bad")


def test_bad_configs():
    files = sorted(glob.glob(os.path.join(BAD, "*.toml")))
    check(len(files) >= 30, "at least 30 malformed configs, found %d" % len(files))
    # Configs with drivers need the build tree's plugins; a conf.d adds the
    # plugin directory on top without moving any line of the file under test.
    confd = tmpdir("bad-confd")
    with open(os.path.join(confd, "00-plugins.toml"), "w") as f:
        f.write('[gateway]\nplugin_dir = "%s"\n' % PLUGIN_DIR)
    empty = tmpdir("bad-empty")
    failures = []
    for path in files:
        with open(path) as f:
            first = f.readline().strip()
            text = f.read()
        expect = first.split("# expect:", 1)[1].strip().replace("PLUGIN_DIR", PLUGIN_DIR)
        code, out, err = run_check(path, confd if "[drivers" in text else empty)
        lines = err.splitlines()
        name = os.path.basename(path)
        if code != 78:
            failures.append("%s: exit %d, expected 78 (stderr: %r)" % (name, code, err))
        elif len(lines) != 1:
            failures.append("%s: expected one error line, got %r" % (name, err))
        elif not lines[0].startswith(path + ":") and not lines[0].startswith(path + " "):
            failures.append("%s: the error does not start with the file name: %r" % (name, lines[0]))
        elif expect not in lines[0]:
            failures.append("%s: expected %r in %r" % (name, expect, lines[0]))
        else:
            print("ok %-36s %s" % (name, lines[0][len(path):]))
    for f in failures:
        print("FAIL " + f)
    check(not failures, "%d of %d malformed configs gave the wrong error" % (len(failures), len(files)))


def test_examples_check():
    """The shipped example configs load with --check."""
    confd = tmpdir("examples-confd")
    with open(os.path.join(confd, "00-plugins.toml"), "w") as f:
        f.write('[gateway]\nplugin_dir = "%s"\n' % PLUGIN_DIR)
    examples = sorted(glob.glob(os.path.join(SOURCE, "conf", "*.toml")))
    check(examples, "conf/*.toml exist")
    for path in examples:
        code, out, err = run_check(path, confd)
        check(code == 0, "%s --check: exit %d: %s" % (path, code, err))
        check("configuration is valid" in out, "%s: says it is valid" % path)


def test_missing_file():
    code, out, err = run_check("/nonexistent/m2md.toml")
    check(code == 78 and err.startswith("/nonexistent/m2md.toml: cannot read"),
          "a missing config is one clear line: %r" % err)


if __name__ == "__main__":
    main([test_bad_configs, test_examples_check, test_missing_file])
