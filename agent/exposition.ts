// Turns probe results into Prometheus text exposition. Each result is rendered once, when it is
// stored, into per-family line chunks; a scrape only concatenates chunks. That keeps /metrics
// cheap at 10,000 targets, where building prom-client metric objects per scrape is not.
import type { CollectorResult, Fact, MetricDef, ProbeResult } from '../exporters/types';

export const COMMON_METRICS: readonly MetricDef[] = [
  {
    name: 'probe_success',
    help: 'Whether the last scheduled probe of the target succeeded (cached result of the schedule).',
    type: 'gauge',
    labelNames: [],
  },
  {
    name: 'probe_duration_seconds',
    help: 'Duration of the last scheduled probe in seconds (cached result of the schedule).',
    type: 'gauge',
    labelNames: [],
  },
  {
    name: 'probe_phase_duration_seconds',
    help: 'Duration of each phase of the last scheduled probe; 0 for phases not reached (cached result of the schedule).',
    type: 'gauge',
    labelNames: ['phase'],
  },
  {
    name: 'probe_failure_info',
    help: 'The rung that failed in the last scheduled probe and why (value 1; absent on success).',
    type: 'gauge',
    labelNames: ['phase', 'reason'],
  },
  {
    name: 'probe_last_run_timestamp_seconds',
    help: 'When the last scheduled probe of the target finished, seconds since the epoch.',
    type: 'gauge',
    labelNames: [],
  },
  {
    name: 'probe_ip_protocol',
    help: 'IP version used by the last scheduled probe (4 or 6; 0 before an address was chosen).',
    type: 'gauge',
    labelNames: [],
  },
];

export function escapeLabelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : v;
}

export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** `a="x",b="y"` from label pairs (no braces). */
export function labelPairs(labels: Readonly<Record<string, string>>): string {
  let out = '';
  for (const [k, v] of Object.entries(labels)) {
    out += `${out === '' ? '' : ','}${k}="${escapeLabelValue(v)}"`;
  }
  return out;
}

function sample(name: string, prefix: string, extra: string, value: number): string {
  const inner = prefix === '' ? extra : extra === '' ? prefix : `${prefix},${extra}`;
  return inner === '' ? `${name} ${formatValue(value)}\n` : `${name}{${inner}} ${formatValue(value)}\n`;
}

/**
 * The set of families the agent can emit, in a fixed order. Families declared at run time
 * (custom SQL query gauges) are appended when first seen.
 */
export class FamilyRegistry {
  private readonly list: MetricDef[] = [];
  private readonly index = new Map<string, number>();

  constructor(defs: Iterable<MetricDef>) {
    for (const d of defs) this.add(d);
  }

  add(def: MetricDef): number {
    const existing = this.index.get(def.name);
    if (existing !== undefined) return existing;
    this.list.push(def);
    this.index.set(def.name, this.list.length - 1);
    return this.list.length - 1;
  }

  indexOf(name: string): number | undefined {
    return this.index.get(name);
  }

  get size(): number {
    return this.list.length;
  }

  def(i: number): MetricDef {
    return this.list[i];
  }

  header(i: number): string {
    const d = this.list[i];
    return `# HELP ${d.name} ${escapeHelp(d.help)}\n# TYPE ${d.name} ${d.type}\n`;
  }
}

/**
 * One rendered result: all its sample lines in one buffer, grouped by family. `fams[k]` is the
 * k-th non-empty family (ascending) and its bytes are `bounds[k]..bounds[k+1]`. `count` entries
 * are in use; the arrays and the buffer may be longer, so a target's next result can be written
 * into the same memory instead of allocating (and later collecting) new objects every interval.
 * The buffer is a slice of a shared slab and the indexes are plain small-integer arrays: at
 * 100,000 targets, an ArrayBuffer of its own per buffer and per index cost about 0.5 kB a target.
 */
export interface Rendered {
  buf: Buffer;
  fams: number[];
  bounds: number[];
  count: number;
}

/** Rendered buffers up to SLICE_MAX bytes are cut from slabs of SLAB_BYTES. */
const SLAB_BYTES = 256 * 1024;
const SLICE_MAX = 16 * 1024;
let slab = Buffer.alloc(0);
let slabUsed = 0;

function slabSlice(size: number): Buffer {
  if (size > SLICE_MAX) return Buffer.allocUnsafeSlow(size);
  if (slabUsed + size > slab.length) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabUsed = 0;
  }
  const b = slab.subarray(slabUsed, slabUsed + size);
  slabUsed += (size + 7) & ~7;
  return b;
}

/** Lines being collected per family index, before packing. */
type Parts = (string | undefined)[];

function append(out: Parts, i: number, line: string): void {
  const cur = out[i];
  out[i] = cur === undefined ? line : cur + line;
}

/** Packs the parts into `into` when they fit, else into new memory with a little slack. */
function pack(parts: Parts, into?: Rendered): Rendered {
  // One string and one write. Offsets are counted in characters, which are bytes when the text
  // is ASCII (label values rarely are not); otherwise each part is measured in bytes.
  let all = '';
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p !== undefined) all += p;
  }
  const total = Buffer.byteLength(all);
  const ascii = total === all.length;
  let r: Rendered;
  if (into === TRANSIENT) {
    r = { buf: Buffer.allocUnsafe(total), fams: [], bounds: [], count: 0 };
  } else if (into && into !== EMPTY_RENDERED && into.buf.length >= total) {
    r = into;
  } else {
    // Values change length from run to run (0.0012 vs 0.00123); slack keeps reuse likely. A
    // result that outgrew its buffer (a failure line appeared, say) gets more, so that a target
    // flapping between two shapes settles in one buffer.
    const cap = total + (into && into !== EMPTY_RENDERED ? total >> 2 : total >> 4) + 16;
    r = { buf: slabSlice(cap), fams: [], bounds: [], count: 0 };
  }
  r.buf.write(all, 0);
  let k = 0;
  let pos = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p === undefined) continue;
    r.fams[k] = i;
    r.bounds[k] = pos;
    pos += ascii ? p.length : Buffer.byteLength(p);
    k++;
  }
  r.bounds[k] = pos;
  r.count = k;
  return r;
}

export const EMPTY_RENDERED: Rendered = {
  buf: Buffer.alloc(0),
  fams: [],
  bounds: [0],
  count: 0,
};

/**
 * Passed as `into`: render into memory of its own, exactly sized and not cut from the slabs, for
 * a rendering that is used once and dropped.
 */
export const TRANSIENT: Rendered = {
  buf: Buffer.alloc(0),
  fams: [],
  bounds: [0],
  count: 0,
};

function renderFacts(out: Parts, families: FamilyRegistry, prefix: string, facts: readonly Fact[]): void {
  for (const f of facts) {
    const i = families.indexOf(f.metric);
    if (i === undefined) continue;
    append(out, i, sample(f.metric, prefix, f.labels ? labelPairs(f.labels) : '', f.value));
  }
}

/** Registers families a result declares at run time (custom query gauges). */
export function registerDynamicFamilies(families: FamilyRegistry, result: ProbeResult): void {
  const custom = result.details?.customMetrics;
  if (!Array.isArray(custom)) return;
  for (const c of custom as Partial<MetricDef>[]) {
    if (typeof c?.name !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(c.name)) continue;
    families.add({
      name: c.name,
      help: typeof c.help === 'string' ? c.help : `Custom query metric ${c.name}.`,
      type: c.type === 'counter' ? 'counter' : 'gauge',
      labelNames: Array.isArray(c.labelNames) ? c.labelNames : [],
    });
  }
}

/**
 * Renders one probe result. `prefix` is the target's label pairs (empty for /probe, where
 * Prometheus adds them). `phases` is the prober's full phase list, so every phase has a series.
 */
export function renderResult(
  families: FamilyRegistry,
  prefix: string,
  phases: readonly string[],
  result: ProbeResult,
  finishedAtMs: number,
  into?: Rendered,
): Rendered {
  registerDynamicFamilies(families, result);
  const out: Parts = [];
  const at = (name: string): number => families.indexOf(name) as number;
  append(out, at('probe_success'), sample('probe_success', prefix, '', result.success ? 1 : 0));
  append(out, at('probe_duration_seconds'), sample('probe_duration_seconds', prefix, '', result.durationSeconds));
  const phaseIdx = at('probe_phase_duration_seconds');
  for (const p of phases) {
    let seconds = 0;
    for (const x of result.phases) {
      if (x.phase === p) {
        seconds = x.seconds;
        break;
      }
    }
    append(out, phaseIdx, sample('probe_phase_duration_seconds', prefix, `phase="${p}"`, seconds));
  }
  for (const t of result.phases) {
    if (!phases.includes(t.phase)) {
      append(
        out,
        phaseIdx,
        sample('probe_phase_duration_seconds', prefix, `phase="${escapeLabelValue(t.phase)}"`, t.seconds),
      );
    }
  }
  if (result.failure) {
    const f = result.failure;
    append(
      out,
      at('probe_failure_info'),
      sample('probe_failure_info', prefix, `phase="${escapeLabelValue(f.phase)}",reason="${f.reason}"`, 1),
    );
  }
  append(
    out,
    at('probe_last_run_timestamp_seconds'),
    sample('probe_last_run_timestamp_seconds', prefix, '', finishedAtMs / 1000),
  );
  append(out, at('probe_ip_protocol'), sample('probe_ip_protocol', prefix, '', result.ipProtocol ?? 0));
  renderFacts(out, families, prefix, result.facts);
  return pack(out, into);
}

/** Renders a collector's scan (no target labels). */
export function renderCollector(families: FamilyRegistry, result: CollectorResult, into?: Rendered): Rendered {
  const out: Parts = [];
  renderFacts(out, families, '', result.facts);
  return pack(out, into);
}

/**
 * Concatenates rendered results family by family, each family once with its HELP and TYPE, and
 * appends `tail` (already a complete exposition, such as the agent's own metrics). One pass sizes
 * the families, a second copies each result's ranges straight to their family's place.
 */
export function joinRendered(
  families: FamilyRegistry,
  chunks: readonly Rendered[],
  tail?: Buffer,
  alloc: (size: number) => Buffer = (size) => Buffer.allocUnsafe(size),
): Buffer {
  const n = families.size;
  const sizes = new Float64Array(n);
  for (const r of chunks) {
    const { fams, bounds } = r;
    for (let k = 0; k < r.count; k++) sizes[fams[k]] += bounds[k + 1] - bounds[k];
  }
  const headers = new Array<Buffer | undefined>(n);
  const at = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (sizes[i] === 0) continue;
    const h = Buffer.from(families.header(i));
    headers[i] = h;
    total += h.length;
    at[i] = total;
    total += sizes[i];
  }
  const size = total + (tail ? tail.length : 0);
  const out = alloc(size).subarray(0, size);
  for (let i = 0; i < n; i++) {
    const h = headers[i];
    if (h) h.copy(out, at[i] - h.length);
  }
  for (const r of chunks) {
    const { buf, fams, bounds } = r;
    for (let k = 0; k < r.count; k++) {
      const f = fams[k];
      at[f] += buf.copy(out, at[f], bounds[k], bounds[k + 1]);
    }
  }
  if (tail) tail.copy(out, total);
  return out;
}

/**
 * The lines of the given results, one fresh buffer per family index (undefined where no result
 * has a line), in the order of `chunks`: what `joinRendered` would put under each family header.
 */
export function splitByFamily(families: FamilyRegistry, chunks: readonly Rendered[]): (Buffer | undefined)[] {
  const n = families.size;
  const sizes = new Float64Array(n);
  for (const r of chunks) {
    const { fams, bounds } = r;
    for (let k = 0; k < r.count; k++) sizes[fams[k]] += bounds[k + 1] - bounds[k];
  }
  let total = 0;
  for (let i = 0; i < n; i++) total += sizes[i];
  const all = Buffer.allocUnsafeSlow(total);
  const out = new Array<Buffer | undefined>(n).fill(undefined);
  const at = new Float64Array(n);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    if (sizes[i] === 0) continue;
    out[i] = all.subarray(pos, pos + sizes[i]);
    at[i] = pos;
    pos += sizes[i];
  }
  for (const r of chunks) {
    const { buf, fams, bounds } = r;
    for (let k = 0; k < r.count; k++) {
      const f = fams[k];
      at[f] += buf.copy(all, at[f], bounds[k], bounds[k + 1]);
    }
  }
  return out;
}

/**
 * One reusable buffer for the scrape body. Allocating ~7 MB per scrape at 10,000 targets made
 * V8 start a full collection on nearly every scrape (external memory pressure), which cost more
 * than building the body. A scrape borrows the buffer until its response is compressed or sent;
 * a scrape that overlaps another gets a buffer of its own.
 */
export class ScrapeBuffer {
  /** Largest buffer kept from one scrape to the next. */
  static readonly KEEP_MAX = 16 * 1024 * 1024;
  private buf = Buffer.alloc(0);
  private lent = false;

  borrow(): { alloc: (size: number) => Buffer; release: () => void } {
    if (this.lent) return { alloc: (size) => Buffer.allocUnsafe(size), release: () => undefined };
    this.lent = true;
    let returned = false;
    return {
      alloc: (size) => {
        // Grow with slack; shrink when the body became much smaller (targets were removed).
        if (this.buf.length < size || this.buf.length > 4 * size + 65536)
          this.buf = Buffer.allocUnsafeSlow(size + (size >> 3));
        return this.buf;
      },
      release: () => {
        if (returned) return;
        returned = true;
        this.lent = false;
        // A body this large (tens of thousands of targets) is rare in plain text, as Prometheus
        // asks for gzip: do not hold its memory between scrapes.
        if (this.buf.length > ScrapeBuffer.KEEP_MAX) this.buf = Buffer.alloc(0);
      },
    };
  }
}
