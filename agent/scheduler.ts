// Runs every target on its interval (or cron schedule), spread evenly across the interval,
// never overlapping itself, under a global concurrency cap. Results go to the store.
import { setMaxListeners } from 'node:events';
import cron, { type ScheduledTask } from 'node-cron';
import { PROBERS } from '../exporters';
import type { ModuleSpec, ProbeLogger } from '../exporters/types';
import type { CollectorConfig, TargetConfig } from '../config/load';
import type { Collector } from '../exporters/types';
import { COLLECTORS } from '../exporters';
import { runProbe } from './runner';
import type { ResultStore } from './store';
import type { SelfMetrics } from './self-metrics';
import { stableHash } from './shard';

/** A counting semaphore whose waiters give up when the agent shuts down. */
export class Slots {
  private free: number;
  private readonly waiters: (() => void)[] = [];

  constructor(private limit: number) {
    this.free = limit;
  }

  resize(limit: number): void {
    this.free += limit - this.limit;
    this.limit = limit;
    this.drain();
  }

  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(new Error('shutting down'));
    if (this.free > 0 && this.waiters.length === 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        signal.removeEventListener('abort', cancel);
        resolve();
      };
      const cancel = (): void => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error('shutting down'));
      };
      signal.addEventListener('abort', cancel, { once: true });
      this.waiters.push(grant);
    });
  }

  release(): void {
    this.free++;
    this.drain();
  }

  private drain(): void {
    while (this.free > 0 && this.waiters.length > 0) {
      this.free--;
      (this.waiters.shift() as () => void)();
    }
  }
}

interface TargetState {
  target: TargetConfig;
  module: ModuleSpec<unknown>;
  timer?: NodeJS.Timeout;
  task?: ScheduledTask;
  running: boolean;
}

interface CollectorState {
  config: CollectorConfig;
  collector: Collector;
  timer?: NodeJS.Timeout;
  running: boolean;
}

export interface SchedulerOptions {
  store: ResultStore;
  metrics: SelfMetrics;
  logger: ProbeLogger;
  concurrency: number;
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * Even spread: targets sharing an interval are ordered by a stable hash of their name and
 * placed at k * interval / n within each interval, so n targets never start together.
 */
export function spreadOffsets(targets: readonly { name: string; intervalMs: number }[]): Map<string, number> {
  const groups = new Map<number, { name: string; h: number }[]>();
  for (const t of targets) {
    const g = groups.get(t.intervalMs) ?? [];
    g.push({ name: t.name, h: stableHash(t.name) });
    groups.set(t.intervalMs, g);
  }
  const out = new Map<string, number>();
  for (const [interval, g] of groups) {
    g.sort((a, b) => a.h - b.h || (a.name < b.name ? -1 : 1));
    g.forEach((t, k) => out.set(t.name, Math.floor((k * interval) / g.length)));
  }
  return out;
}

export class Scheduler {
  private readonly states = new Map<string, TargetState>();
  private readonly collectorStates = new Map<string, CollectorState>();
  private readonly slots: Slots;
  private readonly shutdown = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly now: () => number;

  constructor(private readonly opts: SchedulerOptions) {
    // Every probe in flight (and every one waiting for a slot) listens for shutdown: thousands
    // at once is normal here, not a leak.
    setMaxListeners(0, this.shutdown.signal);
    this.slots = new Slots(opts.concurrency);
    this.now = opts.now ?? Date.now;
  }

  get shutdownSignal(): AbortSignal {
    return this.shutdown.signal;
  }

  /** Reconciles running timers with a new set of targets (config load or reload). */
  apply(
    targets: readonly TargetConfig[],
    modules: ReadonlyMap<string, ModuleSpec<unknown>>,
    concurrency: number,
  ): void {
    this.slots.resize(concurrency);
    const offsets = spreadOffsets(targets.filter((t) => t.schedule === undefined));
    const keep = new Set<string>();
    for (const t of targets) {
      keep.add(t.name);
      const module = modules.get(t.module) as ModuleSpec<unknown>;
      let st = this.states.get(t.name);
      if (st) this.clearTimers(st);
      else {
        st = { target: t, module, running: false };
        this.states.set(t.name, st);
      }
      st.target = t;
      st.module = module;
      if (t.schedule !== undefined) {
        const state = st;
        st.task = cron.schedule(t.schedule, () => this.fire(state), { name: `target:${t.name}` });
      } else {
        const offset = offsets.get(t.name) ?? 0;
        this.arm(st, nextSlot(this.now(), t.intervalMs, offset));
      }
    }
    for (const [name, st] of this.states) {
      if (!keep.has(name)) {
        this.clearTimers(st);
        this.states.delete(name);
      }
    }
  }

  /** Starts, restarts or stops local collectors (the sockets prober). */
  applyCollectors(configs: readonly CollectorConfig[]): void {
    for (const cfg of configs) {
      const old = this.collectorStates.get(cfg.name);
      if (old) {
        if (old.timer) clearTimeout(old.timer);
        old.collector.close();
        this.collectorStates.delete(cfg.name);
      }
      if (!cfg.enabled) {
        this.opts.store.dropCollector(cfg.name);
        continue;
      }
      const st: CollectorState = {
        config: cfg,
        collector: COLLECTORS[cfg.name].create(cfg.settings, this.opts.logger),
        running: false,
      };
      this.collectorStates.set(cfg.name, st);
      this.runCollector(st);
    }
  }

  private runCollector(st: CollectorState): void {
    if (this.shutdown.signal.aborted || this.collectorStates.get(st.config.name) !== st) return;
    st.timer = setTimeout(() => this.runCollector(st), st.config.intervalMs);
    if (st.running) {
      this.opts.metrics.schedulerSkipped.inc();
      return;
    }
    st.running = true;
    const p = st.collector
      .scan(this.shutdown.signal)
      .then((result) => {
        if (this.collectorStates.get(st.config.name) === st) this.opts.store.recordCollector(st.config.name, result);
      })
      .catch((err: unknown) => {
        this.opts.logger.error('collector scan failed', { collector: st.config.name, err: String(err) });
      })
      .finally(() => {
        st.running = false;
        this.inFlight.delete(p);
      });
    this.inFlight.add(p);
  }

  private arm(st: TargetState, dueAt: number): void {
    const delay = Math.max(0, dueAt - this.now());
    st.timer = setTimeout(() => {
      let next = dueAt + st.target.intervalMs;
      const now = this.now();
      while (next <= now) next += st.target.intervalMs;
      this.arm(st, next);
      this.fire(st);
    }, delay);
  }

  private clearTimers(st: TargetState): void {
    if (st.timer) clearTimeout(st.timer);
    st.timer = undefined;
    if (st.task) void st.task.destroy();
    st.task = undefined;
  }

  /** Runs one scheduled probe unless the previous run of the same target is still going. */
  private fire(st: TargetState): void {
    if (this.shutdown.signal.aborted) return;
    if (st.running) {
      this.opts.metrics.schedulerSkipped.inc();
      this.opts.logger.debug('skipped: previous run still going', { target: st.target.name });
      return;
    }
    st.running = true;
    this.opts.metrics.probesInFlight.inc();
    const p = this.execute(st).finally(() => {
      st.running = false;
      this.opts.metrics.probesInFlight.dec();
      this.inFlight.delete(p);
    });
    this.inFlight.add(p);
  }

  private async execute(st: TargetState): Promise<void> {
    try {
      await this.slots.acquire(this.shutdown.signal);
    } catch {
      return;
    }
    try {
      const { target, module } = st;
      const result = await runProbe({ target, module, shutdown: this.shutdown.signal, logger: this.opts.logger });
      if (this.states.get(target.name) !== st || st.module !== module) return;
      if (result.failure?.reason === 'aborted') return;
      this.opts.store.record(target.name, PROBERS[module.prober].phases, result);
      this.opts.metrics.probesTotal.inc({ module: module.name, result: result.success ? 'success' : 'failure' });
      if (!result.success && result.failure) {
        this.opts.logger.debug('probe failed', {
          target: target.name,
          phase: result.failure.phase,
          reason: result.failure.reason,
          msg: result.failure.message,
        });
      }
    } finally {
      this.slots.release();
    }
  }

  /** Runs every target and enabled collector once, now, and waits for all (for --once). */
  async runAllOnce(): Promise<void> {
    for (const st of this.states.values()) this.fire(st);
    for (const st of this.collectorStates.values()) {
      if (st.timer) clearTimeout(st.timer);
    }
    await Promise.all([...this.inFlight]);
  }

  /** Stops scheduling, aborts probes in flight and waits for them (bounded by their grace). */
  async stop(): Promise<void> {
    for (const st of this.states.values()) this.clearTimers(st);
    for (const st of this.collectorStates.values()) {
      if (st.timer) clearTimeout(st.timer);
      st.collector.close();
    }
    this.shutdown.abort();
    await Promise.all([...this.inFlight]);
  }
}

/** First time >= now that is congruent to offset modulo interval. */
export function nextSlot(now: number, intervalMs: number, offsetMs: number): number {
  const base = Math.floor(now / intervalMs) * intervalMs + offsetMs;
  return base >= now ? base : base + intervalMs;
}
