// GET /: a small server-rendered page for people. Every value that came from a peer (banners,
// error messages) or from config is escaped; nothing on the page runs script.
import { PROBERS } from '../../exporters';
import { adviceFor } from '../../exporters/advice';
import { portClass } from '../../exporters/sockets';
import type { Agent } from '../agent';
import { escapeHtml as h } from '../html';
import type { TargetEntry } from '../store';

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

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .2em} h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;width:100%} th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4} .up{color:#17702a;font-weight:600} .down{color:#b3261e;font-weight:600} .pending{color:#777}
.bars{display:flex;height:12px;min-width:160px;background:#f0f0f0} .bars span{display:block;height:12px}
.reason{font-family:monospace} .advice{color:#555;font-size:.92em} .banner{font-family:monospace;white-space:pre-wrap;color:#333}
tr.unexpected{background:#fff2f0} tr.unexpected.dynamic{background:#ffd9d4} .muted{color:#777}
.reload-ok{color:#17702a} .reload-bad{color:#b3261e} code{background:#f4f4f4;padding:0 .2em}
`;

const PHASE_COLOURS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f'];

function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

function phaseBars(e: TargetEntry): string {
  const r = e.result;
  if (!r) return '';
  const phases = PROBERS[e.target.prober]?.phases ?? [];
  const total = r.phases.reduce((a, p) => a + p.seconds, 0) || 1;
  const spans = r.phases
    .map((p) => {
      const i = Math.max(0, phases.indexOf(p.phase));
      const width = Math.max(1, Math.round((p.seconds / total) * 100));
      const colour = r.failure?.phase === p.phase ? '#b3261e' : PHASE_COLOURS[i % PHASE_COLOURS.length];
      const title = `${p.phase}: ${(p.seconds * 1000).toFixed(1)} ms`;
      return `<span style="width:${width}%;background:${colour}" title="${h(title)}"></span>`;
    })
    .join('');
  const legend = r.phases.map((p) => `${h(p.phase)} ${(p.seconds * 1000).toFixed(1)} ms`).join(' · ');
  return `<div class="bars">${spans}</div><div class="muted">${legend}</div>`;
}

function targetRow(e: TargetEntry, now: number): string {
  const r = e.result;
  const status = !r ? '<span class="pending">pending</span>' : r.success ? '<span class="up">up</span>' : '<span class="down">down</span>';
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
    `<td>${r ? `${(r.durationSeconds * 1000).toFixed(1)} ms` : ''}${phaseBars(e)}</td>` +
    `<td>${failure}${banner}</td></tr>`
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
    ((Array.isArray(d.unexpected) ? d.unexpected : []) as UnexpectedRow[]).map((u) => `${u.protocol} ${u.address} ${u.port}`),
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
    `<table><thead><tr><th>protocol</th><th>address</th><th>port</th><th>class</th><th>process</th><th></th></tr></thead><tbody>${rows}</tbody></table>`
  );
}

export function renderStatusPage(agent: Agent, version: string): string {
  const now = Date.now();
  const reload = agent.reloadState;
  const entries = [...agent.store.entries()];
  const down = entries.filter((e) => e.result && !e.result.success).length;
  const reloadHtml = reload.ok
    ? `<span class="reload-ok">config loaded${reload.at ? ` ${ago(reload.at, now)}` : ''}</span>`
    : `<span class="reload-bad">last reload failed; the previous config keeps running</span><pre>${h(reload.errors.join('\n'))}</pre>`;
  const rows = entries.map((e) => targetRow(e, now)).join('');
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>portprobe</title>` +
    `<meta http-equiv="refresh" content="30"><style>${CSS}</style></head><body>` +
    `<h1>portprobe</h1><p>version ${h(version)} · config <code>${h(agent.config?.file ?? '(none)')}</code> · ${reloadHtml}` +
    ` · <a href="/metrics">metrics</a></p>` +
    `<h2>Targets</h2><p class="muted">${entries.length} targets, ${down} down.</p>` +
    `<table><thead><tr><th>target</th><th>module</th><th>address</th><th>status</th><th>last run</th><th>timing</th><th>failure</th></tr></thead>` +
    `<tbody>${rows}</tbody></table>${listenersSection(agent)}</body></html>`
  );
}
