// The second look (exporters/silence.ts) is a parser of peer bytes too: a hostile peer keeps the
// probe's own connection silent and answers the look's ClientHello with mutated real ServerHello
// flights, HTTP-ish lines or random bytes. Every case must end as one of the silence verdicts,
// never an exception or internal_error, with no socket left open; a real flight must read as
// tls_expected and an HTTP status line as banner_unexpected naming HTTP.
import net from 'node:net';
import { readdirSync } from 'node:fs';
import { tcpProber } from '../../exporters/tcp';
import { clientHello } from '../../exporters/silence';
import { arrivalAddon } from '../../exporters/arrival';
import type { ProbeResult } from '../../exporters/types';
import { probeContext } from '../helpers/context';
import { selfSignedCert } from '../helpers/net';
import { Rng, prng, recordServerFlights } from '../peers/fuzz-peers';

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
      return { kind, bytes: Buffer.from(`HTTP/1.${rng.int(2)} ${100 + rng.int(500)} ${rng.pick(['Bad Request', '', 'x'.repeat(rng.int(300))])}\r\n${rng.chance(0.5) ? 'Connection: close\r\n\r\n' : ''}`) };
    case 'random':
      return { kind, bytes: rng.bytes(1 + rng.int(1200)) };
    default:
      return { kind, bytes: Buffer.alloc(0) };
  }
}

test(`${CASES} hostile answers to the second look: a silence verdict every time`, async () => {
  const cert = selfSignedCert(5);
  const flights = await recordServerFlights(cert.certFile, cert.keyFile, await clientHello());
  // Once per process, the arrival addon opens its epoll descriptor: not a per-probe leak.
  arrivalAddon();
  const escaped: unknown[] = [];
  const onEscape = (e: unknown): void => {
    escaped.push(e);
  };
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
  const bad = new Map<string, { count: number; firstSeed: number }>();
  let badCount = 0;
  const fail = (seed: number, m: string): void => {
    badCount++;
    // Grouped by what went wrong (numbers blanked), each with the first seed that shows it.
    const key = m.replace(/\d+/g, 'N');
    const b = bad.get(key);
    if (b) b.count++;
    else if (bad.size < 20) bad.set(key, { count: 1, firstSeed: seed });
  };

  const outcomes = new Map<string, number>();
  let next = 0;
  const t0 = Date.now();
  // One peer per slot: the first connection of a case is the probe's (kept silent), the second
  // is the look's, answered with the case's bytes once its ClientHello arrives.
  const peers = await Promise.all(
    Array.from({ length: SLOTS }, async () => {
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
    }),
  );
  const fdsBefore = readdirSync('/proc/self/fd').length;
  try {
    await Promise.all(
      peers.map(async (peer) => {
        while (next < CASES) {
          const seed = BASE_SEED + next++;
          const c = answer(new Rng(prng(seed)), flights);
          peer.serve(c);
          const p = probeContext(tcpProber, `127.0.0.1:${peer.port}`, { expect_banner: '.' }, DEADLINE_MS);
          let r: ProbeResult;
          try {
            r = await tcpProber.run(p.ctx);
          } catch (e) {
            fail(seed, `the prober threw ${String(e)}`);
            continue;
          } finally {
            p.dispose();
          }
          const verdict = `${r.failure?.phase}/${r.failure?.reason}`;
          outcomes.set(`${c.kind}:${verdict}`, (outcomes.get(`${c.kind}:${verdict}`) ?? 0) + 1);
          if (!['banner/no_greeting', 'banner/banner_unexpected', 'banner/tls_expected'].includes(verdict)) {
            fail(seed, `${c.kind} gave ${verdict}: ${r.failure?.message}`);
          } else if (c.kind === 'flight' && verdict !== 'banner/tls_expected') {
            fail(seed, `a real flight gave ${verdict}: ${r.failure?.message}`);
          } else if (c.kind === 'http' && !(verdict === 'banner/banner_unexpected' && /an HTTP server answers/.test(r.failure?.message ?? ''))) {
            fail(seed, `an HTTP status line gave ${verdict}: ${r.failure?.message}`);
          }
        }
      }),
    );
    for (let i = 0; i < 100 && readdirSync('/proc/self/fd').length > fdsBefore; i++) await new Promise((res) => setTimeout(res, 20));
    const fdsAfter = readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 100 && peers.some((p) => p.open() > 0); i++) await new Promise((res) => setTimeout(res, 20));
    console.log(
      `tls-socket-look fuzz: ${next} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${badCount} dishonest, seed base ${BASE_SEED}; outcomes ${JSON.stringify(Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1])))}`,
    );
    expect({ badCount, kinds: Object.fromEntries(bad) }).toEqual({ badCount: 0, kinds: {} });
    expect(escaped).toEqual([]);
    expect(fdsAfter).toBeLessThanOrEqual(fdsBefore);
    expect(peers.map((p) => p.open())).toEqual(Array(SLOTS).fill(0));
  } finally {
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
    await Promise.all(peers.map((p) => p.close()));
  }
});
