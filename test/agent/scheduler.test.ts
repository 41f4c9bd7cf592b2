import { Slots, nextSlot, spreadOffsets, Scheduler } from '../../agent/scheduler';
import { ResultStore } from '../../agent/store';
import { FamilyRegistry } from '../../agent/exposition';
import { allFamilies } from '../../agent/agent';
import { createSelfMetrics } from '../../agent/self-metrics';
import { parseConfig } from '../../config/load';
import { silentLogger } from '../helpers/context';
import { listen } from '../helpers/net';

describe('spreadOffsets', () => {
  it('places n targets of one interval exactly interval/n apart', () => {
    const targets = Array.from({ length: 10 }, (_, i) => ({ name: `t${i}`, intervalMs: 10000 }));
    const offsets = [...spreadOffsets(targets).values()].sort((a, b) => a - b);
    expect(offsets).toEqual([0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000]);
  });
  it('spreads each interval group on its own and is stable across calls', () => {
    const targets = [
      { name: 'a', intervalMs: 1000 },
      { name: 'b', intervalMs: 1000 },
      { name: 'c', intervalMs: 60000 },
    ];
    const a = spreadOffsets(targets);
    expect(a).toEqual(spreadOffsets([...targets].reverse()));
    expect([a.get('a'), a.get('b')].sort()).toEqual([0, 500]);
    expect(a.get('c')).toBe(0);
  });
});

describe('nextSlot', () => {
  it('returns the first time at the offset not before now', () => {
    expect(nextSlot(10_500, 1000, 200)).toBe(11_200);
    expect(nextSlot(10_100, 1000, 200)).toBe(10_200);
    expect(nextSlot(10_200, 1000, 200)).toBe(10_200);
  });
});

describe('Slots', () => {
  it('grants at most the limit and hands released slots to waiters in order', async () => {
    const s = new Slots(2);
    const ac = new AbortController();
    const order: number[] = [];
    const all = [1, 2, 3, 4].map((i) => s.acquire(ac.signal).then(() => order.push(i)));
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([1, 2]);
    s.release();
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([1, 2, 3]);
    s.release();
    await Promise.all(all);
    expect(order).toEqual([1, 2, 3, 4]);
  });
  it('rejects waiters on shutdown', async () => {
    const s = new Slots(1);
    const ac = new AbortController();
    await s.acquire(ac.signal);
    const waiting = s.acquire(ac.signal);
    ac.abort();
    await expect(waiting).rejects.toThrow('shutting down');
  });
});

describe('Scheduler, live on loopback', () => {
  it('never runs more probes than the concurrency cap and counts skipped runs', async () => {
    const accepted: number[] = [];
    // A silent peer: every probe waits for a banner until its 800 ms deadline, so with one slot
    // the next connection cannot start before the previous probe's deadline.
    const l = await listen(() => {
      accepted.push(Date.now());
    });
    const cfg = parseConfig(
      [
        'global: {interval: 1s, concurrency: 1}',
        'modules:',
        '  slow: {prober: tcp, timeout: 800ms, tcp: {expect_banner: "."}}',
        'targets:',
        ...['a', 'b', 'c'].map((n) => `  - {name: ${n}, module: slow, address: "127.0.0.1:${l.port}"}`),
      ].join('\n'),
      'sched.yml',
    );
    const metrics = createSelfMetrics({ version: 't', revision: 't' });
    const store = new ResultStore(new FamilyRegistry(allFamilies()));
    store.sync(cfg.targets.map((t) => ({ ...t, prober: 'tcp' })));
    const sched = new Scheduler({ store, metrics, logger: silentLogger, concurrency: 1 });
    try {
      sched.apply(cfg.targets, cfg.modules, cfg.global.concurrency);
      await new Promise((r) => setTimeout(r, 3500));
    } finally {
      await sched.stop();
      await l.close();
    }
    expect(accepted.length).toBeGreaterThanOrEqual(3);
    const gaps = accepted.slice(1).map((t, i) => t - accepted[i]);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(780);
    const skipped = (await metrics.schedulerSkipped.get()).values[0].value;
    expect(skipped).toBeGreaterThan(0);
    const done = (await metrics.probesTotal.get()).values.find((v) => v.labels.result === 'failure')?.value ?? 0;
    expect(done).toBeGreaterThanOrEqual(2);
    const results = [...store.entries()].filter((e) => e.result);
    expect(results.length).toBeGreaterThan(0);
    for (const e of results) expect(e.result?.failure).toMatchObject({ phase: 'banner', reason: 'timeout' });
  });

  it('stop() aborts probes in flight promptly', async () => {
    const l = await listen();
    const cfg = parseConfig(
      `modules: {slow: {prober: tcp, timeout: 20s, tcp: {expect_banner: "."}}}\nglobal: {interval: 30s}\ntargets: [{name: a, module: slow, address: "127.0.0.1:${l.port}"}]\n`,
      's.yml',
    );
    const sched = new Scheduler({
      store: new ResultStore(new FamilyRegistry(allFamilies())),
      metrics: createSelfMetrics({ version: 't', revision: 't' }),
      logger: silentLogger,
      concurrency: 4,
    });
    sched.apply(cfg.targets, cfg.modules, 4);
    const once = sched.runAllOnce();
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await sched.stop();
    await once;
    expect(Date.now() - t0).toBeLessThan(1000);
    await l.close();
  });
});
