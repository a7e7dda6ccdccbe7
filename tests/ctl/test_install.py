# SPDX-License-Identifier: MIT
"""meson install into a DESTDIR puts every piece in its place: the daemon
and its configuration parser, m2mctl, the plugins (not writable by group or others), the plugin headers
and their pkg-config file, the unit, the sysusers and tmpfiles snippets and the
example configuration; and what it installed works."""

import json
import os
import shutil
import stat
import subprocess
import tempfile

import ctltest  # noqa: F401  (puts the integration helpers on the path)
from m2mtest import BUILD, PLUGIN_DIR, check, main, tmpdir


def options():
    p = subprocess.run(["meson", "introspect", "--buildoptions", BUILD], capture_output=True,
                       check=True, timeout=60)
    return {o["name"]: o["value"] for o in json.loads(p.stdout)}


def test_destdir_tree():
    o = options()
    prefix = o["prefix"]

    def at(*parts):
        # meson's own rule: a relative dir is under the prefix, an absolute one is itself.
        p = os.path.join(*parts)
        return p if os.path.isabs(p) else os.path.join(prefix, p)

    dest = tempfile.mkdtemp(prefix="destdir-", dir=tmpdir("install"))
    p = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", dest, "--no-rebuild", "--quiet"],
                       capture_output=True, timeout=300)
    check(p.returncode == 0, "meson install: %s" % p.stderr.decode()[-2000:])

    def d(path):
        return dest + path

    libdir = at(o["libdir"])
    want = {
        at(o["sbindir"], "m2md"): 0o755,
        at(o["libexecdir"], "m2md", "m2md-toml"): 0o755,
        at(o["bindir"], "m2mctl"): 0o755,
        os.path.join(libdir, "m2md", "plugins", "sim.so"): None,
        os.path.join(libdir, "m2md", "plugins", "modbus.so"): None,
        at(o["includedir"], "m2m", "plugin.h"): None,
        at(o["includedir"], "m2m", "plugin-util.h"): None,
        os.path.join(libdir, "pkgconfig", "m2m-plugin.pc"): None,
        at(o["sysconfdir"], "m2md", "m2md.toml"): None,
        os.path.join(prefix, "lib", "sysusers.d", "m2md.conf"): None,
        os.path.join(prefix, "lib", "tmpfiles.d", "m2md.conf"): None,
    }
    unit_dir = o["systemdsystemunitdir"] or os.path.join(prefix, "lib", "systemd", "system")
    want[os.path.join(unit_dir, "m2md.service")] = None
    for path, mode in want.items():
        check(os.path.isfile(d(path)), "installed: %s" % path)
        if mode is not None:
            check(stat.S_IMODE(os.stat(d(path)).st_mode) & mode == mode, "%s is executable" % path)

    # m2md refuses a plugin directory writable by group or others.
    plugdir = os.path.join(libdir, "m2md", "plugins")
    for f in os.listdir(d(plugdir)) + [""]:
        m = stat.S_IMODE(os.stat(os.path.join(d(plugdir), f)).st_mode)
        check(m & 0o022 == 0, "%s/%s is not writable by group or others (%o)" % (plugdir, f, m))
    # Exactly the plugins this build made (the -D options decide which), nothing else.
    built = sorted(f for f in os.listdir(PLUGIN_DIR) if f.endswith(".so"))
    check("sim.so" in built, "the build made its plugins: %r" % built)
    check(sorted(os.listdir(d(plugdir))) == built, "only the plugins the build made in the plugin dir: %s, built %s"
          % (sorted(os.listdir(d(plugdir))), built))

    # Nothing private is installed: the public headers are the contract (the ABI
    # and the plugin kit beside it).
    inc = at(o["includedir"])
    headers = sorted(os.path.relpath(os.path.join(r, f), d(inc)) for r, _, fs in os.walk(d(inc))
                     for f in fs)
    check(headers == ["m2m/plugin-util.h", "m2m/plugin.h"],
          "only include/m2m/plugin.h and plugin-util.h: %r" % headers)

    # The unit runs the installed daemon with the installed config.
    with open(d(os.path.join(unit_dir, "m2md.service"))) as f:
        unit = f.read()
    check("ExecStart=%s -c %s\n" % (at(o["sbindir"], "m2md"), at(o["sysconfdir"], "m2md", "m2md.toml"))
          in unit, "ExecStart names the installed paths")
    with open(d(os.path.join(prefix, "lib", "sysusers.d", "m2md.conf"))) as f:
        sysusers = f.read()
    check("u m2md " in sysusers and "m m2md dialout" in sysusers, "sysusers: user m2md in dialout")

    # What was installed runs: the daemon checks the example config against
    # the installed plugins, m2mctl answers --version.
    env = dict(os.environ)
    p = subprocess.run([d(at(o["bindir"], "m2mctl")), "--version"], capture_output=True, timeout=30)
    check(p.returncode == 0 and p.stdout.startswith(b"m2mctl "), "installed m2mctl runs")
    conf = os.path.join(dest, "check.toml")
    with open(d(at(o["sysconfdir"], "m2md", "m2md.toml"))) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.replace("[gateway]\n", '[gateway]\nplugin_dir = "%s"\n' % d(plugdir), 1))
    p = subprocess.run([d(at(o["sbindir"], "m2md")), "--check", "-c", conf], capture_output=True, timeout=60,
                       env=env)
    check(p.returncode == 0, "the installed example config is valid with the installed plugins: %s"
          % p.stderr.decode())

    # A plugin author's build finds the header through pkg-config.
    if shutil.which("pkg-config"):
        penv = dict(env, PKG_CONFIG_SYSROOT_DIR=dest,
                    PKG_CONFIG_PATH=d(os.path.join(libdir, "pkgconfig")))
        p = subprocess.run(["pkg-config", "--cflags", "--variable=plugindir", "m2m-plugin"],
                           capture_output=True, env=penv, timeout=30)
        check(p.returncode == 0, "pkg-config knows m2m-plugin: %s" % p.stderr.decode())
    shutil.rmtree(dest)


if __name__ == "__main__":
    main([test_destdir_tree])
