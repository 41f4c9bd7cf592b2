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
  splitByFamily,
  TRANSIENT,
  type Rendered,
} from './exposition';
import { compact, deflateSegment, joinSegments, type Segment } from './gzip-segments';
import { stableHash } from './shard';
import type { Slicer } from './slicer';

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
  /** The prober's phase list the result was rendered with. */
  phases?: readonly string[];
  /**
   * The result's lines; EMPTY_RENDERED once its block is compressed and nobody reads plain text
   * (see RELEASE_AFTER_PLAIN_MS), rendered again from `result` when needed.
   */
  rendered: Rendered;
  /** stableHash of the name: which block the target's series sit in. */
  hash: number;
  block?: Block;
}

/**
 * The series of a group of targets, compressed once per change. Targets are grouped by the hash
 * the scheduler orders its rings by, so the targets probed in any short stretch of time fall in
 * a few blocks; the others keep their compressed bytes from one scrape to the next.
 */
interface Block {
  members: Set<TargetEntry>;
  /** Bumped by every change to a member's series or to the membership. */
  version: number;
  touchedAtMs: number;
  packed?: PackedBlock;
}

interface PackedBlock {
  version: number;
  /** Compressed lines by family index. */
  segs: (Segment | undefined)[];
}

/** About this many targets per block; a power of two blocks, at most MAX_BLOCK_BITS of them. */
const BLOCK_TARGETS = 256;
const MAX_BLOCK_BITS = 8;
/** A block is compressed ahead of a scrape once its targets have been quiet this long. */
const QUIET_MS = 250;
/** Blocks compressed ahead per turn of the event loop (a few milliseconds each at most). */
const AHEAD_PER_TICK = 4;
/** Without a compressed scrape for this long, blocks are no longer compressed ahead. */
const PACK_AHEAD_FOR_MS = 10 * 60_000;
/**
 * Once a block is compressed, its targets' rendered lines are dropped (about 0.7 kB a target)
 * unless a plain-text exposition was asked for within this time: then they are kept, as before,
 * so that plain scrapes only copy.
 */
const RELEASE_AFTER_PLAIN_MS = 10 * 60_000;
/** Below this many targets the lines are always kept: little memory, and re-rendering a block costs more than copying it. */
const RELEASE_MIN_TARGETS = 16_384;

function blockBits(targets: number): number {
  let bits = 0;
  while (bits < MAX_BLOCK_BITS && targets > BLOCK_TARGETS << bits) bits++;
  return bits;
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
  private bits = 0;
  private blocks: Block[] = [newBlock()];
  /** The collectors' series, as one more block after the targets'. */
  private readonly collectorBlock: Block = newBlock();
  private readonly headers = new Map<number, Segment>();
  private lastGzipAtMs = -Infinity;
  private lastPlainAtMs = -Infinity;
  private aheadTimer?: NodeJS.Timeout;

  constructor(readonly families: FamilyRegistry) {}

  private place(e: TargetEntry): void {
    const b = this.blocks[this.bits === 0 ? 0 : e.hash >>> (32 - this.bits)];
    b.members.add(e);
    e.block = b;
    this.touch(b);
  }

  private unplace(e: TargetEntry): void {
    if (!e.block) return;
    e.block.members.delete(e);
    this.touch(e.block);
    e.block = undefined;
  }

  private touch(b: Block): void {
    b.version++;
    b.touchedAtMs = Date.now();
    if (this.aheadTimer === undefined && Date.now() - this.lastGzipAtMs < PACK_AHEAD_FOR_MS) {
      this.aheadTimer = setTimeout(() => this.packAhead(), QUIET_MS);
      this.aheadTimer.unref();
    }
  }

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
      if (cur) this.unplace(cur);
      const e: TargetEntry = {
        target: t,
        prefix: labelPairs({ target: t.name, module: t.module, ...t.labels }),
        rendered: EMPTY_RENDERED,
        hash: cur ? cur.hash : stableHash(t.name),
      };
      this.targets.set(t.name, e);
      this.place(e);
    }
    for (const [name, e] of this.targets) {
      if (keep.has(name)) continue;
      this.unplace(e);
      this.targets.delete(name);
    }
    const bits = blockBits(this.targets.size);
    if (bits !== this.bits) {
      this.bits = bits;
      this.blocks = Array.from({ length: 2 ** bits }, newBlock);
      for (const e of this.targets.values()) this.place(e);
    }
  }

  /**
   * What sync does, in slices (a reload of 100,000 targets): the new entries are made, added,
   * the removed ones dropped and the blocks regrouped a few thousand at a time, with the event
   * loop free in between. A target added shows no series until its first result, so a scrape
   * in the middle sees the old targets' series and nothing half-made; the regrouped blocks are
   * swapped in at once.
   */
  async syncSliced(targets: readonly TargetIdentity[], slicer: Slicer): Promise<void> {
    const keep = new Set<string>();
    const fresh: TargetEntry[] = [];
    for (let i = 0; i < targets.length; i++) {
      if ((i & 255) === 255 && slicer.due()) await slicer.pause();
      const t = targets[i];
      keep.add(t.name);
      const cur = this.targets.get(t.name);
      if (cur && sameIdentity(cur.target, t)) continue;
      fresh.push({
        target: t,
        prefix: labelPairs({ target: t.name, module: t.module, ...t.labels }),
        rendered: EMPTY_RENDERED,
        hash: cur ? cur.hash : stableHash(t.name),
      });
    }
    for (let i = 0; i < fresh.length; i++) {
      if ((i & 1023) === 1023 && slicer.due()) await slicer.pause();
      const e = fresh[i];
      const cur = this.targets.get(e.target.name);
      if (cur) this.unplace(cur);
      this.targets.set(e.target.name, e);
      this.place(e);
    }
    const gone: TargetEntry[] = [];
    let n = 0;
    for (const e of this.targets.values()) {
      if ((++n & 4095) === 0 && slicer.due()) await slicer.pause();
      if (!keep.has(e.target.name)) gone.push(e);
    }
    for (let i = 0; i < gone.length; i++) {
      if ((i & 1023) === 1023 && slicer.due()) await slicer.pause();
      this.unplace(gone[i]);
      this.targets.delete(gone[i].target.name);
    }
    const bits = blockBits(this.targets.size);
    if (bits === this.bits) return;
    // Regrouped into new blocks while the old ones keep serving; membership changes only here.
    const blocks = Array.from({ length: 2 ** bits }, newBlock);
    n = 0;
    for (const e of this.targets.values()) {
      if ((++n & 4095) === 0 && slicer.due()) await slicer.pause();
      blocks[bits === 0 ? 0 : e.hash >>> (32 - bits)].members.add(e);
    }
    this.bits = bits;
    this.blocks = blocks;
    for (const b of blocks) {
      for (const e of b.members) e.block = b;
      this.touch(b);
    }
  }

  /** Records a scheduled result. Ignored when the target left the config meanwhile. */
  record(name: string, phases: readonly string[], result: ProbeResult, finishedAtMs = Date.now()): void {
    const entry = this.targets.get(name);
    if (!entry) return;
    // Without the probe's log (cleared in the copy: `delete` would turn the object into a slower,
    // larger dictionary, kept for every target).
    const stored: ProbeResult = result.log === undefined ? { ...result } : { ...result, log: undefined };
    entry.result = stored;
    entry.finishedAtMs = finishedAtMs;
    entry.phases = phases;
    entry.rendered = renderResult(this.families, entry.prefix, phases, stored, finishedAtMs, entry.rendered);
    if (entry.block) this.touch(entry.block);
  }

  recordCollector(name: string, result: CollectorResult, finishedAtMs = Date.now()): void {
    const prev = this.collectors.get(name)?.rendered;
    this.collectors.set(name, { name, result, finishedAtMs, rendered: renderCollector(this.families, result, prev) });
    this.touch(this.collectorBlock);
  }

  dropCollector(name: string): void {
    if (this.collectors.delete(name)) this.touch(this.collectorBlock);
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
    this.lastPlainAtMs = Date.now();
    const chunks: Rendered[] = [];
    for (const b of this.blocks) for (const e of b.members) if (e.result) chunks.push(this.linesOf(e));
    for (const c of this.collectors.values()) chunks.push(c.rendered);
    return joinRendered(this.families, chunks, tail, alloc);
  }

  /** A target's lines: kept, or rendered again (for this use only) when they were dropped. */
  private linesOf(e: TargetEntry): Rendered {
    if (e.rendered !== EMPTY_RENDERED || !e.result) return e.rendered;
    return renderResult(this.families, e.prefix, e.phases ?? [], e.result, e.finishedAtMs ?? 0, TRANSIENT);
  }

  /**
   * The same text as `exposition(tail)`, gzip-compressed. Only the blocks whose series changed
   * since they were last compressed are compressed again; the rest is copied. After the first
   * call, blocks are also compressed ahead, once their targets have been quiet for QUIET_MS, so
   * that a scrape finds little left to do.
   *
   * Compression runs on the event loop, a block at a time (a few milliseconds each). On the
   * thread pool, each piece cost a round trip through the event loop; at 100,000 targets, with
   * the loop saturated by probes, a scrape waiting on hundreds of them took minutes.
   */
  gzipExposition(tail: Buffer): Promise<Buffer> {
    this.lastGzipAtMs = Date.now();
    const packs = [...this.blocks, this.collectorBlock].map((b) => this.pack(b));
    const segs: Segment[] = [];
    const n = this.families.size;
    for (let i = 0; i < n; i++) {
      let first = true;
      for (const p of packs) {
        const s = p.segs[i];
        if (!s) continue;
        if (first) {
          segs.push(this.header(i));
          first = false;
        }
        segs.push(s);
      }
    }
    segs.push(deflateSegment(tail));
    return Promise.resolve(joinSegments(segs));
  }

  private header(i: number): Segment {
    let h = this.headers.get(i);
    if (!h) this.headers.set(i, (h = deflateSegment(Buffer.from(this.families.header(i)))));
    return h;
  }

  /** Blocks (the collectors' one included) whose compressed copy is older than their series. */
  get staleBlocks(): number {
    return [...this.blocks, this.collectorBlock].filter((b) => (b.packed?.version ?? 0) !== b.version).length;
  }

  /** The block compressed as it is now. */
  private pack(b: Block): PackedBlock {
    if (b.packed && b.packed.version === b.version) return b.packed;
    const chunks: Rendered[] = [];
    if (b === this.collectorBlock) for (const c of this.collectors.values()) chunks.push(c.rendered);
    else for (const e of b.members) if (e.result) chunks.push(this.linesOf(e));
    const texts = splitByFamily(this.families, chunks);
    if (
      b !== this.collectorBlock &&
      this.targets.size >= RELEASE_MIN_TARGETS &&
      Date.now() - this.lastPlainAtMs >= RELEASE_AFTER_PLAIN_MS
    ) {
      // Compressed, the lines are kept once; a later result renders afresh.
      for (const e of b.members) e.rendered = EMPTY_RENDERED;
    }
    b.packed = { version: b.version, segs: compact(texts.map((t) => t && deflateSegment(t))) };
    return b.packed;
  }

  /**
   * Compresses the blocks whose targets have been quiet for QUIET_MS, at most AHEAD_PER_TICK
   * of them per turn so the event loop is never held for long.
   */
  private packAhead(): void {
    this.aheadTimer = undefined;
    const now = Date.now();
    let stale = false;
    let done = 0;
    for (const b of [...this.blocks, this.collectorBlock]) {
      if ((b.packed?.version ?? 0) === b.version) continue;
      if (done < AHEAD_PER_TICK && now - b.touchedAtMs >= QUIET_MS) {
        this.pack(b);
        done++;
      } else stale = true;
    }
    if (stale && Date.now() - this.lastGzipAtMs < PACK_AHEAD_FOR_MS) {
      this.aheadTimer = setTimeout(() => this.packAhead(), done === AHEAD_PER_TICK ? 0 : QUIET_MS);
      this.aheadTimer.unref();
    }
  }
}

function newBlock(): Block {
  return { members: new Set(), version: 1, touchedAtMs: 0 };
}

function sameIdentity(a: TargetIdentity, b: TargetIdentity): boolean {
  if (a.module !== b.module || a.prober !== b.prober || a.address !== b.address) return false;
  const ka = Object.keys(a.labels);
  const kb = Object.keys(b.labels);
  return ka.length === kb.length && ka.every((k) => a.labels[k] === b.labels[k]);
}
