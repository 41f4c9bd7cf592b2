// /proc/net tables are read on every scan; whatever a kernel (or a fixture tree, or a bind
// mount gone wrong) puts there, the parser returns a tally and never throws.
import fc from 'fast-check';
import { ProcNetParser, decodeProcAddress, parseProcNet } from '../../exporters/sockets';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const hex = (len: number) => fc.stringMatching(new RegExp(`^[0-9A-Fa-fXYZ]{0,${len}}$`));

// Lines shaped like the kernel's, with every field possibly wrong.
const line = fc
  .tuple(
    fc.nat(99999),
    hex(33),
    hex(5),
    hex(33),
    hex(5),
    hex(3),
    fc.string({ maxLength: 30 }),
    fc.oneof(fc.nat(), fc.string({ maxLength: 8 })),
    fc.oneof(fc.nat(), fc.string({ maxLength: 12 })),
    fc.constantFrom(' ', '  ', '\t', ''),
  )
  .map(
    ([sl, la, lp, ra, rp, st, mid, uid, inode, sep]) =>
      `${sl}: ${la}:${lp}${sep} ${ra}:${rp} ${st} ${mid} ${uid} 0 ${inode} 1 0000\n`,
  );

describe('/proc/net parser never throws', () => {
  it.each([
    ['tcp', 4],
    ['tcp', 6],
    ['udp', 4],
    ['udp', 6],
  ] as const)('%s v%d: kernel-shaped lines with wrong fields, split anywhere', (proto, family) => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(line, fc.string({ maxLength: 120 })), { maxLength: 12 }),
        fc.nat(400),
        (lines, cut) => {
          const text = HEADER + lines.join('');
          const whole = parseProcNet(text, proto, family);
          for (const l of whole.listeners) {
            expect(Number.isInteger(l.port)).toBe(true);
            expect(l.port).toBeGreaterThanOrEqual(0);
            expect(l.port).toBeLessThanOrEqual(0xffff);
          }
          const p = new ProcNetParser(proto, family);
          p.push(text.slice(0, cut));
          p.push(text.slice(cut));
          expect(p.end()).toEqual(whole);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('address decoding takes any text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.boolean(), (s, le) => {
        const a = decodeProcAddress(s, le);
        expect(a === undefined || typeof a === 'string').toBe(true);
      }),
      { numRuns: RUNS },
    );
  });
});
