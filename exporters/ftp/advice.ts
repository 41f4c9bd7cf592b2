// What an operator should check next, per failed rung, and the mapping of FTP reply codes
// to failure reasons. Kept in one place so diagnose, the status page and the metrics agree.
import { ProbeError } from '../ladder';
import type { FailureReason, ProbeFailure } from '../types';
import { replyText, type Reply } from './reply';
import type { DataMode, FtpTlsMode } from './settings';

export const ADVICE = {
  banner_unexpected:
    'Check that an FTP server (and not another service) listens on this port, and that tls matches the port (implicit TLS on 990).',
  too_many_connections:
    'The server is at its connection limit (vsftpd max_clients/max_per_ip, proftpd MaxClients, pure-ftpd -c/-C): look for leaked sessions or raise the limit.',
  tls_required: 'The server refuses clear-text sessions: set tls: explicit (or implicit on port 990) in the module.',
  tls_unsupported:
    'The server does not offer AUTH TLS: enable TLS on the server (vsftpd ssl_enable, proftpd mod_tls TLSEngine, pure-ftpd -Y) or set tls: none.',
  auth_failed:
    'Check username and password_file of the module, that the account exists and is not locked, and that anonymous login is enabled if no user is set.',
  pasv_address_mismatch:
    "The server advertises a passive address other than the one the agent reached it on (NAT): set the server's passive address (vsftpd pasv_address, proftpd MasqueradeAddress, pure-ftpd -P) or the NAT's FTP helper; or set pasv_mismatch: follow_control_address.",
  pasv_unreachable:
    "The server's passive data port is not reachable from the agent: open the server's passive port range (vsftpd pasv_min_port/pasv_max_port, proftpd PassivePorts, pure-ftpd -p) in every firewall on the path.",
  active_refused:
    "The server did not connect back to the agent for the active data connection: a firewall or NAT on the agent's side (inbound to active_listen.ports) or on the server's side (outbound from the server, often from port 20) drops or rejects it; open that path, or use passive modes.",
  active_disabled:
    'The server refuses active mode (PORT/EPRT): enable it on the server (vsftpd port_enable=YES; proftpd: remove the <Limit PORT EPRT> DenyAll block; pyftpdlib: keep PORT and EPRT in proto_cmds), or remove active from data_channel.',
  data_timeout:
    'The data channel opened but the transfer did not finish in time: look for a middlebox stalling the data port, a huge listing or canary file, or raise the module timeout.',
  stalled:
    "The FTP server answered the greeting and earlier commands, then stopped answering: the service is hung or overloaded (a session process blocked on a name lookup, PAM, a full disk or a dead mount), not the network. Check the server's processes and logs.",
  data_error:
    'The server refused or aborted the transfer: check that path/retrieve exist and are readable by the probe user.',
  protocol_error: 'The server answered something an FTP server should not; check the server logs for this session.',
} as const;

/** True when a refusal's wording says the server wants TLS first. */
function mentionsTls(r: Reply): boolean {
  return /\b(TLS|SSL|AUTH|encrypt\w*|secur\w*|cleartext|clear-text|plaintext)\b/i.test(replyText(r, 1000));
}

/** True when a refusal's wording says the server is full (proftpd MaxClients answers 530). */
function mentionsLimit(r: Reply): boolean {
  return /too many|maximum number|(clients|users|connections|sessions)\b.*\b(limit|reached|already connected)/i.test(
    replyText(r, 1000),
  );
}

function err(reason: FailureReason, message: string): ProbeError {
  const advice = (ADVICE as Record<string, string>)[reason];
  return new ProbeError(reason, message, advice);
}

/**
 * A refusal during login (USER/PASS). 530/534/550/522 (and pure-ftpd's 421) from a server that
 * wants TLS first become tls_required when the session is clear text; a 530 that says the
 * server is full (proftpd's MaxClients) is too_many_connections; any other 530 is a failed login.
 */
export function loginFailure(step: 'USER' | 'PASS', r: Reply, tls: FtpTlsMode): ProbeError {
  const text = `${step}: ${r.code} ${replyText(r)}`;
  if (tls === 'none') {
    if (r.code === 534 || r.code === 522) return err('tls_required', text);
    // pure-ftpd closes clear-text sessions with "421 Sorry, cleartext sessions ... are not accepted".
    if ([421, 530, 550].includes(r.code) && mentionsTls(r)) return err('tls_required', text);
  }
  if (r.code === 421) return err('too_many_connections', text);
  if (r.code === 530 && mentionsLimit(r)) return err('too_many_connections', text);
  if (r.code === 530 || (step === 'PASS' && r.code >= 500)) return err('auth_failed', text);
  return err('protocol_error', `${text} (unexpected during login)`);
}

/** A refusal to a data-channel command (EPSV, PASV, PORT, LIST, RETR ...). */
export function dataFailure(what: string, r: Reply, mode: DataMode, tls: FtpTlsMode): ProbeError {
  const text = `${what}: ${r.code} ${replyText(r)}`;
  if (r.code === 421) return err('too_many_connections', text);
  // To EPRT, 522 means "network protocol not supported" (RFC 2428), not "TLS required".
  if (mode === 'active' && what === 'EPRT' && r.code === 522) {
    return err('active_disabled', `${text} (the server refuses active mode over this address family)`);
  }
  if (r.code === 522 || r.code === 534 || r.code === 521) {
    return err(tls === 'none' ? 'tls_required' : 'tls_error', text);
  }
  if (r.code === 530 && tls === 'none' && mentionsTls(r)) return err('tls_required', text);
  if (r.code === 425) return err(mode === 'active' ? 'active_refused' : 'pasv_unreachable', text);
  if (mode === 'active' && (what === 'PORT' || what === 'EPRT') && [500, 501, 502, 504, 550].includes(r.code)) {
    return err('active_disabled', `${text} (the server refuses active mode)`);
  }
  if ([426, 450, 451, 452, 550, 551, 552, 553].includes(r.code)) return err('data_error', text);
  if ([500, 502, 504].includes(r.code) && ['EPSV', 'PASV', 'PORT', 'EPRT'].includes(what)) {
    return new ProbeError(
      'protocol_error',
      `${text} (the server does not implement ${what})`,
      `The server does not implement ${what}: remove ${mode} from data_channel, or enable it on the server.`,
    );
  }
  return err('protocol_error', text);
}

export function probeError(reason: FailureReason, message: string): ProbeError {
  return err(reason, message);
}

const REFUSED =
  'Nothing accepts connections on this port: is the FTP server running and listening on this address and port (21, or 990 for implicit TLS); is a firewall rejecting the connection?';

/** The ftp ProberDef's `advice`: for a failure that carries none of its own. */
export function ftpAdvice(failure: ProbeFailure, generic: string | undefined): string | undefined {
  return failure.reason === 'refused' ? REFUSED : generic;
}
