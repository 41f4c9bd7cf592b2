import { COALESCE_MS, Slots, nextSlot, spreadOffsets, Scheduler } from '../../agent/scheduler';
import { ResultStore } from '../../agent/store';
import { FamilyRegistry } from '../../agent/exposition';
import { allFamilies } from '../../agent/agent';
import { createSelfMetrics } from '../../agent/self-metrics';
import { parseConfig } from '../../config/load';
import { silentLogger } from '../helpers/context';
import { Shutdown } from '../../agent/shutdown';
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
    const sd = new Shutdown();
    const order: number[] = [];
    const all = [1, 2, 3, 4].map((i) => s.acquire(sd).then(() => order.push(i)));
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
    const sd = new Shutdown();
    await s.acquire(sd);
    const waiting = s.acquire(sd);
    sd.abort();
    await expect(waiting).rejects.toThrow('shutting down');
    await expect(s.acquire(sd)).rejects.toThrow('shutting down');
  });
  it('turns away waiters no longer wanted, without a slot, a batch per event-loop turn', async () => {
    const s = new Slots(1);
    const sd = new Shutdown();
    expect(await s.acquire(sd)).toBe(true);
    let gone = true;
    const unwanted = Array.from({ length: 8000 }, () => s.acquire(sd, () => !gone));
    const kept = s.acquire(sd, () => true);
    expect(s.waiting).toBe(8001);
    // Turns of the event loop seen while the unwanted ones are turned away.
    let turns = 0;
    let spinning = true;
    const spin = (): void => {
      turns++;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    s.release();
    expect(await kept).toBe(true);
    spinning = false;
    expect(await Promise.all(unwanted)).toEqual(unwanted.map(() => false));
    expect(turns).toBeGreaterThanOrEqual(5); // 8,000 in batches of 1,024
    expect(s.waiting).toBe(0);
    // The one slot went to the kept waiter: nothing is free until it is released.
    gone = false;
    let next = false;
    const after = s.acquire(sd).then((g) => (next = g));
    await new Promise((r) => setImmediate(r));
    expect(next).toBe(false);
    s.release();
    expect(await after).toBe(true);
  });
});

describe('Scheduler, live on loopback', () => {
  it('never runs more probes than the concurrency cap and counts skipped runs', async () => {
    const connections: { at: number; socket: import('node:net').Socket }[] = [];
    // A silent peer: every probe waits for a banner until its 800 ms deadline, so with one slot
    // the next connection cannot start before the previous probe's deadline.
    const l = await listen((socket) => {
      connections.push({ at: Date.now(), socket });
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
    // The probes' own connections: the banner rung's second look (exporters/silence.ts) opens
    // one more per probe, which sends a ClientHello at once; the probe's connection sends nothing.
    const accepted = connections.filter((c) => c.socket.bytesRead === 0).map((c) => c.at);
    expect(accepted.length).toBeGreaterThanOrEqual(3);
    const gaps = accepted.slice(1).map((t, i) => t - accepted[i]);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(780);
    const skipped = (await metrics.schedulerSkipped.get()).values[0].value;
    expect(skipped).toBeGreaterThan(0);
    const done = (await metrics.probesTotal.get()).values.find((v) => v.labels.result === 'failure')?.value ?? 0;
    expect(done).toBeGreaterThanOrEqual(2);
    const results = [...store.entries()].filter((e) => e.result);
    expect(results.length).toBeGreaterThan(0);
    for (const e of results) expect(e.result?.failure).toMatchObject({ phase: 'banner', reason: 'no_greeting' });
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

describe('Scheduler rings (fake clock; fire() observed, nothing probed)', () => {
  type Fire = { at: number; name: string };
  let fires: Fire[];
  let spy: jest.SpyInstance;

  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000, doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    fires = [];
    spy = jest
      .spyOn(Scheduler.prototype as unknown as { fire(st: unknown): void }, 'fire')
      .mockImplementation(function (st: unknown) {
        fires.push({ at: Date.now(), name: (st as { target: { name: string } }).target.name });
      });
  });
  afterEach(() => {
    spy.mockRestore();
    jest.useRealTimers();
  });

  /** The exact-slot checks below run with a 1 ms grid; the coalescing test passes the default grid. */
  function scheduler(
    yaml: string,
    coalesceMs: number | undefined = 1,
  ): { sched: Scheduler; apply: (y: string) => void } {
    const sched = new Scheduler({
      store: new ResultStore(new FamilyRegistry(allFamilies())),
      metrics: createSelfMetrics({ version: 't', revision: 't' }),
      logger: silentLogger,
      concurrency: 4,
      coalesceMs,
    });
    const apply = (y: string): void => {
      const cfg = parseConfig(y, 'rings.yml');
      sched.apply(cfg.targets, cfg.modules, 4);
    };
    apply(yaml);
    return { sched, apply };
  }

  const targets = (names: string[], extra = ''): string =>
    [
      'modules: {t: {prober: tcp, timeout: 500ms}}',
      'global: {interval: 1s}',
      'targets:',
      ...names.map((n) => `  - {name: ${n}, module: t, address: "127.0.0.1:9"${extra}}`),
    ].join('\n');

  it('fires each target once per interval, at its own offset, interval/n apart', async () => {
    const names = Array.from({ length: 10 }, (_, i) => `t${i}`);
    const { sched } = scheduler(targets(names));
    jest.advanceTimersByTime(2999);
    await sched.stop();
    const offsets = spreadOffsets(names.map((name) => ({ name, intervalMs: 1000 })));
    for (const n of names) {
      const at = fires.filter((f) => f.name === n).map((f) => f.at);
      expect(at).toHaveLength(3);
      // Slots are aligned to the clock: 1,000,000 is a whole number of intervals.
      expect(at).toEqual([0, 1, 2].map((k) => 1_000_000 + (offsets.get(n) as number) + k * 1000));
    }
    const firstRound = fires.slice(0, 10).map((f) => f.at - 1_000_000);
    expect(firstRound).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900]);
  });

  it('by default wakes on the COALESCE_MS grid: each slot runs at most one step late, once per interval', async () => {
    // 1,000 targets at 1 s: a slot every millisecond, so without the grid one wake-up per probe.
    const names = Array.from({ length: 1000 }, (_, i) => `t${i}`);
    const { sched } = scheduler(targets(names), COALESCE_MS);
    // Three intervals, and one step more for the last slots' wake-up.
    jest.advanceTimersByTime(2999 + COALESCE_MS);
    await sched.stop();
    const offsets = spreadOffsets(names.map((name) => ({ name, intervalMs: 1000 })));
    const inWindow = fires.filter((f) => f.at <= 1_002_999 + COALESCE_MS);
    for (const n of names) {
      const offset = offsets.get(n) as number;
      // The fires of this target's first three slots (a slot at 0 of the fourth interval is not one).
      const at = inWindow
        .filter((f) => f.name === n && f.at - 1_000_000 - offset < 2000 + COALESCE_MS + 1)
        .map((f) => f.at);
      expect(at).toHaveLength(3);
      at.forEach((t, k) => {
        const slot = 1_000_000 + offset + k * 1000;
        expect(t).toBeGreaterThanOrEqual(slot);
        // (+1: a timer due now still waits the 1 ms node gives a zero delay)
        expect(t - slot).toBeLessThanOrEqual(COALESCE_MS);
      });
    }
    // So the process woke about once per grid step, not once per probe.
    const wakeUps = new Set(inWindow.map((f) => f.at)).size;
    expect(wakeUps).toBeLessThanOrEqual(Math.ceil(3000 / COALESCE_MS) + 2);
    expect(inWindow.length / wakeUps).toBeGreaterThanOrEqual(COALESCE_MS - 1);
  });

  it('keeps one ring per interval', async () => {
    const y = [
      'modules: {t: {prober: tcp, timeout: 500ms}}',
      'targets:',
      '  - {name: fast, module: t, address: "127.0.0.1:9", interval: 1s}',
      '  - {name: slow, module: t, address: "127.0.0.1:9", interval: 4s}',
    ].join('\n');
    const { sched } = scheduler(y);
    jest.advanceTimersByTime(7999);
    await sched.stop();
    expect(fires.filter((f) => f.name === 'fast')).toHaveLength(8);
    expect(fires.filter((f) => f.name === 'slow')).toHaveLength(2);
  });

  it('after a stall longer than the interval runs every target once, then keeps its slots', async () => {
    const names = ['a', 'b', 'c', 'd'];
    const { sched } = scheduler(targets(names));
    jest.advanceTimersByTime(999);
    expect(fires).toHaveLength(4);
    // The event loop stalls for 5.5 s: the clock moves, no timer runs meanwhile.
    jest.setSystemTime(Date.now() + 5500);
    jest.advanceTimersByTime(1);
    const caughtUp = fires.slice(4);
    expect(caughtUp.map((f) => f.name).sort()).toEqual(names);
    fires.length = 0;
    jest.advanceTimersByTime(2000);
    await sched.stop();
    expect(fires).toHaveLength(8);
    for (const f of fires) expect(f.at % 250).toBe(0);
  });

  const slow = (names: string[], interval = '30s', timeout = '5s'): string =>
    [
      `modules: {t: {prober: tcp, timeout: ${timeout}}}`,
      `global: {interval: ${interval}}`,
      'targets:',
      ...names.map((n) => `  - {name: ${n}, module: t, address: "127.0.0.1:9"}`),
    ].join('\n');

  it('probes every target once right after start, spread over the first 10 s, then on its own slot', async () => {
    const names = ['a', 'b', 'c', 'd'];
    const { sched } = scheduler(slow(names));
    const start = Date.now();
    const offsets = spreadOffsets(names.map((name) => ({ name, intervalMs: 30_000 })));
    jest.advanceTimersByTime(60_000);
    await sched.stop();
    for (const n of names) {
      const at = fires.filter((f) => f.name === n).map((f) => f.at - start);
      const slots = [0, 1, 2]
        .map((k) => nextSlot(start + k * 30_000, 30_000, offsets.get(n) as number) - start)
        .filter((t) => t < 60_001);
      const early = at.filter((t) => !slots.includes(t));
      // At most one extra, early probe, within the first 10 s; none when the target's own slot
      // follows it within the module's timeout (5 s) + 1 s.
      expect(early.length).toBeLessThanOrEqual(1);
      for (const t of early) expect(t).toBeLessThan(10_000);
      if (early.length === 0) expect(slots[0]).toBeLessThanOrEqual(10_000 + 6000);
      else expect(slots[0] - early[0]).toBeGreaterThan(6000);
      // Either way the first result comes long before the 30 s interval would bring it.
      expect(Math.min(...at)).toBeLessThanOrEqual(16_000);
      expect(at.filter((t) => slots.includes(t))).toEqual(slots);
    }
    // The early probes are spread, not started together.
    const firstRound = [...new Set(fires.filter((f) => f.at - start < 10_000).map((f) => f.at))];
    expect(firstRound.length).toBe(fires.filter((f) => f.at - start < 10_000).length);
  });

  it('the first probe of one target with a 1 h interval comes at once', async () => {
    const { sched } = scheduler(slow(['only'], '1h'));
    const start = Date.now();
    jest.advanceTimersByTime(0);
    expect(fires.map((f) => f.at - start)).toEqual([0]);
    await sched.stop();
  });

  it('no early probe when the slot is closer than the module timeout (they would overlap)', async () => {
    // Offsets put the single target's slot at a multiple of the 60 s interval: move the clock so
    // that slot is 20 s away, inside the 30 s timeout.
    jest.setSystemTime(Math.ceil(Date.now() / 60_000) * 60_000 + 40_000);
    const { sched } = scheduler(slow(['only'], '60s', '30s'));
    const start = Date.now();
    jest.advanceTimersByTime(20_000);
    await sched.stop();
    expect(fires.map((f) => f.at - start)).toEqual([20_000]);
  });

  it('a reload probes added targets at once and leaves the others on their slots', async () => {
    const { sched, apply } = scheduler(slow(['a'], '1h'));
    jest.advanceTimersByTime(1000);
    expect(fires.map((f) => f.name)).toEqual(['a']);
    fires.length = 0;
    apply(slow(['a', 'b'], '1h'));
    jest.advanceTimersByTime(1000);
    expect(fires.map((f) => f.name)).toEqual(['b']);
    await sched.stop();
  });

  it('stop() cancels first probes not yet due', async () => {
    const names = Array.from({ length: 100 }, (_, i) => `t${i}`);
    const { sched } = scheduler(slow(names, '1h'));
    jest.advanceTimersByTime(0);
    const before = fires.length;
    expect(before).toBeLessThan(names.length);
    await sched.stop();
    jest.advanceTimersByTime(20_000);
    expect(fires.length).toBe(before);
  });

  it('a first probe still queued survives a reload that keeps its target, and runs once', async () => {
    const names = Array.from({ length: 100 }, (_, i) => `t${i}`);
    const { sched, apply } = scheduler(slow(names, '1h'));
    jest.advanceTimersByTime(3000);
    const early = fires.length;
    expect(early).toBeGreaterThan(0);
    expect(early).toBeLessThan(names.length);
    apply(slow([...names, 'late'], '1h'));
    jest.advanceTimersByTime(20_000);
    await sched.stop();
    const count = new Map<string, number>();
    for (const f of fires) count.set(f.name, (count.get(f.name) ?? 0) + 1);
    // Once each: the queued first probes neither lost nor queued again. A target whose own slot was
    // close enough to skip its first probe may have had the slot moved past the window by the
    // reload (101 targets share the ring now): at most a couple, by chance of the names' hashes.
    expect([...count.values()].every((c) => c === 1)).toBe(true);
    expect(count.has('late')).toBe(true);
    expect(count.size).toBeGreaterThanOrEqual(names.length - 1);
  });

  it('a target removed before its first probe never gets it', async () => {
    const names = Array.from({ length: 100 }, (_, i) => `t${i}`);
    const { sched, apply } = scheduler(slow(names, '1h'));
    jest.advanceTimersByTime(3000);
    const firedBefore = new Set(fires.map((f) => f.name));
    fires.length = 0;
    const kept = names.slice(0, 50);
    apply(slow(kept, '1h'));
    jest.advanceTimersByTime(20_000);
    await sched.stop();
    for (const f of fires) expect(kept).toContain(f.name);
    // The kept targets that had not had their first probe got it after the reload, once (but for
    // one whose own slot the reload moved, as above). Others may meet their own slot meanwhile.
    const waiting = kept.filter((n) => !firedBefore.has(n));
    expect(waiting.length).toBeGreaterThan(10);
    const after = fires.map((f) => f.name);
    expect(new Set(after).size).toBe(after.length);
    expect(waiting.filter((n) => after.includes(n)).length).toBeGreaterThanOrEqual(waiting.length - 2);
  });

  it('a reload keeps the slots of unchanged targets and stops removed ones', async () => {
    const { sched, apply } = scheduler(targets(['a', 'b', 'c']));
    jest.advanceTimersByTime(999);
    const before = new Map(fires.map((f) => [f.name, f.at % 1000]));
    fires.length = 0;
    apply(targets(['a', 'b']));
    jest.advanceTimersByTime(1999);
    await sched.stop();
    expect(new Set(fires.map((f) => f.name))).toEqual(new Set(['a', 'b']));
    expect(fires).toHaveLength(4);
    // Two targets share the interval now, so each moves to its new place among two.
    const now = spreadOffsets(['a', 'b'].map((name) => ({ name, intervalMs: 1000 })));
    for (const f of fires) expect(f.at % 1000).toBe(now.get(f.name));
    expect(before.size).toBe(3);
  });
});
