// The last result of every target and collector, with its rendered series. The store knows no
// protocol: the prober's phase list comes from whoever records a result.
import type { CollectorResult, ProbeResult } from '../exporters/types';
import {
  EMPTY_RENDERED,
  FamilyRegistry,
  joinRendered,
  labelPairs,
  renderCollector,
  renderResult,
  type Rendered,
} from './exposition';

export interface TargetIdentity {
  name: string;
  module: string;
  prober: string;
  address: string;
  labels: Readonly<Record<string, string>>;
}

export interface TargetEntry {
  target: TargetIdentity;
  /** Label pairs common to every series of this target. */
  prefix: string;
  result?: ProbeResult;
  finishedAtMs?: number;
  rendered: Rendered;
}

export interface CollectorEntry {
  name: string;
  result: CollectorResult;
  finishedAtMs: number;
  rendered: Rendered;
}

export class ResultStore {
  private readonly targets = new Map<string, TargetEntry>();
  private readonly collectors = new Map<string, CollectorEntry>();

  constructor(readonly families: FamilyRegistry) {}

  /**
   * Makes the store hold exactly these targets: new ones are added without a result, removed ones
   * lose their series, and a target whose identity changed starts over.
   */
  sync(targets: readonly TargetIdentity[]): void {
    const keep = new Set<string>();
    for (const t of targets) {
      keep.add(t.name);
      const cur = this.targets.get(t.name);
      if (cur && sameIdentity(cur.target, t)) continue;
      this.targets.set(t.name, {
        target: t,
        prefix: labelPairs({ target: t.name, module: t.module, ...t.labels }),
        rendered: EMPTY_RENDERED,
      });
    }
    for (const name of [...this.targets.keys()]) if (!keep.has(name)) this.targets.delete(name);
  }

  /** Records a scheduled result. Ignored when the target left the config meanwhile. */
  record(name: string, phases: readonly string[], result: ProbeResult, finishedAtMs = Date.now()): void {
    const entry = this.targets.get(name);
    if (!entry) return;
    const stored: ProbeResult = { ...result };
    delete stored.log;
    entry.result = stored;
    entry.finishedAtMs = finishedAtMs;
    entry.rendered = renderResult(this.families, entry.prefix, phases, stored, finishedAtMs, entry.rendered);
  }

  recordCollector(name: string, result: CollectorResult, finishedAtMs = Date.now()): void {
    const prev = this.collectors.get(name)?.rendered;
    this.collectors.set(name, { name, result, finishedAtMs, rendered: renderCollector(this.families, result, prev) });
  }

  dropCollector(name: string): void {
    this.collectors.delete(name);
  }

  get(name: string): TargetEntry | undefined {
    return this.targets.get(name);
  }

  entries(): IterableIterator<TargetEntry> {
    return this.targets.values();
  }

  collectorEntries(): IterableIterator<CollectorEntry> {
    return this.collectors.values();
  }

  get size(): number {
    return this.targets.size;
  }

  /**
   * Every target's and collector's series as exposition bytes, followed by `tail`. Built per
   * call: at thousands of targets some result changed since the last scrape anyway, and not
   * keeping a copy saves its memory. `alloc` supplies the memory (see ScrapeBuffer).
   */
  exposition(tail?: Buffer, alloc?: (size: number) => Buffer): Buffer {
    const chunks: Rendered[] = [];
    for (const e of this.targets.values()) if (e.result) chunks.push(e.rendered);
    for (const c of this.collectors.values()) chunks.push(c.rendered);
    return joinRendered(this.families, chunks, tail, alloc);
  }
}

function sameIdentity(a: TargetIdentity, b: TargetIdentity): boolean {
  if (a.module !== b.module || a.prober !== b.prober || a.address !== b.address) return false;
  const ka = Object.keys(a.labels);
  const kb = Object.keys(b.labels);
  return ka.length === kb.length && ka.every((k) => a.labels[k] === b.labels[k]);
}
