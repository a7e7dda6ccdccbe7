# SPDX-License-Identifier: MIT
'''A BlueZ for the ble driver's tests: a python-dbusmock template.

Started as `python3 -m dbusmock --template tests/ble/plugin/bluez_mock.py`
on a private bus that m2md sees as its system bus. It owns org.bluez and
keeps to what BlueZ 5 does where the driver depends on it:

- ObjectManager at /, Adapter1 objects /org/bluez/NAME with Powered and
  Discovering, SetDiscoveryFilter (recorded), StartDiscovery (NotReady
  while powered off, InProgress when the session runs), StopDiscovery.
- Advertisements reach clients only while discovery runs: the first one of
  a device as InterfacesAdded, later ones as PropertiesChanged of RSSI,
  ManufacturerData and ServiceData (each report's data with DuplicateData,
  as bluetoothd clears and sets it). Without DuplicateData = true in the
  filter, a device is reported once per session, as a controller's
  duplicate filter does, so sensor updates stop.
- Powering off ends discovery and forgets the filter (bluetoothd's
  adapter_stop); nothing restarts by itself.
- Device1.Connect creates the device's GattService1/GattCharacteristic1
  objects with new handles (so new paths) on every connection, then sets
  ServicesResolved; a disconnect removes them. Characteristics have
  ReadValue, WriteValue (a rejected one fails with NotPermitted),
  StartNotify/StopNotify and Value PropertiesChanged while notifying.

Debian 12's bluez5 template (dbusmock 0.28.7) has no GATT objects and
wraps some variants twice, hence this one. The tests drive it through the
org.bluez.Mock methods on /.
'''

import struct
import time

import dbus
from gi.repository import GLib

from dbusmock import OBJECT_MANAGER_IFACE, mockobject

BUS_NAME = 'org.bluez'
MAIN_OBJ = '/'
SYSTEM_BUS = True
IS_OBJECT_MANAGER = True

MOCK = 'org.bluez.Mock'
ADAPTER = 'org.bluez.Adapter1'
DEVICE = 'org.bluez.Device1'
GATT_SERVICE = 'org.bluez.GattService1'
GATT_CHR = 'org.bluez.GattCharacteristic1'
PROPS = 'org.freedesktop.DBus.Properties'


def uuid128(u):
    u = u.lower()
    if u.startswith('0x'):
        u = u[2:]
    if len(u) == 4:
        return '0000%s-0000-1000-8000-00805f9b34fb' % u
    return u


def mfr_value(mfr):
    return dbus.Dictionary({dbus.UInt16(k): dbus.Array(bytes(v), signature='y') for k, v in mfr.items()},
                           signature='qv')


def svc_value(svc):
    return dbus.Dictionary({dbus.String(uuid128(k)): dbus.Array(bytes(v), signature='y')
                            for k, v in svc.items()}, signature='sv')


def state():
    return mockobject.objects['/'].bluez_state


def emit_changed(path, iface, changed):
    obj = mockobject.objects[path]
    obj.EmitSignal(PROPS, 'PropertiesChanged', 'sa{sv}as',
                   [iface, dbus.Dictionary(changed, signature='sv'), dbus.Array([], signature='s')])


def set_props(path, iface, changed):
    mockobject.objects[path].props[iface].update(changed)
    emit_changed(path, iface, changed)


def emit_added(path):
    obj = mockobject.objects[path]
    mockobject.objects['/'].EmitSignal(OBJECT_MANAGER_IFACE, 'InterfacesAdded', 'oa{sa{sv}}',
                                       [dbus.ObjectPath(path), obj.props])


def remove_object(path, ifaces):
    mockobject.objects['/'].RemoveObject(path)
    mockobject.objects['/'].EmitSignal(OBJECT_MANAGER_IFACE, 'InterfacesRemoved', 'oas',
                                       [dbus.ObjectPath(path), dbus.Array(ifaces, signature='s')])


def adapter_path(name):
    return '/org/bluez/' + name


def device_path(name, addr):
    return adapter_path(name) + '/dev_' + addr.upper().replace(':', '_')


def adapter_state(name):
    return state()['adapters'][adapter_path(name)]


# --- Adapter1 ---

def a_set_filter(adapter, flt):
    st = state()['adapters'][adapter.path]
    st['filter'] = dict(flt)
    st['filters'] += 1


def a_start(adapter):
    st = state()['adapters'][adapter.path]
    if not adapter.props[ADAPTER]['Powered']:
        raise dbus.exceptions.DBusException('Resource Not Ready', name='org.bluez.Error.NotReady')
    if st['session']:
        raise dbus.exceptions.DBusException('Operation already in progress',
                                            name='org.bluez.Error.InProgress')
    st['session'] = True
    st['starts'] += 1
    st['reported'] = set()
    set_props(adapter.path, ADAPTER, {'Discovering': dbus.Boolean(True)})


def a_stop(adapter):
    st = state()['adapters'][adapter.path]
    if not st['session']:
        raise dbus.exceptions.DBusException('No discovery started', name='org.bluez.Error.Failed')
    st['session'] = False
    set_props(adapter.path, ADAPTER, {'Discovering': dbus.Boolean(False)})


def a_remove_device(adapter, path):
    disconnect(path)
    remove_object(path, [DEVICE])


# --- Device1 ---

def gatt_objects(path):
    return sorted((p for p in mockobject.objects if p.startswith(path + '/')), reverse=True)


def d_connect(dev):
    st = state()['devices'][dev.path]
    if not st['connectable']:
        raise dbus.exceptions.DBusException('le-connection-abort-by-local',
                                            name='org.bluez.Error.Failed')
    if dev.props[DEVICE]['Connected']:
        raise dbus.exceptions.DBusException('Already Connected', name='org.bluez.Error.AlreadyConnected')
    st['connects'] += 1
    set_props(dev.path, DEVICE, {'Connected': dbus.Boolean(True)})
    # New handles on every connection: the object paths change.
    base = 0x10 * st['connects']
    services = {}
    for i, c in enumerate(st['gatt']):
        spath = services.get(c['svc'])
        if spath is None:
            spath = '%s/service%04x' % (dev.path, base + len(services) * 0x100)
            services[c['svc']] = spath
            mockobject.objects['/'].AddObject(spath, GATT_SERVICE, {
                'UUID': dbus.String(c['svc']),
                'Device': dbus.ObjectPath(dev.path),
                'Primary': dbus.Boolean(True),
            }, [])
            emit_added(spath)
        cpath = '%s/char%04x' % (spath, base + i + 1)
        c['path'] = cpath
        mockobject.objects['/'].AddObject(cpath, GATT_CHR, {
            'UUID': dbus.String(c['uuid']),
            'Service': dbus.ObjectPath(spath),
            'Value': dbus.Array(bytes(c['value']), signature='y'),
            'Flags': dbus.Array(c['flags'], signature='s'),
            'Notifying': dbus.Boolean(False),
        }, [
            ('ReadValue', 'a{sv}', 'ay', c_read),
            ('WriteValue', 'aya{sv}', '', c_write),
            ('StartNotify', '', '', c_start_notify),
            ('StopNotify', '', '', c_stop_notify),
        ])
        emit_added(cpath)
    set_props(dev.path, DEVICE, {'ServicesResolved': dbus.Boolean(True)})


def disconnect(path):
    dev = mockobject.objects.get(path)
    if dev is None or not dev.props[DEVICE]['Connected']:
        return False
    for c in state()['devices'][path]['gatt']:
        c['path'] = None
    for p in gatt_objects(path):
        iface = GATT_CHR if '/char' in p[len(path):] else GATT_SERVICE
        remove_object(p, [iface])
    set_props(path, DEVICE, {'ServicesResolved': dbus.Boolean(False), 'Connected': dbus.Boolean(False)})
    return True


def d_disconnect(dev):
    disconnect(dev.path)


# --- GattCharacteristic1 ---

def chr_of(obj):
    dev_path = obj.path.rsplit('/', 2)[0]
    for c in state()['devices'][dev_path]['gatt']:
        if c['path'] == obj.path:
            return c
    raise dbus.exceptions.DBusException('Not connected', name='org.bluez.Error.NotConnected')


def c_read(obj, options):
    c = chr_of(obj)
    c['reads'] += 1
    return dbus.Array(bytes(c['value']), signature='y')


def c_write(obj, value, options):
    c = chr_of(obj)
    if c['reject']:
        raise dbus.exceptions.DBusException('Write not permitted', name='org.bluez.Error.NotPermitted')
    c['writes'].append(bytes(value))
    c['value'] = bytes(value)
    obj.props[GATT_CHR]['Value'] = dbus.Array(bytes(value), signature='y')


def c_start_notify(obj):
    chr_of(obj)['notifying'] = True
    set_props(obj.path, GATT_CHR, {'Notifying': dbus.Boolean(True)})


def c_stop_notify(obj):
    chr_of(obj)['notifying'] = False
    set_props(obj.path, GATT_CHR, {'Notifying': dbus.Boolean(False)})


def load(mock, _parameters):
    mock.bluez_state = {'adapters': {}, 'devices': {}}


# --- the tests' controls ---

@dbus.service.method(MOCK, in_signature='s', out_signature='o')
def AddAdapter(self, name):
    path = adapter_path(name)
    mockobject.objects['/'].AddObject(path, ADAPTER, {
        'Address': dbus.String('00:11:22:33:44:55'),
        'Name': dbus.String('m2md-test'),
        'Alias': dbus.String('m2md-test'),
        'Powered': dbus.Boolean(True),
        'Discovering': dbus.Boolean(False),
        'Discoverable': dbus.Boolean(False),
        'Pairable': dbus.Boolean(False),
        'UUIDs': dbus.Array([], signature='s'),
    }, [
        ('SetDiscoveryFilter', 'a{sv}', '', a_set_filter),
        ('StartDiscovery', '', '', a_start),
        ('StopDiscovery', '', '', a_stop),
        ('RemoveDevice', 'o', '', a_remove_device),
    ])
    state()['adapters'][path] = {'filter': None, 'filters': 0, 'starts': 0, 'session': False,
                                 'reported': set()}
    emit_added(path)
    return dbus.ObjectPath(path)


@dbus.service.method(MOCK, in_signature='sb', out_signature='')
def SetPowered(self, name, on):
    path = adapter_path(name)
    st = adapter_state(name)
    changed = {'Powered': dbus.Boolean(bool(on))}
    if not on:
        for p in list(state()['devices']):
            if p.startswith(path + '/'):
                disconnect(p)
        # bluetoothd's adapter_stop: discovery clients and their filters are gone.
        st['session'] = False
        st['filter'] = None
        changed['Discovering'] = dbus.Boolean(False)
    set_props(path, ADAPTER, changed)


@dbus.service.method(MOCK, in_signature='s', out_signature='')
def StopDiscoveryBehindClients(self, name):
    '''Discovery ends without a client asking (a controller reset).'''
    adapter_state(name)['session'] = False
    set_props(adapter_path(name), ADAPTER, {'Discovering': dbus.Boolean(False)})


@dbus.service.method(MOCK, in_signature='s', out_signature='buua{sv}')
def DiscoveryInfo(self, name):
    st = adapter_state(name)
    return (dbus.Boolean(st['session']), dbus.UInt32(st['filters']), dbus.UInt32(st['starts']),
            dbus.Dictionary(st['filter'] or {}, signature='sv'))


@dbus.service.method(MOCK, in_signature='ssna{qay}a{say}', out_signature='b')
def Advertise(self, name, addr, rssi, mfr, svc):
    '''One advertisement; returns whether a client could have seen it.'''
    return advertise(name, addr, rssi, mfr, svc)


def advertise(name, addr, rssi, mfr, svc):
    apath = adapter_path(name)
    st = adapter_state(name)
    if not st['session']:
        return False
    path = device_path(name, addr)
    flt = st['filter'] or {}
    if path in st['reported'] and not bool(flt.get('DuplicateData', False)):
        return False
    st['reported'].add(path)
    props = {
        'RSSI': dbus.Int16(rssi),
        'ManufacturerData': mfr_value({int(k): bytes(v) for k, v in mfr.items()}),
        'ServiceData': svc_value({str(k): bytes(v) for k, v in svc.items()}),
    }
    if path not in mockobject.objects:
        mockobject.objects['/'].AddObject(path, DEVICE, dict(props, **{
            'Address': dbus.String(addr.upper()),
            'AddressType': dbus.String('public'),
            'Alias': dbus.String(addr.upper().replace(':', '-')),
            'Adapter': dbus.ObjectPath(apath),
            'Paired': dbus.Boolean(False),
            'Connected': dbus.Boolean(False),
            'ServicesResolved': dbus.Boolean(False),
            'UUIDs': dbus.Array([], signature='s'),
        }), [
            ('Connect', '', '', d_connect),
            ('Disconnect', '', '', d_disconnect),
        ])
        state()['devices'].setdefault(path, {'gatt': [], 'connectable': True, 'connects': 0})
        emit_added(path)
        return True
    dev = mockobject.objects[path]
    changed = {'RSSI': props['RSSI']}
    # With DuplicateData BlueZ clears and sets the data of every report, so
    # each one is a PropertiesChanged; without, only changed data is.
    dup = bool(flt.get('DuplicateData', False))
    for k in ('ManufacturerData', 'ServiceData'):
        if props[k] and (dup or props[k] != dev.props[DEVICE][k]):
            changed[k] = props[k]
    set_props(path, DEVICE, changed)
    return True


@dbus.service.method(MOCK, in_signature='ss', out_signature='b')
def RemoveDevice(self, name, addr):
    path = device_path(name, addr)
    if path not in mockobject.objects:
        return False
    disconnect(path)
    remove_object(path, [DEVICE])
    return True


@dbus.service.method(MOCK, in_signature='ssssasay', out_signature='')
def AddCharacteristic(self, name, addr, svc, uuid, flags, value):
    '''A characteristic of a device's GATT database, exported while connected.'''
    path = device_path(name, addr)
    st = state()['devices'].setdefault(path, {'gatt': [], 'connectable': True, 'connects': 0})
    st['gatt'].append({'svc': uuid128(svc), 'uuid': uuid128(uuid), 'flags': list(flags),
                       'value': bytes(value), 'path': None, 'reads': 0, 'writes': [],
                       'reject': False, 'notifying': False})


def find_chr(name, addr, uuid):
    for c in state()['devices'][device_path(name, addr)]['gatt']:
        if c['uuid'] == uuid128(uuid):
            return c
    raise dbus.exceptions.DBusException('no such characteristic', name='org.bluez.Mock.Error')


@dbus.service.method(MOCK, in_signature='sssay', out_signature='b')
def SetValue(self, name, addr, uuid, value):
    '''The device's value changes; notified when a client subscribed. Returns whether it was.'''
    c = find_chr(name, addr, uuid)
    c['value'] = bytes(value)
    if c['path'] is None:
        return False
    mockobject.objects[c['path']].props[GATT_CHR]['Value'] = dbus.Array(bytes(value), signature='y')
    if c['notifying']:
        emit_changed(c['path'], GATT_CHR, {'Value': dbus.Array(bytes(value), signature='y')})
        return True
    return False


@dbus.service.method(MOCK, in_signature='sssb', out_signature='')
def RejectWrites(self, name, addr, uuid, reject):
    find_chr(name, addr, uuid)['reject'] = bool(reject)


@dbus.service.method(MOCK, in_signature='sss', out_signature='aayub')
def CharacteristicInfo(self, name, addr, uuid):
    '''What clients did: the values written, the reads, and whether it notifies.'''
    c = find_chr(name, addr, uuid)
    return (dbus.Array([dbus.Array(w, signature='y') for w in c['writes']], signature='ay'),
            dbus.UInt32(c['reads']), dbus.Boolean(c['notifying']))


@dbus.service.method(MOCK, in_signature='ssb', out_signature='')
def SetConnectable(self, name, addr, on):
    path = device_path(name, addr)
    state()['devices'].setdefault(path, {'gatt': [], 'connectable': True, 'connects': 0})['connectable'] = bool(on)


@dbus.service.method(MOCK, in_signature='ss', out_signature='bu')
def ConnectionInfo(self, name, addr):
    path = device_path(name, addr)
    st = state()['devices'].get(path, {'connects': 0})
    dev = mockobject.objects.get(path)
    return (dbus.Boolean(bool(dev and dev.props[DEVICE]['Connected'])), dbus.UInt32(st['connects']))


@dbus.service.method(MOCK, in_signature='ss', out_signature='b')
def DisconnectDevice(self, name, addr):
    '''The device goes away (out of range, battery): a disconnect nobody asked for.'''
    return disconnect(device_path(name, addr))


# --- a flood of adverts for the benchmark (tests/bench/bench-ble.py) ---

def pvvx_payload(addr, counter):
    mac = bytes(int(x, 16) for x in reversed(addr.split(':')))
    return mac + struct.pack('<hHHBBB', 2150 + counter % 50, 4500, 2950, 87, counter & 0xff, 0)


@dbus.service.method(MOCK, in_signature='sasud', out_signature='')
def Flood(self, name, addrs, rate, seconds):
    '''RATE pvvx adverts per second for SECONDS, round robin over ADDRS, each
    with the next measurement counter; sent from this process's main loop
    in 2 ms ticks, so the rate holds while the test only waits.'''
    st = state()
    st['flood'] = {'sent': 0, 'seen': 0, 'done': False}
    f = st['flood']
    t0 = time.monotonic()
    addrs = [str(a) for a in addrs]

    def tick():
        elapsed = time.monotonic() - t0
        due = int(min(elapsed, seconds) * rate) - f['sent']
        for _ in range(due):
            i = f['sent']
            addr = addrs[i % len(addrs)]
            f['seen'] += advertise(name, addr, -60, {}, {'181a': pvvx_payload(addr, i // len(addrs))})
            f['sent'] += 1
        if elapsed >= seconds:
            f['done'] = True
            f['elapsed'] = elapsed
            return False
        return True

    GLib.timeout_add(2, tick)


@dbus.service.method(MOCK, in_signature='', out_signature='uubd')
def FloodInfo(self):
    '''Adverts sent, how many a client could see, whether the flood ended, and its length in s.'''
    f = state().get('flood') or {'sent': 0, 'seen': 0, 'done': False}
    return (dbus.UInt32(f['sent']), dbus.UInt32(f['seen']), dbus.Boolean(f['done']),
            dbus.Double(f.get('elapsed', 0.0)))
