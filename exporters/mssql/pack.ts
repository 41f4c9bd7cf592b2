// Built-in query packs: `query_packs: [health]` turns on the queries a DBA wants once the login
// works. Each query is written for SQL Server 2012 to 2025, says the permission it needs, and
// may feed several metrics from one round trip. A pack query that fails (a missing permission, a
// view an older version lacks) fails alone: it becomes a finding and probe_mssql_query_success 0,
// the probe and the other queries carry on. The README lists every series with its query.
import type { MetricType } from '../types';

/** One metric fed by a query's rows: key_labels become labels, each of `values` a sample. */
export interface RowMetric {
  name: string;
  help: string;
  type: MetricType;
  key_labels: string[];
  /** Columns holding sample values; with several, `value_label` names the label that tells them apart. */
  values: string[];
  value_label?: string;
}

export interface PackQuery {
  /** The `query` label of probe_mssql_query_* series, e.g. health/backups. */
  id: string;
  sql: string;
  /** What the login needs for this query, in the words of GRANT (for advice and the README). */
  permission: string;
  metrics: RowMetric[];
}

export const QUERY_PACKS = ['health'] as const;
export type QueryPackName = (typeof QUERY_PACKS)[number];

/**
 * Raised by the queries whose views answer a login without VIEW SERVER STATE with its own
 * session only (sys.dm_exec_sessions, sys.dm_exec_requests): a silent partial count would be
 * worse than an error. Views that check the permission themselves raise error 300.
 */
const needServerState = (what: string): string =>
  `RAISERROR(N'VIEW SERVER STATE permission is needed: without it ${what} shows only this login''s own session', 16, 1)`;

const g = (name: string, help: string, key_labels: string[], values: string[], value_label?: string): RowMetric => ({
  name,
  help,
  type: 'gauge',
  key_labels,
  values,
  ...(value_label ? { value_label } : {}),
});
const c = (name: string, help: string, key_labels: string[], values: string[]): RowMetric => ({
  ...g(name, help, key_labels, values),
  type: 'counter',
});

const HEALTH: readonly PackQuery[] = [
  {
    id: 'health/connections',
    permission: 'VIEW SERVER STATE',
    sql: `IF HAS_PERMS_BY_NAME(NULL, NULL, N'VIEW SERVER STATE') = 1
  SELECT ISNULL(DB_NAME(s.database_id), CAST(s.database_id AS nvarchar(10))) AS [database],
         LOWER(s.status) AS state, COUNT(*) AS connections
  FROM sys.dm_exec_sessions AS s
  WHERE s.is_user_process = 1
  GROUP BY s.database_id, s.status
ELSE
  ${needServerState('sys.dm_exec_sessions')};`,
    metrics: [
      g(
        'mssql_connections',
        'User sessions by database and state (running, sleeping, dormant, preconnect).',
        ['database', 'state'],
        ['connections'],
      ),
    ],
  },
  {
    id: 'health/databases',
    permission: 'VIEW ANY DATABASE (granted to public by default)',
    sql: `SELECT d.name AS [database], d.state AS state
FROM sys.databases AS d
WHERE d.source_database_id IS NULL;`,
    metrics: [
      g(
        'mssql_database_state',
        'State of each database: 0 online, 1 restoring, 2 recovering, 3 recovery pending, 4 suspect, 5 emergency, 6 offline, 7 copying, 10 offline secondary.',
        ['database'],
        ['state'],
      ),
    ],
  },
  {
    id: 'health/counters',
    permission: 'VIEW SERVER STATE',
    sql: `SELECT
  MAX(CASE WHEN o.obj = N'Locks' AND p.counter_name = N'Number of Deadlocks/sec' AND p.instance_name = N'_Total' THEN p.cntr_value END) AS deadlocks,
  MAX(CASE WHEN o.obj = N'SQL Errors' AND p.counter_name = N'Errors/sec' AND p.instance_name = N'User Errors' THEN p.cntr_value END) AS user_errors,
  MAX(CASE WHEN o.obj = N'SQL Statistics' AND p.counter_name = N'Batch Requests/sec' THEN p.cntr_value END) AS batch_requests,
  MAX(CASE WHEN o.obj = N'Buffer Manager' AND p.counter_name = N'Page life expectancy' THEN p.cntr_value END) AS page_life_expectancy,
  MAX(CASE WHEN o.obj = N'Memory Manager' AND p.counter_name = N'Memory Grants Pending' THEN p.cntr_value END) AS memory_grants_pending
FROM sys.dm_os_performance_counters AS p
CROSS APPLY (SELECT SUBSTRING(RTRIM(p.object_name), CHARINDEX(N':', p.object_name) + 1, 128) AS obj) AS o
WHERE o.obj IN (N'Locks', N'SQL Errors', N'SQL Statistics', N'Buffer Manager', N'Memory Manager');`,
    metrics: [
      c(
        'mssql_deadlocks_total',
        'Lock requests that ended in a deadlock since the server started (counter Number of Deadlocks/sec, _Total).',
        [],
        ['deadlocks'],
      ),
      c(
        'mssql_user_errors_total',
        'User errors since the server started (counter SQL Errors: Errors/sec, User Errors).',
        [],
        ['user_errors'],
      ),
      c(
        'mssql_batch_requests_total',
        'Transact-SQL batches received since the server started (counter Batch Requests/sec).',
        [],
        ['batch_requests'],
      ),
      g(
        'mssql_page_life_expectancy_seconds',
        'Seconds a page stays in the buffer pool without references (Buffer Manager: Page life expectancy).',
        [],
        ['page_life_expectancy'],
      ),
      g(
        'mssql_memory_grants_pending',
        'Processes waiting for a workspace memory grant (Memory Manager: Memory Grants Pending).',
        [],
        ['memory_grants_pending'],
      ),
    ],
  },
  {
    id: 'health/log',
    permission: 'VIEW SERVER STATE',
    sql: `SELECT RTRIM(p.instance_name) AS [database],
  MAX(CASE WHEN p.counter_name = N'Log File(s) Used Size (KB)' THEN p.cntr_value * 1024 END) AS log_used_bytes,
  MAX(CASE WHEN p.counter_name = N'Percent Log Used' THEN p.cntr_value / 100.0 END) AS log_used_ratio,
  MAX(CASE WHEN p.counter_name = N'Log Growths' THEN p.cntr_value END) AS log_growths
FROM sys.dm_os_performance_counters AS p
WHERE RTRIM(p.object_name) LIKE N'%:Databases'
  AND p.counter_name IN (N'Log File(s) Used Size (KB)', N'Percent Log Used', N'Log Growths')
  AND p.instance_name NOT IN (N'_Total', N'mssqlsystemresource')
GROUP BY p.instance_name;`,
    metrics: [
      g(
        'mssql_log_used_bytes',
        'Transaction log space in use per database (Log File(s) Used Size).',
        ['database'],
        ['log_used_bytes'],
      ),
      g(
        'mssql_log_used_ratio',
        'Share of the transaction log in use per database, 0 to 1 (Percent Log Used).',
        ['database'],
        ['log_used_ratio'],
      ),
      c(
        'mssql_log_growths_total',
        'Times the transaction log of the database grew since the server started.',
        ['database'],
        ['log_growths'],
      ),
    ],
  },
  {
    id: 'health/files',
    permission: 'VIEW ANY DEFINITION (or ALTER ANY DATABASE, CREATE ANY DATABASE)',
    sql: `IF HAS_PERMS_BY_NAME(NULL, NULL, N'VIEW ANY DEFINITION') = 1
   OR HAS_PERMS_BY_NAME(NULL, NULL, N'ALTER ANY DATABASE') = 1
   OR HAS_PERMS_BY_NAME(NULL, NULL, N'CREATE ANY DATABASE') = 1
  SELECT DB_NAME(f.database_id) AS [database], f.name AS [file], LOWER(f.type_desc) AS type,
         CAST(f.size AS bigint) * 8192 AS size_bytes
  FROM sys.master_files AS f
ELSE
  RAISERROR(N'VIEW ANY DEFINITION permission is needed: without it sys.master_files hides the files of other databases', 16, 1);`,
    metrics: [
      g(
        'mssql_database_file_size_bytes',
        'Size of each data and log file (type rows, log, filestream, fulltext).',
        ['database', 'file', 'type'],
        ['size_bytes'],
      ),
    ],
  },
  {
    id: 'health/backups',
    permission: 'SELECT on msdb.dbo.backupset (db_datareader in msdb)',
    sql: `SELECT d.name AS [database], t.type,
  DATEDIFF(SECOND, ISNULL(b.finished, d.create_date), GETDATE()) AS age_seconds,
  CASE WHEN b.finished IS NULL THEN 1 ELSE 0 END AS missing
FROM sys.databases AS d
CROSS JOIN (VALUES (N'full', 'D'), (N'log', 'L')) AS t (type, code)
OUTER APPLY (
  SELECT MAX(s.backup_finish_date) AS finished
  FROM msdb.dbo.backupset AS s
  WHERE s.database_name = d.name AND s.type = t.code
) AS b
WHERE d.name <> N'tempdb' AND d.source_database_id IS NULL AND d.state <> 1
  AND (t.code = 'D' OR (d.recovery_model <> 3 AND d.name <> N'model'));`,
    metrics: [
      g(
        'mssql_backup_age_seconds',
        'Seconds since the last full or log backup finished (server clock), or since the database was created when it has none.',
        ['database', 'type'],
        ['age_seconds'],
      ),
      g(
        'mssql_backup_missing',
        '1 when msdb records no backup of this type for the database.',
        ['database', 'type'],
        ['missing'],
      ),
    ],
  },
  {
    id: 'health/agent_jobs',
    permission: 'SELECT on msdb.dbo.sysjobs and dbo.sysjobhistory (db_datareader in msdb)',
    sql: `SELECT j.name AS job_name, CASE WHEN h.run_status = 0 THEN 1 ELSE 0 END AS failed
FROM msdb.dbo.sysjobs AS j
OUTER APPLY (
  SELECT TOP (1) x.run_status
  FROM msdb.dbo.sysjobhistory AS x
  WHERE x.job_id = j.job_id AND x.step_id = 0
  ORDER BY x.instance_id DESC
) AS h
WHERE j.enabled = 1;`,
    metrics: [
      g(
        'mssql_agent_job_failed',
        '1 when the last finished run of the enabled SQL Agent job failed.',
        ['job_name'],
        ['failed'],
      ),
    ],
  },
  {
    id: 'health/availability',
    permission: 'VIEW SERVER STATE',
    sql: `SELECT g.name AS availability_group, r.replica_server_name AS replica,
  s.role AS role, s.synchronization_health AS synchronization_health
FROM sys.dm_hadr_availability_replica_states AS s
JOIN sys.availability_replicas AS r ON r.replica_id = s.replica_id
JOIN sys.availability_groups AS g ON g.group_id = s.group_id;`,
    metrics: [
      g(
        'mssql_ag_replica_role',
        'Role of each availability replica: 0 resolving, 1 primary, 2 secondary.',
        ['availability_group', 'replica'],
        ['role'],
      ),
      g(
        'mssql_ag_replica_synchronization_health',
        'Synchronization health of each availability replica: 0 not healthy, 1 partially healthy, 2 healthy.',
        ['availability_group', 'replica'],
        ['synchronization_health'],
      ),
    ],
  },
  {
    id: 'health/blocking',
    permission: 'VIEW SERVER STATE',
    sql: `IF HAS_PERMS_BY_NAME(NULL, NULL, N'VIEW SERVER STATE') = 1
  SELECT COUNT(*) AS blocked, ISNULL(MAX(r.wait_time), 0) / 1000.0 AS longest_wait_seconds
  FROM sys.dm_exec_requests AS r
  WHERE r.blocking_session_id > 0
ELSE
  ${needServerState('sys.dm_exec_requests')};`,
    metrics: [
      g('mssql_blocked_sessions', 'Requests waiting on a lock held by another session.', [], ['blocked']),
      g(
        'mssql_blocked_longest_wait_seconds',
        'Longest wait of a blocked request, 0 when none is blocked.',
        [],
        ['longest_wait_seconds'],
      ),
    ],
  },
];

const PACKS: Record<QueryPackName, readonly PackQuery[]> = { health: HEALTH };

export function packQueries(names: readonly string[]): PackQuery[] {
  return names.flatMap((n) => PACKS[n as QueryPackName] ?? []);
}

/** Metric names a pack defines (reserved for it when the pack is on). */
export function packMetricNames(names: readonly string[]): Set<string> {
  return new Set(packQueries(names).flatMap((q) => q.metrics.map((m) => m.name)));
}

/** Advice for a failed pack query, from the server's error number. */
export function packAdvice(q: PackQuery, errorNumber: number | undefined): string {
  switch (errorNumber) {
    case 297:
    case 300:
    case 50000:
      return `Grant the login ${q.permission} (GRANT VIEW SERVER STATE TO [login]); the other pack queries still run.`;
    case 229:
    case 916:
      return `The login cannot read msdb: it needs ${q.permission} (CREATE USER in msdb, then ALTER ROLE db_datareader ADD MEMBER).`;
    case 207:
    case 208:
      return 'This SQL Server lacks a view or column the query reads (the pack needs SQL Server 2012 or later: availability groups and sys.dm_exec_sessions.database_id came with 2012).';
    default:
      return `Run the query by hand with the same login; it needs ${q.permission}.`;
  }
}
