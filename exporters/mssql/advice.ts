// What the operator should check next, for each way the SQL Server ladder fails.
import type { ProbeFailure } from '../types';

/** What the operator should check when the TCP connection is refused. */
export function refusedAdvice(port: number, instance?: string): string {
  return (
    `Connection refused on ${port}: is the SQL Server service running, is TCP/IP enabled in SQL Server ` +
    `Configuration Manager (Network Configuration), does it listen on ${port} ` +
    `(${instance ? 'a named instance uses a dynamic port unless one is fixed' : 'a hidden instance moves to 2433'}), ` +
    'and does the Windows firewall allow the port?'
  );
}

export const TIMEOUT_ADVICE =
  'No answer in time: a firewall or routing drops the packets; try ping and a traceroute to the server.';

/** A SYN that got no answer at all: the one silence that is the network's. */
export function connectTimeoutAdvice(port: number): string {
  return (
    `No answer to the TCP connection request on port ${port}: a firewall drops the packets (most do, rather than reject) or routing loses them. ` +
    `Check that the Windows firewall and every firewall on the path allow TCP ${port}; try ping and a traceroute to the server.`
  );
}

export const NO_RESPONSE_ADVICE =
  'The TCP connection was accepted, so the network path is fine, but the PRELOGIN got no answer: the SQL Server service may be hung ' +
  '(check its ERRORLOG and the Windows event log), or another service holds the port: one that waits for its client to speak first, ' +
  'or a TLS-only listener (a SQL Server 2022 set to Force Strict Encryption expects TLS first: try encrypt: strict).';

export const STALLED_PRELOGIN_ADVICE =
  'SQL Server began its PRELOGIN answer and stopped: the service is hung or overloaded, not the network (the handshake completed). Check its ERRORLOG.';

export const STALLED_LOGIN_ADVICE =
  'SQL Server answered the PRELOGIN, then did not finish the login before the deadline: the network is fine. The service is hung or overloaded ' +
  '(worker threads exhausted), or the login waits on something: a logon trigger, the authentication backend (a domain controller for Windows logins), ' +
  'a database in recovery. Check the ERRORLOG, and connect with the dedicated admin connection (DAC) to see what the sessions wait on.';

export const STALLED_QUERY_ADVICE =
  'SQL Server accepted the login, then did not answer the query before the deadline: the service is hung or overloaded (worker threads, blocking), ' +
  'not the network. Check the ERRORLOG, and connect with the dedicated admin connection (DAC) to see what the sessions wait on.';

/** Where tedious was when the deadline stopped it (its state names), in the operator's words. */
export function stalledStep(state: string | undefined): string {
  switch (state) {
    case 'Connecting':
      return 'the second TCP connection (for the login) was not accepted';
    case 'SentPrelogin':
      return 'the PRELOGIN of the login connection got no answer';
    case 'SentTLSSSLNegotiation':
      return 'the TLS handshake did not finish';
    case 'SentLogin7WithStandardLogin':
    case 'SentLogin7WithNTLMLogin':
    case 'SentLogin7WithFedauth':
      return 'LOGIN7 got no answer';
    case 'LoggedInSendingInitialSql':
      return 'the session settings sent after LOGINACK got no answer';
    default:
      return 'the login did not finish';
  }
}

export const RESET_ADVICE =
  'The server closed the connection: check its error log (ERRORLOG) for the reason; a firewall or IPS that resets TDS sessions does the same.';

export const PROTOCOL_ADVICE =
  'The server answered with bytes that are not valid TDS for this step: something other than SQL Server ' +
  "(a proxy, a broken middlebox, another service) answers after the PRELOGIN, or the server is faulty; check what listens on the port and the server's ERRORLOG.";

export const TLS_ADVICE =
  'The server certificate was not accepted: set trust_server_certificate: true for a self-signed certificate, ' +
  'ca_file for a private CA, or server_name to the name in the certificate.';

export function loginAdvice(number?: number): string {
  switch (number) {
    case 18456:
      return 'Login failed: check the user name and password (password_file), that the login exists and is enabled, and that the server allows SQL Server authentication (mixed mode).';
    case 18452:
      return 'The server refused a Windows (NTLM) login: check the domain, or use a SQL login without domain.';
    case 4060:
      return "The database cannot be opened for this login: check database: and the login's permissions.";
    default:
      return 'Login failed: the server error log (ERRORLOG) names the reason for this login attempt.';
  }
}

// A SQL Server failure that carries no advice of its own: the mssql ProberDef's `advice`, which
// adviceFor (exporters/advice.ts) asks before the generic advice.
const GENERIC_REFUSED =
  'Nothing accepts connections on this port: is the SQL Server service running; is TCP/IP enabled in the server network configuration (SQL Server Configuration Manager); is the instance really on this port (1433 by default; a hidden instance moves to 2433, a named instance uses a dynamic port the Browser announces); is the Windows firewall open for it?';
const GENERIC_NOT_TDS =
  "Something other than SQL Server answers on this port: check the port (another service may have taken 1433) and the instance's real port.";

export function mssqlAdvice(failure: ProbeFailure, generic: string | undefined): string | undefined {
  if (failure.reason === 'refused') return GENERIC_REFUSED;
  if (failure.reason === 'not_tds') return GENERIC_NOT_TDS;
  if (failure.reason === 'timeout' && failure.phase === 'connect') {
    return `${generic} For SQL Server also check that port 1433 (or the instance's port) is allowed through the Windows firewall.`;
  }
  return generic;
}
