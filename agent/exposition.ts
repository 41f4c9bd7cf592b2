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
 */
export interface Rendered {
  buf: Buffer;
  fams: Uint16Array;
  bounds: Uint32Array;
  count: number;
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
  let count = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p === undefined) continue;
    count++;
    all += p;
  }
  const total = Buffer.byteLength(all);
  const ascii = total === all.length;
  let r: Rendered;
  if (into && into !== EMPTY_RENDERED && into.buf.length >= total && into.fams.length >= count) {
    r = into;
  } else {
    // Values change length from run to run (0.0012 vs 0.00123); slack keeps reuse likely.
    const cap = total + (total >> 3) + 16;
    r = {
      buf: Buffer.allocUnsafeSlow(cap),
      fams: new Uint16Array(count + 2),
      bounds: new Uint32Array(count + 3),
      count: 0,
    };
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
  fams: new Uint16Array(0),
  bounds: new Uint32Array(1),
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
 * One reusable buffer for the scrape body. Allocating ~7 MB per scrape at 10,000 targets made
 * V8 start a full collection on nearly every scrape (external memory pressure), which cost more
 * than building the body. A scrape borrows the buffer until its response is compressed or sent;
 * a scrape that overlaps another gets a buffer of its own.
 */
export class ScrapeBuffer {
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
      },
    };
  }
}
