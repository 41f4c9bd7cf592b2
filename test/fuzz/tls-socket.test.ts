// TLS handshakes against a hostile server on a real socket: the ClientHello of the FTP implicit
// rung, of the FTP explicit rung (after 220 and AUTH TLS 234) and of the TCP prober's tls module
// is answered with mutated real ServerHello flights (recorded from Node's TLS server, TLS 1.2 and
// 1.3) or random bytes. Every case must end with an honest reason: never an exception escaping,
// never internal_error, no socket or descriptor left open. FUZZ_RUNS sets the number of cases.
import { ftpProber } from '../../exporters/ftp';
import { tcpProber } from '../../exporters/tcp';
import { clientHello } from '../../exporters/silence';
import { FAILURE_REASONS, type ProbeResult, type ProberDef } from '../../exporters/types';
import { arrivalAddon } from '../../exporters/arrival';
import { probeContext } from '../helpers/context';
import { readdirSync, readlinkSync } from 'node:fs';
import { openFdCount, selfSignedCert } from '../helpers/net';
import { recordServerFlights, startTlsFuzzPeer, tlsCase, type TlsTarget } from '../peers/fuzz-peers';

// Cases in CI; FUZZ_RUNS (a million under fuzz:long) is shared with the FTP fuzzer 2:3.
const CASES = process.env.FUZZ_RUNS ? Math.ceil((Number(process.env.FUZZ_RUNS) * 2) / 5) : 4000;
const SLOTS = 16;
const DEADLINE_MS = 300;
const BASE_SEED = Number(process.env.FUZZ_SEED ?? 0x7157);

/** What each open descriptor points at (for a failure message). */
function fdTargets(): string[] {
  return readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).replace(/\[\d+\]/, '[…]');
      } catch {
        return 'gone';
      }
    })
    .sort();
}

jest.setTimeout(Math.max(120000, CASES * 20));

const PROBE: Record<TlsTarget, { def: ProberDef<never>; settings: Record<string, unknown> }> = {
  'ftp-implicit': { def: ftpProber as ProberDef<never>, settings: { tls: 'implicit', tls_config: { insecure_skip_verify: true } } },
  'ftp-explicit': { def: ftpProber as ProberDef<never>, settings: { tls: 'explicit', tls_config: { insecure_skip_verify: true } } },
  'tcp-tls': { def: tcpProber as ProberDef<never>, settings: { tls: true, tls_config: { insecure_skip_verify: true }, expect_banner: '.' } },
};

test(`${CASES} hostile TLS server flights through a real socket: an honest reason every time`, async () => {
  const cert = selfSignedCert(5);
  const flights = await recordServerFlights(cert.certFile, cert.keyFile, await clientHello());
  expect(flights.map((f) => f[0])).toEqual([0x16, 0x16]);
  const escaped: unknown[] = [];
  const onEscape = (e: unknown): void => {
    escaped.push(e);
  };
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
  const peers = await Promise.all(Array.from({ length: SLOTS }, () => startTlsFuzzPeer()));
  // Once per process, the arrival addon opens its epoll descriptor: not a per-probe leak.
  arrivalAddon();
  const fdsBefore = openFdCount();
  const fdsListBefore = fdTargets();
  const reasons = new Map<string, number>();
  // Every case runs; the first few failures are kept with their seeds.
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

  let next = 0;
  const t0 = Date.now();
  try {
    await Promise.all(
      peers.map(async (peer) => {
        while (next < CASES) {
          const seed = BASE_SEED + next++;
          const c = tlsCase(seed, flights);
          peer.current = c;
          const { def, settings } = PROBE[c.target];
          const p = probeContext(def, `127.0.0.1:${peer.port}`, settings as never, DEADLINE_MS);
          let r: ProbeResult;
          try {
            r = await def.run(p.ctx);
          } catch (e) {
            fail(seed, `the prober threw ${String(e)}`);
            continue;
          } finally {
            p.dispose();
          }
          const key = `${c.target}:${r.failure ? `${r.failure.phase}/${r.failure.reason}` : 'success'}`;
          reasons.set(key, (reasons.get(key) ?? 0) + 1);
          const reason = r.failure?.reason ?? 'success';
          if (r.failure && (!(FAILURE_REASONS as readonly string[]).includes(reason) || reason === 'internal_error')) {
            fail(seed, `${c.target} ${r.failure.phase}/${reason}: ${r.failure.message}`);
          }
        }
      }),
    );
    for (let i = 0; i < 100 && openFdCount() > fdsBefore; i++) await new Promise((res) => setTimeout(res, 20));
    const fdsAfter = openFdCount();
    for (let i = 0; i < 100 && peers.some((p) => p.open() > 0); i++) await new Promise((res) => setTimeout(res, 20));
    const seconds = (Date.now() - t0) / 1000;
    console.log(
      `tls-socket fuzz: ${next} cases in ${seconds.toFixed(1)} s, ${badCount} dishonest, seed base ${BASE_SEED}; outcomes ${JSON.stringify(Object.fromEntries([...reasons].sort((a, b) => b[1] - a[1])))}`,
    );
    expect({ badCount, kinds: Object.fromEntries(bad) }).toEqual({ badCount: 0, kinds: {} });
    expect(escaped).toEqual([]);
    expect(next).toBeGreaterThanOrEqual(CASES);
    if (fdsAfter > fdsBefore) expect(fdTargets()).toEqual(fdsListBefore);
    expect(fdsAfter).toBeLessThanOrEqual(fdsBefore);
    expect(peers.map((p) => p.open())).toEqual(Array(SLOTS).fill(0));
  } finally {
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
    await Promise.all(peers.map((p) => p.close()));
  }
});
