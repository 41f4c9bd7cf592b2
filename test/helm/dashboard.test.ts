// The Grafana dashboard (helm/portprobe/files/portprobe-dashboard.json): structure Grafana
// accepts, the panels the issue asks for, only metrics the agent exports, and every PromQL
// expression parsed by a real Prometheus (Debian's package, empty TSDB on loopback).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { startPrometheus, type PrometheusProcess } from '../helpers/prometheus';
import { CHART } from './harness';
import { packQueries } from '../../exporters/mssql/pack';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the dashboard is parsed JSON
type Any = any;

const dashboard = JSON.parse(readFileSync(path.join(CHART, 'files', 'portprobe-dashboard.json'), 'utf8'));
const panels: Any[] = dashboard.panels;
const queryPanels = panels.filter((p) => p.type !== 'row' && p.type !== 'alertlist');

/** Series the agent exports (issues 2-5 and 10), plus Prometheus' own ALERTS. */
const KNOWN_METRICS = new Set([
  'probe_success',
  'probe_duration_seconds',
  'probe_phase_duration_seconds',
  'probe_failure_info',
  'probe_last_run_timestamp_seconds',
  'probe_ip_protocol',
  'probe_tls_cert_not_after_timestamp_seconds',
  'probe_tls_version_info',
  'probe_ftp_status_code',
  'probe_ftp_data_channel_success',
  'probe_ftp_data_duration_seconds',
  'probe_ftp_transfer_bytes',
  'probe_ftp_pasv_address_mismatch',
  'probe_ftp_server_info',
  'probe_mssql_version_info',
  'probe_mssql_encryption_info',
  'probe_mssql_patch_advisory',
  'probe_mssql_browser_port',
  'probe_mssql_query_success',
  'portprobe_listener_up',
  'portprobe_listening_sockets',
  'portprobe_unexpected_listener_info',
  'portprobe_unexpected_listeners_truncated',
  'portprobe_tcp_connection_states',
  'portprobe_listener_accept_queue',
  'portprobe_listener_accept_queue_limit',
  'portprobe_listener_connections',
  'portprobe_tcp_listen_overflows_total',
  'portprobe_build_info',
  'portprobe_config_last_reload_successful',
  'portprobe_config_last_reload_success_timestamp_seconds',
  'portprobe_probes_total',
  'portprobe_scheduler_skipped_total',
  'portprobe_shard_info',
  'portprobe_targets',
  'ALERTS',
  // The SQL Server health pack (query_packs: [health]).
  ...packQueries(['health']).flatMap((q) => q.metrics.map((m) => m.name)),
]);

/** Every PromQL expression: panel targets and the selectors inside label_values() variables. */
function expressions(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const p of queryPanels) for (const t of p.targets) out.push({ where: `${p.title} ${t.refId}`, expr: t.expr });
  for (const v of dashboard.templating.list) {
    if (v.type !== 'query') continue;
    const m = /^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(v.query.query);
    if (!m) throw new Error(`variable ${v.name}: unsupported query ${v.query.query}`);
    out.push({ where: `variable ${v.name}`, expr: m[1] });
  }
  return out;
}

/** Grafana's variables replaced by what Grafana would send for "All". */
function interpolate(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m').replace(/\$\{?(job|target)\}?/g, '.+');
}

test('is a current Grafana dashboard with a stable uid', () => {
  expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
  expect(dashboard.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
  expect(dashboard.title).toBe('portprobe');
  expect(dashboard.id).toBeUndefined();
  expect(dashboard.templating.list.map((v: Any) => v.name)).toEqual(['datasource', 'job', 'target']);
});

test('panels have unique ids, fit the 24-column grid and do not overlap', () => {
  const ids = panels.map((p) => p.id);
  expect(new Set(ids).size).toBe(ids.length);
  const boxes = panels.map((p) => ({ title: p.title, ...p.gridPos }));
  for (const b of boxes) {
    expect(b.x).toBeGreaterThanOrEqual(0);
    expect(b.w).toBeGreaterThan(0);
    expect(b.h).toBeGreaterThan(0);
    expect(b.x + b.w).toBeLessThanOrEqual(24);
  }
  const overlaps: string[] = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i];
      const b = boxes[j];
      if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h)
        overlaps.push(`${a.title} / ${b.title}`);
    }
  }
  expect(overlaps).toEqual([]);
});

test('every query panel uses the datasource variable and unique refIds', () => {
  const known = new Set(['stat', 'timeseries', 'table']);
  for (const p of queryPanels) {
    expect([p.title, known.has(p.type)]).toEqual([p.title, true]);
    expect(p.description.length).toBeGreaterThan(10);
    expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
    expect(p.targets.length).toBeGreaterThan(0);
    const refs = p.targets.map((t: Any) => t.refId);
    expect(new Set(refs).size).toBe(refs.length);
    for (const t of p.targets) expect(t.datasource).toEqual(p.datasource);
    // Table transformations name the merged value columns of refIds that exist.
    for (const tr of p.transformations ?? []) {
      const named = JSON.stringify(tr.options).match(/Value #([A-Z])/g) ?? [];
      for (const n of named) expect(refs).toContain(n.slice(-1));
    }
  }
  const repeated = queryPanels.filter((p) => p.repeat);
  for (const p of repeated) expect(dashboard.templating.list.find((v: Any) => v.name === p.repeat).multi).toBe(true);
});

test('has the panels the issue asks for', () => {
  const titles = queryPanels.map((p) => p.title);
  for (const want of [
    /^Target overview$/,
    /^Success rate$/,
    /^Phase latency/,
    /^FTP data channel by mode$/,
    /^SQL Server versions$/,
    /^Patch advisories$/,
    /^Listeners per port class$/,
    /^Unexpected listeners$/,
    /^Accept queue fill by listener$/,
    /^Probes per second by result$/,
    /^Agents$/,
  ]) {
    expect(titles.some((t) => want.test(t))).toBe(true);
  }
  const phase = queryPanels.find((p) => /^Phase latency/.test(p.title));
  expect(phase.fieldConfig.defaults.custom.stacking.mode).toBe('normal');
  expect(phase.repeat).toBe('target');
});

test('queries only metrics the agent exports, aggregated by target across replicas', () => {
  for (const { where, expr } of expressions()) {
    const names = expr.match(/\b(?:probe|portprobe|mssql)_[a-z_]+\b|\bALERTS\b/g) ?? [];
    expect([where, names.length > 0]).toEqual([where, true]);
    for (const n of names) expect([where, n, KNOWN_METRICS.has(n)]).toEqual([where, n, true]);
    if (/\b(probe|mssql)_/.test(expr) && !where.startsWith('variable')) {
      expect([where, /\b(max|min|count) by \(target\b|\bby \(phase\)/.test(expr)]).toEqual([where, true]);
    }
  }
});

describe('PromQL against a real Prometheus', () => {
  let prom: PrometheusProcess;
  beforeAll(async () => {
    // The free port is picked before Prometheus binds it; another process may win the race.
    for (let attempt = 1; ; attempt++) {
      try {
        prom = await startPrometheus('global:\n  scrape_interval: 1m\nscrape_configs: []\n');
        break;
      } catch (e) {
        if (attempt >= 5 || !/address already in use/.test(String(e))) throw e;
      }
    }
  }, 30_000);
  afterAll(async () => {
    await prom?.stop();
  });

  test('a malformed expression is refused (the check below can fail)', async () => {
    await expect(prom.query('max by (target (probe_success)')).rejects.toThrow(/parse error/);
  });

  test.each(expressions().map((e) => [e.where, e.expr]))('%s parses', async (_where, expr) => {
    const result = await prom.query(interpolate(expr));
    expect(Array.isArray(result)).toBe(true);
  });
});

test('an alert list shows the Grafana-managed portprobe rules (and ruler-backed Prometheus ones) next to the ALERTS count', () => {
  const lists = panels.filter((p) => p.type === 'alertlist');
  expect(lists).toHaveLength(1);
  const [list] = lists;
  expect(list.options).toMatchObject({
    alertName: 'Portprobe',
    dashboardAlerts: false,
    stateFilter: { firing: true, pending: true, normal: false },
  });
  // Its filter matches every alert the chart ships, so none is missing from the list.
  const rules = parseYaml(readFileSync(path.join(CHART, 'files', 'portprobe-rules.yml'), 'utf8'));
  for (const g of rules.groups)
    for (const r of g.rules) if (r.alert) expect(r.alert.startsWith(list.options.alertName)).toBe(true);
  const stat = panels.find((p) => p.title === 'Firing portprobe alerts');
  expect(stat.targets[0].expr).toContain('ALERTS{alertname=~"Portprobe.*"');
  expect(list.description).toContain('Grafana-managed');
});
