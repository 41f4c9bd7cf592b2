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

async function counter(c: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }): Promise<number> {
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
      probes: await counter(metrics.probesTotal as never),
      skipped: await counter(metrics.schedulerSkipped as never),
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
