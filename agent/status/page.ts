// GET /: a small server-rendered page for people. Every value that came from a peer (banners,
// error messages) or from config is escaped; nothing on the page runs script.
import { PING_PHASE, PROBERS, pingFacts, pingText, unansweredPing } from '../../exporters';
import { adviceFor } from '../../exporters/advice';
import { portClass } from '../../exporters/sockets';
import type { Agent } from '../agent';
import { escapeHtml as h } from '../html';
import type { TargetEntry } from '../store';
import type { ProbeResult } from '../../exporters/types';
import { findingsHtml } from './findings';

interface ListenerRow {
  protocol: string;
  address: string;
  port: number;
  owner?: { name?: string; pid?: number } | null;
}
interface UnexpectedRow {
  protocol: string;
  address: string;
  port: number;
}
interface ExpectationRow {
  protocol: string;
  port: number;
  address: string;
  up: boolean;
  note?: string;
}

/** Width of every timing bar: all bars share it and one time scale, so they compare. */
const BAR_PX = 240;

function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .2em} h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;width:100%} th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4} .up{color:#17702a;font-weight:600} .down{color:#b3261e;font-weight:600} .pending{color:#777}
.bars{display:flex;width:${BAR_PX}px;height:14px;background:#f0f0f0;margin:.2em 0} .bars span{display:block;height:14px;min-width:1px}
.bars span.failed,.swatch.failed{background-image:repeating-linear-gradient(135deg,transparent 0 3px,#b3261e 3px 6px)}
.legend{display:flex;flex-wrap:wrap;gap:.3em 1em;margin:.4em 0;font-size:.92em} .legend span{white-space:nowrap}
.swatch{display:inline-block;width:14px;height:14px;vertical-align:-2px;margin-right:.3em;border:1px solid #0003}
.phases{font-size:.85em}
.reason{font-family:monospace} .advice{color:#555;font-size:.92em} .banner{font-family:monospace;white-space:pre-wrap;color:#333}
ul.findings{list-style:none;margin:0;padding:0} ul.findings li{margin:0 0 .2em}
.sev{display:inline-block;min-width:4.5em;font-size:.8em;font-weight:600;text-transform:uppercase}
.finding.critical .sev{color:#b3261e} .finding.warning .sev{color:#8a5a00} .finding.info .sev{color:#1f5f99}
tr.unexpected{background:#fff2f0} tr.unexpected.dynamic{background:#ffd9d4} .muted{color:#777}
.reload-ok{color:#17702a} .reload-bad{color:#b3261e} code{background:#f4f4f4;padding:0 .2em}
`;

/**
 * One fixed colour per phase name, the same in every row and in the legend. Phases of different
 * probers that can sit side by side on the page get colours far apart; a phase not listed here
 * (a new prober's) takes the next free colour of the fallback palette, by ladder order.
 */
const PHASE_COLOURS: Readonly<Record<string, string>> = {
  icmp: '#4e79a7',
  resolve: '#a0cbe8',
  browser: '#8cd17d',
  connect: '#59a14f',
  tls: '#edc948',
  banner: '#b07aa1',
  prelogin: '#2f4b7c',
  login: '#f28e2b',
  data_epsv: '#76b7b2',
  data_pasv: '#9c755f',
  data_active: '#ff9da7',
  query: '#6b4c9a',
  quit: '#bab0ac',
};
const FALLBACK = ['#499894', '#d37295', '#86bcb6', '#f1ce63', '#79706e', '#d4a6c8', '#b6992d', '#e49444'];
const OTHER_PHASE = '#cccccc';

let order: string[] | undefined;
/** Every phase name in a fixed order: the ping rung first, then each prober's ladder (built once). */
function phaseOrder(): string[] {
  if (!order) {
    order = [PING_PHASE];
    for (const def of Object.values(PROBERS)) for (const p of def.phases) if (!order.includes(p)) order.push(p);
  }
  return order;
}

export function phaseColour(phase: string): string {
  const fixed = PHASE_COLOURS[phase];
  if (fixed) return fixed;
  const unlisted = phaseOrder().filter((p) => PHASE_COLOURS[p] === undefined);
  const i = unlisted.indexOf(phase);
  return i < 0 ? OTHER_PHASE : FALLBACK[i % FALLBACK.length];
}

interface Segment {
  phase: string;
  /** What the bar shows: the phase's time, or for the ping rung the mean round trip. */
  seconds: number;
  label: string;
  failed: boolean;
}

/** The bar of one result: one segment per phase that ran. Pure. */
export function segments(r: ProbeResult): Segment[] {
  const pingFailed = unansweredPing(r) !== undefined;
  return r.phases.map((p) => {
    const failed = r.failure?.phase === p.phase || (p.phase === PING_PHASE && pingFailed);
    if (p.phase === PING_PHASE) {
      const ping = pingFacts(r.facts);
      if (ping.rttAvgSeconds !== undefined) {
        return {
          phase: p.phase,
          seconds: ping.rttAvgSeconds,
          label: `${PING_PHASE}: ${pingText(r.facts) ?? ''}`,
          failed,
        };
      }
      return { phase: p.phase, seconds: p.seconds, label: `${PING_PHASE}: no reply (waited ${ms(p.seconds)})`, failed };
    }
    return {
      phase: p.phase,
      seconds: p.seconds,
      label: `${p.phase}: ${ms(p.seconds)}${failed ? ' (failed)' : ''}`,
      failed,
    };
  });
}

function ms(seconds: number): string {
  const v = seconds * 1000;
  return `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ms`;
}

/** The smallest 1, 2 or 5 × 10^k ms at least `seconds`: the full width of every bar. Pure. */
export function niceScale(seconds: number): number {
  const msv = Math.max(seconds * 1000, 0.01);
  const pow = 10 ** Math.floor(Math.log10(msv));
  const step = [1, 2, 5, 10].find((m) => m * pow >= msv - 1e-9) ?? 10;
  return (step * pow) / 1000;
}

function scaleText(seconds: number): string {
  return seconds >= 1 ? `${+seconds.toFixed(3)} s` : `${+(seconds * 1000).toFixed(3)} ms`;
}

function phaseBars(e: TargetEntry, scale: number): string {
  const r = e.result;
  if (!r) return '';
  const segs = segments(r);
  const spans = segs
    .map((s) => {
      const width = Math.min(100, (s.seconds / scale) * 100);
      return (
        `<span class="${s.failed ? 'failed' : ''}" data-phase="${h(s.phase)}" data-seconds="${s.seconds}" ` +
        `style="width:${width.toFixed(3)}%;background-color:${phaseColour(s.phase)}" title="${h(s.label)}"></span>`
      );
    })
    .join('');
  const words = segs.map((s) => h(s.label)).join(' · ');
  return `<div class="bars">${spans}</div><div class="muted phases">${words}</div>`;
}

function legend(entries: readonly TargetEntry[]): string {
  const shown = new Set(entries.flatMap((e) => e.result?.phases.map((p) => p.phase) ?? []));
  const phases = [...phaseOrder().filter((p) => shown.has(p)), ...[...shown].filter((p) => !phaseOrder().includes(p))];
  if (phases.length === 0) return '';
  const items = phases.map(
    (p) =>
      `<span data-phase="${h(p)}"><i class="swatch" style="background-color:${phaseColour(p)}"></i>${h(p)}${p === PING_PHASE ? ' (round trip)' : ''}</span>`,
  );
  items.push('<span data-phase="failed"><i class="swatch failed"></i>the rung that failed</span>');
  return `<div class="legend" aria-label="phase colours">${items.join('')}</div>`;
}

/** Failing targets first, then those not yet probed, then the healthy; by name within each. */
function byUrgency(a: TargetEntry, b: TargetEntry): number {
  const rank = (e: TargetEntry): number => (!e.result ? 1 : e.result.success ? 2 : 0);
  return rank(a) - rank(b) || a.target.name.localeCompare(b.target.name);
}

function targetRow(e: TargetEntry, now: number, scale: number): string {
  const r = e.result;
  const status = !r
    ? '<span class="pending">pending</span>'
    : r.success
      ? '<span class="up">up</span>'
      : '<span class="down">down</span>';
  const probeLink = `/probe?target=${encodeURIComponent(e.target.name)}&amp;debug=true`;
  let failure = '';
  if (r?.failure) {
    const advice = adviceFor(e.target.prober, r.failure);
    failure =
      `<div class="reason">${h(r.failure.phase)}: ${h(r.failure.reason)}</div><div>${h(r.failure.message)}</div>` +
      (advice ? `<div class="advice">What to check: ${h(advice)}</div>` : '');
  }
  const banner = typeof r?.details?.banner === 'string' ? `<div class="banner">${h(r.details.banner)}</div>` : '';
  return (
    `<tr data-target="${h(e.target.name)}"><td><a href="${probeLink}">${h(e.target.name)}</a></td>` +
    `<td>${h(e.target.module)} <span class="muted">(${h(e.target.prober)})</span></td><td>${h(e.target.address)}</td>` +
    `<td>${status}</td><td>${e.finishedAtMs ? ago(e.finishedAtMs, now) : ''}</td>` +
    `<td>${r ? ms(r.durationSeconds) : ''}</td>` +
    `<td>${phaseBars(e, scale)}</td>` +
    `<td>${failure}${banner}</td><td>${findingsHtml(r)}</td></tr>`
  );
}

function listenersSection(agent: Agent): string {
  const sockets = [...agent.store.collectorEntries()].find((c) => c.name === 'sockets');
  if (!sockets) return '<h2>Listening sockets</h2><p class="muted">The sockets prober is off.</p>';
  if (!sockets.result.success) {
    return `<h2>Listening sockets</h2><p class="down">Scan failed: ${h(sockets.result.error ?? 'unknown error')}</p>`;
  }
  const d = sockets.result.details ?? {};
  const listeners = (Array.isArray(d.listeners) ? d.listeners : []) as ListenerRow[];
  const unexpected = new Set(
    ((Array.isArray(d.unexpected) ? d.unexpected : []) as UnexpectedRow[]).map(
      (u) => `${u.protocol} ${u.address} ${u.port}`,
    ),
  );
  const expectations = (Array.isArray(d.expectations) ? d.expectations : []) as ExpectationRow[];
  const rows = listeners
    .slice()
    .sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol))
    .slice(0, 2000)
    .map((l) => {
      const cls = portClass(l.port);
      const odd = unexpected.has(`${l.protocol} ${l.address} ${l.port}`);
      const rowClass = odd ? `unexpected${cls === 'dynamic' ? ' dynamic' : ''}` : '';
      const owner = l.owner?.name ? `${l.owner.name}${l.owner.pid ? ` (${l.owner.pid})` : ''}` : '';
      return (
        `<tr class="${rowClass}"><td>${h(l.protocol)}</td><td>${h(l.address)}</td><td>${l.port}</td>` +
        `<td>${h(cls)}</td><td>${h(owner)}</td><td>${odd ? 'unexpected' : ''}</td></tr>`
      );
    })
    .join('');
  const exp = expectations
    .map(
      (e) =>
        `<li class="${e.up ? 'up' : 'down'}">${h(e.protocol)}/${e.port} on ${h(e.address)}${e.up ? ' is up' : ' is missing'}${e.note ? ` <span class="muted">(${h(e.note)})</span>` : ''}</li>`,
    )
    .join('');
  return (
    `<h2>Listening sockets</h2>` +
    (exp ? `<ul>${exp}</ul>` : '') +
    `<p class="muted">${listeners.length} listeners, ${unexpected.size} unexpected; scanned ${ago(sockets.finishedAtMs, Date.now())}.</p>` +
    `<table><thead><tr><th>protocol</th><th>address</th><th>port</th><th>class</th><th>process</th><th>note</th></tr></thead><tbody>${rows}</tbody></table>`
  );
}

export function renderStatusPage(agent: Agent, version: string): string {
  const now = Date.now();
  const reload = agent.reloadState;
  const entries = [...agent.store.entries()].sort(byUrgency);
  const down = entries.filter((e) => e.result && !e.result.success).length;
  const reloadHtml = reload.ok
    ? `<span class="reload-ok">config loaded${reload.at ? ` ${ago(reload.at, now)}` : ''}</span>`
    : `<span class="reload-bad">last reload failed; the previous config keeps running</span><pre>${h(reload.errors.join('\n'))}</pre>`;
  // One scale for every bar: the longest bar on the page, rounded up to 1, 2 or 5 × 10^k ms.
  const longest = Math.max(
    0,
    ...entries.map((e) => (e.result ? segments(e.result).reduce((a, s) => a + s.seconds, 0) : 0)),
  );
  const scale = niceScale(longest);
  const rows = entries.map((e) => targetRow(e, now, scale)).join('');
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>portprobe</title>` +
    `<meta http-equiv="refresh" content="30"><style>${CSS}</style></head><body>` +
    `<h1>portprobe</h1><p>version ${h(version)} · config <code>${h(agent.config?.file ?? '(none)')}</code> · ${reloadHtml}` +
    ` · <a href="/metrics">metrics</a></p>` +
    `<h2>Targets</h2><p class="muted">${entries.length} ${entries.length === 1 ? 'target' : 'targets'}, ${down} down; failing targets first.</p>` +
    legend(entries) +
    `<table class="targets"><thead><tr><th>target</th><th>module</th><th>address</th><th>status</th><th>last run</th>` +
    `<th>probe took</th><th class="timing" data-scale-seconds="${scale}">timing (full bar = ${scaleText(scale)})</th>` +
    `<th>failure, what to check</th><th>findings</th></tr></thead>` +
    `<tbody>${rows}</tbody></table>${listenersSection(agent)}</body></html>`
  );
}
