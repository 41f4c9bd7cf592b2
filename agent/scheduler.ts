// Runs every target on its interval (or cron schedule), spread evenly across the interval,
// never overlapping itself, under a global concurrency cap. Results go to the store.
// Targets that share an interval form a ring with one timer: the ring keeps no per-target timer,
// so 10,000 targets cost 10,000 small records rather than 10,000 timers re-created every round.
import cron, { type ScheduledTask } from 'node-cron';
import { COLLECTORS, PROBERS } from '../exporters';
import type { Collector, ModuleSpec, ProbeLogger } from '../exporters/types';
import type { CollectorConfig, TargetConfig } from '../config/load';
import { runProbe } from './runner';
import type { ResultStore } from './store';
import type { SelfMetrics } from './self-metrics';
import { stableHash } from './shard';
import { Shutdown } from './shutdown';
import { sameConfig } from '../config/equal';

/** A counting semaphore whose waiters give up when the agent shuts down. */
export class Slots {
  private free: number;
  private readonly waiters: (() => void)[] = [];
  /** Index of the first waiter: taking from the front by shift() copies the whole queue. */
  private head = 0;

  constructor(private limit: number) {
    this.free = limit;
  }

  resize(limit: number): void {
    this.free += limit - this.limit;
    this.limit = limit;
    this.drain();
  }

  acquire(shutdown: Shutdown): Promise<void> {
    if (shutdown.aborted) return Promise.reject(new Error('shutting down'));
    if (this.free > 0 && this.waiters.length === this.head) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      let unsubscribe = (): void => undefined;
      const grant = (): void => {
        unsubscribe();
        resolve();
      };
      unsubscribe = shutdown.subscribe(() => {
        const i = this.waiters.indexOf(grant, this.head);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error('shutting down'));
      });
      this.waiters.push(grant);
    });
  }

  release(): void {
    this.free++;
    this.drain();
  }

  private drain(): void {
    while (this.free > 0 && this.head < this.waiters.length) {
      this.free--;
      const grant = this.waiters[this.head++];
      if (this.head === this.waiters.length || (this.head >= 1024 && this.head * 2 >= this.waiters.length)) {
        this.waiters.splice(0, this.head);
        this.head = 0;
      }
      grant();
    }
  }
}

interface TargetState {
  target: TargetConfig;
  module: ModuleSpec<unknown>;
  task?: ScheduledTask;
  /** The prompt first probe of a target new to the scheduler (see FIRST_PROBE_WINDOW_MS). */
  first?: NodeJS.Timeout;
  running: boolean;
}

/**
 * Targets new to the scheduler (all of them at start-up, added ones on reload) get a first probe
 * at once instead of waiting up to an interval for their slot: spread over this window (or the
 * interval, when shorter) so a large config does not start everything in the same millisecond.
 */
export const FIRST_PROBE_WINDOW_MS = 10_000;
/** No extra first probe when the target's own slot is this close anyway. */
export const FIRST_PROBE_MIN_LEAD_MS = 5_000;

/** Targets of one interval, in the order of their offsets within it. */
interface Ring {
  intervalMs: number;
  members: TargetState[];
  offsets: number[];
  /** Start of the interval the next member's slot belongs to. */
  cycleStart: number;
  /** Index of the next member to fire. */
  pos: number;
  timer?: NodeJS.Timeout;
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
  const out = new Map<string, number>();
  for (const g of spreadRings(targets).values()) g.members.forEach((t, k) => out.set(t.name, g.offsets[k]));
  return out;
}

/** Targets grouped by interval, each group in the order of its offsets, with the offsets. */
function spreadRings<T extends { name: string; intervalMs: number }>(
  targets: readonly T[],
): Map<number, { members: T[]; offsets: number[] }> {
  const groups = new Map<number, { t: T; h: number }[]>();
  for (const t of targets) {
    const g = groups.get(t.intervalMs) ?? [];
    g.push({ t, h: stableHash(t.name) });
    groups.set(t.intervalMs, g);
  }
  const out = new Map<number, { members: T[]; offsets: number[] }>();
  for (const [interval, g] of groups) {
    g.sort((a, b) => a.h - b.h || (a.t.name < b.t.name ? -1 : 1));
    out.set(interval, { members: g.map((x) => x.t), offsets: g.map((_, k) => Math.floor((k * interval) / g.length)) });
  }
  return out;
}

export class Scheduler {
  private readonly states = new Map<string, TargetState>();
  private rings: Ring[] = [];
  private readonly collectorStates = new Map<string, CollectorState>();
  private readonly slots: Slots;
  private readonly shutdown = new Shutdown();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly now: () => number;

  constructor(private readonly opts: SchedulerOptions) {
    this.slots = new Slots(opts.concurrency);
    this.now = opts.now ?? Date.now;
  }

  /** Stops every probe in flight when the agent shuts down (also the /probe requests'). */
  get shutdownHandle(): Shutdown {
    return this.shutdown;
  }

  /** Reconciles running timers with a new set of targets (config load or reload). */
  apply(
    targets: readonly TargetConfig[],
    modules: ReadonlyMap<string, ModuleSpec<unknown>>,
    concurrency: number,
  ): void {
    this.slots.resize(concurrency);
    // Where each interval's ring had got to: slots that came due while the loop was busy (with
    // this reload, say) and have not fired yet still fire, instead of being skipped by the new ring.
    const pending = new Map<number, number>();
    for (const r of this.rings) {
      if (r.timer) clearTimeout(r.timer);
      pending.set(r.intervalMs, r.cycleStart + r.offsets[r.pos]);
    }
    this.rings = [];
    // Thousands of targets share a few modules: compare each old/new pair of modules once.
    const compared = new Map<ModuleSpec<unknown>, Map<ModuleSpec<unknown>, boolean>>();
    const sameModule = (a: ModuleSpec<unknown>, b: ModuleSpec<unknown>): boolean => {
      let row = compared.get(a);
      if (!row) compared.set(a, (row = new Map<ModuleSpec<unknown>, boolean>()));
      let same = row.get(b);
      if (same === undefined) row.set(b, (same = sameConfig(a, b)));
      return same;
    };
    const keep = new Set<string>();
    const periodic: TargetState[] = [];
    const fresh = new Set<TargetState>();
    for (const t of targets) {
      keep.add(t.name);
      const module = modules.get(t.module) as ModuleSpec<unknown>;
      let st = this.states.get(t.name);
      if (st) {
        this.clearTask(st);
        // A reload builds new objects for everything: keep the old ones when they mean the same,
        // so a probe in flight for an unchanged target and module still delivers its result.
        if (!sameConfig(st.target, t)) st.target = t;
        if (!sameModule(st.module, module)) st.module = module;
      } else {
        st = { target: t, module, running: false };
        this.states.set(t.name, st);
        fresh.add(st);
      }
      if (t.schedule !== undefined) {
        const state = st;
        st.task = cron.schedule(t.schedule, () => this.fire(state), { name: `target:${t.name}` });
      } else periodic.push(st);
    }
    for (const [name, st] of this.states) {
      if (!keep.has(name)) {
        this.clearTask(st);
        if (st.first) clearTimeout(st.first);
        this.states.delete(name);
      }
    }
    const byInterval = spreadRings(
      periodic.map((st) => ({ name: st.target.name, intervalMs: st.target.intervalMs, st })),
    );
    const now = this.now();
    for (const [intervalMs, { members, offsets }] of byInterval) {
      const ring: Ring = { intervalMs, members: members.map((m) => m.st), offsets, cycleStart: 0, pos: 0 };
      alignRing(ring, Math.min(now, pending.get(intervalMs) ?? now));
      this.rings.push(ring);
      this.armRing(ring, now);
    }
    this.armFirstProbes(byInterval, fresh, now);
  }

  /**
   * A prompt first probe for each new target whose own slot is further away than
   * FIRST_PROBE_MIN_LEAD_MS and than its module's timeout (so the two never overlap).
   */
  private armFirstProbes(
    byInterval: ReturnType<typeof spreadRings<{ name: string; intervalMs: number; st: TargetState }>>,
    fresh: ReadonlySet<TargetState>,
    now: number,
  ): void {
    if (fresh.size === 0) return;
    for (const [intervalMs, { members, offsets }] of byInterval) {
      const newcomers = members.filter((m) => fresh.has(m.st));
      const window = Math.min(FIRST_PROBE_WINDOW_MS, intervalMs);
      newcomers.forEach((m, k) => {
        const delay = Math.floor((k * window) / newcomers.length);
        const slot = nextSlot(now, intervalMs, offsets[members.indexOf(m)]);
        const lead = Math.max(FIRST_PROBE_MIN_LEAD_MS, m.st.module.timeoutSeconds * 1000 + 1000);
        if (slot - (now + delay) <= lead) return;
        m.st.first = setTimeout(() => {
          m.st.first = undefined;
          this.fire(m.st);
        }, delay);
      });
    }
  }

  /** Starts, restarts or stops local collectors (the sockets prober). */
  applyCollectors(configs: readonly CollectorConfig[]): void {
    for (const cfg of configs) {
      const old = this.collectorStates.get(cfg.name);
      // Unchanged: keep it running, its timer and its scan in flight untouched.
      if (old && sameConfig(old.config, cfg)) continue;
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
    if (this.shutdown.aborted || this.collectorStates.get(st.config.name) !== st) return;
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

  private armRing(ring: Ring, now: number): void {
    const due = ring.cycleStart + ring.offsets[ring.pos];
    ring.timer = setTimeout(() => this.tickRing(ring), Math.max(0, due - now));
  }

  /** Fires every member whose slot has come, then sleeps until the next slot. */
  private tickRing(ring: Ring): void {
    if (this.shutdown.aborted) return;
    const now = this.now();
    const n = ring.members.length;
    let fired = 0;
    while (fired < n && ring.cycleStart + ring.offsets[ring.pos] <= now) {
      this.fire(ring.members[ring.pos]);
      fired++;
      if (++ring.pos === n) {
        ring.pos = 0;
        ring.cycleStart += ring.intervalMs;
      }
    }
    // After a stall longer than the interval, every member ran once: skip the missed slots.
    if (fired === n) alignRing(ring, now, true);
    this.armRing(ring, now);
  }

  private clearTask(st: TargetState): void {
    if (st.task) void st.task.destroy();
    st.task = undefined;
  }

  /** Runs one scheduled probe unless the previous run of the same target is still going. */
  private fire(st: TargetState): void {
    if (this.shutdown.aborted) return;
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
      await this.slots.acquire(this.shutdown);
    } catch {
      return;
    }
    try {
      const { target, module } = st;
      const result = await runProbe({ target, module, shutdown: this.shutdown, logger: this.opts.logger });
      if (result.failure?.reason === 'aborted') return;
      if (this.states.get(target.name) !== st) return; // the target left the config
      if (st.module !== module || st.target !== target) {
        // A reload changed the target or its module while this probe ran: its result describes
        // a config that no longer exists. Counted, never dropped in silence.
        this.opts.metrics.schedulerSkipped.inc();
        this.opts.logger.debug('result discarded: the target or its module changed during the probe', {
          target: target.name,
        });
        return;
      }
      this.opts.store.record(target.name, PROBERS[module.prober].phases, result);
      this.opts.metrics.countProbe(module.name, result.success);
      if (!result.success && result.failure) {
        this.opts.logger.debug('probe failed', {
          target: target.name,
          phase: result.failure.phase,
          reason: result.failure.reason,
          error: result.failure.message,
        });
      }
    } finally {
      this.slots.release();
    }
  }

  /** Runs every target and enabled collector once, now, and waits for all (for --once). */
  async runAllOnce(): Promise<void> {
    for (const st of this.states.values()) {
      if (st.first) clearTimeout(st.first);
      this.fire(st);
    }
    for (const st of this.collectorStates.values()) {
      if (st.timer) clearTimeout(st.timer);
    }
    await Promise.all([...this.inFlight]);
  }

  /** Stops scheduling, aborts probes in flight and waits for them (bounded by their grace). */
  async stop(): Promise<void> {
    for (const r of this.rings) if (r.timer) clearTimeout(r.timer);
    for (const st of this.states.values()) {
      this.clearTask(st);
      if (st.first) clearTimeout(st.first);
    }
    for (const st of this.collectorStates.values()) {
      if (st.timer) clearTimeout(st.timer);
      st.collector.close();
    }
    this.shutdown.abort();
    await Promise.all([...this.inFlight]);
  }
}

/**
 * Points the ring at its first slot at or after `now` (strictly after, when the slots up to now
 * have just run). Slots are aligned to the clock, so a reload keeps every target's slot.
 */
function alignRing(ring: Ring, now: number, strict = false): void {
  // The clock counts whole milliseconds: "after now" is "at or after now + 1".
  const from = strict ? now + 1 : now;
  let best = 0;
  let bestAt = Infinity;
  ring.offsets.forEach((o, k) => {
    const at = nextSlot(from, ring.intervalMs, o);
    if (at < bestAt) {
      bestAt = at;
      best = k;
    }
  });
  ring.pos = best;
  ring.cycleStart = bestAt - ring.offsets[best];
}

/** First time >= now that is congruent to offset modulo interval. */
export function nextSlot(now: number, intervalMs: number, offsetMs: number): number {
  const base = Math.floor(now / intervalMs) * intervalMs + offsetMs;
  return base >= now ? base : base + intervalMs;
}
