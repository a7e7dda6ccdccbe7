// SPDX-License-Identifier: MIT
// Decodes each line of stdin (the hex of advertising data structures) with
// npm's advlib-ble and its service and manufacturer libraries, and prints
// the result as one JSON line: the independent decoder of
// test_advlib_oracle.py. argv[2]: the node_modules directory they are in.
'use strict';
const path = require('path');
const readline = require('readline');

const dir = process.argv[2];
const advlib = require(path.join(dir, 'advlib-ble'));
const LIBS = [require(path.join(dir, 'advlib-ble-services')),
              require(path.join(dir, 'advlib-ble-manufacturers'))];

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let out;
  try {
    out = advlib.process(line.trim(), LIBS, { isPayloadOnly: true });
  } catch (e) {
    out = { error: String(e) };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
});
