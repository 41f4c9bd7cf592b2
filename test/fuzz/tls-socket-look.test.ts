// The second look (exporters/silence.ts) is a parser of peer bytes too: a hostile peer keeps the
// probe's own connection silent and answers the look's ClientHello with mutated real ServerHello
// flights, HTTP-ish lines or random bytes. Every case must end as one of the silence verdicts,
// never an exception or internal_error, with no socket left open; a real flight must read as
// tls_expected and an HTTP status line as banner_unexpected naming HTTP.
import net from 'node:net';
import { tcpProber } from '../../exporters/tcp';
import { clientHello } from '../../exporters/silence';
import { selfSignedCert } from '../helpers/net';
import { Rng, prng, recordServerFlights } from '../peers/fuzz-peers';
import { probeWith, runSocketFuzz } from './harness';

const CASES = process.env.FUZZ_RUNS ? Math.ceil(Number(process.env.FUZZ_RUNS) / 20) : 1000;
const SLOTS = 16;
// The look is taken a third of the deadline in (100 ms); the answer comes at once, and has
// 200 ms to arrive, so that a loaded machine does not turn a real flight into no_greeting.
const DEADLINE_MS = 300;
const BASE_SEED = Number(process.env.FUZZ_SEED ?? 0x10c);

jest.setTimeout(Math.max(120000, CASES * 40));

type Kind = 'flight' | 'mutated' | 'http' | 'random' | 'close';

function answer(rng: Rng, flights: Buffer[]): { kind: Kind; bytes: Buffer } {
  const kind = rng.pick<Kind>(['flight', 'mutated', 'mutated', 'http', 'random', 'random', 'close']);
  const f = rng.pick(flights);
  switch (kind) {
    case 'flight':
      return { kind, bytes: f.subarray(0, 2 + rng.int(f.length - 1)) };
    case 'mutated': {
      const b = Buffer.from(f.subarray(0, 1 + rng.int(f.length)));
      for (let i = 0; i < 1 + rng.int(6); i++) b[rng.int(b.length)] = rng.int(256);
      return { kind, bytes: b };
    }
    case 'http':
      return {
        kind,
        bytes: Buffer.from(
          `HTTP/1.${rng.int(2)} ${100 + rng.int(500)} ${rng.pick(['Bad Request', '', 'x'.repeat(rng.int(300))])}\r\n${rng.chance(0.5) ? 'Connection: close\r\n\r\n' : ''}`,
        ),
      };
    case 'random':
      return { kind, bytes: rng.bytes(1 + rng.int(1200)) };
    default:
      return { kind, bytes: Buffer.alloc(0) };
  }
}

/**
 * One peer per slot: the first connection of a case is the probe's (kept silent), the second
 * is the look's, answered with the case's bytes once its ClientHello arrives.
 */
async function startLookPeer() {
  const sockets = new Set<net.Socket>();
  let current: { kind: Kind; bytes: Buffer } | undefined;
  let conns = 0;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    if (conns++ === 0) return void s.resume();
    const c = current;
    s.once('data', () => {
      if (!c || c.kind === 'close') return void s.destroy();
      s.end(c.bytes);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    serve(c: { kind: Kind; bytes: Buffer }) {
      current = c;
      conns = 0;
    },
    open: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

test(`${CASES} hostile answers to the second look: a silence verdict every time`, async () => {
  const cert = selfSignedCert(5);
  const flights = await recordServerFlights(cert.certFile, cert.keyFile, await clientHello());
  await runSocketFuzz({
    name: 'tls-socket-look',
    cases: CASES,
    slots: SLOTS,
    deadlineMs: DEADLINE_MS,
    baseSeed: BASE_SEED,
    tally: 'outcomes',
    startPeer: startLookPeer,
    setup(peer, seed) {
      const c = answer(new Rng(prng(seed)), flights);
      peer.serve(c);
      return {
        probe: probeWith(tcpProber, { expect_banner: '.' }),
        judge(r) {
          const verdict = `${r.failure?.phase}/${r.failure?.reason}`;
          const outcome = `${c.kind}:${verdict}`;
          if (!['banner/no_greeting', 'banner/banner_unexpected', 'banner/tls_expected'].includes(verdict)) {
            return { outcome, fault: `${c.kind} gave ${verdict}: ${r.failure?.message}` };
          } else if (c.kind === 'flight' && verdict !== 'banner/tls_expected') {
            return { outcome, fault: `a real flight gave ${verdict}: ${r.failure?.message}` };
          } else if (
            c.kind === 'http' &&
            !(verdict === 'banner/banner_unexpected' && /an HTTP server answers/.test(r.failure?.message ?? ''))
          ) {
            return { outcome, fault: `an HTTP status line gave ${verdict}: ${r.failure?.message}` };
          }
          return { outcome };
        },
      };
    },
  });
});
