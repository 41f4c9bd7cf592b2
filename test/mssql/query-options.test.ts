// Configured queries: several value columns (values + value_label), min_interval (results kept and
// exported again with their age; the clock is moved, never slept on), and every query of a probe
// on the probe's one login, counted at the peer.
import { COMMON_METRICS, FamilyRegistry, joinRendered, renderResult } from '../../agent/exposition';
import { assertExposition } from '../helpers/exposition-check';
import { mssqlProber, type MssqlQuery, type MssqlSettings } from '../../exporters/mssql';
import { queryResults } from '../../exporters/mssql/cache';
import { Secret } from '../../exporters/secret';
import type { ProbeResult } from '../../exporters/types';
import { probeContext, runProber } from '../helpers/context';
import { cleanupsAfterEach, tdsPeers } from '../helpers/mssql';
import type { QueryAnswer, TdsPeer } from '../peers/tds/server';
import { healthQueries } from '../peers/tds/health';

const cleanups = cleanupsAfterEach();
const peer = tdsPeers(cleanups);
const LOGIN = { username: 'monitor', password: new Secret('s3cr3t-pw') };

let now = 1_000_000;
beforeEach(() => {
  now = 1_000_000;
  queryResults.clear();
  queryResults.clock = () => now;
});
afterAll(() => {
  queryResults.clock = Date.now;
  queryResults.clear();
});

const IO: QueryAnswer = {
  columns: [
    { name: 'db', type: 'nvarchar' },
    { name: 'reads', type: 'int' },
    { name: 'writes', type: 'int' },
    { name: 'stall_ms', type: 'float' },
  ],
  rows: [
    ['master', 120, 30, 1.5],
    ['erp', 98000, 41000, null],
  ],
};
const ioQuery: MssqlQuery = {
  name: 'mssql_io_total',
  help: 'I/O operations per database.',
  type: 'counter',
  key_labels: ['db'],
  values: ['reads', 'writes', 'stall_ms'],
  value_label: 'kind',
  query: 'select db, reads, writes, stall_ms from io',
};

async function probe(p: TdsPeer, settings: Partial<MssqlSettings>): Promise<{ r: ProbeResult; text: string }> {
  const r = await runProber(mssqlProber, `127.0.0.1:${p.port}`, { ...LOGIN, ...settings }, 5000);
  const families = new FamilyRegistry([...COMMON_METRICS, ...mssqlProber.metrics]);
  const text = joinRendered(families, [renderResult(families, '', mssqlProber.phases, r, Date.now())]).toString();
  assertExposition(text);
  return { r, text };
}

const samples = (text: string, metric: string): string[] =>
  text.split('\n').filter((l) => l.startsWith(`${metric}{`) || l.startsWith(`${metric} `));
const ran = (p: TdsPeer, sql: string): number => p.batches.filter((b) => b === sql).length;

test('values + value_label: one series per value column, NULL values skipped one by one', async () => {
  const p = await peer({ queries: { 'select db, reads, writes, stall_ms from io': IO } });
  const { r, text } = await probe(p, { queries: [ioQuery] });
  expect(r.failure).toBeUndefined();
  expect(samples(text, 'mssql_io_total')).toEqual([
    'mssql_io_total{db="master",kind="reads"} 120',
    'mssql_io_total{db="master",kind="writes"} 30',
    'mssql_io_total{db="master",kind="stall_ms"} 1.5',
    'mssql_io_total{db="erp",kind="reads"} 98000',
    'mssql_io_total{db="erp",kind="writes"} 41000',
  ]);
  expect(text).toContain('# TYPE mssql_io_total counter');
  expect(samples(text, 'probe_mssql_query_rows_skipped')).toEqual([
    'probe_mssql_query_rows_skipped{query="mssql_io_total"} 1',
  ]);
});

test('min_interval: within it the last result is exported again with its age and no round trip; after it the query runs again', async () => {
  const p = await peer({
    queries: {
      'select db, reads, writes, stall_ms from io': IO,
      'select 1 as n': { columns: [{ name: 'n', type: 'int' }], rows: [[1]] },
    },
  });
  const settings = {
    queries: [
      { ...ioQuery, min_interval: '1m' },
      { name: 'mssql_one', help: 'One.', value_column: 'n', query: 'select 1 as n' },
    ],
  };
  const sql = 'select db, reads, writes, stall_ms from io';

  const first = await probe(p, settings);
  expect(ran(p, sql)).toBe(1);
  expect(samples(first.text, 'probe_mssql_query_result_age_seconds')).toEqual([
    'probe_mssql_query_result_age_seconds{query="mssql_io_total"} 0',
  ]);
  expect(
    samples(first.text, 'probe_mssql_query_duration_seconds').some((l) => l.includes('query="mssql_io_total"')),
  ).toBe(true);

  now += 42_000;
  const second = await probe(p, settings);
  expect(ran(p, sql)).toBe(1);
  // A query without min_interval runs at every probe.
  expect(ran(p, 'select 1 as n')).toBe(2);
  expect(second.r.success).toBe(true);
  expect(samples(second.text, 'mssql_io_total')).toEqual(samples(first.text, 'mssql_io_total'));
  expect(samples(second.text, 'probe_mssql_query_success')).toContain(
    'probe_mssql_query_success{query="mssql_io_total"} 1',
  );
  expect(samples(second.text, 'probe_mssql_query_rows_skipped')).toContain(
    'probe_mssql_query_rows_skipped{query="mssql_io_total"} 1',
  );
  expect(samples(second.text, 'probe_mssql_query_result_age_seconds')).toEqual([
    'probe_mssql_query_result_age_seconds{query="mssql_io_total"} 42',
  ]);
  // It did not run, so it has no duration of its own in this probe.
  expect(
    samples(second.text, 'probe_mssql_query_duration_seconds').some((l) => l.includes('query="mssql_io_total"')),
  ).toBe(false);

  now += 18_000;
  const third = await probe(p, settings);
  expect(ran(p, sql)).toBe(2);
  expect(samples(third.text, 'probe_mssql_query_result_age_seconds')).toEqual([
    'probe_mssql_query_result_age_seconds{query="mssql_io_total"} 0',
  ]);
});

test('min_interval keeps successes only: a failed query runs again at the next probe', async () => {
  const p = await peer({
    queries: {
      'select n from flaky': {
        error: {
          number: 1205,
          message:
            'Transaction (Process ID 57) was deadlocked on lock resources with another process and has been chosen as the deadlock victim. Rerun the transaction.',
          class: 13,
        },
      },
    },
  });
  const settings = {
    queries: [
      { name: 'mssql_flaky', help: 'Flaky.', value_column: 'n', query: 'select n from flaky', min_interval: '10m' },
    ],
  };
  const first = await probe(p, settings);
  expect(first.r.failure).toMatchObject({ phase: 'query', reason: 'query_error' });
  expect(samples(first.text, 'probe_mssql_query_result_age_seconds')).toEqual([]);
  now += 1_000;
  const second = await probe(p, settings);
  expect(second.r.failure).toMatchObject({ phase: 'query', reason: 'query_error' });
  expect(ran(p, 'select n from flaky')).toBe(2);
});

test('min_interval results belong to their target and module, and a changed query text never reuses them', async () => {
  const p = await peer({
    queries: {
      'select db, reads, writes, stall_ms from io': IO,
      'select db, reads, writes, stall_ms from io where 1 = 1': IO,
    },
  });
  await probe(p, { queries: [{ ...ioQuery, min_interval: '1m' }] });
  await probe(p, {
    queries: [{ ...ioQuery, min_interval: '1m', query: 'select db, reads, writes, stall_ms from io where 1 = 1' }],
  });
  expect(ran(p, 'select db, reads, writes, stall_ms from io where 1 = 1')).toBe(1);
  expect(queryResults.size).toBe(2);
  // The same module and query for another target (and another module for the same target): their own results.
  for (const [target, module] of [
    ['other-target', 'test_mssql'],
    ['test-target', 'other_module'],
  ]) {
    const t = probeContext(
      mssqlProber,
      `127.0.0.1:${p.port}`,
      { ...LOGIN, queries: [{ ...ioQuery, min_interval: '1m' }] },
      5000,
    );
    const ctx = { ...t.ctx, target: { ...t.ctx.target, name: target }, module: { ...t.ctx.module, name: module } };
    try {
      expect((await mssqlProber.run(ctx)).success).toBe(true);
    } finally {
      t.dispose();
    }
  }
  expect(ran(p, 'select db, reads, writes, stall_ms from io')).toBe(3);
  expect(queryResults.size).toBe(4);
});

test('one login per probe: @@VERSION, the health pack and the configured queries all run on it', async () => {
  const p = await peer({
    queries: {
      ...healthQueries(),
      'select db, reads, writes, stall_ms from io': IO,
      'select 1 as n': { columns: [{ name: 'n', type: 'int' }], rows: [[1]] },
    },
  });
  const settings: Partial<MssqlSettings> = {
    query_packs: ['health'],
    queries: [ioQuery, { name: 'mssql_one', help: 'One.', value_column: 'n', query: 'select 1 as n' }],
  };
  for (let i = 1; i <= 3; i++) {
    const { r } = await probe(p, settings);
    expect(r.success).toBe(true);
    expect(p.logins).toHaveLength(i);
  }
  // 1 version + 9 pack + 2 configured queries per probe, plus tedious's SET batch at each login.
  expect(p.batches.filter((b) => !b.startsWith('set '))).toHaveLength(3 * 12);
});
