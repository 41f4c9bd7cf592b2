import { execFileSync } from 'node:child_process';
import {
  COMMON_METRICS,
  FamilyRegistry,
  escapeLabelValue,
  formatValue,
  joinRendered,
  renderResult,
} from '../../agent/exposition';
import { assertExposition } from '../helpers/exposition-check';
import { ResultStore } from '../../agent/store';
import { allFamilies } from '../../agent/agent';
import type { ProbeResult } from '../../exporters/types';
import { TLS_METRICS } from '../../exporters/net';

const ok: ProbeResult = {
  success: true,
  durationSeconds: 0.25,
  phases: [
    { phase: 'resolve', seconds: 0.001 },
    { phase: 'connect', seconds: 0.2 },
  ],
  facts: [{ metric: 'probe_tls_version_info', value: 1, labels: { version: 'TLSv1.3' } }],
  ipProtocol: 4,
};
const bad: ProbeResult = {
  success: false,
  durationSeconds: 1,
  phases: [
    { phase: 'resolve', seconds: 0.001 },
    { phase: 'connect', seconds: 0.999 },
  ],
  failure: { phase: 'connect', reason: 'refused', message: 'connect ECONNREFUSED' },
  facts: [],
};

describe('exposition', () => {
  it('escapes label values the way the text format requires', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    expect(escapeLabelValue('plain')).toBe('plain');
  });

  it('formats special float values', () => {
    expect([NaN, Infinity, -Infinity, 0.5, 1e21].map(formatValue)).toEqual(['NaN', '+Inf', '-Inf', '0.5', '1e+21']);
  });

  it('renders every declared phase, 0 when not reached, and one failure_info series', () => {
    const families = new FamilyRegistry([...COMMON_METRICS, ...TLS_METRICS]);
    const text = joinRendered(families, [
      renderResult(families, 'target="db"', ['resolve', 'connect', 'tls'], bad, 1700000000000),
    ]).toString();
    assertExposition(text);
    expect(text).toContain('probe_success{target="db"} 0\n');
    expect(text).toContain('probe_phase_duration_seconds{target="db",phase="tls"} 0\n');
    expect(text).toContain('probe_phase_duration_seconds{target="db",phase="connect"} 0.999\n');
    expect(text).toContain('probe_failure_info{target="db",phase="connect",reason="refused"} 1\n');
    expect(text).toContain('probe_last_run_timestamp_seconds{target="db"} 1700000000\n');
    expect(text).toContain('probe_ip_protocol{target="db"} 0\n');
    expect(text.match(/^# TYPE /gm)?.length).toBe(6);
  });

  it('groups each family once across targets, in a fixed order', () => {
    const store = new ResultStore(new FamilyRegistry(allFamilies()));
    store.sync([
      { name: 'a', module: 'm', prober: 'tcp', address: 'a:1', labels: { env: 'x"y' } },
      { name: 'b', module: 'm', prober: 'tcp', address: 'b:1', labels: {} },
    ]);
    store.record('a', ['resolve', 'connect'], ok, 1000);
    store.record('b', ['resolve', 'connect'], bad, 2000);
    const text = store.exposition().toString();
    assertExposition(text);
    expect(text.match(/# HELP probe_success /g)?.length).toBe(1);
    const lines = text.split('\n').filter((l) => l.startsWith('probe_success'));
    expect(lines).toEqual([
      'probe_success{target="a",module="m",env="x\\"y"} 1',
      'probe_success{target="b",module="m"} 0',
    ]);
    expect(text).toContain('probe_tls_version_info{target="a",module="m",env="x\\"y",version="TLSv1.3"} 1');
  });

  it("rewrites a target's memory in place and still matches a fresh rendering, whatever the lengths", () => {
    const families = new FamilyRegistry(allFamilies());
    const store = new ResultStore(families);
    store.sync([
      { name: 'a', module: 'm', prober: 'tcp', address: 'a:1', labels: {} },
      { name: 'b', module: 'm', prober: 'tcp', address: 'b:1', labels: { zone: 'zürich→1' } },
    ]);
    // Short and long values, with and without the failure and TLS families, in turn.
    const seq: ProbeResult[] = [
      ok,
      { ...ok, durationSeconds: 0.123456789012 },
      bad,
      { ...ok, durationSeconds: 1e-7, facts: [] },
      { ...bad, failure: { phase: 'connect', reason: 'timeout', message: 'x' }, durationSeconds: 12.3456789 },
      ok,
    ];
    let reused = 0;
    for (const [i, r] of seq.entries()) {
      const before = store.get('a')?.rendered;
      store.record('a', ['resolve', 'connect'], r, 1000 + i);
      store.record('b', ['resolve', 'connect'], seq[seq.length - 1 - i], 2000 + i);
      if (store.get('a')?.rendered === before) reused++;
      const fresh = joinRendered(families, [
        renderResult(families, 'target="a",module="m"', ['resolve', 'connect'], r, 1000 + i),
        renderResult(
          families,
          'target="b",module="m",zone="zürich→1"',
          ['resolve', 'connect'],
          seq[seq.length - 1 - i],
          2000 + i,
        ),
      ]);
      const text = store.exposition().toString();
      assertExposition(text);
      expect(text).toBe(fresh.toString());
      // Checked without the code under test: every line whole, each family in one block.
      const names: string[] = [];
      for (const line of text.trimEnd().split('\n')) {
        if (line.startsWith('#')) continue;
        expect(line).toMatch(/^[a-z_]+\{target="[ab]",module="m"(,zone="zürich→1")?[^}]*\} [-+0-9.e]+$/);
        const name = line.slice(0, line.indexOf('{'));
        if (names[names.length - 1] !== name) names.push(name);
      }
      expect(new Set(names).size).toBe(names.length);
      expect(text).toContain(
        `probe_success{target="b",module="m",zone="zürich→1"} ${seq[seq.length - 1 - i].success ? 1 : 0}\n`,
      );
    }
    // Most results fit the memory of the previous one.
    expect(reused).toBeGreaterThanOrEqual(3);
  });

  it('appends a tail after the families', () => {
    const store = new ResultStore(new FamilyRegistry(allFamilies()));
    store.sync([{ name: 'a', module: 'm', prober: 'tcp', address: 'a:1', labels: {} }]);
    store.record('a', ['connect'], ok);
    const text = store
      .exposition(Buffer.from('# HELP own_metric x\n# TYPE own_metric gauge\nown_metric 1\n'))
      .toString();
    assertExposition(text);
    expect(text.startsWith('# HELP probe_success ')).toBe(true);
    expect(text.endsWith('\nown_metric 1\n')).toBe(true);
    expect(store.exposition().toString()).toBe(text.slice(0, text.indexOf('# HELP own_metric')));
  });

  it("drops a target's series when it leaves the config, and results that arrive late", () => {
    const store = new ResultStore(new FamilyRegistry(allFamilies()));
    store.sync([
      { name: 'a', module: 'm', prober: 'tcp', address: 'a:1', labels: {} },
      { name: 'b', module: 'm', prober: 'tcp', address: 'b:1', labels: {} },
    ]);
    store.record('a', ['connect'], ok);
    store.record('b', ['connect'], ok);
    store.sync([{ name: 'a', module: 'm', prober: 'tcp', address: 'a:1', labels: {} }]);
    store.record('b', ['connect'], ok);
    const text = store.exposition().toString();
    assertExposition(text);
    expect(text).toContain('target="a"');
    expect(text).not.toContain('target="b"');
  });

  it("keeps a target's result when a reload leaves it unchanged, and resets it when its address changes", () => {
    const store = new ResultStore(new FamilyRegistry(allFamilies()));
    const a = { name: 'a', module: 'm', prober: 'tcp', address: 'a:1', labels: {} };
    store.sync([a]);
    store.record('a', ['connect'], ok);
    store.sync([{ ...a }]);
    expect(store.get('a')?.result).toBeDefined();
    store.sync([{ ...a, address: 'a:2' }]);
    expect(store.get('a')?.result).toBeUndefined();
  });

  it('registers custom families a result declares (SQL query gauges)', () => {
    const families = new FamilyRegistry(COMMON_METRICS);
    const r: ProbeResult = {
      ...ok,
      facts: [{ metric: 'mssql_sessions', value: 7, labels: { db: 'x' } }],
      details: {
        customMetrics: [
          { name: 'mssql_sessions', help: 'Sessions.', type: 'gauge', labelNames: ['db'] },
          { name: 'bad name' },
        ],
      },
    };
    const text = joinRendered(families, [renderResult(families, '', [], r, 0)]).toString();
    assertExposition(text);
    expect(text).toContain('# TYPE mssql_sessions gauge\nmssql_sessions{db="x"} 7\n');
    expect(families.indexOf('bad name')).toBeUndefined();
  });

  it('passes promtool check metrics with no findings', () => {
    const store = new ResultStore(new FamilyRegistry(allFamilies()));
    store.sync([
      { name: 'a', module: 'm', prober: 'tcp', address: 'a:1', labels: { env: 'prod' } },
      { name: 'b', module: 'm', prober: 'tcp', address: 'b:1', labels: {} },
    ]);
    store.record('a', ['resolve', 'connect', 'tls', 'banner'], {
      ...ok,
      facts: [...ok.facts, { metric: 'probe_tls_cert_not_after_timestamp_seconds', value: 1.8e9 }],
    });
    store.record('b', ['resolve', 'connect', 'tls', 'banner'], bad);
    const out = execFileSync('promtool', ['check', 'metrics'], { input: store.exposition(), encoding: 'utf8' });
    expect(out).toBe('');
  });
});
