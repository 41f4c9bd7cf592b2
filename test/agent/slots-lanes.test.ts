// The two lanes of the scheduler's slots: a free slot goes to the scheduled lane first, to the
// extra lane (first probes) only when nobody waits there; an extra waiter can be promoted to the
// scheduled lane once, and is then served there, once; unwanted waiters are turned away in both
// lanes; shutdown rejects both.
import { FamilyRegistry } from '../../agent/exposition';
import { allFamilies } from '../../agent/agent';
import { EXTRA, SCHEDULED, Scheduler, Slots, type Promotable } from '../../agent/scheduler';
import { createSelfMetrics } from '../../agent/self-metrics';
import { Shutdown } from '../../agent/shutdown';
import { ResultStore } from '../../agent/store';
import { parseConfig } from '../../config/load';
import { silentLogger } from '../helpers/context';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('Slots lanes', () => {
  it('serves the scheduled lane before the extra lane, each in order', async () => {
    const sd = new Shutdown();
    const slots = new Slots(1);
    await slots.acquire(sd);
    const order: string[] = [];
    const take = (name: string, lane: number): Promise<void> =>
      slots.acquire(sd, undefined, lane).then((granted) => void order.push(`${name}:${granted}`));
    const all = [take('x1', EXTRA), take('x2', EXTRA), take('s1', SCHEDULED), take('x3', EXTRA), take('s2', SCHEDULED)];
    for (let i = 0; i < 5; i++) {
      slots.release();
      await tick();
    }
    await Promise.all(all);
    expect(order).toEqual(['s1:true', 's2:true', 'x1:true', 'x2:true', 'x3:true']);
  });

  it('a free slot with only extra waiters goes to them; a scheduled newcomer takes the next one', async () => {
    const sd = new Shutdown();
    const slots = new Slots(2);
    expect(await slots.acquire(sd, undefined, EXTRA)).toBe(true);
    expect(await slots.acquire(sd, undefined, EXTRA)).toBe(true);
    const order: string[] = [];
    const x = slots.acquire(sd, undefined, EXTRA).then(() => order.push('x'));
    const s = slots.acquire(sd).then(() => order.push('s'));
    slots.release();
    await tick();
    expect(order).toEqual(['s']);
    slots.release();
    await Promise.all([x, s]);
    expect(order).toEqual(['s', 'x']);
  });

  it('promotes an extra waiter to the scheduled lane once: served behind the scheduled ones, ahead of the extra ones, granted once', async () => {
    const sd = new Shutdown();
    const slots = new Slots(1);
    await slots.acquire(sd);
    const order: string[] = [];
    const handle: Promotable = {};
    let grants = 0;
    const p = slots.acquire(sd, undefined, EXTRA, handle).then((g) => {
      grants++;
      order.push(`p:${g}`);
    });
    const x = slots.acquire(sd, undefined, EXTRA).then(() => order.push('x'));
    const s = slots.acquire(sd).then(() => order.push('s'));
    expect(typeof handle.promote).toBe('function');
    handle.promote?.();
    expect(handle.promote).toBeUndefined();
    expect(slots.waiting).toBe(3);
    for (let i = 0; i < 3; i++) {
      slots.release();
      await tick();
    }
    await Promise.all([p, x, s]);
    expect(order).toEqual(['s', 'p:true', 'x']);
    expect(grants).toBe(1);
    expect(slots.waiting).toBe(0);
  });

  it('turns unwanted waiters away in the extra lane too, and a settled waiter cannot be promoted', async () => {
    const sd = new Shutdown();
    const slots = new Slots(1);
    await slots.acquire(sd);
    let gone = false;
    const handle: Promotable = {};
    const unwanted = slots.acquire(sd, () => !gone, EXTRA, handle);
    const kept = slots.acquire(sd, undefined, EXTRA);
    gone = true;
    slots.release();
    expect(await unwanted).toBe(false);
    expect(await kept).toBe(true);
    expect(handle.promote).toBeUndefined();
  });

  it('rejects waiters of both lanes at shutdown', async () => {
    const sd = new Shutdown();
    const slots = new Slots(1);
    await slots.acquire(sd);
    const handle: Promotable = {};
    const x = slots.acquire(sd, undefined, EXTRA, handle);
    const s = slots.acquire(sd);
    sd.abort();
    await expect(x).rejects.toThrow('shutting down');
    await expect(s).rejects.toThrow('shutting down');
    expect(handle.promote).toBeUndefined();
  });
});

describe('first probes in the extra lane, in a scheduler (fake clock; probes replaced by holding a slot)', () => {
  let spy: jest.SpyInstance;
  let calls: { name: string; lane: number }[];

  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000, doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    calls = [];
    // Each "probe" waits for a slot as the real one does, then holds it until stop().
    type Internals = { slots: Slots; shutdown: Shutdown };
    spy = jest
      .spyOn(Scheduler.prototype as unknown as { execute(st: unknown, lane: number): Promise<void> }, 'execute')
      .mockImplementation(function (this: Internals, st: unknown, lane: number) {
        const s = st as Promotable & { target: { name: string } };
        calls.push({ name: s.target.name, lane });
        return this.slots
          .acquire(this.shutdown, undefined, lane, s)
          .then(() => new Promise<void>((done) => this.shutdown.subscribe(() => done())))
          .catch(() => undefined);
      });
  });
  afterEach(() => {
    spy.mockRestore();
    jest.useRealTimers();
  });

  it('a first probe still waiting for a slot when its own slot comes becomes that slot’s probe: one probe, nothing skipped', async () => {
    // Two targets at 1 h: ring offsets 0 and 1,800 s of the hour; the clock starts 1,000 s into
    // it, so the first's own slot is 2,600 s away and the second's 800 s. Both get a first probe
    // (at 0 and 5 s, in ring order): the first takes the one slot and keeps it, the second waits
    // in the extra lane until its own slot comes at 800 s.
    const cfg = parseConfig(
      [
        'modules: {t: {prober: tcp, timeout: 1s}}',
        'global: {interval: 1h}',
        'targets:',
        '  - {name: a, module: t, address: "127.0.0.1:9"}',
        '  - {name: b, module: t, address: "127.0.0.1:9"}',
      ].join('\n'),
      'lanes.yml',
    );
    const metrics = createSelfMetrics({ version: 't', revision: 't' });
    const sched = new Scheduler({
      store: new ResultStore(new FamilyRegistry(allFamilies())),
      metrics,
      logger: silentLogger,
      concurrency: 1,
    });
    sched.apply(cfg.targets, cfg.modules, 1);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(calls.map((c) => c.lane)).toEqual([EXTRA, EXTRA]);
    await jest.advanceTimersByTimeAsync(1_000_000);
    // The second target's slot came (one of the two names, by their hashes): no new probe, no skip.
    expect(calls.length).toBe(2);
    expect((await metrics.schedulerSkipped.get()).values[0].value).toBe(0);
    await sched.stop();
  });
});
