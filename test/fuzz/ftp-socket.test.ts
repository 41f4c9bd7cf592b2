// The FTP prober against a hostile FTP server on a real socket: every rung (greeting, USER/PASS,
// TYPE, EPSV/PASV/PORT, LIST/RETR, QUIT) answered with mutated or random reply streams
// (multi-line replies, huge lines, bad codes, NULs, partial lines, closes and resets mid-reply).
// Every case must end with an honest reason: never an exception escaping, never internal_error,
// no socket or descriptor left open. FUZZ_RUNS sets the number of cases (npm run fuzz:long).
import { ftpProber } from '../../exporters/ftp';
import { FAILURE_REASONS, type ProbeResult } from '../../exporters/types';
import { arrivalAddon } from '../../exporters/arrival';
import { probeContext } from '../helpers/context';
import { readdirSync, readlinkSync } from 'node:fs';
import { openFdCount } from '../helpers/net';
import { ftpCase, startFtpFuzzPeer } from '../peers/fuzz-peers';

// Cases in CI; FUZZ_RUNS (a million under fuzz:long) is shared with the TLS fuzzer 3:2.
const CASES = process.env.FUZZ_RUNS ? Math.ceil((Number(process.env.FUZZ_RUNS) * 3) / 5) : 6000;
const SLOTS = 16;
// A backstop only: the peer closes idle connections, so a case rarely waits for it.
const DEADLINE_MS = 300;
const BASE_SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);

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

test(`${CASES} hostile FTP reply streams through a real socket: an honest reason every time`, async () => {
  const escaped: unknown[] = [];
  const onEscape = (e: unknown): void => {
    escaped.push(e);
  };
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
  const peers = await Promise.all(Array.from({ length: SLOTS }, () => startFtpFuzzPeer()));
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
          const c = ftpCase(seed, peer.dataPort);
          peer.current = c;
          const p = probeContext(ftpProber, `127.0.0.1:${peer.port}`, c.settings as never, DEADLINE_MS);
          let r: ProbeResult;
          try {
            r = await ftpProber.run(p.ctx);
          } catch (e) {
            fail(seed, `the prober threw ${String(e)}`);
            continue;
          } finally {
            p.dispose();
          }
          const reason = r.failure?.reason ?? 'success';
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          if (r.failure && (!(FAILURE_REASONS as readonly string[]).includes(reason) || reason === 'internal_error')) {
            fail(seed, `${r.failure.phase}/${reason}: ${r.failure.message}`);
          }
        }
      }),
    );
    // Every socket the probes opened is closed (give the kernel a moment to settle).
    for (let i = 0; i < 100 && openFdCount() > fdsBefore; i++) await new Promise((res) => setTimeout(res, 20));
    const fdsAfter = openFdCount();
    for (let i = 0; i < 100 && peers.some((p) => p.open() > 0); i++) await new Promise((res) => setTimeout(res, 20));
    const seconds = (Date.now() - t0) / 1000;
    console.log(
      `ftp-socket fuzz: ${next} cases in ${seconds.toFixed(1)} s, ${badCount} dishonest, seed base ${BASE_SEED}; reasons ${JSON.stringify(Object.fromEntries([...reasons].sort((a, b) => b[1] - a[1])))}`,
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
