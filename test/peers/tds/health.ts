// Answers to the health pack's queries, shaped like SQL Server's: the column types each query's
// expressions have per Microsoft's documentation of the views it reads (tinyint for state, role
// and synchronization_health; int for COUNT, DATEDIFF and CASE; bigint for cntr_value and
// sizes; nvarchar for names), NULL where the views return NULL, and the errors a login without
// the permission, or an older version, gets. decimal results are sent as float (the peer has no
// DECIMALN; both arrive as JavaScript numbers).
import { packQueries } from '../../../exporters/mssql/pack';
import { normaliseSql, type QueryAnswer } from './server';

/** The normalised SQL of a health query, as the peer keys its answers. */
export function healthSql(id: string): string {
  const q = packQueries(['health']).find((p) => p.id === id);
  if (!q) throw new Error(`no health query ${id}`);
  return normaliseSql(q.sql);
}

/** A healthy-looking server with one AG, an offline and a restoring database, one failed job. */
export const HEALTH_ANSWERS: Record<string, QueryAnswer> = {
  'health/connections': {
    columns: [
      { name: 'database', type: 'nvarchar' },
      { name: 'state', type: 'nvarchar' },
      { name: 'connections', type: 'int32' },
    ],
    rows: [
      ['master', 'running', 1],
      ['master', 'sleeping', 4],
      ['erp', 'sleeping', 37],
      ['erp', 'running', 3],
      ['erp', 'dormant', 2],
    ],
  },
  'health/databases': {
    columns: [
      { name: 'database', type: 'nvarchar' },
      { name: 'state', type: 'tinyint' },
    ],
    rows: [
      ['master', 0],
      ['tempdb', 0],
      ['model', 0],
      ['msdb', 0],
      ['erp', 0],
      ['archive', 6],
      ['erp_standby', 1],
    ],
  },
  'health/counters': {
    columns: [
      { name: 'deadlocks', type: 'int' },
      { name: 'user_errors', type: 'int' },
      { name: 'batch_requests', type: 'int' },
      { name: 'page_life_expectancy', type: 'int' },
      { name: 'memory_grants_pending', type: 'int' },
    ],
    rows: [[17, 5230, 98412377, 2841, 0]],
  },
  'health/log': {
    columns: [
      { name: 'database', type: 'nvarchar' },
      { name: 'log_used_bytes', type: 'int' },
      { name: 'log_used_ratio', type: 'float' },
      { name: 'log_growths', type: 'int' },
    ],
    rows: [
      ['master', 1_253_376, 0.39, 0],
      ['erp', 8_493_465_600, 0.72, 14],
      // The Databases counters of an offline database are still listed, with no log in use.
      ['archive', null, null, 2],
    ],
  },
  'health/files': {
    columns: [
      { name: 'database', type: 'nvarchar' },
      { name: 'file', type: 'nvarchar' },
      { name: 'type', type: 'nvarchar' },
      { name: 'size_bytes', type: 'int' },
    ],
    rows: [
      ['master', 'master', 'rows', 5_242_880],
      ['master', 'mastlog', 'log', 2_097_152],
      ['erp', 'erp', 'rows', 214_748_364_800],
      ['erp', 'erp_log', 'log', 10_737_418_240],
      ['erp', 'erp_fs', 'filestream', 0],
    ],
  },
  'health/backups': {
    columns: [
      { name: 'database', type: 'nvarchar' },
      { name: 'type', type: 'nvarchar' },
      { name: 'age_seconds', type: 'int32' },
      { name: 'missing', type: 'int32' },
    ],
    rows: [
      ['master', 'full', 86_000, 0],
      ['model', 'full', 31_536_000, 1],
      ['msdb', 'full', 86_100, 0],
      ['erp', 'full', 3_600, 0],
      ['erp', 'log', 600, 0],
      ['archive', 'full', 1_209_600, 0],
    ],
  },
  'health/agent_jobs': {
    columns: [
      { name: 'job_name', type: 'nvarchar' },
      { name: 'failed', type: 'int32' },
    ],
    rows: [
      ['DatabaseBackup - USER_DATABASES - FULL', 0],
      ['IndexOptimize - USER_DATABASES', 1],
      ['syspolicy_purge_history', 0],
    ],
  },
  'health/availability': {
    columns: [
      { name: 'availability_group', type: 'nvarchar' },
      { name: 'replica', type: 'nvarchar' },
      { name: 'role', type: 'tinyint' },
      { name: 'synchronization_health', type: 'tinyint' },
    ],
    rows: [
      ['ag_erp', 'SQL01', 1, 2],
      ['ag_erp', 'SQL02', 2, 2],
      // A remote replica the primary cannot reach: role NULL, not healthy.
      ['ag_erp', 'SQL03', null, 0],
    ],
  },
  'health/blocking': {
    columns: [
      { name: 'blocked', type: 'int32' },
      { name: 'longest_wait_seconds', type: 'float' },
    ],
    rows: [[2, 41.5]],
  },
};

/** What a login without VIEW SERVER STATE gets from a view that checks it (Msg 300 then 297). */
export const DENIED_SERVER_STATE: QueryAnswer = {
  errors: [
    {
      number: 300,
      class: 14,
      message: "VIEW SERVER STATE permission was denied on object 'server', database 'master'.",
    },
    { number: 297, class: 16, message: 'The user does not have permission to perform this action.' },
  ],
};

/** The pack's own guard, for views that would otherwise answer with the login's session only. */
export const deniedByGuard = (view: string): QueryAnswer => ({
  error: {
    number: 50000,
    class: 16,
    message: `VIEW SERVER STATE permission is needed: without it ${view} shows only this login's own session`,
  },
});

/** A login without a user in msdb. */
export const NO_MSDB_ACCESS: QueryAnswer = {
  error: {
    number: 916,
    class: 14,
    message:
      'The server principal "monitor" is not able to access the database "msdb" under the current security context.',
  },
};

/** SQL Server 2008 R2 and older: no availability group views. */
export const NO_HADR_VIEWS: QueryAnswer = {
  error: { number: 208, class: 16, message: "Invalid object name 'sys.dm_hadr_availability_replica_states'." },
};

/** Peer `queries` answering every health query as HEALTH_ANSWERS, with `overrides` by id. */
export function healthQueries(overrides: Record<string, QueryAnswer> = {}): Record<string, QueryAnswer> {
  const out: Record<string, QueryAnswer> = {};
  for (const q of packQueries(['health'])) out[healthSql(q.id)] = overrides[q.id] ?? HEALTH_ANSWERS[q.id];
  return out;
}
