// The SQL Server prober. Only re-exports: the ladder is prober.ts; settings.ts, metrics.ts,
// browse.ts (Browser), handshake.ts (PRELOGIN), session.ts (login and queries) and rows.ts hold the rest.
export { mssqlProber } from './prober';
export { MSSQL_METRICS, MSSQL_PHASES } from './metrics';
export {
  MSSQL_DEFAULTS,
  MSSQL_SETTINGS_SCHEMA,
  validateMssql,
  validateMssqlAddress,
  type MssqlSettings,
  type MssqlQuery,
} from './settings';
export { MAX_ANSWER_BYTES, mapTediousError } from './session';
export { rowsToFacts } from './rows';
