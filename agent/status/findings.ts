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
      value: Object.values(f.labels ?? {})
        .filter((v) => v !== '')
        .join(' '),
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
