// The SQL Server prober's phases and its own metric families (beyond the common probe_* ones).
import type { MetricDef } from '../types';
import { TLS_METRICS } from '../net';

export const MSSQL_PHASES = ['resolve', 'browser', 'connect', 'prelogin', 'tls', 'login', 'query'] as const;

export const MSSQL_METRICS: readonly MetricDef[] = [
  {
    name: 'probe_mssql_version_info',
    help: 'SQL Server version from the PRELOGIN answer, with product and level (a trailing + means a build after that level).',
    type: 'gauge',
    labelNames: ['version', 'product', 'level'],
  },
  {
    name: 'probe_mssql_encryption_info',
    help: 'Encryption answer to a client offering it (off: available, required: forced, not_supported: no certificate; strict: TDS 8, TLS first).',
    type: 'gauge',
    labelNames: ['mode'],
  },
  {
    name: 'probe_mssql_patch_advisory',
    help: '1 when the build is below the advised or configured minimum build for its version.',
    type: 'gauge',
    labelNames: [],
  },
  {
    name: 'probe_mssql_browser_port',
    help: 'TCP port the SQL Server Browser reported for the named instance.',
    type: 'gauge',
    labelNames: ['sql_instance'],
  },
  {
    name: 'probe_mssql_instance_hidden',
    help: '1 when the Browser does not list the named instance but its configured port answers TDS.',
    type: 'gauge',
    labelNames: ['sql_instance'],
  },
  {
    name: 'probe_mssql_query_success',
    help: 'Whether a query succeeded (query="version" is SELECT @@VERSION; health/... are query_packs; others are configured queries).',
    type: 'gauge',
    labelNames: ['query'],
  },
  {
    name: 'probe_mssql_query_rows_skipped',
    help: 'Values of a query skipped because they are NULL (they have no sample); one per row and value column.',
    type: 'gauge',
    labelNames: ['query'],
  },
  {
    name: 'probe_mssql_query_result_age_seconds',
    help: 'Age of the exported result of a query with min_interval: 0 when it ran in this probe, else seconds since it last ran.',
    type: 'gauge',
    labelNames: ['query'],
  },
  {
    name: 'probe_mssql_query_duration_seconds',
    help: 'Time a query took, from sending it to its last row.',
    type: 'gauge',
    labelNames: ['query'],
  },
  ...TLS_METRICS,
];
