// A strict checker for the Prometheus text format (0.0.4), stricter than `promtool check metrics`
// where it matters to us: a series that appears twice (Prometheus silently keeps one of the two
// samples), a family split in two, HELP/TYPE after a family's samples or repeated, a counter
// without _total, a label given twice or badly escaped. Tests run it on every exposition they
// receive over HTTP (see installExpositionTap) and on every buffer they render.
import http from 'node:http';
import zlib from 'node:zlib';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<string, string[]> = {
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['_sum', '_count'],
};

interface Family {
  type?: string;
  help: boolean;
  samplesSeen: boolean;
  closed: boolean;
}

/** Parses `{a="x",b="y"}` starting at `i` (at the `{`); returns the labels and the index after `}`. */
function parseLabels(line: string, i: number): { labels: [string, string][]; end: number } | string {
  const labels: [string, string][] = [];
  i++; // {
  for (;;) {
    if (line[i] === '}') return { labels, end: i + 1 };
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
    if (!m) return `bad label name at column ${i + 1}`;
    const name = m[0];
    i += name.length;
    if (line[i] !== '=' || line[i + 1] !== '"') return `label ${name}: expected ="`;
    i += 2;
    let value = '';
    for (;;) {
      const c = line[i];
      if (c === undefined) return `label ${name}: unterminated value`;
      if (c === '"') break;
      if (c === '\\') {
        const n = line[i + 1];
        if (n === '\\') value += '\\';
        else if (n === '"') value += '"';
        else if (n === 'n') value += '\n';
        else return `label ${name}: bad escape \\${n ?? ''}`;
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    i++; // closing quote
    labels.push([name, value]);
    if (line[i] === ',') {
      i++;
      continue;
    }
    if (line[i] === '}') return { labels, end: i + 1 };
    return `label ${name}: expected , or } after the value`;
  }
}

function familyOf(sample: string, families: Map<string, Family>): string {
  if (families.has(sample)) return sample;
  for (const [base, f] of families) {
    for (const s of SUFFIXES[f.type ?? ''] ?? []) if (sample === base + s) return base;
  }
  return sample;
}

/** Every problem of an exposition text, as "line N: what" strings; empty when it is clean. */
export function expositionProblems(text: string): string[] {
  const problems: string[] = [];
  if (text.length > 0 && !text.endsWith('\n')) problems.push('the exposition does not end with a newline');
  const families = new Map<string, Family>();
  const series = new Map<string, number>();
  let current: string | undefined;
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const enter = (name: string, n: number): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { help: false, samplesSeen: false, closed: false }));
    if (current !== name) {
      if (current !== undefined) {
        const prev = families.get(current);
        if (prev) prev.closed = true;
      }
      if (f.closed) problems.push(`line ${n}: family ${name} appears again after another family (split family)`);
      current = name;
    }
    return f;
  };
  lines.forEach((line, idx) => {
    const n = idx + 1;
    if (line === '') return; // the format allows blank lines (prom-client puts one between families)
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m;
      if (!METRIC_NAME.test(name)) problems.push(`line ${n}: bad metric name ${name}`);
      const f = enter(name, n);
      if (f.samplesSeen) problems.push(`line ${n}: # ${kind} ${name} after its samples`);
      if (kind === 'HELP') {
        if (f.help) problems.push(`line ${n}: second # HELP for ${name}`);
        f.help = true;
        if (/\\(?![\\n])/.test(rest ?? '')) problems.push(`line ${n}: bad escape in HELP of ${name}`);
      } else {
        if (f.type !== undefined) problems.push(`line ${n}: second # TYPE for ${name}`);
        if (!TYPES.has(rest ?? '')) problems.push(`line ${n}: unknown type ${rest ?? ''} for ${name}`);
        f.type = rest;
        if (rest === 'counter' && !name.endsWith('_total'))
          problems.push(`line ${n}: counter ${name} does not end in _total`);
      }
      return;
    }
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nm) {
      problems.push(`line ${n}: not a sample: ${line.slice(0, 80)}`);
      return;
    }
    const name = nm[0];
    let i = name.length;
    let labels: [string, string][] = [];
    if (line[i] === '{') {
      const parsed = parseLabels(line, i);
      if (typeof parsed === 'string') {
        problems.push(`line ${n}: ${name}: ${parsed}`);
        return;
      }
      labels = parsed.labels;
      i = parsed.end;
    }
    const rest = line.slice(i);
    const vm = /^ (\S+)(?: (-?\d+))?$/.exec(rest);
    if (!vm) {
      problems.push(`line ${n}: ${name}: expected " value [timestamp]", got "${rest.slice(0, 40)}"`);
      return;
    }
    const v = vm[1];
    if (!/^([+-]?(NaN|Inf)|[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$/i.test(v))
      problems.push(`line ${n}: ${name}: bad value ${v}`);
    const seen = new Set<string>();
    for (const [ln] of labels) {
      if (!LABEL_NAME.test(ln) || ln.startsWith('__')) problems.push(`line ${n}: ${name}: bad label name ${ln}`);
      if (seen.has(ln)) problems.push(`line ${n}: ${name}: label ${ln} given twice`);
      seen.add(ln);
    }
    const fam = familyOf(name, families);
    const f = enter(fam, n);
    f.samplesSeen = true;
    const key = `${name}{${labels
      .map(([a, b]) => `${a}=${JSON.stringify(b)}`)
      .sort()
      .join(',')}}`;
    const first = series.get(key);
    if (first !== undefined) problems.push(`line ${n}: duplicate series ${key} (first on line ${first})`);
    else series.set(key, n);
  });
  for (const [name, f] of families) {
    if (f.type === undefined && f.samplesSeen) problems.push(`family ${name} has samples but no # TYPE`);
  }
  return problems;
}

/** Throws with every problem listed when the exposition is not clean. */
export function assertExposition(text: string, where = 'exposition'): void {
  const problems = expositionProblems(text);
  if (problems.length > 0) {
    throw new Error(`${where} is not a clean Prometheus exposition:\n${problems.slice(0, 20).join('\n')}`);
  }
}

const EXPOSITION_TYPE = /^text\/plain;\s*version=0\.0\.4/;
const TAPPED = Symbol.for('portprobe.expositionTap');
const BODY = Symbol('exposition body');

/**
 * Checks every exposition any test receives over HTTP (node's http/https clients and fetch):
 * each response whose content type is the text format is decoded and checked when it ends. The
 * tap only watches: it adds no listener and changes no flow, so the tests read as before. Problems
 * are collected; the setup file fails the test file that received them.
 */
export function installExpositionTap(report: (problem: string) => void): void {
  const proto = http.IncomingMessage.prototype as unknown as Record<symbol | string, unknown> & {
    push(chunk: unknown, encoding?: BufferEncoding): boolean;
  };
  if (proto[TAPPED]) {
    (proto[TAPPED] as { report: (p: string) => void }).report = report;
  } else {
    const state = { report };
    proto[TAPPED] = state;
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called below on the stream it is installed on
    const push = proto.push;
    proto.push = function (
      this: http.IncomingMessage & { [BODY]?: Buffer[] },
      chunk: unknown,
      encoding?: BufferEncoding,
    ): boolean {
      // Only client-side responses carry a statusCode; server-side requests do not.
      if (this.statusCode !== undefined && EXPOSITION_TYPE.test(String(this.headers?.['content-type'] ?? ''))) {
        const parts = (this[BODY] ??= []);
        if (chunk === null) checkBody(Buffer.concat(parts), this, state.report);
        else if (Buffer.isBuffer(chunk)) parts.push(chunk);
        else if (typeof chunk === 'string') parts.push(Buffer.from(chunk, encoding));
      }
      return push.call(this, chunk, encoding);
    };
  }
  const g = globalThis as unknown as Record<symbol, unknown> & { fetch: typeof fetch };
  if (!g[TAPPED]) {
    const original = g.fetch;
    const state = { report };
    g[TAPPED] = state;
    g.fetch = async (...args: Parameters<typeof fetch>): Promise<Response> => {
      const res = await original(...args);
      if (EXPOSITION_TYPE.test(res.headers.get('content-type') ?? '')) {
        res
          .clone()
          .text()
          .then(
            (t) => check(t, `exposition from ${res.url}`, state.report),
            () => undefined,
          );
      }
      return res;
    };
  } else {
    (g[TAPPED] as { report: (p: string) => void }).report = report;
  }
}

function checkBody(body: Buffer, res: http.IncomingMessage, report: (p: string) => void): void {
  let text: string;
  try {
    text = res.headers['content-encoding'] === 'gzip' ? zlib.gunzipSync(body).toString('utf8') : body.toString('utf8');
  } catch {
    return; // a truncated body (a test that cuts the connection): nothing to judge
  }
  if (!res.complete) return;
  check(text, `exposition (HTTP ${res.statusCode})`, report);
}

function check(text: string, where: string, report: (p: string) => void): void {
  const problems = expositionProblems(text);
  if (problems.length > 0) report(`${where}:\n${problems.slice(0, 10).join('\n')}`);
}
