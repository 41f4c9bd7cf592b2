// The SQL Server prober. Only re-exports: see prober.ts.
export { mssqlProber, type MssqlSettings, type MssqlQuery } from './prober';
