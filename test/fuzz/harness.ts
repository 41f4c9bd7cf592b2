// The loop the socket-level fuzzers share: SLOTS peers probed in parallel, one seeded case at a
// time each, with exceptions that escape the prober caught, dishonest cases grouped by message
// with the first seed that shows each, and the descriptors and peer sockets checked afterwards.
import { readdirSync, readlinkSync } from 'node:fs';
import { arrivalAddon } from '../../exporters/net';
import { FAILURE_REASONS, type ProbeResult, type ProberDef } from '../../exporters/types';
import { probeContext } from '../helpers/context';
import { openFdCount } from '../helpers/net';

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

/** A failure whose reason is not one of FAILURE_REASONS, or is internal_error (success is honest). */
export function dishonest(r: ProbeResult): r is ProbeResult & { failure: NonNullable<ProbeResult['failure']> } {
  const reason = r.failure?.reason ?? 'success';
  return !!r.failure && (!(FAILURE_REASONS as readonly string[]).includes(reason) || reason === 'internal_error');
}

export interface SocketFuzzPeer {
  port: number;
  open(): number;
  close(): Promise<void>;
}

/** A probe with its module settings, ready to start against an address with a deadline. */
export type ProbeStart = (address: string, deadlineMs: number) => { run(): Promise<ProbeResult>; dispose(): void };

export function probeWith<M>(def: ProberDef<M>, settings: Partial<M>): ProbeStart {
  return (address, deadlineMs) => {
    const p = probeContext(def, address, settings, deadlineMs);
    return { run: () => def.run(p.ctx), dispose: p.dispose };
  };
}

/** One case, set up on its peer: the probe to run against it and how to judge the result. */
export interface SocketFuzzCase {
  probe: ProbeStart;
  /** The outcome counted in the summary, and what went wrong if the result is not acceptable. */
  judge(r: ProbeResult): { outcome: string; fault?: string };
}

export interface SocketFuzzOptions<P extends SocketFuzzPeer> {
  /** Names the fuzzer in the printed summary. */
  name: string;
  cases: number;
  slots: number;
  deadlineMs: number;
  baseSeed: number;
  /** The word before the outcome counts in the summary ("reasons", "outcomes"). */
  tally: string;
  startPeer(): Promise<P>;
  /** Points `peer` at the case for `seed` and says how to probe it. */
  setup(peer: P, seed: number): SocketFuzzCase;
}

export async function runSocketFuzz<P extends SocketFuzzPeer>(o: SocketFuzzOptions<P>): Promise<void> {
  const escaped: unknown[] = [];
  const onEscape = (e: unknown): void => {
    escaped.push(e);
  };
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
  const peers = await Promise.all(Array.from({ length: o.slots }, () => o.startPeer()));
  // Once per process, the arrival addon opens its epoll descriptor: not a per-probe leak.
  arrivalAddon();
  const fdsBefore = openFdCount();
  const fdsListBefore = fdTargets();
  const outcomes = new Map<string, number>();
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
        while (next < o.cases) {
          const seed = o.baseSeed + next++;
          const c = o.setup(peer, seed);
          const p = c.probe(`127.0.0.1:${peer.port}`, o.deadlineMs);
          let r: ProbeResult;
          try {
            r = await p.run();
          } catch (e) {
            fail(seed, `the prober threw ${String(e)}`);
            continue;
          } finally {
            p.dispose();
          }
          const { outcome, fault } = c.judge(r);
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
          if (fault !== undefined) fail(seed, fault);
        }
      }),
    );
    // Every socket the probes opened is closed (give the kernel a moment to settle).
    for (let i = 0; i < 100 && openFdCount() > fdsBefore; i++) await new Promise((res) => setTimeout(res, 20));
    const fdsAfter = openFdCount();
    for (let i = 0; i < 100 && peers.some((p) => p.open() > 0); i++) await new Promise((res) => setTimeout(res, 20));
    const seconds = (Date.now() - t0) / 1000;
    console.log(
      `${o.name} fuzz: ${next} cases in ${seconds.toFixed(1)} s, ${badCount} dishonest, seed base ${o.baseSeed}; ${o.tally} ${JSON.stringify(Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1])))}`,
    );
    expect({ badCount, kinds: Object.fromEntries(bad) }).toEqual({ badCount: 0, kinds: {} });
    expect(escaped).toEqual([]);
    expect(next).toBeGreaterThanOrEqual(o.cases);
    if (fdsAfter > fdsBefore) expect(fdTargets()).toEqual(fdsListBefore);
    expect(fdsAfter).toBeLessThanOrEqual(fdsBefore);
    expect(peers.map((p) => p.open())).toEqual(Array(o.slots).fill(0));
  } finally {
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
    await Promise.all(peers.map((p) => p.close()));
  }
}
