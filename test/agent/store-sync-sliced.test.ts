// A reload of a large config brings the result store in line in slices. Whatever the slicing and
// whatever is recorded between slices, it must end exactly where the one-step sync ends.
import { gunzipSync } from 'node:zlib';
import { COMMON_METRICS, FamilyRegistry } from '../../agent/exposition';
import { Slicer } from '../../agent/slicer';
import { ResultStore, type TargetIdentity } from '../../agent/store';
import type { ProbeResult } from '../../exporters/types';
import { assertExposition } from '../helpers/exposition-check';

const PHASES = ['resolve', 'connect'];

function identity(i: number, env = 'x'): TargetIdentity {
  return { name: `t-${i}`, module: 'tcp', prober: 'tcp', address: `127.0.0.1:${1000 + (i % 60000)}`, labels: { env } };
}

function result(i: number, round: number): ProbeResult {
  const ok = (i + round) % 3 !== 0;
  return {
    success: ok,
    durationSeconds: 0.001 * ((i * 7 + round) % 97),
    phases: [{ phase: 'connect', seconds: 0.0001 * round }],
    facts: [],
    ipProtocol: 4,
    failure: ok ? undefined : { phase: 'connect', reason: 'refused', message: 'connection refused' },
  };
}

/** A slicer that pauses at every chance it gets, counting its pauses. */
function eagerSlicer(): Slicer {
  return new Slicer(0);
}

function names(store: ResultStore): string[] {
  return [...store.entries()].map((e) => `${e.target.name}|${e.prefix}`).sort();
}

const AT = 1_700_000_000_000;

describe('ResultStore.syncSliced', () => {
  // grow past a block-count change, relabel half, shrink back below it
  const steps: TargetIdentity[][] = [
    Array.from({ length: 300 }, (_, i) => identity(i)),
    Array.from({ length: 20_000 }, (_, i) => identity(i)),
    Array.from({ length: 20_000 }, (_, i) => identity(i, i % 2 ? 'y' : 'x')),
    Array.from({ length: 5000 }, (_, i) => identity(i * 3, 'y')),
    [],
    Array.from({ length: 700 }, (_, i) => identity(i + 100_000)),
  ];

  it('ends where sync ends, with results recorded between its slices', async () => {
    const families = new FamilyRegistry(COMMON_METRICS);
    const one = new ResultStore(families);
    const sliced = new ResultStore(families);
    let round = 0;
    for (const step of steps) {
      round++;
      one.sync(step);
      const slicer = eagerSlicer();
      // Records arrive while the slices run, for targets of the old and of the new config.
      let recorded = 0;
      const timer = setInterval(() => {
        for (let k = 0; k < 50; k++) {
          const i = (recorded++ * 37) % 120_000;
          sliced.record(`t-${i}`, PHASES, result(i, round), AT);
        }
      }, 0);
      try {
        await sliced.syncSliced(step, slicer);
      } finally {
        clearInterval(timer);
      }
      if (step.length >= 20_000) expect(slicer.pauses).toBeGreaterThan(0);
      expect(names(sliced)).toEqual(names(one));
      expect(sliced.size).toBe(step.length);
      // The same results now give the same text, plain and compressed, and it is valid.
      for (const [idx, t] of step.entries()) {
        if (idx % 3 === 0) continue;
        const i = Number(t.name.slice(2));
        one.record(t.name, PHASES, result(i, round), AT);
        sliced.record(t.name, PHASES, result(i, round), AT);
      }
      // Targets left without a result in one store may hold one recorded between slices in the
      // other: give both the same for every third target too.
      for (const [idx, t] of step.entries()) {
        if (idx % 3 !== 0) continue;
        const i = Number(t.name.slice(2));
        one.record(t.name, PHASES, result(i, round + 1), AT);
        sliced.record(t.name, PHASES, result(i, round + 1), AT);
      }
      const tail = Buffer.from('');
      const plain = sliced.exposition(tail);
      expect(plain.toString()).toBe(one.exposition(tail).toString());
      expect(gunzipSync(await sliced.gzipExposition(tail)).toString()).toBe(plain.toString());
      assertExposition(plain.toString());
    }
  }, 120_000);

  it('drops the series of a removed target and keeps a kept target result', async () => {
    const store = new ResultStore(new FamilyRegistry(COMMON_METRICS));
    await store.syncSliced([identity(1), identity(2)], eagerSlicer());
    store.record('t-1', PHASES, result(1, 1), AT);
    store.record('t-2', PHASES, result(2, 1), AT);
    await store.syncSliced([identity(2)], eagerSlicer());
    const text = store.exposition(Buffer.from('')).toString();
    expect(text).not.toContain('target="t-1"');
    expect(text).toContain('target="t-2"');
    expect(store.get('t-2')?.result?.success).toBe(result(2, 1).success);
    // A changed identity starts over: no result until the next probe.
    await store.syncSliced([identity(2, 'z')], eagerSlicer());
    expect(store.get('t-2')?.result).toBeUndefined();
    expect(store.exposition(Buffer.from('')).toString()).not.toContain('target="t-2"');
  });
});
