#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The host side of tools/vm-test: plays the serial devices the guest uses.

    peer.py TTY_SOCKET USB_SOCKET MONITOR_SOCKET LOG

TTY_SOCKET is the guest's second UART (/dev/ttyS1), USB_SOCKET the chardev
behind the USB serial adapter (an emulated FTDI chip, /dev/ttyUSB0 once
plugged in), MONITOR_SOCKET qemu's human monitor. On every line it plays,
`PING word` is answered with `PONG word`. `PLUG` on ttyS1 hot-plugs the
adapter (device_add) and is answered with `PLUGGED`, so that the guest
decides when its USB serial driver loads. Ends when qemu closes ttyS1.
"""

import os
import select
import socket
import sys
import time

PLUG = b"device_add usb-serial,id=usbser0,bus=xhci.0,chardev=usbc\n"


def connect(path, deadline):
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main(tty_path, usb_path, mon_path, log_path):
    deadline = time.monotonic() + 60
    streams = {"ttyS1": connect(tty_path, deadline), "usb": connect(usb_path, deadline),
               "monitor": connect(mon_path, deadline)}
    bufs = {name: b"" for name in streams}
    with open(log_path, "a", buffering=1) as log:
        def say(name, data):
            streams[name].sendall(data)
            log.write("%s > %r\n" % (name, data))
        while True:
            ready = select.select(list(streams.values()), [], [], 5)[0]
            for name, s in list(streams.items()):
                if s not in ready:
                    continue
                data = s.recv(4096)
                if not data:
                    log.write("%s closed\n" % name)
                    if name == "ttyS1":
                        return 0
                    del streams[name]
                    continue
                log.write("%s < %r\n" % (name, data))
                if name == "monitor":
                    continue
                bufs[name] += data
                while b"\n" in bufs[name]:
                    line, bufs[name] = bufs[name].split(b"\n", 1)
                    line = line.strip(b"\r\x00")
                    if line.startswith(b"PING "):
                        say(name, b"PONG " + line[5:] + b"\n")
                    elif line == b"PLUG" and name == "ttyS1" and "monitor" in streams:
                        say("monitor", PLUG)
                        say(name, b"PLUGGED\n")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
