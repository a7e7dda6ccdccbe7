# SPDX-License-Identifier: MIT
"""The registry's Prometheus text exposition (format 0.0.4) read back by an
independent parser, prometheus_client's text_string_to_metric_families
(Debian's python3-prometheus-client): the families, their help and types,
every sample's name, labels and value come back as the C program
(tests/unit/metrics-expo.c) registered them, with awkward label values,
help text and values. The parser is lenient, so each line is also matched
against the format's grammar, and the order and uniqueness of the blocks
and the exact digits of large integers are checked on the text itself."""

import math
import re
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

from m2mtest import check, main

EXPO = sys.argv[1] if len(sys.argv) > 1 else None

# What metrics-expo.c registered, as the parser must return it: counters
# under their base name with "_total" samples, the info as a gauge "_info".
POLLS = "m2md_driver_polls"
EXPECTED = [
    ("_leading_underscore", "counter", "A name may start with '_'.",
     [("_leading_underscore_total", {}, 7)]),
    ("m2md:values", "gauge", "Doubles of every kind.",
     [("m2md:values", {"case": "tenth"}, 0.1),
      ("m2md:values", {"case": "neg"}, -2.5),
      ("m2md:values", {"case": "huge"}, 1e300),
      ("m2md:values", {"case": "tiny"}, 5e-324),
      ("m2md:values", {"case": "nan"}, math.nan),
      ("m2md:values", {"case": "inf"}, math.inf),
      ("m2md:values", {"case": "ninf"}, -math.inf),
      ("m2md:values", {"case": "negzero"}, 0.0)]),
    ("m2md_build_info", "gauge", "Version and gateway.",
     [("m2md_build_info", {"version": "1.2.3~rc1", "gateway": 'gw "one"\n'}, 1)]),
    (POLLS, "counter", 'Polls "sent" \\ per device\nsecond line.',
     [(POLLS + "_total", {"driver": "plc", "device": "dev"}, 0),
      (POLLS + "_total", {"driver": "back\\slash", "device": 'quote"d'}, 2 ** 64 - 1),
      (POLLS + "_total", {"driver": "new\nline", "device": ""}, 2 ** 53 + 1),
      (POLLS + "_total", {"driver": "caf\u00e9 {a=b,c}", "device": "\\n"}, 7),
      (POLLS + "_total", {"driver": "getter", "device": "x"}, 8)]),
    ("zz_last", "gauge", "Registered first, printed last.", [("zz_last", {}, 123456789.125)]),
]

# The 0.0.4 grammar, strictly: one space between the parts, labels quoted
# with only \\, \" and \n escaped, values as Go's ParseFloat reads them.
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
VALUE = r"(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|NaN|[+-]Inf)"
SAMPLE = re.compile(r"(%s)(?:\{%s(?:,%s)*\})? (%s)$" % (NAME, LABEL, LABEL, VALUE))
HELP = re.compile(r"# HELP (%s) (?:[^\\\n]|\\[\\n])*$" % NAME)
TYPE = re.compile(r"# TYPE (%s) (counter|gauge)$" % NAME)


def exposition():
    check(EXPO is not None, "metrics-expo is passed as the first argument")
    p = subprocess.run([EXPO], capture_output=True, timeout=60)
    check(p.returncode == 0, "metrics-expo ran: %d %r" % (p.returncode, p.stderr))
    return p.stdout.decode("utf-8")


def same_value(a, b):
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return float(a) == float(b)


def test_parsed_back():
    text = exposition()
    got = list(text_string_to_metric_families(text))
    check([f.name for f in got] == [e[0] for e in EXPECTED],
          "the families, sorted, once each: %r" % [f.name for f in got])
    for fam, (name, typ, doc, samples) in zip(got, EXPECTED):
        check(fam.type == typ, "%s is a %s, got %s" % (name, typ, fam.type))
        check(fam.documentation == doc, "%s help %r, got %r" % (name, doc, fam.documentation))
        check(len(fam.samples) == len(samples), "%s has %d samples: %r" % (name, len(samples), fam.samples))
        for s, (sname, labels, value) in zip(fam.samples, samples):
            check(s.name == sname, "sample name %r, got %r" % (sname, s.name))
            check(s.labels == labels, "%s labels %r, got %r" % (sname, labels, s.labels))
            check(same_value(s.value, value), "%s%r value %r, got %r" % (sname, labels, value, s.value))
    check("stopped" not in text, "the removed owner's series is gone")
    check("m2md_empty" not in text, "a family without series has no block")


def test_grammar():
    text = exposition()
    check(text.endswith("\n"), "the text ends with a newline")
    blocks = []
    for line in text.splitlines():
        if line.startswith("# HELP "):
            m = HELP.match(line)
            check(m is not None, "a HELP line of the grammar: %r" % line)
            blocks.append(m.group(1))
        elif line.startswith("# TYPE "):
            m = TYPE.match(line)
            check(m is not None and m.group(1) == blocks[-1], "TYPE follows its HELP: %r" % line)
        else:
            m = SAMPLE.match(line)
            check(m is not None, "a sample line of the grammar: %r" % line)
            check(m.group(1) == blocks[-1], "a sample of its block %r: %r" % (blocks[-1], line))
    check(blocks == sorted(blocks) and len(blocks) == len(set(blocks)),
          "one block per name, sorted: %r" % blocks)
    # The parser reads floats; the text itself has every digit of a u64.
    check('device="quote\\"d"} 18446744073709551615\n' in text, "2^64-1 exactly:\n" + text)
    check('device=""} 9007199254740993\n' in text, "2^53+1 exactly")
    check('{driver="new\\nline",' in text and '{driver="back\\\\slash",' in text,
          "newline and backslash escaped in label values")
    check("# HELP m2md_driver_polls_total Polls \"sent\" \\\\ per device\\nsecond line.\n" in text,
          "help escapes \\ and newline, not quotes")


if __name__ == "__main__":
    main([test_parsed_back, test_grammar])
