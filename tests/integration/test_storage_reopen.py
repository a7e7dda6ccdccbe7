# SPDX-License-Identifier: MIT
"""A file system that fails under the database: an ext4 image on a loop
device, mounted with errors=remount-ro, is made to fail by the kernel's
own trigger_fs_error (the file system turns read-only, as after an I/O
error), then checked with e2fsck and mounted again at the same place.
m2md must report the failure, keep the readings it could not write, open
the database again by itself once the directory takes writes, and say how
many committed readings the file system lost. Needs root and loop devices
(CI has both); elsewhere it is skipped with exit status 77."""

import os
import subprocess
import sys
import time

from m2mtest import Gateway, check, ctl, main, tmpdir, wait_for

SKIP = 77


def run(*args):
    return subprocess.run(list(args), check=True, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL).stdout.strip()


def can_run():
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists("/dev/loop-control"):
        return "no loop devices"
    for tool in ("losetup", "mkfs.ext4", "e2fsck", "mount", "umount", "fsfreeze"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode != 0:
            return "no " + tool
    return None


def storage(g):
    return ctl(g, {"id": 1, "cmd": "status"})["result"]["storage"]


def reopen_after_fs_error(sync):
    d = tmpdir("storage-reopen-" + sync)
    img, mnt = os.path.join(d, "fs.img"), os.path.join(d, "mnt")
    os.mkdir(mnt)
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    run("mkfs.ext4", "-q", "-F", img)
    loops = [run("losetup", "-f", "--show", img)]
    run("mount", "-o", "errors=remount-ro", loops[0], mnt)
    mounted = True
    text = '[drivers.sim]\nplugin = "sim"\n'
    for i in range(10):
        text += '[[drivers.sim.points]]\nname = "line/p%d"\nsignal = "ramp"\ninterval = "10ms"\n' % i
    extra = 'synchronous = "%s"\n' % sync
    g = Gateway("storage-reopen-" + sync, text, storage_extra=extra)
    g.db = os.path.join(mnt, "m2md.db")
    g.write_config(text, storage_extra=extra)
    try:
        g.start()
        wait_for(lambda: storage(g)["rows_written"] > 2000, 20, "rows on the loop file system")
        trigger = "/sys/fs/ext4/%s/trigger_fs_error" % os.path.basename(loops[0])
        if sync == "full":
            # The error comes between two commits, not inside one. A commit
            # whose fdatasync races it can be told "synced" although the
            # WAL's new size never reaches ext4's journal: after e2fsck the
            # WAL ends before that commit's frames, and m2md rightly counts
            # it lost (plain SQLite loses it the same way). Frozen, the file
            # system has synced every commit that returned and holds the
            # next until it fails.
            run("fsfreeze", "-f", mnt)
        try:
            with open(trigger, "w") as f:
                f.write("1")
        finally:
            if sync == "full":
                run("fsfreeze", "-u", mnt)
        st = wait_for(lambda: (lambda s: s if s["failing"] else None)(storage(g)), 20,
                      "commits failing on the read-only file system")
        print("failing: %s" % st["last_error"], flush=True)
        written_before = st["rows_written"]
        time.sleep(1)
        check(storage(g)["failing"] and storage(g)["reopens"] == 0, "still failing, not reopened")
        # As an operator would: let go of the dead mount, check the file system, mount it again.
        run("umount", "-l", mnt)
        mounted = False
        subprocess.run(["e2fsck", "-fy", img], capture_output=True, stdin=subprocess.DEVNULL)
        loops.append(run("losetup", "-f", "--show", img))
        run("mount", loops[1], mnt)
        mounted = True
        st = wait_for(lambda: (lambda s: s if not s["failing"] and s["reopens"] == 1 else None)(storage(g)),
                      20, "the database reopened and written again")
        wait_for(lambda: storage(g)["rows_written"] > written_before + 2000, 20, "writes going on")
        st = storage(g)
        print("synchronous = %s: reopened %d, committed readings lost %d, dropped %d"
              % (sync, st["reopens"], st["rows_lost"], st["rows_dropped"]), flush=True)
        if sync == "full":
            # On failure, what the storage thread said: when each commit failed or went through.
            check(st["rows_lost"] == 0, "with synchronous = full nothing committed is lost; the log said:\n%s"
                  % "\n".join(l for l in g.run_log().splitlines() if "m2md.db" in l)[-4000:])
        check("database reopened" in g.run_log(), "the reopen is logged")
        check(g.stop() == 0, "clean exit")
        check(g.query("PRAGMA integrity_check") == [("ok",)], "the database is intact")
        n = g.query("SELECT count(*) FROM readings")[0][0]
        check(n >= st["rows_written"] - st["rows_lost"] - 10,
              "every reading counted as written and not lost is there: %d of %d (lost %d)"
              % (n, st["rows_written"], st["rows_lost"]))
        run("umount", mnt)
        mounted = False
        # While the file system was away the mount point showed its own, empty directory.
        check(not os.listdir(mnt), "nothing was created under the mount point: %r" % os.listdir(mnt))
    finally:
        if g.proc:
            g.kill9()
        if mounted:
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        for dev in loops:
            subprocess.run(["losetup", "-d", dev], capture_output=True)


def test_reopen_normal():
    reopen_after_fs_error("normal")


def test_reopen_full():
    reopen_after_fs_error("full")


if __name__ == "__main__":
    why = can_run()
    if why:
        print("SKIP: %s" % why)
        sys.exit(SKIP)
    main([test_reopen_normal, test_reopen_full])
