# SPDX-License-Identifier: MIT
"""The control socket: its mode and group, the peer check, hostile and
malformed requests, and many clients at once. After every abuse the daemon
is still up and answers."""

import json
import os
import socket
import stat
import threading
import time

from ctltest import SIM, Client, Gateway, m2mctl
from m2mtest import SLOW, check, main, wait_for

NOBODY = 65534


def gateway(name, control_extra="", public=False):
    g = Gateway(name, "", public=public)
    g.write_config('[control]\nsocket = "%s"\n%s\n%s' % (g.socket, control_extra, SIM))
    return g.start()


def still_up(g):
    check(g.proc.poll() is None, "m2md is still running")
    c = Client(g.socket)
    r = c.call({"id": 99, "cmd": "status"})
    c.close()
    check(r["ok"] and r["id"] == 99, "status still answered: %r" % r)
    return r["result"]


def test_socket_mode():
    g = gateway("ctl-mode")
    try:
        st = os.lstat(g.socket)
        check(stat.S_ISSOCK(st.st_mode), "the control socket is a socket")
        check(stat.S_IMODE(st.st_mode) == 0o660, "mode 0660, got %o" % stat.S_IMODE(st.st_mode))
        check(st.st_uid == os.geteuid(), "owned by the daemon's user")
        # No temporary name is left next to it.
        # (m2md.sock.lock stays: it holds the one-instance lock.)
        left = [f for f in os.listdir(g.dir) if f.startswith("m2md.sock.") and f != "m2md.sock.lock"]
        check(not left, "no temporary socket left: %r" % left)
    finally:
        g.stop()
    check(not os.path.exists(g.socket), "the socket is removed at exit")

    g = gateway("ctl-mode2", 'mode = "0600"')
    try:
        check(stat.S_IMODE(os.lstat(g.socket).st_mode) == 0o600, "configured mode 0600")
    finally:
        g.stop()


def test_stale_socket_replaced():
    """A socket left by a killed daemon is replaced; a live one is not taken over."""
    g = gateway("ctl-stale")
    g.kill9()
    check(os.path.exists(g.socket), "a killed daemon leaves its socket")
    g.start()
    try:
        still_up(g)
        # A second daemon on the same socket path must not steal it.
        g2 = Gateway("ctl-stale2", "")
        g2.write_config('[control]\nsocket = "%s"\n%s' % (g.socket, SIM))
        g2.start(wait_ready=False)
        wait_for(lambda: g2.proc.poll() is not None, 10, "the second daemon to give up")
        check(g2.stop() == 1 and "m2md.sock is in use by another m2md (pid %d)" % g.proc.pid
              in g2.log_text(), "the second daemon exits 1 naming the first: %r" % g2.log_text())
        still_up(g)
    finally:
        g.stop()


def test_relative_socket():
    """A relative control.socket is relative to the config file, as every path of it."""
    g = Gateway("ctl-rel", "")
    g.socket = os.path.join(g.dir, "rel.sock")
    g.write_config('[control]\nsocket = "rel.sock"\n%s' % SIM)
    g.start()
    try:
        check(stat.S_ISSOCK(os.lstat(g.socket).st_mode), "the socket is beside the config")
        code, out, err = m2mctl("-c", g.config, "status")
        check(code == 0 and "gw-test" in out, "m2mctl -c finds it: %r %r %r" % (code, out, err))
    finally:
        g.stop()


def test_peer_refused_by_allow_list():
    """allow_uids without our uid (and no group): the kernel's peer credentials are refused."""
    other = 4242 if os.geteuid() != 4242 else 4343
    g = gateway("ctl-peer", "allow_uids = [%d]\nallow_groups = []" % other)
    try:
        c = Client(g.socket)
        r = c.line()
        check(r is not None and r["ok"] is False and r["code"] == "EACCES",
              "a refused peer is told so: %r" % r)
        check(r["id"] is None, "the refusal answers no request")
        check(c.closed(), "and the connection is closed")
        c.close()
        code, out, err = m2mctl("status", socket=g.socket)
        check(code == 4, "m2mctl exits 4 when refused, got %d" % code)
        check(err.count("\n") == 1 and "permission denied" in err, "one clear line: %r" % err)
        check(out == "", "nothing on stdout")
        code, out, err = m2mctl("write", "boiler1/burner", "0", socket=g.socket)
        check(code == 4, "a refused write exits 4, got %d" % code)
        wait_for(lambda: "refused uid %d" % os.geteuid() in g.run_log(), 5, "the refusal in the log")
        check(g.proc.poll() is None, "m2md is still running")
    finally:
        g.stop()
    # The uid that is allowed gets in: our own, named explicitly.
    g = gateway("ctl-peer2", "allow_uids = [%d]\nallow_groups = []" % os.geteuid())
    try:
        code, out, err = m2mctl("status", "--json", socket=g.socket)
        check(code == 0, "an allowed uid gets in: %d %s" % (code, err))
    finally:
        g.stop()


def test_foreign_uid():
    """Run as root: another user is refused by the file mode, and by the peer
    check when the mode lets it connect. Unprivileged runs test the peer
    check through allow_uids above."""
    if os.geteuid() != 0:
        print("not root: the foreign-uid run through setpriv needs root; covered by allow_uids")
        return
    g = gateway("ctl-foreign", public=True)
    try:
        code, out, err = m2mctl("status", socket=g.socket, user=NOBODY)
        check(code == 4, "mode 0660 keeps nobody out: exit %d %r" % (code, err))
        check("permission denied" in err and err.count("\n") == 1, "one clear line: %r" % err)
    finally:
        g.stop()
    g = gateway("ctl-foreign2", 'mode = "0666"', public=True)
    try:
        code, out, err = m2mctl("status", socket=g.socket, user=NOBODY)
        check(code == 4, "the peer check refuses uid %d: exit %d %r" % (NOBODY, code, err))
        check("uid %d may not use the control socket" % NOBODY in err, "the refusal names the uid: %r" % err)
        code, out, err = m2mctl("write", "boiler1/burner", "0", socket=g.socket, user=NOBODY)
        check(code == 4, "no write for a foreign uid")
        rows = g.query("SELECT count(*) FROM events WHERE kind = 'write'")
        check(rows[0][0] == 0, "no write reached the daemon")
        still_up(g)
    finally:
        g.stop()


def test_malformed():
    g = gateway("ctl-malformed", 'request_timeout = "300ms"\nmax_request = "4KiB"')
    try:
        c = Client(g.socket)
        cases = [
            (b"not json\n", "EINVAL"),
            (b"[1,2,3]\n", "EINVAL"),
            (b'"status"\n', "EINVAL"),
            (b"{}\n", "EINVAL"),
            (b'{"cmd":42}\n', "EINVAL"),
            (b'{"cmd":""}\n', "EINVAL"),
            (b'{"cmd":"frobnicate","id":7}\n', "EINVAL"),
            (b'{"cmd":"status","id":"x"}\n', "EINVAL"),
            (b'{"cmd":"read","id":8}\n', "EINVAL"),
            (b'{"cmd":"read","point":5}\n', "EINVAL"),
            (b'{"cmd":"read","point":"nope/nope"}\n', "ENOENT"),
            (b'{"cmd":"write","point":"boiler1/burner"}\n', "EINVAL"),
            (b'{"cmd":"write","point":"boiler1/burner","value":"on"}\n', "EINVAL"),
            (b'{"cmd":"ack"}\n', "EINVAL"),
            (b'{"cmd":"status"\x00garbage}\n', "EINVAL"),
            (b"\xff\xfe\x00\x01binary\n", "EINVAL"),
            (b"[" * 5000 + b"\n", "EMSGSIZE"),
        ]
        for data, code in cases[:-1]:
            c.send(data)
            r = c.line()
            check(r is not None and r["ok"] is False and r["code"] == code,
                  "%r gets an %s error reply: %r" % (data[:40], code, r))
        # The same connection still works after all of that.
        r = c.call({"id": 5, "cmd": "status"})
        check(r["ok"] and r["id"] == 5, "the connection survives bad requests")
        # A blank line is a keep-alive; CRLF is accepted.
        c.send(b'\n\r\n{"id":6,"cmd":"status"}\r\n')
        r = c.line()
        check(r["ok"] and r["id"] == 6, "blank lines skipped and CRLF accepted: %r" % r)
        c.close()

        # Deeply nested JSON within the size cap: an error, not a crash.
        c = Client(g.socket)
        c.send(b"[" * 3000 + b"\n")
        r = c.line()
        check(r["ok"] is False, "deep nesting is refused: %r" % r)
        c.close()

        # Oversized: an error reply, then the connection is closed.
        c = Client(g.socket)
        try:
            c.send(b'{"cmd":"status","pad":"' + b"x" * 100000 + b'"}\n')
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.line()
        check(r is not None and r["code"] == "EMSGSIZE", "oversized request: %r" % r)
        check(c.closed(), "the connection is closed after an oversized request")
        c.close()

        # A request that never ends is cut off after request_timeout.
        c = Client(g.socket)
        c.send(b'{"cmd":"sta')
        t0 = time.monotonic()
        r = c.line()
        check(r is not None and r["code"] == "ETIMEDOUT", "a partial request times out: %r" % r)
        check(time.monotonic() - t0 < 3, "within about request_timeout")
        check(c.closed(), "and is closed")
        c.close()

        # A client that connects and disconnects at once, or half-closes.
        for _ in range(20):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(g.socket)
            s.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(g.socket)
        s.sendall(b'{"id":3,"cmd":"status"}')
        s.shutdown(socket.SHUT_WR)
        s.settimeout(5)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        check(json.loads(data)["id"] == 3, "a last request without newline before EOF is answered")

        # A client that sends many requests and never reads: bounded, and the daemon goes on.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(g.socket)
        s.setblocking(False)
        sent = 0
        try:
            for _ in range(20000):
                s.send(b'{"cmd":"points"}\n')
                sent += 1
        except BlockingIOError:
            pass
        still_up(g)
        s.close()

        status = still_up(g)
        ctl = status["control"]
        check(ctl["errors"] >= len(cases), "errors are counted: %r" % ctl)
        check(ctl["oversize"] >= 1 and ctl["timeouts"] >= 1, "oversize and timeouts counted: %r" % ctl)
    finally:
        code = g.stop()
    check(code == 0, "m2md exits cleanly after the abuse, got %r" % code)


def test_many_clients():
    g = gateway("ctl-many", "max_clients = 40")
    try:
        results = []
        lock = threading.Lock()

        def worker(i):
            ok = 0
            try:
                c = Client(g.socket, timeout=10)
                for j in range(10):
                    r = c.call({"id": i * 100 + j, "cmd": "status" if j % 2 else "points"})
                    ok += r["ok"] and r["id"] == i * 100 + j
                c.close()
            except Exception as e:  # counted as a failure below
                print("client %d: %r" % (i, e))
            with lock:
                results.append(ok)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        check(len(results) == 30 and all(r == 10 for r in results),
              "30 clients at once each get 10 answers in order: %r" % results)

        # Past max_clients, a new client takes the slot of the one idle the
        # longest, which is told why; the others are served.
        held = [Client(g.socket) for _ in range(40)]
        for i, c in enumerate(held[:3]):
            r = c.call({"id": i, "cmd": "status"})
            check(r["ok"], "held client %d is served" % i)
        extra = Client(g.socket)
        r = extra.call({"id": 41, "cmd": "status"})
        check(r is not None and r["ok"], "client 41 is served: %r" % r)
        r = held[3].line()
        check(r is not None and r["code"] == "EBUSY" and "idle" in r["error"],
              "the longest idle client gave its slot: %r" % r)
        check(held[3].closed(), "and was closed")
        check(held[0].call({"id": 7, "cmd": "status"})["ok"], "a recently active one is kept")
        # When every slot has a request under way, a new client is told to come back later.
        held[3] = extra
        for c in held:
            c.send('{"id": 1, "cmd": ')
        time.sleep(0.2 * SLOW)
        extra = Client(g.socket)
        r = extra.line()
        check(r is not None and r["code"] == "EBUSY", "client 41 is refused with EBUSY: %r" % r)
        extra.close()
        for c in held:
            c.close()
        # The daemon sees the 40 hang-ups asynchronously: until it has, a
        # probe may itself be the client too many.
        def clients_now():
            check(g.proc.poll() is None, "m2md is still running")
            c = Client(g.socket)
            r = c.call({"id": 98, "cmd": "status"})
            c.close()
            if not r["ok"] and r.get("code") == "EBUSY":
                return None
            check(r["ok"], "status answered: %r" % r)
            return r["result"]["control"]["clients"]

        def gone():
            n = clients_now()
            return n is not None and n <= 1

        wait_for(gone, 5, "the held clients to be gone")
        code, out, err = m2mctl("status", socket=g.socket)
        check(code == 0, "m2mctl works again once clients left")
    finally:
        g.stop()


def try_connect(path):
    try:
        return Client(path)
    except BlockingIOError:
        return None


def test_idle_clients():
    """80 idle clients do not lock an operator out (the longest idle gives
    its slot), and a client that asks nothing for idle_timeout is closed."""
    g = gateway("ctl-idle")
    try:
        def connect():
            # A full listen backlog (64) answers EAGAIN until the daemon accepts.
            return wait_for(lambda: try_connect(g.socket), 10, "a connection")

        idle = [connect() for _ in range(80)]
        code, out, err = m2mctl("status", socket=g.socket)
        check(code == 0 and "gw-test" in out, "m2mctl status beside 80 idle clients: %d %r" % (code, err))
        for c in idle:
            c.close()
    finally:
        g.stop()
    g = gateway("ctl-idle2", 'idle_timeout = "1s"')
    try:
        c = Client(g.socket, timeout=10)
        check(c.call({"id": 1, "cmd": "status"})["ok"], "served")
        t0 = time.monotonic()
        check(c.closed(), "an idle client is closed")
        took = time.monotonic() - t0
        check(0.8 <= took <= 5 * SLOW, "after idle_timeout (1s): %.2fs" % took)
        # A client that keeps asking is not idle.
        c = Client(g.socket, timeout=10)
        for i in range(4):
            check(c.call({"id": i, "cmd": "status"})["ok"], "request %d served" % i)
            time.sleep(0.6)
        check(c.call({"id": 9, "cmd": "status"})["ok"], "still connected after 2.4s of requests")
        c.close()
        st = still_up(g)
        check(st["control"]["idle_closed"] >= 1, "idle closes counted: %r" % st["control"])
    finally:
        g.stop()


if __name__ == "__main__":
    main([test_socket_mode, test_stale_socket_replaced, test_relative_socket,
          test_peer_refused_by_allow_list,
          test_foreign_uid, test_malformed, test_many_clients, test_idle_clients])
