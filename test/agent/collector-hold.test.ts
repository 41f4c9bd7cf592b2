// Collectors held at start (Scheduler.holdCollectors, what the agent does until its HTTP server
// listens): set up but not scanning until releaseCollectors(), then scanning once at once and on
// their interval; collectors applied after the release scan at once, as before.
import { FamilyRegistry } from '../../agent/exposition';
import { allFamilies } from '../../agent/agent';
import { Scheduler } from '../../agent/scheduler';
import { createSelfMetrics } from '../../agent/self-metrics';
import { ResultStore } from '../../agent/store';
import { COLLECTORS, type CollectorResult } from '../../exporters';
import { silentLogger } from '../helpers/context';

const RESULT: CollectorResult = { success: true, durationSeconds: 0.001, facts: [] };

describe('collectors held until release', () => {
  let scans: number[];
  let spy: jest.SpyInstance;
  let sched: Scheduler;

  beforeEach(() => {
    scans = [];
    spy = jest.spyOn(COLLECTORS.sockets, 'create').mockImplementation(() => ({
      scan: () => {
        scans.push(Date.now());
        return Promise.resolve(RESULT);
      },
      close: () => undefined,
    }));
    sched = new Scheduler({
      store: new ResultStore(new FamilyRegistry(allFamilies())),
      metrics: createSelfMetrics({ version: 't', revision: 't' }),
      logger: silentLogger,
      concurrency: 1,
    });
  });
  afterEach(async () => {
    await sched.stop();
    spy.mockRestore();
  });

  const sockets = (intervalMs: number): { name: string; enabled: boolean; intervalMs: number; settings: unknown } => ({
    name: 'sockets',
    enabled: true,
    intervalMs,
    settings: COLLECTORS.sockets.defaults,
  });
  const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  it('does not scan while held, scans at the release and then on the interval', async () => {
    sched.holdCollectors();
    sched.applyCollectors([sockets(1000)]);
    await settle(1100);
    expect(scans).toEqual([]);
    sched.releaseCollectors();
    // The first scan starts within the release itself.
    expect(scans.length).toBe(1);
    await settle(1100);
    expect(scans.length).toBe(2);
    // A second release changes nothing.
    sched.releaseCollectors();
    expect(scans.length).toBe(2);
  });

  it('scans at once when not held, as before', () => {
    sched.applyCollectors([sockets(10_000)]);
    expect(scans.length).toBe(1);
  });

  it('a collector stopped while held never scans', async () => {
    sched.holdCollectors();
    sched.applyCollectors([sockets(200)]);
    await sched.stop();
    sched.releaseCollectors();
    await settle(50);
    expect(scans).toEqual([]);
  });
});
