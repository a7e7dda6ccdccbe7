# SPDX-License-Identifier: MIT
"""The CAN driver's configuration, checked by the real m2md (--check, which
opens no socket, so it runs on a host without AF_CAN): every mistake is one
line naming file, line, key path and what was expected; a selection the DBC
lacks says "did you mean"; a DBC with garbage names its own file and line;
what a DBC file can live with is a warning, and the config is valid."""

import os

from m2mtest import PLUGIN_DIR, check, main, run_check, tmpdir

DBC = """VERSION ""
BU_: ECU
BO_ 256 Engine: 8 ECU
 SG_ Speed : 0|16@1+ (0.25,0) [0|16383.75] "rpm" Vector__XXX
 SG_ Gear : 16|3@1+ (1,0) [0|7] "" Vector__XXX
VAL_ 256 Gear 0 "park" 1 "drive" ;
"""

# A second file; its Engine has the id of the first's, which wins.
J1939 = """VERSION ""
BO_ 2364539904 EEC1: 8 ECU
 SG_ EngineSpeed : 24|16@1+ (0.125,0) [0|8031.875] "rpm" Vector__XXX
BO_ 256 Engine: 8 ECU
 SG_ Other : 0|8@1+ (1,0) [0|0] "" Vector__XXX
BA_DEF_ "ProtocolType" STRING ;
BA_ "ProtocolType" "J1939";
"""


def setup():
    d = tmpdir("can-config")
    paths = {}
    for name, text in (("ok.dbc", DBC), ("j1939.dbc", J1939),
                       ("garbage.dbc", DBC + "BO_ 300 Bad: 8 ECU\n SG_ X : 0|8@2+ (1,0) [0|0] \"\" ECU\n"),
                       ("warn.dbc", DBC.replace(' SG_ Gear', ' SG_ Speed : 0|8@1+ (1,0) [0|0] "" X\n SG_ Gear'))):
        paths[name] = os.path.join(d, name)
        with open(paths[name], "w") as f:
            f.write(text)
    return d, paths


def config(d, name, body):
    path = os.path.join(d, name + ".toml")
    with open(path, "w") as f:
        f.write('[gateway]\nplugin_dir = "%s"\n[storage]\npath = "%s/db"\n'
                '[drivers.bus]\nplugin = "can"\ninterface = "can0"\n%s' % (PLUGIN_DIR, d, body))
    return path


def test_errors():
    d, p = setup()
    sel = '[[drivers.bus.signals]]\nselect = "%s"\n'
    # J1939 cases: the J1939 file, a [drivers.bus.j1939] table (at line 9) and EEC1 from SA 0.
    jdbc = 'dbc = "%s"\n[drivers.bus.j1939]\n' % p["j1939.dbc"]
    jsel = sel % "EEC1.*" + "source = 0\n"
    cases = [
        ("typo", 'dbc = "%s"\n' % p["ok.dbc"] + sel % "Engnie.Speed",
         ':10: drivers.bus.signals[0].select: no signal matches "Engnie.Speed" (did you mean "Engine.Speed"?)'),
        ("sig-typo", 'dbc = "%s"\n' % p["ok.dbc"] + sel % "Sped",
         'did you mean "Engine.Speed"'),
        ("unknown-key", 'dbc = "%s"\n' % p["ok.dbc"] + sel % "Engine.*" + 'on_chnage = true\n',
         ":11: drivers.bus.signals[0].on_chnage: unknown key 'on_chnage' (did you mean 'on_change'?)"),
        ("relative", 'dbc = "ok.dbc"\n' + sel % "Engine.*",
         ':8: drivers.bus.dbc: expected an absolute path to a DBC file, not "ok.dbc"'),
        ("missing-file", 'dbc = "%s/none.dbc"\n' % d + sel % "Engine.*",
         "cannot read DBC file"),
        ("garbage", 'dbc = "%s"\n' % p["garbage.dbc"] + sel % "Engine.*",
         ':8: drivers.bus.dbc: %s:8: expected the byte order' % p["garbage.dbc"]),
        ("no-signals", 'dbc = "%s"\n' % p["ok.dbc"],
         "expected 'signals', a non-empty array"),
        ("name-many", 'dbc = "%s"\n' % p["ok.dbc"] + sel % "Engine.*" + 'name = "x"\n',
         ":11: drivers.bus.signals[0].name: 'name' needs a selection of one signal"),
        ("twice", 'dbc = "%s"\n' % p["ok.dbc"] + sel % "Engine.*" + sel % "Engine.Gear",
         'signal "Engine.Gear" is selected twice'),
        ("text-none", 'dbc = "%s"\n' % p["ok.dbc"] + sel % "Engine.Speed" + "text = true\n",
         ':11: drivers.bus.signals[0].text: signal "Engine.Speed" has no value descriptions'),
        ("j1939-source", 'dbc = "%s"\n' % p["j1939.dbc"] + sel % "EEC1.*",
         'message "EEC1" is J1939: the selection needs \'source\''),
        ("source-not-j1939", 'dbc = "%s"\n' % p["ok.dbc"] + sel % "Engine.*" + "source = 3\n",
         ":11: drivers.bus.signals[0].source: 'source' is for J1939 messages"),
        ("interval", 'dbc = "%s"\n' % p["ok.dbc"] + sel % "Engine.*" + 'min_interval = "5"\n',
         ":11: drivers.bus.signals[0].min_interval:"),
        ("no-interface", 'dbc = "%s"\n' % p["ok.dbc"] + sel % "Engine.*",
         "missing key 'interface'"),
        ("inline-fit", '[[drivers.bus.messages]]\nname = "M"\nid = 0x10\nsize = 2\n'
         '[[drivers.bus.messages.signals]]\nname = "S"\nstart_bit = 8\nlength = 16\n' + sel % "M.S",
         ':14: drivers.bus.messages[0].signals[0].start_bit: a 16-bit intel signal at bit 8 does not '
         'fit in the 2 bytes of message "M"'),
        ("inline-sff", '[[drivers.bus.messages]]\nname = "M"\nid = 0x800\nextended = false\n'
         '[[drivers.bus.messages.signals]]\nname = "S"\nlength = 8\n' + sel % "M.S",
         ":10: drivers.bus.messages[0].id: an 11-bit id is at most 0x7ff"),
        ("j1939-name", jdbc + 'address = 0x80\n'
         'name = "0xzz"\n' + jsel,
         ':11: drivers.bus.j1939.name: expected a 64-bit J1939 NAME other than 0'),
        ("j1939-name-field", jdbc + 'address = 0x80\n'
         'name = { identity = 0x200000 }\n' + jsel,
         ':11: drivers.bus.j1939.name.identity:'),
        ("j1939-address", jdbc + 'address = 254\n' + jsel,
         ':10: drivers.bus.j1939.address:'),
        ("j1939-range", jdbc + 'name = 0x1234\n'
         'address_range = [0x90, 0x80]\n' + jsel,
         ':11: drivers.bus.j1939.address_range: the range is inverted: its first address (144) '
         'is above its last (128)'),
        ("j1939-range-254", jdbc + 'name = 0x1234\n'
         'address_range = [0x80, 254]\n' + jsel,
         ':11: drivers.bus.j1939.address_range[1]: expected a J1939 address from 0 to 253'),
        ("j1939-range-no-name", jdbc + 'address_range = [0x80, 0x81]\n' + jsel,
         ":10: drivers.bus.j1939.address_range: 'address_range' is for address claiming"),
        ("j1939-no-address", jdbc + 'name = 0x1234\n' + jsel,
         ":10: drivers.bus.j1939.name: address claiming needs 'address'"),
        ("j1939-cycle", 'dbc = "%s"\n' % p["j1939.dbc"] + sel % "EEC1.*" + "source = 0\n"
         'writable = true\ntx_cycle = "100ms"\n',
         ":13: drivers.bus.signals[0].tx_cycle: J1939 message \"EEC1\" is sent once per write"),
        ("j1939-pdu2-dest", 'dbc = "%s"\n' % p["j1939.dbc"] + sel % "EEC1.*" + "source = 0\n"
         'destination = 5\n',
         ":12: drivers.bus.signals[0].destination: message \"EEC1\" is PDU2"),
        ("values-key", '[[drivers.bus.messages]]\nname = "M"\nid = 0x10\n'
         '[[drivers.bus.messages.signals]]\nname = "S"\nlength = 8\nvalues = { x = "a" }\n' + sel % "M.S",
         ':14: drivers.bus.messages[0].signals[0].values.x: expected an integer raw value as the key'),
    ]
    failures = []
    for name, body, expect in cases:
        path = config(d, name, body)
        if name == "no-interface":
            with open(path) as f:
                text = f.read().replace('interface = "can0"\n', "")
            with open(path, "w") as f:
                f.write(text)
        code, out, err = run_check(path)
        lines = err.splitlines()
        if code != 78 or len(lines) != 1 or not lines[0].startswith(path + ":") or expect not in lines[0]:
            failures.append("%s: exit %d, %r; expected %r" % (name, code, err, expect))
        else:
            print("ok %-18s %s" % (name, lines[0][len(path):]))
    for f in failures:
        print("FAIL " + f)
    check(not failures, "%d of %d bad CAN configs gave the wrong error" % (len(failures), len(cases)))


def test_valid_with_warnings():
    """A DBC with a duplicate signal is used, with a warning naming its line;
    inline messages, J1939 sources, text points and writes are valid."""
    d, p = setup()
    path = config(d, "warn", 'dbc = ["%s", "%s"]\n' % (p["warn.dbc"], p["j1939.dbc"]) +
                  '[[drivers.bus.signals]]\nselect = "Engine.*"\ntext = true\nwritable = true\n'
                  '[[drivers.bus.signals]]\nselect = "EEC1.EngineSpeed"\nsource = 0\ndevice = "engine"\n'
                  '[[drivers.bus.signals]]\nselect = "EEC1.EngineSpeed"\nsource = 3\nwritable = true\n'
                  '[drivers.bus.j1939]\naddress = 0x80\naddress_range = [0x80, 0x87]\n'
                  'name = { identity = 0x1234, manufacturer = 0x7ff, function = 0x81, '
                  'industry_group = 2, arbitrary_address = true }\n')
    code, out, err = run_check(path)
    check(code == 0 and "configuration is valid" in out, "valid: %d %r %r" % (code, out, err))
    check("%s:5: " % p["warn.dbc"] in err and "Speed" in err, "the duplicate is a warning: %r" % err)
    check("%s:4: " % p["j1939.dbc"] in err and "Engine" in err,
          "the second file's message with a known id is a warning: %r" % err)


if __name__ == "__main__":
    main([test_errors, test_valid_with_warnings])
