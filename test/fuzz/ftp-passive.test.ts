// Property tests for the PASV and EPSV reply parsers and the PORT/EPRT formatters.
import fc from 'fast-check';
import { formatEprt, formatPort, parseEpsv, parsePasv, parsePortRange } from '../../exporters/ftp/passive';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);

const octet = fc.integer({ min: 0, max: 255 });
const port = fc.integer({ min: 1, max: 65535 });

test('parsePasv never throws; any result is a valid IPv4 address and port', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 })), (s) => {
      const r = parsePasv(s);
      if (typeof r === 'string') return;
      expect(r.host).toMatch(/^(\d{1,3}\.){3}\d{1,3}$/);
      for (const o of r.host.split('.')) expect(Number(o)).toBeLessThanOrEqual(255);
      expect(r.port).toBeGreaterThanOrEqual(1);
      expect(r.port).toBeLessThanOrEqual(65535);
    }),
    { numRuns: RUNS },
  );
});

test('parsePasv finds the address formatPort wrote, whatever text surrounds it', () => {
  fc.assert(
    fc.property(
      fc.tuple(octet, octet, octet, octet),
      port,
      fc.string({ maxLength: 30 }).filter((s) => !/\d/.test(s)),
      fc.string({ maxLength: 30 }).filter((s) => !/^\d/.test(s)),
      (o, p, before, after) => {
        const host = o.join('.');
        expect(parsePasv(`${before}(${formatPort(host, p)})${after}`)).toEqual({ host, port: p });
      },
    ),
    { numRuns: RUNS },
  );
});

test('parseEpsv never throws; any result is a port in range', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 100 }), fc.string({ unit: 'binary', maxLength: 100 })), (s) => {
      const r = parseEpsv(s);
      if (typeof r === 'string') return;
      expect(Number.isInteger(r)).toBe(true);
      expect(r).toBeGreaterThanOrEqual(1);
      expect(r).toBeLessThanOrEqual(65535);
    }),
    { numRuns: RUNS },
  );
});

test('parseEpsv reads back any delimiter and port', () => {
  const delimiter = fc
    .integer({ min: 33, max: 126 })
    .map((c) => String.fromCharCode(c))
    .filter((d) => !/[0-9()]/.test(d));
  fc.assert(
    fc.property(
      delimiter,
      port,
      fc.string({ maxLength: 30 }).filter((s) => !s.includes('(')),
      (d, p, text) => {
        expect(parseEpsv(`${text}(${d}${d}${d}${p}${d})`)).toBe(p);
      },
    ),
    { numRuns: RUNS },
  );
});

test('formatEprt writes what RFC 2428 parsers read', () => {
  fc.assert(
    fc.property(fc.tuple(octet, octet, octet, octet), port, (o, p) => {
      const arg = formatEprt(o.join('.'), p);
      const [, family, host, portText] = arg.split('|');
      expect(family).toBe('1');
      expect(host).toBe(o.join('.'));
      expect(Number(portText)).toBe(p);
    }),
    { numRuns: RUNS },
  );
});

test('parsePortRange never throws and keeps order', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 20 }), (s) => {
      const r = parsePortRange(s);
      if (typeof r === 'string') return;
      expect(r.from).toBeGreaterThanOrEqual(1);
      expect(r.to).toBeLessThanOrEqual(65535);
      expect(r.from).toBeLessThanOrEqual(r.to);
    }),
    { numRuns: RUNS },
  );
});
