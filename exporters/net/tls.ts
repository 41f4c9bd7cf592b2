// TLS for every prober that offers it: settings and their schema, the handshake (over a socket
// already open, or a fresh connection) under the probe's deadline, and what a handshake tells:
// certificate and version facts, the blackbox certificate series and the expiry finding.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { DeadlineError, ProbeError, type Ladder } from '../ladder';
import type { Fact, Finding, MetricDef } from '../types';
import type { ProbeSignal } from '../signal';
import { socketChainExpiries } from './chain';
import { settled } from './connect';
import { nodeTls } from './lazy-tls';

export interface TlsSettings {
  /** Server name for SNI and certificate checks; defaults to the target host when it is a name. */
  server_name?: string;
  insecure_skip_verify?: boolean;
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  min_version?: 'TLS10' | 'TLS11' | 'TLS12' | 'TLS13';
}

/** JSON Schema of `tls_config`, shared by every prober that offers TLS. */
export const TLS_CONFIG_SCHEMA = {
  type: 'object',
  description: 'TLS client settings.',
  additionalProperties: false,
  properties: {
    server_name: { type: 'string', description: 'Server name for SNI and certificate verification.' },
    insecure_skip_verify: {
      type: 'boolean',
      description: 'Accept any certificate (facts are still reported).',
    },
    ca_file: { type: 'string', description: 'PEM file of CA certificates to trust.' },
    cert_file: { type: 'string', description: 'Client certificate (PEM).' },
    key_file: { type: 'string', description: 'Client key (PEM).' },
    min_version: { enum: ['TLS10', 'TLS11', 'TLS12', 'TLS13'], description: 'Lowest TLS version accepted.' },
  },
} as const;

const MIN_VERSIONS: Record<string, tls.SecureVersion> = {
  TLS10: 'TLSv1',
  TLS11: 'TLSv1.1',
  TLS12: 'TLSv1.2',
  TLS13: 'TLSv1.3',
};

/** Options for tls.connect from the module's settings. Reads CA/cert/key files. */
export function tlsOptions(settings: TlsSettings, host: string): tls.ConnectionOptions {
  const servername = settings.server_name ?? (net.isIP(host) ? undefined : host);
  const opts: tls.ConnectionOptions = {
    rejectUnauthorized: !settings.insecure_skip_verify,
    servername,
    // Over an existing socket Node checks the certificate against `host`, or "localhost" when
    // it is missing: name the target (or the configured server name) explicitly.
    host: settings.server_name ?? host,
  };
  if (settings.ca_file) opts.ca = readFileSync(settings.ca_file);
  if (settings.cert_file) opts.cert = readFileSync(settings.cert_file);
  if (settings.key_file) opts.key = readFileSync(settings.key_file);
  if (settings.min_version) opts.minVersion = MIN_VERSIONS[settings.min_version];
  return opts;
}

/**
 * Runs a TLS handshake, either over an existing socket (explicit TLS, e.g. after AUTH TLS)
 * or as a fresh connection when `socket` carries `host`/`port` in opts. Any handshake failure
 * becomes ProbeError('tls_error'). The caller destroys the returned socket.
 */
export function startTls(
  socket: net.Socket | Duplex | undefined,
  opts: tls.ConnectionOptions,
  signal: ProbeSignal,
): Promise<tls.TLSSocket> {
  const tlsSocket = nodeTls().connect(socket ? { ...opts, socket } : opts);
  trustAnchors.set(tlsSocket, opts.ca);
  return settled(tlsSocket, 'secureConnect', signal).catch((err: unknown) => {
    if (err instanceof DeadlineError || err instanceof ProbeError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ECONNRESET' || e.code === 'EPIPE') {
      throw new ProbeError('tls_error', `TLS handshake: connection reset by peer`);
    }
    throw new ProbeError('tls_error', `TLS handshake failed: ${e.code ? `${e.code}: ` : ''}${e.message}`);
  });
}

/** The `ca` each TLS socket was opened with, for telling sent certificates from trusted ones. */
const trustAnchors = new WeakMap<tls.TLSSocket, tls.ConnectionOptions['ca']>();

/** Families every TLS-capable prober shares. */
export const TLS_METRICS: readonly MetricDef[] = [
  {
    name: 'probe_tls_cert_not_after_timestamp_seconds',
    help: 'Expiry of the peer certificate (notAfter), seconds since the epoch.',
    type: 'gauge',
    labelNames: [],
  },
  {
    name: 'probe_tls_version_info',
    help: 'TLS version negotiated with the target (value 1).',
    type: 'gauge',
    labelNames: ['version'],
  },
  {
    name: 'probe_ssl_earliest_cert_expiry',
    help: 'Earliest notAfter among the certificates the peer sent, seconds since the epoch (as blackbox_exporter).',
    type: 'gauge',
    labelNames: [],
  },
  {
    name: 'probe_ssl_last_chain_expiry_timestamp_seconds',
    help: 'Earliest notAfter along the verified certificate chain, seconds since the epoch (as blackbox_exporter; verified connections only).',
    type: 'gauge',
    labelNames: [],
  },
];

/** Facts from a finished handshake: certificate expiry and protocol version. */
export function tlsFacts(socket: tls.TLSSocket): Fact[] {
  const facts: Fact[] = [];
  const cert = socket.getPeerCertificate();
  if (cert && cert.valid_to) {
    const notAfter = Date.parse(cert.valid_to);
    if (Number.isFinite(notAfter)) {
      facts.push({ metric: 'probe_tls_cert_not_after_timestamp_seconds', value: notAfter / 1000 });
    }
  }
  const chain = socketChainExpiries(socket, trustAnchors.get(socket));
  if (chain.earliestSeconds !== undefined)
    facts.push({ metric: 'probe_ssl_earliest_cert_expiry', value: chain.earliestSeconds });
  if (chain.lastChainSeconds !== undefined) {
    facts.push({ metric: 'probe_ssl_last_chain_expiry_timestamp_seconds', value: chain.lastChainSeconds });
  }
  const version = socket.getProtocol();
  if (version) facts.push({ metric: 'probe_tls_version_info', value: 1, labels: { version } });
  return facts;
}

/** A certificate closer than this to its notAfter is a warning finding. */
export const CERT_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;

/**
 * tls_cert_expiry: the server certificate expires within CERT_WARNING_DAYS (warning) or has
 * expired (critical); undefined otherwise. `service` names what serves it ("SQL Server", "FTP server").
 */
export function certExpiryFinding(notAfterMs: number, nowMs: number, service = 'server'): Finding | undefined {
  if (!Number.isFinite(notAfterMs)) return undefined;
  const left = notAfterMs - nowMs;
  const date = new Date(notAfterMs).toISOString();
  if (left <= 0) {
    return {
      code: 'tls_cert_expiry',
      severity: 'critical',
      message: `the ${service} certificate expired on ${date}`,
      advice: `Renew the ${service} certificate and reload the service; clients that verify certificates cannot connect.`,
    };
  }
  if (left < CERT_WARNING_DAYS * DAY_MS) {
    return {
      code: 'tls_cert_expiry',
      severity: 'warning',
      message: `the ${service} certificate expires on ${date}, in ${Math.ceil(left / DAY_MS)} day(s)`,
      advice: `Renew the ${service} certificate before it expires, and reload the service so it serves the new one.`,
    };
  }
  return undefined;
}

/** A TLS rung's certificate and version facts, and the expiry finding when expiry is near or past. */
export function recordTls(l: Ladder, service: string, socket: tls.TLSSocket): void {
  for (const f of tlsFacts(socket)) l.facts.push(f);
  const expiry = certExpiryFinding(Date.parse(socket.getPeerCertificate()?.valid_to ?? ''), Date.now(), service);
  if (expiry) l.finding(expiry);
}
