// query_packs: [health] against the TDS peer answering like SQL Server: every series of the pack
// from realistic result shapes (NULLs included), the exposition clean under the strict checker,
// one login per probe; a missing permission, no msdb access or an older version fail their query
// alone, as a finding, while the probe and the other queries go on.
import { COMMON_METRICS, FamilyRegistry, joinRendered, renderResult } from '../../agent/exposition';
import { assertExposition } from '../helpers/exposition-check';
import { mssqlProber, type MssqlSettings } from '../../exporters/mssql';
import { packQueries } from '../../exporters/mssql/pack';
import { Secret } from '../../exporters/secret';
import type { ProbeResult } from '../../exporters/types';
import { runProber } from '../helpers/context';
import { cleanupsAfterEach, tdsPeers } from '../helpers/mssql';
import type { TdsPeerOptions } from '../peers/tds/server';
import {
  DENIED_SERVER_STATE,
  NO_HADR_VIEWS,
  NO_MSDB_ACCESS,
  deniedByGuard,
  healthQueries,
  healthSql,
} from '../peers/tds/health';

const cleanups = cleanupsAfterEach();
const peer = tdsPeers(cleanups);

const LOGIN = { username: 'monitor', password: new Secret('s3cr3t-pw') };
const HEALTH_IDS = packQueries(['health']).map((q) => q.id);

async function probe(
  o: TdsPeerOptions,
  settings: Partial<MssqlSettings> = {},
): Promise<{ r: ProbeResult; text: string; logins: number; batches: string[] }> {
  const p = await peer(o);
  const r = await runProber(
    mssqlProber,
    `127.0.0.1:${p.port}`,
    { ...LOGIN, query_packs: ['health'], ...settings },
    5000,
  );
  const families = new FamilyRegistry([...COMMON_METRICS, ...mssqlProber.metrics]);
  const rendered = renderResult(families, '', mssqlProber.phases, r, Date.now());
  const text = joinRendered(families, [rendered]).toString();
  assertExposition(text);
  return { r, text, logins: p.logins.length, batches: p.batches };
}

/** Sample lines of one family from an exposition. */
function samples(text: string, metric: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${metric}{`) || l.startsWith(`${metric} `));
}

/** The one mssql_pack_query_failed finding of a result. */
function packFinding(r: ProbeResult): import('../../exporters/types').Finding {
  const all = (r.findings ?? []).filter((f) => f.code === 'mssql_pack_query_failed');
  expect(all).toHaveLength(1);
  return all[0];
}

function typeOf(text: string, metric: string): string | undefined {
  return /^# TYPE \S+ (\S+)$/m.exec(text.split('\n').filter((l) => l.startsWith(`# TYPE ${metric} `))[0] ?? '')?.[1];
}

test("every series of the pack, from answers shaped like SQL Server's, on one login", async () => {
  const { r, text, logins, batches } = await probe({ queries: healthQueries() });
  expect(r.failure).toBeUndefined();
  expect(r.success).toBe(true);
  expect(r.findings?.filter((f) => f.code === 'mssql_pack_query_failed')).toEqual([]);
  expect(logins).toBe(1);
  // @@VERSION, then each pack query exactly once.
  expect(batches.filter((b) => b !== 'select @@version' && !b.startsWith('set '))).toEqual(HEALTH_IDS.map(healthSql));
  for (const id of HEALTH_IDS)
    expect(samples(text, 'probe_mssql_query_success')).toContain(`probe_mssql_query_success{query="${id}"} 1`);

  expect(samples(text, 'mssql_connections')).toEqual([
    'mssql_connections{database="master",state="running"} 1',
    'mssql_connections{database="master",state="sleeping"} 4',
    'mssql_connections{database="erp",state="sleeping"} 37',
    'mssql_connections{database="erp",state="running"} 3',
    'mssql_connections{database="erp",state="dormant"} 2',
  ]);
  expect(samples(text, 'mssql_database_state')).toEqual([
    'mssql_database_state{database="master"} 0',
    'mssql_database_state{database="tempdb"} 0',
    'mssql_database_state{database="model"} 0',
    'mssql_database_state{database="msdb"} 0',
    'mssql_database_state{database="erp"} 0',
    'mssql_database_state{database="archive"} 6',
    'mssql_database_state{database="erp_standby"} 1',
  ]);
  expect(samples(text, 'mssql_deadlocks_total')).toEqual(['mssql_deadlocks_total 17']);
  expect(samples(text, 'mssql_user_errors_total')).toEqual(['mssql_user_errors_total 5230']);
  expect(samples(text, 'mssql_batch_requests_total')).toEqual(['mssql_batch_requests_total 98412377']);
  expect(samples(text, 'mssql_page_life_expectancy_seconds')).toEqual(['mssql_page_life_expectancy_seconds 2841']);
  expect(samples(text, 'mssql_memory_grants_pending')).toEqual(['mssql_memory_grants_pending 0']);
  for (const counter of [
    'mssql_deadlocks_total',
    'mssql_user_errors_total',
    'mssql_batch_requests_total',
    'mssql_log_growths_total',
  ]) {
    expect(typeOf(text, counter)).toBe('counter');
  }
  expect(typeOf(text, 'mssql_database_state')).toBe('gauge');
  // The offline database's log counters are NULL: no samples, counted as skipped.
  expect(samples(text, 'mssql_log_used_bytes')).toEqual([
    'mssql_log_used_bytes{database="master"} 1253376',
    'mssql_log_used_bytes{database="erp"} 8493465600',
  ]);
  expect(samples(text, 'mssql_log_used_ratio')).toEqual([
    'mssql_log_used_ratio{database="master"} 0.39',
    'mssql_log_used_ratio{database="erp"} 0.72',
  ]);
  expect(samples(text, 'mssql_log_growths_total')).toEqual([
    'mssql_log_growths_total{database="master"} 0',
    'mssql_log_growths_total{database="erp"} 14',
    'mssql_log_growths_total{database="archive"} 2',
  ]);
  expect(samples(text, 'probe_mssql_query_rows_skipped')).toContain(
    'probe_mssql_query_rows_skipped{query="health/log"} 2',
  );
  expect(samples(text, 'mssql_database_file_size_bytes')).toContain(
    'mssql_database_file_size_bytes{database="erp",file="erp",type="rows"} 214748364800',
  );
  expect(samples(text, 'mssql_database_file_size_bytes')).toHaveLength(5);
  expect(samples(text, 'mssql_backup_age_seconds')).toContain(
    'mssql_backup_age_seconds{database="erp",type="log"} 600',
  );
  expect(samples(text, 'mssql_backup_age_seconds')).toContain(
    'mssql_backup_age_seconds{database="model",type="full"} 31536000',
  );
  expect(samples(text, 'mssql_backup_missing')).toContain('mssql_backup_missing{database="model",type="full"} 1');
  expect(samples(text, 'mssql_backup_missing')).toContain('mssql_backup_missing{database="erp",type="full"} 0');
  expect(samples(text, 'mssql_agent_job_failed')).toEqual([
    'mssql_agent_job_failed{job_name="DatabaseBackup - USER_DATABASES - FULL"} 0',
    'mssql_agent_job_failed{job_name="IndexOptimize - USER_DATABASES"} 1',
    'mssql_agent_job_failed{job_name="syspolicy_purge_history"} 0',
  ]);
  // The unreachable replica's role is NULL: no role sample, but its health is there.
  expect(samples(text, 'mssql_ag_replica_role')).toEqual([
    'mssql_ag_replica_role{availability_group="ag_erp",replica="SQL01"} 1',
    'mssql_ag_replica_role{availability_group="ag_erp",replica="SQL02"} 2',
  ]);
  expect(samples(text, 'mssql_ag_replica_synchronization_health')).toEqual([
    'mssql_ag_replica_synchronization_health{availability_group="ag_erp",replica="SQL01"} 2',
    'mssql_ag_replica_synchronization_health{availability_group="ag_erp",replica="SQL02"} 2',
    'mssql_ag_replica_synchronization_health{availability_group="ag_erp",replica="SQL03"} 0',
  ]);
  expect(samples(text, 'probe_mssql_query_rows_skipped')).toContain(
    'probe_mssql_query_rows_skipped{query="health/availability"} 1',
  );
  expect(samples(text, 'mssql_blocked_sessions')).toEqual(['mssql_blocked_sessions 2']);
  expect(samples(text, 'mssql_blocked_longest_wait_seconds')).toEqual(['mssql_blocked_longest_wait_seconds 41.5']);
});

test('without VIEW SERVER STATE: the five queries that need it fail alone, each a finding naming the permission; the rest export', async () => {
  const { r, text, logins } = await probe({
    queries: healthQueries({
      'health/connections': deniedByGuard('sys.dm_exec_sessions'),
      'health/blocking': deniedByGuard('sys.dm_exec_requests'),
      'health/counters': DENIED_SERVER_STATE,
      'health/log': DENIED_SERVER_STATE,
      'health/availability': DENIED_SERVER_STATE,
    }),
  });
  expect(r.success).toBe(true);
  expect(r.failure).toBeUndefined();
  expect(logins).toBe(1);
  const failed = ['health/connections', 'health/counters', 'health/log', 'health/availability', 'health/blocking'];
  for (const id of HEALTH_IDS) {
    expect(samples(text, 'probe_mssql_query_success')).toContain(
      `probe_mssql_query_success{query="${id}"} ${failed.includes(id) ? 0 : 1}`,
    );
  }
  const finding = packFinding(r);
  expect(finding.severity).toBe('warning');
  expect(finding.message).toMatch(
    /^5 of 9 pack queries failed, their series are missing: health\/connections \(error 50000\), health\/counters \(error 300\), health\/log \(error 300\), health\/availability \(error 300\), health\/blocking \(error 50000\); health\/connections: VIEW SERVER STATE permission is needed/,
  );
  expect(finding.advice).toBe(
    'Grant the login VIEW SERVER STATE (GRANT VIEW SERVER STATE TO [login]); the other pack queries still run.',
  );
  const failures = r.details?.packFailures as { query: string; error: number; message: string }[];
  expect(failures.map((f) => f.query)).toEqual(failed);
  // Both of SQL Server's messages are kept, the cause first.
  expect(failures[1].message).toBe(
    "VIEW SERVER STATE permission was denied on object 'server', database 'master'.; The user does not have permission to perform this action.",
  );
  expect(failures[0].message).toMatch(/without it sys\.dm_exec_sessions shows only this login's own session/);
  for (const m of [
    'mssql_connections',
    'mssql_deadlocks_total',
    'mssql_log_used_bytes',
    'mssql_ag_replica_role',
    'mssql_blocked_sessions',
  ]) {
    expect(samples(text, m)).toEqual([]);
  }
  expect(samples(text, 'mssql_database_state')).toHaveLength(7);
  expect(samples(text, 'mssql_backup_age_seconds')).toHaveLength(6);
  expect(samples(text, 'mssql_agent_job_failed')).toHaveLength(3);
});

test('no user in msdb: backups and Agent jobs fail alone with msdb advice', async () => {
  const { r, text } = await probe({
    queries: healthQueries({ 'health/backups': NO_MSDB_ACCESS, 'health/agent_jobs': NO_MSDB_ACCESS }),
  });
  expect(r.success).toBe(true);
  const finding = packFinding(r);
  expect(finding.message).toBe(
    '2 of 9 pack queries failed, their series are missing: health/backups (error 916), health/agent_jobs (error 916); ' +
      'health/backups: The server principal "monitor" is not able to access the database "msdb" under the current security context.',
  );
  expect(finding.advice).toMatch(
    /^The login cannot read msdb: it needs SELECT on msdb\.dbo\.backupset .*db_datareader.*The login cannot read msdb: it needs SELECT on msdb\.dbo\.sysjobs/,
  );
  expect(samples(text, 'mssql_backup_age_seconds')).toEqual([]);
  expect(samples(text, 'mssql_connections')).toHaveLength(5);
});

test('SQL Server 2008 R2: no availability group views and no sessions.database_id; those two fail alone, the rest export', async () => {
  const { r, text } = await probe({
    version: { major: 10, minor: 50, build: 6000, subbuild: 34 },
    queries: healthQueries({
      'health/availability': NO_HADR_VIEWS,
      'health/connections': { error: { number: 207, message: "Invalid column name 'database_id'." } },
    }),
  });
  expect(r.success).toBe(true);
  const finding = packFinding(r);
  expect(finding.message).toBe(
    "2 of 9 pack queries failed, their series are missing: health/connections (error 207), health/availability (error 208); health/connections: Invalid column name 'database_id'.",
  );
  expect(finding.advice).toMatch(
    /^This SQL Server lacks a view or column the query reads \(the pack needs SQL Server 2012 or later/,
  );
  expect((r.details?.packFailures as { message: string }[])[1].message).toBe(
    "Invalid object name 'sys.dm_hadr_availability_replica_states'.",
  );
  expect(samples(text, 'probe_mssql_query_success')).toContain(
    'probe_mssql_query_success{query="health/availability"} 0',
  );
  expect(samples(text, 'mssql_deadlocks_total')).toEqual(['mssql_deadlocks_total 17']);
});

test('a failed pack query does not fail the probe, a failed configured query still does', async () => {
  const { r } = await probe(
    { queries: { ...healthQueries({ 'health/files': DENIED_SERVER_STATE }) } },
    { queries: [{ name: 'mssql_missing', help: 'Missing.', value_column: 'n', query: 'select n from missing' }] },
  );
  expect(r.success).toBe(false);
  expect(r.failure).toMatchObject({ phase: 'query', reason: 'query_error' });
  expect(r.failure?.message).toMatch(/^query mssql_missing: Invalid object name/);
  expect(packFinding(r).message).toMatch(
    /^1 of 9 pack queries failed, their series are missing: health\/files \(error 300\);/,
  );
});

test('the pack declares its families with help and type, before any row arrives', async () => {
  const { r } = await probe({ queries: healthQueries() });
  const declared = r.details?.customMetrics as { name: string; type: string }[];
  const names = packQueries(['health']).flatMap((q) => q.metrics.map((m) => m.name));
  expect(declared.map((m) => m.name)).toEqual(names);
  for (const m of declared) expect(m.type === 'counter').toBe(m.name.endsWith('_total'));
});
