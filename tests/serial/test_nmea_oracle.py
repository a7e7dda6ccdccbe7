#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The NMEA codec against pynmea2 (python3-nmea2), an independent parser.

Usage: test_nmea_oracle.py NMEA-DUMP REAL-SENTENCES

Feeds a fixed set of real-world sentences and a few thousand generated ones
(random values, random talkers, empty fields, upper and lower case, bad and
missing checksums) through nmea-dump, which prints what the codec reads, and
checks every line against pynmea2's reading of the same bytes: that the
checksum verdict is the same, and every number (latitude and longitude in
decimal degrees, speeds, courses, fix quality, dilutions, depths, XDR
measurements) and every timestamp agrees. Where pynmea2 reads an empty field
as 0, the codec must have no value.
"""
import datetime
import functools
import random
import subprocess
import sys

import pynmea2

UTC = datetime.timezone.utc
TALKERS = ['GP', 'GN', 'GL', 'GA', 'BD', 'GB', 'QZ', 'II', 'IN']


def checksum(body):
    return functools.reduce(lambda a, c: a ^ ord(c), body, 0)


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def maybe(self, text, empty=0.1):
        return '' if self.r.random() < empty else text

    def num(self, lo, hi, decimals):
        return '%.*f' % (decimals, self.r.uniform(lo, hi))

    def time(self):
        t = '%02d%02d%02d' % (self.r.randrange(24), self.r.randrange(60), self.r.randrange(60))
        return t + self.r.choice(['', '.00', '.%02d' % self.r.randrange(100),
                                  '.%03d' % self.r.randrange(1000)])

    def date(self):
        d = datetime.date(2000, 1, 1) + datetime.timedelta(days=self.r.randrange(25000))
        return d.strftime('%d%m%y')

    def latlon(self):
        """lat, N/S, lon, E/W: both empty together when there is no fix."""
        if self.r.random() < 0.1:
            return ['', '', '', '']
        lat = '%02d%0*.*f' % (self.r.randrange(90), 3 + (d := self.r.randint(2, 6)), d,
                              self.r.uniform(0, 59.999))
        lon = '%03d%0*.*f' % (self.r.randrange(180), 3 + d, d, self.r.uniform(0, 59.999))
        return [lat, self.r.choice('NS'), lon, self.r.choice('EW')]

    def rmc(self):
        return ['RMC', self.maybe(self.time()), self.r.choice('AV')] + self.latlon() + [
            self.maybe(self.num(0, 200, 3)), self.maybe(self.num(0, 359.9, 1)),
            self.maybe(self.date()), '', '', self.r.choice('ADEN')]

    def gga(self):
        return ['GGA', self.maybe(self.time())] + self.latlon() + [
            str(self.r.randrange(9)), '%02d' % self.r.randrange(40),
            self.maybe(self.num(0.5, 99.99, 2)), self.maybe(self.num(-400, 9000, 1)), 'M',
            self.maybe(self.num(-100, 100, 1)), 'M', self.maybe(self.num(0, 99, 1), 0.7),
            self.maybe('%04d' % self.r.randrange(1024), 0.7)]

    def gll(self):
        return ['GLL'] + self.latlon() + [self.maybe(self.time()), self.r.choice('AV'),
                                          self.r.choice('ADN')]

    def vtg(self):
        return ['VTG', self.maybe(self.num(0, 359.9, 1)), 'T', self.maybe(self.num(0, 359.9, 1)),
                'M', self.maybe(self.num(0, 100, 3)), 'N', self.maybe(self.num(0, 185, 3)), 'K',
                self.r.choice('ADN')]

    def gsa(self):
        prns = [self.maybe('%02d' % self.r.randint(1, 99), 0.4) for _ in range(12)]
        return ['GSA', self.r.choice('AM'), str(self.r.randint(1, 3))] + prns + [
            self.maybe(self.num(0.5, 99, 2)), self.maybe(self.num(0.5, 99, 2)),
            self.maybe(self.num(0.5, 99, 2))]

    def gsv(self):
        n = self.r.randint(1, 4)
        f = ['GSV', str(self.r.randint(1, 9)), str(self.r.randint(1, 9)), '%02d' % self.r.randrange(50)]
        for _ in range(n):
            f += ['%02d' % self.r.randint(1, 220), self.maybe('%02d' % self.r.randrange(91)),
                  self.maybe('%03d' % self.r.randrange(360)), self.maybe('%02d' % self.r.randrange(60))]
        return f

    def zda(self):
        d = datetime.date(1990, 1, 1) + datetime.timedelta(days=self.r.randrange(30000))
        return ['ZDA', self.time(), '%02d' % d.day, '%02d' % d.month, '%04d' % d.year, '00', '00']

    def gns(self):
        return ['GNS', self.maybe(self.time())] + self.latlon() + [
            ''.join(self.r.choice('ADNR') for _ in range(self.r.randint(1, 4))),
            '%02d' % self.r.randrange(40), self.maybe(self.num(0.5, 99, 1)),
            self.maybe(self.num(-400, 9000, 1)), self.maybe(self.num(-100, 100, 1)), '', '']

    def hdt(self):
        return ['HDT', self.maybe(self.num(0, 359.99, 2)), 'T']

    def mwv(self):
        return ['MWV', self.maybe(self.num(0, 359.9, 1)), self.r.choice('RT'),
                self.maybe(self.num(0, 80, 1)), self.r.choice('KMNS'), self.r.choice('AV')]

    def dbt(self):
        m = self.r.uniform(0, 3000)
        return ['DBT', self.maybe('%.1f' % (m * 3.28084)), 'f', self.maybe('%.1f' % m), 'M',
                self.maybe('%.1f' % (m / 1.8288)), 'F']

    def dpt(self):
        return ['DPT', self.maybe(self.num(0, 3000, 1)), self.maybe(self.num(-5, 5, 1)),
                self.maybe(self.num(0, 5000, 0))]

    def mtw(self):
        return ['MTW', self.maybe(self.num(-2, 35, 1)), 'C']

    def xdr(self):
        f = ['XDR']
        for i in range(self.r.randint(1, 4)):
            t, u = self.r.choice([('C', 'C'), ('P', 'B'), ('H', 'P'), ('A', 'D'), ('U', 'V')])
            f += [t, self.maybe(self.num(-100, 1100, self.r.randint(0, 5))), u,
                  self.r.choice(['TempAir', 'Barometer', 'RH', 'PITCH', 'ENGT']) + str(i)]
        return f

    def sentence(self):
        fields = getattr(self, self.r.choice(
            ['rmc', 'gga', 'gll', 'vtg', 'gsa', 'gsv', 'zda', 'gns', 'hdt', 'mwv', 'dbt', 'dpt',
             'mtw', 'xdr']))()
        body = self.r.choice(TALKERS) + ','.join(fields)
        if len(body) > 97:
            return self.sentence()
        cs = checksum(body)
        p = self.r.random()
        if p < 0.05:
            return '$' + body  # missing
        if p < 0.10:
            cs ^= 1 << self.r.randrange(8)  # wrong
        return '$%s*%s' % (body, ('%02X' if self.r.random() < 0.7 else '%02x') % cs)


def parse_dump(line):
    words = line.split(' ')
    if words[0] == 'err':
        return None
    out = {'talker': words[1], 'type': words[2]}
    for w in words[3:]:
        k, v = w.split('=', 1)
        out[k] = v
    return out


class Check:
    def __init__(self):
        self.failures = []
        self.compared = 0

    def fail(self, sentence, what):
        self.failures.append('%s: %s' % (sentence, what))

    def number(self, sentence, ours, raw, oracle, name, eps=1e-9):
        """ours: the codec's text; raw: the field as sent; oracle: pynmea2's value."""
        self.compared += 1
        if raw in (None, ''):
            if ours != '-':
                self.fail(sentence, '%s: empty field read as %s' % (name, ours))
            return
        try:
            v = float(ours)
        except (TypeError, ValueError):
            self.fail(sentence, '%s: %s, pynmea2 %r' % (name, ours, oracle))
            return
        if abs(v - float(oracle)) > eps * max(1.0, abs(float(oracle))):
            self.fail(sentence, '%s: %r, pynmea2 %r' % (name, v, oracle))

    def equal(self, sentence, ours, oracle, name):
        self.compared += 1
        if ours != oracle:
            self.fail(sentence, '%s: %r, pynmea2 %r' % (name, ours, oracle))


def us_of_day(t):
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1000000 + t.microsecond


def utc_us(d, t):
    dt = datetime.datetime.combine(d, t).replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1000000 + dt.microsecond


def compare(c, line, ours, msg):
    t = ours['type']
    c.equal(line, ours['talker'], msg.talker, 'talker')
    c.equal(line, t, msg.sentence_type, 'type')

    def num(name, attr, eps=1e-9):
        c.number(line, ours[name], getattr(msg, attr), getattr(msg, attr), name, eps)

    def pos(lat_raw, lon_raw):
        c.number(line, ours['latitude'], lat_raw, msg.latitude, 'latitude')
        c.number(line, ours['longitude'], lon_raw, msg.longitude, 'longitude')

    def time(raw):
        # pynmea2 truncates float('.123') * 1e6: allow a microsecond.
        if raw:
            c.number(line, ours['time'], raw, us_of_day(msg.timestamp), 'time', 1e-12)
        else:
            c.equal(line, ours['time'], '-', 'time')

    if t == 'RMC':
        pos(msg.lat, msg.lon)
        time(msg.data[0])
        num('speed_knots', 'spd_over_grnd')
        num('course', 'true_course')
        c.equal(line, ours['status'], msg.status, 'status')
        c.equal(line, ours['valid'], str(int(msg.is_valid)), 'valid')
        if msg.data[0] and msg.data[8]:
            c.number(line, ours['ts'], 'x', utc_us(msg.datestamp, msg.timestamp), 'ts', 1e-15)
    elif t == 'GGA':
        pos(msg.lat, msg.lon)
        time(msg.data[0])
        num('fix_quality', 'gps_qual')
        num('satellites', 'num_sats')
        num('hdop', 'horizontal_dil')
        num('altitude', 'altitude')
        num('geoid_separation', 'geo_sep')
        num('dgps_age', 'age_gps_data')
        # pynmea2 takes qualities 1..5 as valid; the codec every one but 0
        # (6 is dead reckoning, which a moving vehicle still wants).
        if msg.gps_qual <= 5:
            c.equal(line, ours['valid'], str(int(msg.is_valid)), 'valid')
    elif t == 'GLL':
        pos(msg.lat, msg.lon)
        time(msg.data[4])
        c.equal(line, ours['valid'], str(int(msg.is_valid)), 'valid')
    elif t == 'VTG':
        num('course', 'true_track')
        num('course_magnetic', 'mag_track')
        num('speed_knots', 'spd_over_grnd_kts')
        num('speed_kmh', 'spd_over_grnd_kmph')
    elif t == 'GSA':
        num('fix_type', 'mode_fix_type')
        for i in range(1, 13):
            num('prn%d' % i, 'sv_id%02d' % i)
        for k in ('pdop', 'hdop', 'vdop'):
            num(k, k)
        c.equal(line, ours['valid'], str(int(msg.is_valid)), 'valid')
    elif t == 'GSV':
        num('messages', 'num_messages')
        num('message', 'msg_num')
        num('satellites_in_view', 'num_sv_in_view')
        # NMEA 4.10 adds a signal id after the last satellite, which pynmea2
        # (written for 3.0) takes for the next satellite's PRN.
        sats, extra = divmod(len(msg.data) - 3, 4)
        for i in range(1, 5):
            for ours_name, attr in (('prn', 'sv_prn_num_'), ('elevation', 'elevation_deg_'),
                                    ('azimuth', 'azimuth_'), ('snr', 'snr_')):
                if i <= sats:
                    num(ours_name + str(i), attr + str(i))
                else:
                    c.equal(line, ours[ours_name + str(i)], '-', ours_name + str(i))
        if extra == 1:
            c.number(line, ours['signal_id'], msg.data[-1], msg.data[-1], 'signal_id')
    elif t == 'ZDA':
        time(msg.data[0])
        c.number(line, ours['ts'], 'x', utc_us(msg.datestamp, msg.timestamp), 'ts', 1e-15)
        for k in ('day', 'month', 'year'):
            num(k, k)
    elif t == 'GNS':
        pos(msg.lat, msg.lon)
        time(msg.data[0])
        num('satellites', 'num_sats')
        num('hdop', 'hdop')
        num('altitude', 'altitude')
        num('geoid_separation', 'geo_sep')
        c.equal(line, ours['mode'], msg.mode_indicator, 'mode')
    elif t == 'HDT':
        num('heading', 'heading')
    elif t == 'MWV':
        num('wind_angle', 'wind_angle')
        num('wind_speed', 'wind_speed')
        c.equal(line, ours['reference'], msg.reference, 'reference')
        c.equal(line, ours['valid'], str(int(msg.is_valid)), 'valid')
    elif t == 'DBT':
        num('depth_feet', 'depth_feet')
        num('depth_meters', 'depth_meters')
        num('depth_fathoms', 'depth_fathoms')
    elif t == 'DPT':
        for k in ('depth', 'offset', 'range'):
            num(k, k)
    elif t == 'MTW':
        num('temperature', 'temperature')
    elif t == 'XDR':
        c.equal(line, sum(1 for k in ours if k.startswith('xdr')), msg.num_transducers, 'count')
        for i in range(msg.num_transducers):
            x = msg.get_transducer(i)
            typ, value, unit, name = ours['xdr%d' % i].split(',', 3)
            c.equal(line, (typ, unit, name), (x.type, x.units, x.id), 'xdr%d' % i)
            c.number(line, value, x.value, x.value, 'xdr%d value' % i)


def main():
    dump, real = sys.argv[1], sys.argv[2]
    with open(real) as f:
        lines = [l.strip() for l in f if l.strip()]
    gen = Gen(20261201)
    generated = [gen.sentence() for _ in range(5000)]
    lines += generated
    out = subprocess.run([dump], input='\n'.join(lines) + '\n', capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert len(out) == len(lines), (len(out), len(lines))
    c = Check()
    agreed_bad = 0
    for line, o in zip(lines, out):
        ours = parse_dump(o)
        try:
            msg = pynmea2.parse(line, check=True)
        except pynmea2.ChecksumError:
            if ours is not None:
                c.fail(line, 'pynmea2 refuses the checksum, the codec accepts it')
            agreed_bad += 1
            continue
        except pynmea2.ParseError as e:
            c.fail(line, 'pynmea2 cannot parse it: %s' % e)
            continue
        if ours is None:
            c.fail(line, 'the codec refuses it (%s), pynmea2 reads it' % o)
            continue
        if ours['type'] in ('VDM', 'TXT'):
            continue
        compare(c, line, ours, msg)
    for f in c.failures[:30]:
        print('FAIL', f)
    print('%d sentences (%d real, %d generated), %d fields compared, %d refused by both, '
          '%d disagreements' % (len(lines), len(lines) - len(generated), len(generated),
                                c.compared, agreed_bad, len(c.failures)))
    # A run that compared nothing would prove nothing.
    assert c.compared > 30000 and agreed_bad > 100
    return 1 if c.failures else 0


if __name__ == '__main__':
    sys.exit(main())
