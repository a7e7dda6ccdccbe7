#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A Modbus server for the tests: pymodbus (an implementation independent of
libmodbus), over TCP on 127.0.0.1 or RTU on a tty (one end of a socat pty
pair), with several unit ids, that records every request it is asked.

    mbserver.py --tcp PORT | --rtu PATH [--baud N --parity N|E|O]
                --units 1,2 [--config FILE.json] [--log FILE] [--mute-dir DIR]

--config is JSON:
    {"init":  {"1": {"hr": {"0": [1, 2, 3]}, "co": {"5": [1, 0]}}},
     "holes": {"1": {"hr": [[100, 100]]}},
     "stuck": {"1": {"hr": [[200, 201]]}}}
Tables are "co", "di", "ir", "hr"; protocol addresses start at 0. A request
touching a hole gets exception 02 (illegal data address), as a device with
gaps in its map answers. A write to a stuck address is answered as done
(and recorded) but not stored, as a device that ignores a setpoint does.

--log FILE gets one JSON line per request, written before the answer:
    {"unit": 1, "fc": 3, "addr": 0, "count": 125, "t": 1234.5}
    {"unit": 1, "fc": 16, "addr": 10, "count": 2, "values": [1, 2], "t": 1234.6}
("t" is CLOCK_MONOTONIC seconds)
so a test can count requests and check written values at the server.

A unit stops answering (as a dead device on a line) while the file
MUTE_DIR/mute-UNIT exists.

Prints "READY PORT" (or "READY 0" for RTU) on stdout once it serves, and runs
until killed.
"""

import argparse
import asyncio
import json
import os
import sys
import time

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                ModbusSlaveContext)
from pymodbus.exceptions import NoSuchSlaveException
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.server.async_io import ModbusSerialServer, ModbusTcpServer

SIZE = 65536
TABLES = {"co": "c", "di": "d", "ir": "i", "hr": "h"}


class Recorder:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1) if path else None

    def write(self, rec):
        rec["t"] = round(time.monotonic(), 6)
        if self.f:
            self.f.write(json.dumps(rec) + "\n")
            self.f.flush()


class RecordingSlave(ModbusSlaveContext):
    """One unit: records each request in validate(), which every request
    type calls exactly once, and refuses requests that touch a hole."""

    def __init__(self, unit, recorder, holes, stuck, **kwargs):
        super().__init__(zero_mode=True, **kwargs)
        self.unit = unit
        self.recorder = recorder
        self.holes = holes  # table letter -> [(first, last)]
        self.stuck = stuck  # table letter -> [(first, last)]
        self.pending = None

    def validate(self, fc_as_hex, address, count=1):
        rec = {"unit": self.unit, "fc": fc_as_hex, "addr": address, "count": count}
        if fc_as_hex in (5, 6, 15, 16):
            # The values arrive in setValues(); record them together.
            self.pending = rec
        else:
            self.recorder.write(rec)
        table = self.decode(fc_as_hex)
        for first, last in self.holes.get(table, []):
            if address <= last and address + count - 1 >= first:
                if self.pending is not None:
                    self.recorder.write(self.pending)
                    self.pending = None
                return False
        return super().validate(fc_as_hex, address, count)

    def setValues(self, fc_as_hex, address, values):
        rec = self.pending or {"unit": self.unit, "fc": fc_as_hex, "addr": address,
                               "count": len(values)}
        self.pending = None
        rec["values"] = [int(v) for v in values]
        self.recorder.write(rec)
        table = self.decode(fc_as_hex)
        for first, last in self.stuck.get(table, []):
            if address <= last and address + len(values) - 1 >= first:
                return
        super().setValues(fc_as_hex, address, values)


class MutableServerContext(ModbusServerContext):
    """Units go silent while their mute file exists."""

    def __init__(self, slaves, mute_dir):
        super().__init__(slaves=slaves, single=False)
        self.mute_dir = mute_dir

    def __getitem__(self, unit):
        if self.mute_dir and os.path.exists(os.path.join(self.mute_dir, "mute-%d" % unit)):
            raise NoSuchSlaveException("unit %d is muted" % unit)
        return super().__getitem__(unit)


def build_context(units, config, recorder, mute_dir):
    slaves = {}
    for unit in units:
        key = str(unit)
        stores = {}
        for name in TABLES:
            values = [0] * SIZE
            for start, vals in config.get("init", {}).get(key, {}).get(name, {}).items():
                s = int(start)
                values[s:s + len(vals)] = [int(v) for v in vals]
            stores[name] = ModbusSequentialDataBlock(0, values)
        holes = {TABLES[t]: [tuple(h) for h in hs]
                 for t, hs in config.get("holes", {}).get(key, {}).items()}
        stuck = {TABLES[t]: [tuple(h) for h in hs]
                 for t, hs in config.get("stuck", {}).get(key, {}).items()}
        slaves[unit] = RecordingSlave(unit, recorder, holes, stuck, **stores)
    return MutableServerContext(slaves, mute_dir)


async def run(args):
    config = {}
    if args.config:
        with open(args.config) as f:
            config = json.load(f)
    units = [int(u) for u in args.units.split(",")]
    recorder = Recorder(args.log)
    context = build_context(units, config, recorder, args.mute_dir)

    if args.tcp is not None:
        server = ModbusTcpServer(context, address=("127.0.0.1", args.tcp),
                                 allow_reuse_address=True, ignore_missing_slaves=True)
        task = asyncio.create_task(server.serve_forever())
        await asyncio.wait_for(server.serving, 10)
        port = server.server.sockets[0].getsockname()[1]
    else:
        server = ModbusSerialServer(context, framer=ModbusRtuFramer, port=args.rtu,
                                    baudrate=args.baud, parity=args.parity, bytesize=8,
                                    stopbits=1, timeout=0.005, ignore_missing_slaves=True)
        await server.start()
        task = asyncio.create_task(server.serve_forever())
        port = 0
    print("READY %d" % port, flush=True)
    await task


def main():
    p = argparse.ArgumentParser()
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--tcp", type=int)
    g.add_argument("--rtu")
    p.add_argument("--baud", type=int, default=19200)
    p.add_argument("--parity", default="N")
    p.add_argument("--units", default="1")
    p.add_argument("--config")
    p.add_argument("--log")
    p.add_argument("--mute-dir")
    args = p.parse_args()
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
