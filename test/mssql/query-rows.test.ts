// Custom query rows that cannot become samples: exactly one probe_mssql_query_success sample per
// query, a non-numeric value fails its query (naming the column and the row), and the NULL rule:
// a row whose value is NULL is skipped and counted in probe_mssql_query_rows_skipped.
import { COMMON_METRICS, FamilyRegistry, joinRendered, renderResult } from '../../agent/exposition';
import { assertExposition } from '../helpers/exposition-check';
import { mssqlProber } from '../../exporters/mssql';
import { Secret } from '../../exporters/secret';
import type { ProbeResult } from '../../exporters/types';
import { runProber } from '../helpers/context';
import { startTdsPeer, type TdsPeer } from '../peers/tds/server';

let peer: TdsPeer;
beforeAll(async () => {
  peer = await startTdsPeer({
    users: { monitor: 's3cr3t-pw' },
    queries: {
      'select db, size from sizes': {
        columns: [
          { name: 'db', type: 'nvarchar' },
          { name: 'size', type: 'int' },
        ],
        rows: [
          ['master', 10],
          ['offline_db', null],
          ['tempdb', 20],
          ['restoring_db', null],
        ],
      },
      'select db, state from states': {
        columns: [
          { name: 'db', type: 'nvarchar' },
          { name: 'state', type: 'nvarchar' },
        ],
        rows: [
          ['master', '1'],
          ['tempdb', 'n/a'],
        ],
      },
      'select n from nothing': { columns: [{ name: 'n', type: 'int' }], rows: [[null]] },
    },
  });
});
afterAll(() => peer.close());

const query = (name: string, sql: string, keys: string[], value: string) => ({
  name,
  help: `${name}.`,
  key_labels: keys,
  value_column: value,
  query: sql,
  timeout: '2s',
});

async function probe(queries: ReturnType<typeof query>[]): Promise<{ r: ProbeResult; text: string }> {
  const r = await runProber(
    mssqlProber,
    `127.0.0.1:${peer.port}`,
    { username: 'monitor', password: new Secret('s3cr3t-pw'), queries },
    3000,
  );
  const families = new FamilyRegistry([...COMMON_METRICS, ...mssqlProber.metrics]);
  const rendered = renderResult(families, '', mssqlProber.phases, r, Date.now());
  // The whole exposition, HELP and TYPE included, must be clean: one series each, no split family.
  assertExposition(joinRendered(families, [rendered]).toString());
  return { r, text: rendered.buf.subarray(0, rendered.bounds[rendered.count]).toString() };
}

/** Sample lines of a family, and a check that no series appears twice. */
function samples(text: string, metric: string): string[] {
  const lines = text.split('\n').filter((l) => l.startsWith(`${metric}{`) || l.startsWith(`${metric} `));
  const series = lines.map((l) => l.slice(0, l.lastIndexOf(' ')));
  expect(new Set(series).size).toBe(series.length);
  return lines;
}

test('NULL values: the rows are skipped and counted, the other rows are exported, the query succeeds', async () => {
  const { r, text } = await probe([query('mssql_db_size', 'SELECT db, size FROM sizes', ['db'], 'size')]);
  expect(r.failure).toBeUndefined();
  expect(samples(text, 'mssql_db_size')).toEqual(['mssql_db_size{db="master"} 10', 'mssql_db_size{db="tempdb"} 20']);
  expect(samples(text, 'probe_mssql_query_rows_skipped')).toEqual([
    'probe_mssql_query_rows_skipped{query="mssql_db_size"} 2',
  ]);
  expect(samples(text, 'probe_mssql_query_success')).toEqual([
    'probe_mssql_query_success{query="version"} 1',
    'probe_mssql_query_success{query="mssql_db_size"} 1',
  ]);
});

test('a single NULL row is skipped, not a failure', async () => {
  const { r, text } = await probe([query('mssql_n', 'select n from nothing', [], 'n')]);
  expect(r.failure).toBeUndefined();
  expect(samples(text, 'mssql_n')).toEqual([]);
  expect(samples(text, 'probe_mssql_query_rows_skipped')).toEqual([
    'probe_mssql_query_rows_skipped{query="mssql_n"} 1',
  ]);
});

test('a non-numeric value fails the query once, naming the column and the row; the other queries still run', async () => {
  const { r, text } = await probe([
    query('mssql_db_state', 'select db, state from states', ['db'], 'state'),
    query('mssql_db_size', 'SELECT db, size FROM sizes', ['db'], 'size'),
  ]);
  expect(r.failure).toMatchObject({ phase: 'query', reason: 'query_error' });
  expect(r.failure?.message).toBe('query mssql_db_state: column state of row 2 holds "n/a", not a number');
  expect(samples(text, 'probe_mssql_query_success')).toEqual([
    'probe_mssql_query_success{query="version"} 1',
    'probe_mssql_query_success{query="mssql_db_state"} 0',
    'probe_mssql_query_success{query="mssql_db_size"} 1',
  ]);
  // No half of a failed query: none of its samples, no skipped count.
  expect(samples(text, 'mssql_db_state')).toEqual([]);
  expect(samples(text, 'probe_mssql_query_rows_skipped')).toEqual([
    'probe_mssql_query_rows_skipped{query="mssql_db_size"} 2',
  ]);
});
