// Issue 22, item 5: a reload must not throw away the results of probes in flight. With the same
// config nothing changes; with a changed module a result in flight is counted as skipped.
import { Scheduler } from '../../agent/scheduler';
import { ResultStore } from '../../agent/store';
import { FamilyRegistry } from '../../agent/exposition';
import { allFamilies } from '../../agent/agent';
import { createSelfMetrics } from '../../agent/self-metrics';
import { parseConfig } from '../../config/load';
import { silentLogger } from '../helpers/context';
import { listen } from '../helpers/net';

async function counter(c: {
  get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }>;
}): Promise<number> {
  return (await c.get()).values.reduce((a, v) => a + v.value, 0);
}

describe('reload with probes in flight', () => {
  const yaml = (timeout: string) =>
    [
      'global: {interval: 2s}',
      'modules:',
      `  slow: {prober: tcp, timeout: ${timeout}, tcp: {expect_banner: "."}}`,
      'targets:',
      `  - {name: slow, module: slow, address: "127.0.0.1:PORT", labels: {team: a}}`,
    ].join('\n');

  async function run(reloadEvery: number, configs: string[], forMs: number) {
    const silent = await listen();
    const metrics = createSelfMetrics({ version: 't', revision: 't' });
    const store = new ResultStore(new FamilyRegistry(allFamilies()));
    const sched = new Scheduler({ store, metrics, logger: silentLogger, concurrency: 4 });
    const apply = (i: number): void => {
      const cfg = parseConfig(configs[i % configs.length].replace('PORT', String(silent.port)), 'reload.yml');
      store.sync(cfg.targets.map((t) => ({ ...t, prober: 'tcp' })));
      sched.apply(cfg.targets, cfg.modules, 4);
    };
    apply(0);
    let i = 0;
    const iv = setInterval(() => apply(++i), reloadEvery);
    try {
      await new Promise((r) => setTimeout(r, forMs));
    } finally {
      clearInterval(iv);
      await sched.stop();
      await silent.close();
    }
    return {
      recorded: [...store.entries()].filter((e) => e.result).length,
      probes: await counter(metrics.probesTotal),
      skipped: await counter(metrics.schedulerSkipped),
      reloads: i,
    };
  }

  it('keeps every result when the reloaded config is the same', async () => {
    // Each probe waits 1.2 s for a banner; a reload comes every 300 ms, so each probe sees four.
    // In 6.5 s at least three 2 s slots start, and at least two of their probes end.
    const out = await run(300, [yaml('1200ms')], 6500);
    expect(out.reloads).toBeGreaterThanOrEqual(15);
    expect(out.probes).toBeGreaterThanOrEqual(2);
    expect(out.recorded).toBe(1);
    expect(out.skipped).toBe(0);
  });

  it('counts as skipped a result whose module changed while it ran', async () => {
    const a = yaml('1200ms');
    const b = yaml('1300ms');
    const out = await run(300, [a, b], 6500);
    expect(out.probes).toBe(0);
    expect(out.skipped).toBeGreaterThanOrEqual(2);
  });
});

describe('reload while slots are due (fake clock; fire() observed, nothing probed)', () => {
  let fired: string[];
  let spy: jest.SpyInstance;
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000, doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    fired = [];
    spy = jest
      .spyOn(Scheduler.prototype as unknown as { fire(st: unknown): void }, 'fire')
      .mockImplementation(function (st: unknown) {
        fired.push((st as { target: { name: string } }).target.name);
      });
  });
  afterEach(() => {
    spy.mockRestore();
    jest.useRealTimers();
  });

  it('fires the slots that came due before the reload could run, once', async () => {
    const y = [
      'modules: {t: {prober: tcp, timeout: 200ms}}',
      'global: {interval: 1s}',
      'targets:',
      ...['a', 'b', 'c', 'd'].map((n) => `  - {name: ${n}, module: t, address: "127.0.0.1:9"}`),
    ].join('\n');
    const sched = new Scheduler({
      store: new ResultStore(new FamilyRegistry(allFamilies())),
      metrics: createSelfMetrics({ version: 't', revision: 't' }),
      logger: silentLogger,
      concurrency: 4,
    });
    const apply = (): void => {
      const cfg = parseConfig(y, 'due.yml');
      sched.apply(cfg.targets, cfg.modules, 4);
    };
    apply();
    jest.advanceTimersByTime(999);
    expect(fired).toHaveLength(4);
    // The loop is busy for 600 ms (the reload itself, a big config): three slots come due, no timer runs.
    jest.setSystemTime(Date.now() + 600);
    apply();
    jest.advanceTimersByTime(0);
    expect(fired).toHaveLength(7);
    jest.advanceTimersByTime(400);
    await sched.stop();
    // Every target once per second: nothing skipped, nothing doubled.
    expect(fired.slice(4).sort()).toEqual(['a', 'b', 'c', 'd']);
  });
});
