// What to check next for a SQL Server failure that carries no advice of its own: the mssql
// ProberDef's `advice`, which adviceFor (exporters/advice.ts) asks before the generic advice.
import type { ProbeFailure } from '../types';

const REFUSED =
  'Nothing accepts connections on this port: is the SQL Server service running; is TCP/IP enabled in the server network configuration (SQL Server Configuration Manager); is the instance really on this port (1433 by default; a hidden instance moves to 2433, a named instance uses a dynamic port the Browser announces); is the Windows firewall open for it?';
const NOT_TDS =
  "Something other than SQL Server answers on this port: check the port (another service may have taken 1433) and the instance's real port.";

export function mssqlAdvice(failure: ProbeFailure, generic: string | undefined): string | undefined {
  if (failure.reason === 'refused') return REFUSED;
  if (failure.reason === 'not_tds') return NOT_TDS;
  if (failure.reason === 'timeout' && failure.phase === 'connect') {
    return `${generic} For SQL Server also check that port 1433 (or the instance's port) is allowed through the Windows firewall.`;
  }
  return generic;
}
