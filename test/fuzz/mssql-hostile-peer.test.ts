// A hostile peer answering the PRELOGIN with arbitrary bytes (often a valid TDS header with a
// mangled option table) never makes the prober throw: it always returns a result with a reason.
import net from 'node:net';
import fc from 'fast-check';
import { mssqlProber } from '../../exporters/mssql';
import { encodePacket } from '../../exporters/mssql/packet';
import { encodePreloginOptions } from '../../exporters/mssql/prelogin';
import { isFailureReason } from '../../exporters/types';
import { runProber } from '../helpers/context';

let reply: Buffer = Buffer.alloc(0);
let server: net.Server;
let port = 0;

beforeAll(async () => {
  server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', () => s.end(reply));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const answers = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  fc.uint8Array({ maxLength: 120 }).map((b) => encodePacket(0x04, b)),
  fc
    .array(fc.tuple(fc.integer({ min: 0, max: 8 }), fc.uint8Array({ maxLength: 12 })), { maxLength: 8 })
    .map((opts) => encodePacket(0x04, encodePreloginOptions(opts))),
);

test('the prober returns a result for any PRELOGIN answer', async () => {
  await fc.assert(
    fc.asyncProperty(answers, async (bytes) => {
      reply = bytes;
      const r = await runProber(mssqlProber, `127.0.0.1:${port}`, {}, 1000);
      expect(typeof r.success).toBe('boolean');
      if (r.failure) expect(isFailureReason(r.failure.reason)).toBe(true);
    }),
    { numRuns: 300 },
  );
});
