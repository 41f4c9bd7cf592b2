// Results of queries with `min_interval`, kept between probes so that a probe within the interval
// exports them again instead of running the query. Keyed by target, module, query and its SQL
// text (a changed query never reuses an old result). Only successes are kept: a failed query is
// tried again at the next probe.
import type { Fact } from '../types';

export interface CachedResult {
  /** Clock reading (ms) when the result was read from the server. */
  at: number;
  facts: Fact[];
  skipped: number;
}

/** More entries than any sane config has; past it the oldest entry goes (targets that left). */
const MAX_ENTRIES = 10_000;

export class QueryResultCache {
  private readonly entries = new Map<string, CachedResult>();

  /** Milliseconds; replaceable so tests move time instead of sleeping. */
  constructor(public clock: () => number = Date.now) {}

  static key(target: string, module: string, query: string, sql: string): string {
    return JSON.stringify([target, module, query, sql]);
  }

  /** The result when it is younger than `minIntervalMs`. */
  fresh(key: string, minIntervalMs: number): CachedResult | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    const age = this.clock() - e.at;
    return age >= 0 && age < minIntervalMs ? e : undefined;
  }

  store(key: string, facts: Fact[], skipped: number): void {
    this.entries.delete(key);
    this.entries.set(key, { at: this.clock(), facts, skipped });
    if (this.entries.size > MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}

/** The agent's one cache (probers are stateless functions; this is their only memory). */
export const queryResults = new QueryResultCache();
