// Runs every target on its interval (or cron schedule), spread evenly across the interval,
// never overlapping itself, under a global concurrency cap. Results go to the store.
// Targets that share an interval form a ring with one timer: the ring keeps no per-target timer,
// so 10,000 targets cost 10,000 small records rather than 10,000 timers re-created every round.
import type { ScheduledTask } from 'node-cron';
import { COLLECTORS, PROBERS } from '../exporters';
import type { Collector, ModuleSpec, ProbeLogger } from '../exporters/types';
import type { CollectorConfig, TargetConfig } from '../config/load';
import { runProbe } from './runner';
import type { ResultStore } from './store';
import type { SelfMetrics } from './self-metrics';
import { stableHash } from './shard';
import { Shutdown } from './shutdown';
import { sameConfig } from '../config/equal';
import type { Slicer } from './slicer';

/** node-cron, loaded with the first scheduled target (most configs have none). */
function cronModule(): typeof import('node-cron').default {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use: start-up cost
  return (require('node-cron') as typeof import('node-cron')).default;
}

/** Waiters a drain may turn away in one go before it lets the event loop run (see Slots.drain). */
const DROP_BATCH = 1024;

interface Waiter {
  settle: (granted: boolean) => void;
  /** Asked when the waiter's turn comes: false turns it away without a slot. */
  wanted?: () => boolean;
  /** Settled already (turned away at shutdown, or moved to the other lane): skipped when its turn comes. */
  done: boolean;
}

/** What a waiter in the extra lane can be moved to the scheduled lane with (Slots.acquire). */
export interface Promotable {
  /** Set by Slots while its waiter waits in the extra lane; undefined otherwise. */
  promote?: () => void;
}

/** One line of waiters, read from a moving head (taking the next is constant time at any backlog). */
class Lane {
  waiters: Waiter[] = [];
  head = 0;

  get empty(): boolean {
    return this.head === this.waiters.length;
  }

  /** Drops the settled front once it is most of the array (amortised constant time). */
  compact(): void {
    if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters = this.waiters.slice(this.head);
      this.head = 0;
    }
  }
}

/** The scheduled lane (probes on their slot or schedule) and the extra lane (first probes). */
export const SCHEDULED = 0;
export const EXTRA = 1;

/**
 * A counting semaphore whose waiters give up when the agent shuts down, or when their turn comes
 * and they are no longer wanted (a probe whose target a reload removed). Two lanes: a free slot
 * goes to the scheduled lane's next waiter first, to the extra lane's (a target's prompt first
 * probe, see FIRST_PROBE_WINDOW_MS) only when none waits there. So a large reload's burst of
 * first probes fills the spare capacity and never delays the probes already on their schedule; a
 * first probe still waiting when its own slot comes is moved to the scheduled lane (promote).
 */
export class Slots {
  private free: number;
  private readonly lanes = [new Lane(), new Lane()];
  private drainLater = false;

  constructor(private limit: number) {
    this.free = limit;
  }

  resize(limit: number): void {
    this.free += limit - this.limit;
    this.limit = limit;
    this.drain();
  }

  /**
   * Resolves true with a slot (give it back with release), false when turned away unwanted.
   * In the EXTRA lane, `handle.promote` moves the waiter to the SCHEDULED lane while it waits.
   */
  acquire(shutdown: Shutdown, wanted?: () => boolean, lane = SCHEDULED, handle?: Promotable): Promise<boolean> {
    if (shutdown.aborted) return Promise.reject(new Error('shutting down'));
    if (this.free > 0 && this.lanes[SCHEDULED].empty && this.lanes[EXTRA].empty) {
      this.free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve, reject) => {
      let w: Waiter = { settle: () => undefined, wanted, done: false };
      const unsubscribe = shutdown.subscribe(() => {
        w.done = true;
        if (handle) handle.promote = undefined;
        reject(new Error('shutting down'));
      });
      const settle = (granted: boolean): void => {
        w.done = true;
        if (handle) handle.promote = undefined;
        unsubscribe();
        resolve(granted);
      };
      w.settle = settle;
      this.lanes[lane].waiters.push(w);
      if (lane === EXTRA && handle) {
        handle.promote = () => {
          handle.promote = undefined;
          if (w.done) return;
          w.done = true;
          w = { settle, wanted, done: false };
          this.lanes[SCHEDULED].waiters.push(w);
          this.drain();
        };
      }
    });
  }

  release(): void {
    this.free++;
    this.drain();
  }

  /** Waiters in line, both lanes (for tests). */
  get waiting(): number {
    let n = 0;
    for (const l of this.lanes) for (let i = l.head; i < l.waiters.length; i++) if (!l.waiters[i].done) n++;
    return n;
  }

  /**
   * Hands free slots to the waiters in order, the scheduled lane first. Waiters no longer wanted
   * are turned away as their turn comes, at most DROP_BATCH per call: after a reload removed
   * thousands of waiting targets, their turning away (each ends a probe's promise chain) is
   * spread over event-loop turns. 1,024 a turn: at 256 the backlog of a 100k-target shrink took
   * 8–12 s to clear, canaries behind it.
   */
  private drain(): void {
    let dropped = 0;
    for (const lane of this.lanes) {
      while (lane.head < lane.waiters.length) {
        const w = lane.waiters[lane.head];
        if (w.done) {
          lane.head++;
          continue;
        }
        if (w.wanted && !w.wanted()) {
          if (dropped === DROP_BATCH) {
            this.drainSoon();
            lane.compact();
            return;
          }
          lane.head++;
          dropped++;
          w.settle(false);
          continue;
        }
        if (this.free <= 0) break;
        lane.head++;
        this.free--;
        w.settle(true);
      }
      lane.compact();
    }
  }

  private drainSoon(): void {
    if (this.drainLater) return;
    this.drainLater = true;
    setImmediate(() => {
      this.drainLater = false;
      this.drain();
    });
  }
}

interface TargetState {
  target: TargetConfig;
  module: ModuleSpec<unknown>;
  task?: ScheduledTask;
  /** A prompt first probe is queued for this target new to the scheduler (see FIRST_PROBE_WINDOW_MS). */
  first: boolean;
  running: boolean;
  /** Left the config; its timers are being cleared (Scheduler.retire). */
  removed: boolean;
  /** While its first probe waits for a slot in the extra lane: moves it to the scheduled lane. */
  promote?: () => void;
}

/**
 * Targets new to the scheduler (all of them at start-up, added ones on reload) get a first probe
 * at once instead of waiting up to an interval for their slot: spread over this window (or the
 * interval, when shorter) so a large config does not start everything in the same millisecond.
 */
export const FIRST_PROBE_WINDOW_MS = 10_000;
/**
 * Ring timers fire on this grid of the clock (ms): a slot runs up to this much late, together
 * with the others of its step. At a thousand probes a second that is several probes per wake-up
 * instead of one, about half the CPU per probe (BENCHMARKS.md, "Probe CPU: FTP and PRELOGIN").
 */
export const COALESCE_MS = 8;

/** No extra first probe when the target's own slot is this close anyway. */
export const FIRST_PROBE_MIN_LEAD_MS = 5_000;

interface RingMember {
  name: string;
  intervalMs: number;
  st: TargetState;
}

/**
 * What a new set of targets changes (Scheduler.plan), applied in one step by Scheduler.commit.
 * Everything that grows with the number of targets is worked out here, in slices; the switch
 * itself only touches what changed.
 */
interface Plan {
  /** Kept targets whose target or module object changes, or whose cron task is re-created. */
  updates: { st: TargetState; target: TargetConfig; module: ModuleSpec<unknown> }[];
  removed: TargetState[];
  /** Targets on a cron schedule. */
  scheduled: TargetState[];
  /** The periodic targets by interval: ring members in the order of their offsets, and where the new ones are. */
  byInterval: Map<number, { members: TargetState[]; offsets: number[]; newcomers: number[] }>;
}

/**
 * The first probes of the targets one reload (or the start) added: one timer walks them in the
 * order of their delays, instead of a timer per target (100,000 timers took 100+ ms to arm).
 */
interface FirstProbes {
  intervalMs: number;
  start: number;
  window: number;
  members: TargetState[];
  offsets: number[];
  /** Positions in members of the newcomers, in firing order. */
  newcomers: number[];
  next: number;
  timer?: NodeJS.Timeout;
}

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
  /** The grid ring timers fire on, ms (COALESCE_MS; 1 fires each slot on its own millisecond). */
  coalesceMs?: number;
}

/**
 * Even spread: targets sharing an interval are ordered by a stable hash of their name and
 * placed at k * interval / n within each interval, so n targets never start together (beyond
 * the few whose slots share one step of the COALESCE_MS grid).
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
    const members = sortByHash(g);
    out.set(interval, { members, offsets: members.map((_, k) => Math.floor((k * interval) / members.length)) });
  }
  return out;
}

/**
 * Items in the order of their hash, equal hashes by name. The hashes (32 bits) and positions
 * (under 2^21) are packed into one number each and sorted as a Float64Array, without a comparator
 * call per pair: a tenth of the time at 100,000 targets.
 */
function sortByHash<T extends { name: string }>(g: readonly { t: T; h: number }[]): T[] {
  if (g.length >= 2 ** 21) {
    return [...g].sort((a, b) => a.h - b.h || (a.t.name < b.t.name ? -1 : 1)).map((x) => x.t);
  }
  const keys = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) keys[i] = g[i].h * 2 ** 21 + i;
  keys.sort();
  const out: T[] = new Array<T>(g.length);
  for (let i = 0; i < keys.length; i++) out[i] = g[keys[i] % 2 ** 21].t;
  // Runs of equal hashes (rare) go by name, as the comparator sort did.
  for (let i = 0; i < keys.length;) {
    let j = i + 1;
    const h = Math.floor(keys[i] / 2 ** 21);
    while (j < keys.length && Math.floor(keys[j] / 2 ** 21) === h) j++;
    if (j - i > 1) {
      const run = out.slice(i, j).sort((a, b) => (a.name < b.name ? -1 : 1));
      for (let k = i; k < j; k++) out[k] = run[k - i];
    }
    i = j;
  }
  return out;
}

export class Scheduler {
  private readonly states = new Map<string, TargetState>();
  private rings: Ring[] = [];
  private firstProbes: FirstProbes[] = [];
  private readonly collectorStates = new Map<string, CollectorState>();
  /** See holdCollectors. */
  private collectorsHeld = false;
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
    const it = this.plan(targets, modules);
    let r = it.next();
    while (!r.done) r = it.next();
    this.commit(r.value, concurrency);
    const retiring = this.retire(r.value.removed);
    while (!retiring.next().done);
  }

  /**
   * apply, with the comparison of old and new targets done in slices between which the event
   * loop runs (probes keep firing on the old schedule meanwhile); the switch to the new schedule
   * is one step at the end. Nothing happens when the scheduler stops meanwhile.
   */
  async applySliced(
    targets: readonly TargetConfig[],
    modules: ReadonlyMap<string, ModuleSpec<unknown>>,
    concurrency: number,
    slicer: Slicer,
  ): Promise<void> {
    const it = this.plan(targets, modules);
    for (let r = it.next(); ; r = it.next()) {
      if (r.done) {
        if (this.shutdown.aborted) return;
        this.commit(r.value, concurrency);
        // Removed targets never fire again from here on; their timers are cleared in slices.
        const retiring = this.retire(r.value.removed);
        while (!retiring.next().done) if (slicer.due()) await slicer.pause();
        return;
      }
      if (slicer.due()) await slicer.pause();
    }
  }

  /** Clears the timers of removed targets and forgets them; yields every thousand. */
  private *retire(removed: readonly TargetState[]): Generator<void, void, void> {
    for (let i = 0; i < removed.length; i++) {
      if ((i & 1023) === 1023) yield;
      const st = removed[i];
      this.clearTask(st);
      st.first = false;
      // A target removed and added back meanwhile has a new state under its name: keep that one.
      if (this.states.get(st.target.name) === st) this.states.delete(st.target.name);
    }
  }

  /**
   * What a new set of targets changes: yields every few hundred targets so a caller may let the
   * event loop run. The one change made here: targets new to the scheduler get their state (no
   * timer, nothing fires them before the switch).
   */
  private *plan(
    targets: readonly TargetConfig[],
    modules: ReadonlyMap<string, ModuleSpec<unknown>>,
  ): Generator<void, Plan, void> {
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
    const updates: Plan['updates'] = [];
    const scheduled: TargetState[] = [];
    const groups = new Map<number, { t: RingMember; h: number }[]>();
    const isFresh = new Set<TargetState>();
    for (let i = 0; i < targets.length; i++) {
      if ((i & 255) === 255) yield;
      const t = targets[i];
      keep.add(t.name);
      const module = modules.get(t.module) as ModuleSpec<unknown>;
      let st = this.states.get(t.name);
      if (st) {
        // A reload builds new objects for everything: keep the old ones when they mean the same,
        // so a probe in flight for an unchanged target and module still delivers its result.
        const target = sameConfig(st.target, t) ? st.target : t;
        const mod = sameModule(st.module, module) ? st.module : module;
        if (target !== st.target || mod !== st.module || st.task) updates.push({ st, target, module: mod });
      } else {
        st = { target: t, module, running: false, first: false, removed: false };
        this.states.set(t.name, st);
        isFresh.add(st);
      }
      if (t.schedule !== undefined) scheduled.push(st);
      else {
        const g = groups.get(t.intervalMs) ?? [];
        if (g.length === 0) groups.set(t.intervalMs, g);
        g.push({ t: { name: t.name, intervalMs: t.intervalMs, st }, h: stableHash(t.name) });
      }
    }
    const removed: TargetState[] = [];
    let i = 0;
    for (const [name, st] of this.states) {
      if ((++i & 1023) === 0) yield;
      if (!keep.has(name)) removed.push(st);
    }
    const byInterval: Plan['byInterval'] = new Map();
    for (const [interval, g] of groups) {
      yield;
      const sorted = sortByHash(g);
      yield;
      const n = sorted.length;
      const members = new Array<TargetState>(n);
      const offsets = new Array<number>(n);
      const newcomers: number[] = [];
      for (let k = 0; k < n; k++) {
        if ((k & 4095) === 4095) yield;
        const st = sorted[k].st;
        members[k] = st;
        offsets[k] = Math.floor((k * interval) / n);
        // Positions in the ring, not indexOf per newcomer: that was quadratic (seconds at 100k targets).
        if (isFresh.has(st)) newcomers.push(k);
      }
      byInterval.set(interval, { members, offsets, newcomers });
    }
    return { updates, removed, scheduled, byInterval };
  }

  /** Switches to a planned set of targets: one step, no comparison left to make. */
  private commit(plan: Plan, concurrency: number): void {
    this.slots.resize(concurrency);
    // Where each interval's ring had got to: slots that came due while the loop was busy (with
    // this reload, say) and have not fired yet still fire, instead of being skipped by the new ring.
    const pending = new Map<number, number>();
    for (const r of this.rings) {
      if (r.timer) clearTimeout(r.timer);
      pending.set(r.intervalMs, r.cycleStart + r.offsets[r.pos]);
    }
    this.rings = [];
    for (const u of plan.updates) {
      this.clearTask(u.st);
      u.st.target = u.target;
      u.st.module = u.module;
    }
    for (const st of plan.removed) st.removed = true;
    for (const st of plan.scheduled) {
      st.task = cronModule().schedule(st.target.schedule as string, () => this.fire(st), {
        name: `target:${st.target.name}`,
      });
    }
    const now = this.now();
    for (const [intervalMs, { members, offsets }] of plan.byInterval) {
      const ring: Ring = { intervalMs, members, offsets, cycleStart: 0, pos: 0 };
      alignRing(ring, Math.min(now, pending.get(intervalMs) ?? now));
      this.rings.push(ring);
      this.armRing(ring, now);
    }
    this.armFirstProbes(plan.byInterval, now);
  }

  /**
   * A prompt first probe for each new target whose own slot is further away than
   * FIRST_PROBE_MIN_LEAD_MS and than its module's timeout (so the two never overlap), spread over
   * FIRST_PROBE_WINDOW_MS (or the interval, when shorter) from now.
   */
  private armFirstProbes(byInterval: Plan['byInterval'], now: number): void {
    for (const [intervalMs, { members, offsets, newcomers }] of byInterval) {
      if (newcomers.length === 0) continue;
      for (const k of newcomers) members[k].first = true;
      const q: FirstProbes = {
        intervalMs,
        start: now,
        window: Math.min(FIRST_PROBE_WINDOW_MS, intervalMs),
        members,
        offsets,
        newcomers,
        next: 0,
      };
      this.firstProbes.push(q);
      this.armFirst(q, now);
    }
  }

  private firstDelay(q: FirstProbes, j: number): number {
    return Math.floor((j * q.window) / q.newcomers.length);
  }

  private armFirst(q: FirstProbes, now: number): void {
    if (q.next >= q.newcomers.length) {
      this.firstProbes = this.firstProbes.filter((x) => x !== q);
      return;
    }
    q.timer = setTimeout(() => this.tickFirst(q), Math.max(0, this.onGrid(q.start + this.firstDelay(q, q.next)) - now));
  }

  /** Fires the queued first probes whose time has come, then sleeps until the next one. */
  private tickFirst(q: FirstProbes): void {
    if (this.shutdown.aborted) return;
    const now = this.now();
    while (q.next < q.newcomers.length) {
      const delay = this.firstDelay(q, q.next);
      if (q.start + delay > now) break;
      const k = q.newcomers[q.next++];
      const st = q.members[k];
      // Removed, already run (--once) or re-queued by a later reload meanwhile: nothing to do here.
      if (!st.first || st.removed) continue;
      st.first = false;
      const slot = nextSlot(q.start, q.intervalMs, q.offsets[k]);
      const lead = Math.max(FIRST_PROBE_MIN_LEAD_MS, st.module.timeoutSeconds * 1000 + 1000);
      if (slot - (q.start + delay) <= lead) continue;
      this.fire(st, EXTRA);
    }
    this.armFirst(q, now);
  }

  /** Starts, restarts or stops local collectors (the sockets prober). */
  /**
   * Collectors applied from now on are set up but make their first scan only at
   * releaseCollectors(). The agent's start holds them until its HTTP server listens: the socket
   * scan's first run starts a worker thread, whose start-up would otherwise compete with the
   * agent's own for the CPU before the first scrape can be answered (and that first answer could
   * not carry the scan's result anyway).
   */
  holdCollectors(): void {
    this.collectorsHeld = true;
  }

  /** Starts the first scan of every collector held since holdCollectors(). */
  releaseCollectors(): void {
    if (!this.collectorsHeld) return;
    this.collectorsHeld = false;
    for (const st of this.collectorStates.values()) if (!st.timer && !st.running) this.runCollector(st);
  }

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
      if (!this.collectorsHeld) this.runCollector(st);
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
    // Woken on a coarse grid: the slots that fall in one step of it run together, so the process
    // wakes once for several probes instead of once each (see COALESCE_MS).
    ring.timer = setTimeout(
      () => this.tickRing(ring),
      Math.max(0, this.onGrid(ring.cycleStart + ring.offsets[ring.pos]) - now),
    );
  }

  /** The first point of the timer grid at or after `t` (see COALESCE_MS). */
  private onGrid(t: number): number {
    const grid = this.opts.coalesceMs ?? COALESCE_MS;
    return Math.ceil(t / grid) * grid;
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
  /**
   * Starts a probe of the target, waiting for a slot in `lane`: EXTRA for a first probe, which
   * takes only capacity the scheduled probes leave (Slots).
   */
  private fire(st: TargetState, lane = SCHEDULED): void {
    if (this.shutdown.aborted || st.removed) return;
    if (st.running && lane === SCHEDULED && st.promote) {
      // Its first probe still waits for spare capacity when its own slot comes: that probe now
      // waits as this slot's, in the scheduled lane. One probe, nothing skipped.
      st.promote();
      return;
    }
    if (st.running) {
      this.opts.metrics.schedulerSkipped.inc();
      this.opts.logger.debug('skipped: previous run still going', { target: st.target.name });
      return;
    }
    st.running = true;
    this.opts.metrics.probesInFlight.inc();
    const p = this.execute(st, lane).finally(() => {
      st.running = false;
      this.opts.metrics.probesInFlight.dec();
      this.inFlight.delete(p);
    });
    this.inFlight.add(p);
  }

  private async execute(st: TargetState, lane: number): Promise<void> {
    // Waited for a slot through a reload that removed the target: turned away, nothing to probe.
    const wanted = (): boolean => !st.removed && this.states.get(st.target.name) === st;
    try {
      if (!(await this.slots.acquire(this.shutdown, wanted, lane, st))) return;
    } catch {
      return;
    }
    try {
      if (!wanted()) return;
      const { target, module } = st;
      const result = await runProbe({ target, module, shutdown: this.shutdown, logger: this.opts.logger });
      if (result.failure?.reason === 'aborted') return;
      if (st.removed || this.states.get(target.name) !== st) return; // the target left the config
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
    for (const q of this.firstProbes) if (q.timer) clearTimeout(q.timer);
    this.firstProbes = [];
    for (const st of this.states.values()) {
      st.first = false;
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
    for (const q of this.firstProbes) if (q.timer) clearTimeout(q.timer);
    this.firstProbes = [];
    for (const st of this.states.values()) this.clearTask(st);
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
  // Offsets ascend: the first slot is the first offset at or past `from`'s phase in its interval
  // (a binary search; the first of equal offsets), else the first offset of the next interval.
  const cycle = Math.floor(from / ring.intervalMs) * ring.intervalMs;
  const phase = from - cycle;
  const offs = ring.offsets;
  let lo = 0;
  let hi = offs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (offs[mid] < phase) lo = mid + 1;
    else hi = mid;
  }
  ring.pos = lo === offs.length ? 0 : lo;
  ring.cycleStart = lo === offs.length ? cycle + ring.intervalMs : cycle;
}

/** First time >= now that is congruent to offset modulo interval. */
export function nextSlot(now: number, intervalMs: number, offsetMs: number): number {
  const base = Math.floor(now / intervalMs) * intervalMs + offsetMs;
  return base >= now ? base : base + intervalMs;
}
