// The /proc/net parser on fixture files: what it finds, what it rejects, and that feeding it in
// arbitrary chunks changes nothing.
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { normalizeAddress } from '../../exporters/sockets/address';
import {
  ProcNetParser,
  decodeProcAddress,
  formatIPv6,
  parseProcNet,
  portClass,
  type Listener,
} from '../../exporters/sockets/procnet';

const fixture = (name: string): string => fs.readFileSync(path.join(__dirname, 'fixtures', name), 'latin1');
const brief = (ls: Listener[]): string[] =>
  ls.map((l) => `${l.protocol}${l.family} ${l.address} ${l.port} uid=${l.uid} inode=${l.inode}`);

describe('parseProcNet on fixtures', () => {
  test('IPv4 TCP: listeners only, every socket counted by state', () => {
    const t = parseProcNet(fixture('tcp-v4.txt'), 'tcp', 4);
    expect(brief(t.listeners)).toEqual([
      'tcp4 127.0.0.1 3306 uid=106 inode=1001',
      'tcp4 0.0.0.0 22 uid=0 inode=1002',
      'tcp4 10.0.0.10 50001 uid=1000 inode=1003',
    ]);
    expect(t.sockets).toBe(8);
    expect(t.states[0x0a]).toBe(3); // listen
    expect(t.states[0x01]).toBe(2); // established
    expect(t.states[0x06]).toBe(1); // time_wait (inode 0, short line)
    expect(t.states[0x08]).toBe(1); // close_wait
    expect(t.states[0x02]).toBe(1); // syn_sent
    expect(t.badLines).toBe(0);
    expect(t.truncatedLastLine).toBe(false);
  });

  test('IPv6 TCP: any, loopback, link-local and global addresses in RFC 5952 form', () => {
    const t = parseProcNet(fixture('tcp6.txt'), 'tcp', 6);
    expect(brief(t.listeners)).toEqual([
      'tcp6 :: 80 uid=33 inode=2001',
      'tcp6 ::1 8080 uid=1000 inode=2002',
      'tcp6 fe80::1 443 uid=0 inode=2003',
      'tcp6 2001:db8::5 22 uid=0 inode=2004',
    ]);
    expect(t.states[0x01]).toBe(1);
    expect(t.badLines).toBe(0);
  });

  test('IPv4-mapped IPv6 listeners keep the dotted form', () => {
    const t = parseProcNet(fixture('tcp6-mapped.txt'), 'tcp', 6);
    expect(brief(t.listeners)).toEqual([
      'tcp6 ::ffff:127.0.0.1 10000 uid=1000 inode=3001',
      'tcp6 ::ffff:10.0.0.10 49153 uid=1000 inode=3003',
    ]);
    expect(t.sockets).toBe(3);
  });

  test('UDP: bound (unconnected) sockets are listeners, connected ones are not', () => {
    const t = parseProcNet(fixture('udp.txt'), 'udp', 4);
    expect(brief(t.listeners)).toEqual([
      'udp4 0.0.0.0 68 uid=0 inode=4001',
      'udp4 127.0.0.53 53 uid=101 inode=4002',
      'udp4 0.0.0.0 57621 uid=1000 inode=4004',
    ]);
    expect(t.sockets).toBe(4);
    const t6 = parseProcNet(fixture('udp6.txt'), 'udp', 6);
    expect(brief(t6.listeners)).toEqual(['udp6 :: 5353 uid=107 inode=5001', 'udp6 ::1 514 uid=0 inode=5002']);
  });

  test('tabs, runs of spaces, CRLF, lower-case hex, blank lines and a short row', () => {
    const t = parseProcNet(fixture('odd-spacing.txt'), 'tcp', 4);
    expect(brief(t.listeners)).toEqual([
      'tcp4 127.0.0.1 3306 uid=106 inode=6001',
      'tcp4 0.0.0.0 22 uid=0 inode=6002',
      'tcp4 127.0.0.1 8080 uid=1000 inode=6003',
    ]);
    expect(t.badLines).toBe(0);
  });

  test('a truncated last line is ignored and reported', () => {
    const t = parseProcNet(fixture('truncated.txt'), 'tcp', 4);
    expect(brief(t.listeners)).toEqual(['tcp4 127.0.0.1 3306 uid=106 inode=7001', 'tcp4 0.0.0.0 22 uid=0 inode=7002']);
    expect(t.truncatedLastLine).toBe(true);
    expect(t.badLines).toBe(0);
  });

  test('zero sockets: only the header', () => {
    for (const [file, proto, fam] of [
      ['empty-tcp.txt', 'tcp', 4],
      ['empty-udp6.txt', 'udp', 6],
    ] as const) {
      const t = parseProcNet(fixture(file), proto, fam);
      expect(t.listeners).toEqual([]);
      expect(t.sockets).toBe(0);
      expect(t.badLines).toBe(0);
      expect(t.truncatedLastLine).toBe(false);
    }
    expect(parseProcNet('', 'tcp', 4).sockets).toBe(0);
  });

  test('garbage lines are counted with examples, good lines around them still parse', () => {
    const t = parseProcNet(fixture('garbage.txt'), 'tcp', 4);
    expect(brief(t.listeners)).toEqual(['tcp4 127.0.0.1 3306 uid=106 inode=8001', 'tcp4 0.0.0.0 22 uid=0 inode=8005']);
    expect(t.badLines).toBe(6);
    expect(t.badExamples).toHaveLength(3);
    expect(t.badExamples[0]).toBe('this is not a socket line');
    expect(t.sockets).toBe(2);
  });

  test('an overlong line (not a socket table) is dropped in pieces, never buffered whole', () => {
    const p = new ProcNetParser('tcp', 4);
    const junk = 'x'.repeat(10_000);
    for (let i = 0; i < 100; i++) p.push(junk); // one megabyte line
    p.push('\n' + fixture('tcp-v4.txt'));
    const t = p.end();
    expect(t.badLines).toBe(1);
    expect(t.badExamples[0]).toHaveLength(120);
    expect(t.listeners).toHaveLength(3);
  });

  test('an IPv4 table read as IPv6 (wrong file) is all bad lines, never a throw', () => {
    const t = parseProcNet(fixture('tcp-v4.txt'), 'tcp', 6);
    expect(t.listeners).toEqual([]);
    expect(t.badLines).toBe(8);
  });
});

describe('streaming', () => {
  const files = [
    'tcp-v4.txt',
    'tcp6.txt',
    'tcp6-mapped.txt',
    'udp.txt',
    'odd-spacing.txt',
    'truncated.txt',
    'garbage.txt',
  ];
  const familyOf = (f: string): 4 | 6 => (f.includes('6') ? 6 : 4);
  const protoOf = (f: string): 'tcp' | 'udp' => (f.startsWith('udp') ? 'udp' : 'tcp');

  test('one character at a time gives the same tally as the whole file', () => {
    for (const f of files) {
      const text = fixture(f);
      const p = new ProcNetParser(protoOf(f), familyOf(f));
      for (const ch of text) p.push(ch);
      expect(p.end()).toEqual(parseProcNet(text, protoOf(f), familyOf(f)));
    }
  });

  test('any split into chunks gives the same tally', () => {
    fc.assert(
      fc.property(fc.constantFrom(...files), fc.array(fc.nat(), { maxLength: 12 }), (f, cuts) => {
        const text = fixture(f);
        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const p = new ProcNetParser(protoOf(f), familyOf(f));
        let prev = 0;
        for (const c of [...points, text.length]) {
          p.push(text.slice(prev, c));
          prev = c;
        }
        expect(p.end()).toEqual(parseProcNet(text, protoOf(f), familyOf(f)));
      }),
      { numRuns: 300 },
    );
  });

  test('arbitrary text never throws and never yields a listener without a valid port', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => {
        const t = parseProcNet(s, 'tcp', 4);
        for (const l of t.listeners) expect(l.port).toBeLessThanOrEqual(0xffff);
      }),
      { numRuns: 500 },
    );
  });
});

describe('addresses and port classes', () => {
  test('host-order words: little- and big-endian kernels', () => {
    expect(decodeProcAddress('0100007F')).toBe('127.0.0.1');
    expect(decodeProcAddress('7F000001', false)).toBe('127.0.0.1');
    expect(decodeProcAddress('00000000000000000000000001000000')).toBe('::1');
    expect(decodeProcAddress('00000000000000000000000000000001', false)).toBe('::1');
    expect(decodeProcAddress('0100007G')).toBeUndefined();
    expect(decodeProcAddress('0100')).toBeUndefined();
  });

  test('RFC 5952: longest zero run compressed, first on a tie, single zero group kept', () => {
    const b = (...groups: number[]): number[] => groups.flatMap((g) => [g >> 8, g & 255]);
    expect(formatIPv6(b(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1))).toBe('2001:db8::1:0:0:1');
    expect(formatIPv6(b(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1))).toBe('2001:db8:0:1:1:1:1:1');
    expect(formatIPv6(b(0, 0, 0, 0, 0, 0, 0, 0))).toBe('::');
    expect(formatIPv6(b(0xfe80, 0, 0, 0, 0, 0, 0, 0))).toBe('fe80::');
    expect(formatIPv6(b(0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001))).toBe('::ffff:10.0.0.1');
  });

  test('the parser and normalizeAddress (used for config and ss text) agree on the canonical form', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.boolean(), fc.boolean(), (raw, mapped, zeros) => {
        const bytes = [...raw];
        if (mapped) bytes.splice(0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff);
        if (zeros) bytes.fill(0, 4, 10);
        const text = formatIPv6(bytes);
        expect(normalizeAddress(text, 6)).toBe(text);
        expect(normalizeAddress(text.toUpperCase(), 6)).toBe(text);
      }),
      { numRuns: 500 },
    );
  });

  test('IANA classes at their edges', () => {
    expect([0, 1023, 1024, 49151, 49152, 65535].map(portClass)).toEqual([
      'well_known',
      'well_known',
      'registered',
      'registered',
      'dynamic',
      'dynamic',
    ]);
  });
});
