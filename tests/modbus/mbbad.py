#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A Modbus TCP server that answers wrongly on purpose, for the bad-input
tests: pymodbus cannot be made to send a malformed frame, so this one
builds its frames by hand from the Modbus application protocol (1.1b3) and
the Modbus TCP framing (MBAP header).

    mbbad.py PORT_FILE

Each unit id has one behaviour for every read request it gets:
    1   a correct answer (register i holds 1000 + i)
    2   byte count larger than asked, with that many bytes
    3   byte count smaller than asked, with that many bytes
    4   the right length, but function code 4 in the answer to 3
    5   exception 04 (server device failure)
    6   an exception code no Modbus version defines (0x63)
    7   the transaction id of another request
    8   the unit id of another device
    9   half a frame, then silence (the rest never comes)
    10  a byte count that disagrees with the MBAP length field
    11  a byte count of 255 and that many bytes: a frame past 260 bytes
    12  correct below address 50, another transaction id from 50 on
Writes the port it listens on (127.0.0.1) to PORT_FILE, then prints
"READY PORT" and serves until killed. Every request is logged on stderr.
"""

import asyncio
import os
import struct
import sys


def answer(tid, unit, fc, addr, count):
    """The bytes to send for one read request, or None for silence."""
    values = [(1000 + addr + i) & 0xffff for i in range(count)]
    data = b"".join(struct.pack(">H", v) for v in values)

    def frame(u, pdu, t=tid, length=None):
        return struct.pack(">HHHB", t, 0, len(pdu) + 1 if length is None else length, u) + pdu

    if unit == 1:
        return frame(unit, struct.pack(">BB", fc, len(data)) + data)
    if unit == 2:
        data += b"\x00\x00"
        return frame(unit, struct.pack(">BB", fc, len(data)) + data)
    if unit == 3:
        data = data[:-2]
        return frame(unit, struct.pack(">BB", fc, len(data)) + data)
    if unit == 4:
        return frame(unit, struct.pack(">BB", 4 if fc == 3 else 3, len(data)) + data)
    if unit == 5:
        return frame(unit, struct.pack(">BB", fc | 0x80, 4))
    if unit == 6:
        return frame(unit, struct.pack(">BB", fc | 0x80, 0x63))
    if unit == 7:
        return frame(unit, struct.pack(">BB", fc, len(data)) + data, t=(tid + 1) & 0xffff)
    if unit == 8:
        return frame(99, struct.pack(">BB", fc, len(data)) + data)
    if unit == 9:
        whole = frame(unit, struct.pack(">BB", fc, len(data)) + data)
        return whole[:len(whole) // 2]
    if unit == 10:
        return frame(unit, struct.pack(">BB", fc, len(data)) + data, length=3)
    if unit == 11:
        return frame(unit, struct.pack(">BB", fc, 255) + bytes(255))
    if unit == 12:
        return frame(unit, struct.pack(">BB", fc, len(data)) + data,
                     t=tid if addr < 50 else (tid + 1) & 0xffff)
    return None


async def serve(reader, writer):
    try:
        while True:
            head = await reader.readexactly(7)
            tid, _, length, unit = struct.unpack(">HHHB", head)
            pdu = await reader.readexactly(length - 1)
            fc = pdu[0]
            addr, count = struct.unpack(">HH", pdu[1:5]) if len(pdu) >= 5 else (0, 0)
            print("unit %d fc %d addr %d count %d" % (unit, fc, addr, count), file=sys.stderr,
                  flush=True)
            out = answer(tid, unit, fc, addr, count) if fc in (3, 4) else None
            if out:
                writer.write(out)
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, sys.argv[1])
    print("READY %d" % port, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
