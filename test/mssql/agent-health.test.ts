// The health pack in the running agent: two SQL Server targets with query_packs: [health], one
// whose login lacks VIEW SERVER STATE. /metrics carries each target's pack series under its target
// label, once per family with HELP and TYPE (the strict checker passes on the whole scrape), the
// second target succeeds with the permission-bound queries at 0, and /probe?debug=true shows the
// finding. Needs dist/ (npx tsc -p tsconfig.json).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assertExposition } from '../helpers/exposition-check';
import { startAgent, type AgentProcess } from '../helpers/agent-process';
import { DENIED_SERVER_STATE, deniedByGuard, healthQueries } from '../peers/tds/health';
import { startTdsPeer, type TdsPeer } from '../peers/tds/server';

jest.setTimeout(60_000);

let dir: string;
let agent: AgentProcess;
let full: TdsPeer;
let narrow: TdsPeer;

beforeAll(async () => {
  const users = { monitor: 's3cr3t-pw' };
  full = await startTdsPeer({ users, queries: healthQueries() });
  narrow = await startTdsPeer({
    users,
    queries: healthQueries({
      'health/connections': deniedByGuard('sys.dm_exec_sessions'),
      'health/blocking': deniedByGuard('sys.dm_exec_requests'),
      'health/counters': DENIED_SERVER_STATE,
      'health/log': DENIED_SERVER_STATE,
      'health/availability': DENIED_SERVER_STATE,
    }),
  });
  dir = mkdtempSync(path.join(tmpdir(), 'portprobe-mssql-health-'));
  writeFileSync(path.join(dir, 'pw'), 's3cr3t-pw\n');
  const cfg = path.join(dir, 'portprobe.yml');
  writeFileSync(
    cfg,
    [
      'global: {interval: 1s, timeout: 900ms}',
      'modules:',
      `  sql_health: {prober: mssql, timeout: 900ms, mssql: {username: monitor, password_file: "${path.join(dir, 'pw')}", query_packs: [health]}}`,
      'targets:',
      `  - {name: sql-full, module: sql_health, address: "127.0.0.1:${full.port}"}`,
      `  - {name: sql-narrow, module: sql_health, address: "127.0.0.1:${narrow.port}"}`,
    ].join('\n'),
  );
  agent = await startAgent(cfg);
});

afterAll(async () => {
  await agent?.stop();
  await Promise.all([full, narrow].map((p) => p?.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("/metrics: both targets' pack series, each family once, the permission-bound queries at 0 for the narrow login", async () => {
  let text = '';
  for (let t = 0; t < 100; t++) {
    text = await (await fetch(`${agent.base}/metrics`)).text();
    if (
      /mssql_database_state\{[^}]*target="sql-full"/.test(text) &&
      /mssql_database_state\{[^}]*target="sql-narrow"/.test(text)
    )
      break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assertExposition(text, '/metrics');
  expect(text.match(/^# TYPE mssql_deadlocks_total counter$/gm)).toHaveLength(1);
  expect(text).toMatch(/^mssql_database_state\{[^}]*target="sql-full"[^}]*database="archive"[^}]*\} 6$/m);
  expect(text).toMatch(/^mssql_deadlocks_total\{[^}]*target="sql-full"[^}]*\} 17$/m);
  expect(text).not.toMatch(/^mssql_deadlocks_total\{[^}]*target="sql-narrow"/m);
  expect(text).toMatch(/^probe_mssql_query_success\{[^}]*target="sql-narrow"[^}]*query="health\/counters"[^}]*\} 0$/m);
  expect(text).toMatch(/^probe_mssql_query_success\{[^}]*target="sql-narrow"[^}]*query="health\/backups"[^}]*\} 1$/m);
  expect(text).toMatch(/^probe_success\{[^}]*target="sql-narrow"[^}]*\} 1$/m);
});

test('/probe?debug=true for the narrow login names the failed pack queries and the permission', async () => {
  const res = await fetch(`${agent.base}/probe?target=sql-narrow&debug=true`);
  expect(res.status).toBe(200);
  const text = await res.text();
  expect(text).toContain('mssql_pack_query_failed');
  expect(text).toContain('5 of 9 pack queries failed');
  expect(text).toContain('GRANT VIEW SERVER STATE');
});
