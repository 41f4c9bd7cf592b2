// The PRELOGIN, packet-framing and Browser parsers read bytes from any peer: they must return
// errors as values and never throw, whatever arrives.
import fc from 'fast-check';
import { MessageFramer, parsePacketHeader } from '../../exporters/mssql/packet';
import { buildPrelogin, encodePreloginOptions, parsePrelogin } from '../../exporters/mssql/prelogin';
import { parseRespData, parseSvrResp } from '../../exporters/mssql/browser';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);

/** Bytes that look like a PRELOGIN option table more often than random noise would. */
const preloginish = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc
    .array(fc.tuple(fc.integer({ min: 0, max: 8 }), fc.uint8Array({ maxLength: 40 })), { maxLength: 10 })
    .map((opts) => new Uint8Array(encodePreloginOptions(opts))),
  fc.tuple(fc.uint8Array({ maxLength: 80 }), fc.nat(200), fc.uint8Array({ maxLength: 8 })).map(([noise, at, patch]) => {
    const b = Buffer.from(buildPrelogin({ instance: 'X' }));
    const out = Buffer.concat([b, Buffer.from(noise)]);
    out.set(patch.subarray(0, Math.max(0, out.length - (at % out.length))), at % out.length);
    return new Uint8Array(out);
  }),
);

const respish = fc.oneof(
  fc.uint8Array({ maxLength: 400 }),
  fc
    .tuple(
      fc.array(
        fc.constantFrom(
          'ServerName',
          'InstanceName',
          'IsClustered',
          'Version',
          'tcp',
          'np',
          'via',
          'bv',
          'rpc',
          '',
          'Yes',
          '1433',
          '99999',
          'x',
          '16.0.1000.6',
        ),
        { maxLength: 40 },
      ),
      fc.integer({ min: -5, max: 5 }),
    )
    .map(([words, skew]) => {
      const text = Buffer.from(words.join(';'), 'latin1');
      const head = Buffer.alloc(3);
      head[0] = 0x05;
      head.writeUInt16LE(Math.max(0, Math.min(65535, text.length + skew)), 1);
      return new Uint8Array(Buffer.concat([head, text]));
    }),
);

describe('mssql parsers never throw', () => {
  test('parsePrelogin', () => {
    fc.assert(
      fc.property(preloginish, (bytes) => {
        const r = parsePrelogin(bytes);
        expect(typeof r.ok).toBe('boolean');
        if (!r.ok) expect(typeof r.error).toBe('string');
      }),
      { numRuns: RUNS },
    );
  });

  test('parsePacketHeader and MessageFramer (lying lengths, split chunks)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 120 }), { maxLength: 12 }),
        fc.integer({ min: 8, max: 70000 }),
        (chunks, maxPacket) => {
          const f = new MessageFramer({ maxPacketBytes: maxPacket, maxMessageBytes: 4096 });
          for (const c of chunks) {
            parsePacketHeader(c, maxPacket);
            f.push(c);
            while (f.shift()) {
              // drain
            }
          }
          expect(f.pendingBytes).toBeLessThanOrEqual(chunks.reduce((n, c) => n + c.length, 0));
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('parseSvrResp and parseRespData', () => {
    fc.assert(
      fc.property(respish, (bytes) => {
        const r = parseSvrResp(bytes);
        if (r.ok) for (const i of r.instances) if (i.tcpPort !== undefined) expect(i.tcpPort).toBeGreaterThan(0);
        parseRespData(Buffer.from(bytes).toString('latin1'), bytes.length % 2 === 0);
      }),
      { numRuns: RUNS },
    );
  });
});
