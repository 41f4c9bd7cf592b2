// One way to present what a probe found besides its verdict: the result's findings (severity,
// message, advice) and its `_info` facts (versions, encryption mode). diagnose, the status page and
// /probe?debug=true all render through here, for any prober and any finding code.
import type { Fact, Finding, FindingSeverity, ProbeResult } from '../../exporters/types';
import { escapeHtml as h } from '../html';

const RANK: Record<FindingSeverity, number> = { critical: 0, warning: 1, info: 2 };

/** The findings, most severe first; ties keep the prober's order. Pure. */
export function sortedFindings(result: Pick<ProbeResult, 'findings'> | undefined): Finding[] {
  return (result?.findings ?? [])
    .map((f, i) => ({ f, i }))
    .sort((a, b) => (RANK[a.f.severity] ?? 3) - (RANK[b.f.severity] ?? 3) || a.i - b.i)
    .map((x) => x.f);
}

/** "critical: 1, warning: 2" style count, or '' when there is nothing. Pure. */
export function findingsSummary(result: Pick<ProbeResult, 'findings'> | undefined): string {
  const counts = new Map<string, number>();
  for (const f of sortedFindings(result)) counts.set(f.severity, (counts.get(f.severity) ?? 0) + 1);
  return [...counts].map(([sev, n]) => `${n} ${sev}`).join(', ');
}

/** Plain-text lines: "[critical] code: message" then "  what to do: advice". Pure. */
export function findingLines(result: Pick<ProbeResult, 'findings'> | undefined, indent = ''): string[] {
  const out: string[] = [];
  for (const f of sortedFindings(result)) {
    out.push(`${indent}[${f.severity}] ${f.code}: ${f.message}`);
    if (f.advice) out.push(`${indent}    what to do: ${f.advice}`);
  }
  return out;
}

export interface InfoFact {
  /** The family without probe_ and _info: mssql_version, tls_version, mssql_encryption. */
  name: string;
  value: string;
}

/** The `_info` facts as name and label values, in the order the prober recorded them. Pure. */
export function infoFacts(facts: readonly Fact[]): InfoFact[] {
  return facts
    .filter((f) => f.metric.endsWith('_info') && f.labels && Object.keys(f.labels).length > 0)
    .map((f) => ({
      name: f.metric.replace(/^probe_/, '').replace(/_info$/, ''),
      value: Object.values(f.labels ?? {}).filter((v) => v !== '').join(' '),
    }));
}

/** HTML for the status page: one item per finding, severity as a class and a word. */
export function findingsHtml(result: ProbeResult | undefined): string {
  const items = sortedFindings(result).map(
    (f) =>
      `<li class="finding ${h(f.severity)}" data-code="${h(f.code)}"><span class="sev">${h(f.severity)}</span> ${h(f.message)}` +
      (f.advice ? `<div class="advice">What to do: ${h(f.advice)}</div>` : '') +
      '</li>',
  );
  const facts = infoFacts(result?.facts ?? []).map(
    (i) => `<li class="fact"><span class="muted">${h(i.name)}</span> ${h(i.value)}</li>`,
  );
  if (items.length === 0 && facts.length === 0) return '';
  return `<ul class="findings">${items.join('')}${facts.join('')}</ul>`;
}

export interface PingFacts {
  sent?: number;
  received?: number;
  /** Mean round trip of the echo replies (absent when none came back). */
  rttAvgSeconds?: number;
}

/** The ICMP rung's facts: what the ping rung is worth showing instead of its wall time. Pure. */
export function pingFacts(facts: readonly Fact[]): PingFacts {
  const one = (metric: string, stat?: string): number | undefined =>
    facts.find((f) => f.metric === metric && (stat === undefined || f.labels?.stat === stat))?.value;
  const out: PingFacts = {};
  const sent = one('probe_icmp_packets_sent');
  const received = one('probe_icmp_packets_received');
  const avg = one('probe_icmp_rtt_seconds', 'avg');
  if (sent !== undefined) out.sent = sent;
  if (received !== undefined) out.received = received;
  if (avg !== undefined && (received ?? 1) > 0) out.rttAvgSeconds = avg;
  return out;
}

/** "round trip 0.052 ms avg, 2 of 2 replies", or undefined without ICMP facts. Pure. */
export function pingText(facts: readonly Fact[]): string | undefined {
  const p = pingFacts(facts);
  if (p.sent === undefined) return undefined;
  const replies = `${p.received ?? 0} of ${p.sent} replies`;
  return p.rttAvgSeconds === undefined ? `no round trip: ${replies}` : `round trip ${(p.rttAvgSeconds * 1000).toFixed(3)} ms avg, ${replies}`;
}
