// Building blocks shared by every prober that speaks TCP: address parsing, resolution with an
// IP-version preference, connect and TLS upgrade that honour the probe's deadline signal, TLS facts,
// and a line reader with hard size caps.
import { promises as dns } from 'node:dns';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import { DeadlineError, ProbeError, isShutdown, untilAborted, type Ladder } from '../ladder';
import type { Fact, Finding, MetricDef } from '../types';
import type { ProbeSignal } from '../signal';
import { watchedHandle, watchedSocket } from '../arrival';
import { nodeTcpBinding, type TcpBinding } from './node-tcp';
import { socketChainExpiries } from './chain';

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses `host:port`, `[v6]:port`, `host`, `v6` (bare, no port) or `scheme://host:port/...`.
 * Returns an error string for anything else. Pure.
 */
export function parseHostPort(address: string, defaultPort?: number): HostPort | string {
  let s = address.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(s);
  if (scheme) {
    s = s.slice(scheme[0].length);
    const at = s.lastIndexOf('@', s.search(/[/?#]|$/));
    if (at >= 0) s = s.slice(at + 1);
    s = s.replace(/[/?#].*$/, '');
  }
  if (s === '') return 'address is empty';
  let host: string;
  let portText: string | undefined;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) return `"${address}": missing "]" after IPv6 address`;
    host = s.slice(1, end);
    const rest = s.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return `"${address}": expected ":port" after "]"`;
      portText = rest.slice(1);
    }
    if (net.isIPv6(host) === false) return `"${address}": "${host}" is not an IPv6 address`;
  } else if (s.split(':').length > 2) {
    // A bare IPv6 address without brackets cannot carry a port.
    if (!net.isIPv6(s)) return `"${address}": not a host:port (use [v6]:port for IPv6)`;
    host = s;
  } else {
    const colon = s.indexOf(':');
    host = colon >= 0 ? s.slice(0, colon) : s;
    portText = colon >= 0 ? s.slice(colon + 1) : undefined;
  }
  if (host === '') return `"${address}": host is empty`;
  if (!net.isIP(host) && !/^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9_.])?$/.test(host)) {
    return `"${address}": "${host}" is not a valid host name or address`;
  }
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) return `"${address}": a port is required (host:port)`;
    port = defaultPort;
  } else {
    if (!/^[0-9]{1,5}$/.test(portText)) return `"${address}": port "${portText}" is not a number`;
    port = Number(portText);
  }
  if (port < 1 || port > 65535) return `"${address}": port ${port} is out of range 1-65535`;
  return { host, port };
}

export type IpPreference = 'ip4' | 'ip6';

export interface Resolved {
  address: string;
  family: 4 | 6;
}

/**
 * Resolves a host to one address, preferring the given IP version; with fallback the other
 * version is used when the preferred one has no address.
 */
export async function resolveHost(
  host: string,
  prefer: IpPreference,
  fallback: boolean,
  signal: ProbeSignal,
): Promise<Resolved> {
  const literal = net.isIP(host);
  if (literal === 4 || literal === 6) {
    const family = literal;
    if (!fallback && family !== (prefer === 'ip4' ? 4 : 6)) {
      throw new ProbeError('dns_error', `${host} is IPv${family} but the module requires ${prefer}`);
    }
    return { address: host, family };
  }
  const all = await untilAborted(dns.lookup(host, { all: true, verbatim: true }), signal);
  const want = prefer === 'ip4' ? 4 : 6;
  const preferred = all.find((a) => a.family === want);
  if (preferred) return { address: preferred.address, family: want };
  const other = all.find((a) => a.family === (want === 4 ? 6 : 4));
  if (other && fallback) return { address: other.address, family: other.family as 4 | 6 };
  throw new ProbeError(
    'dns_error',
    `${host} has no ${prefer === 'ip4' ? 'IPv4' : 'IPv6'} address${fallback ? '' : ' (fallback disabled)'}`,
  );
}

export interface ConnectOptions {
  localAddress?: string;
  /**
   * Disable Nagle's algorithm (default true): right for request/reply protocols. A probe that
   * writes at most once gains nothing from it and saves a system call per probe.
   */
  noDelay?: boolean;
  /** Do not start reading once connected: a connect-only probe never reads, and saves a system call. */
  noRead?: boolean;
  /** An unconnected socket to connect instead of a new one (watchedSocket in exporters/arrival.ts makes one). */
  socket?: net.Socket;
}

/**
 * Opens a TCP connection. On abort the half-open socket is destroyed and DeadlineError is
 * thrown. The caller owns the returned socket and must destroy it in `finally`.
 */
export function connectTcp(
  address: string,
  port: number,
  signal: ProbeSignal,
  opts: ConnectOptions = {},
): Promise<net.Socket> {
  const target = { host: address, port, localAddress: opts.localAddress };
  const socket = opts.socket ? opts.socket.connect(target) : net.connect(target);
  if (opts.noDelay !== false) socket.setNoDelay(true);
  if (opts.noRead) socket.pause();
  const connected = new Promise<net.Socket>((resolve, reject) => {
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
  return untilAborted(connected, signal, () => socket.destroy()).catch((err: unknown) => {
    socket.destroy();
    throw err;
  });
}

/** What a connect-only probe holds once connected: something to close, and when it connected. */
export interface Closable {
  destroy(): void;
  /** performance.now() time the handshake was seen complete (arrival stamps), if known. */
  connectedAt?: number;
}

let bareConnect = process.env.PORTPROBE_NET_SOCKET_ONLY !== '1';

/**
 * Whether connect-only probes may use the bare TCP handle (the default, unless the environment
 * sets PORTPROBE_NET_SOCKET_ONLY=1). With false they go through `net` like every other probe.
 */
export function setBareConnect(enabled: boolean): void {
  bareConnect = enabled;
}

/** The binding connect-only probes use, or null when they go through `net` as every other probe does. */
export function tcpBinding(): TcpBinding | null {
  return bareConnect ? nodeTcpBinding() : null;
}

/** The error `net` gives for a failed connect, from a libuv status. */
function connectError(status: number, address: string, port: number): Error {
  let code: string;
  try {
    code = getSystemErrorName(status);
  } catch {
    code = `E${-status}`;
  }
  return Object.assign(new Error(`connect ${code} ${address}:${port}`), { code, errno: status, syscall: 'connect', address, port });
}

/**
 * A TCP connect and nothing else, for probes that only ask whether the port accepts. It opens
 * Node's TCP handle directly instead of a `net.Socket`, whose stream machinery a connection that
 * is closed unread never uses (about a quarter less CPU per connect: BENCHMARKS.md).
 * Same contract as connectTcp: rejects with the connect error, or DeadlineError on abort.
 */
export function connectOnly(address: string, family: 4 | 6, port: number, signal: ProbeSignal, stamp = false): Promise<Closable> {
  if (signal.aborted) return Promise.reject(new DeadlineError(isShutdown(signal)));
  const b = tcpBinding();
  if (!b) return connectOnlyNet(address, family, port, signal, stamp);
  // With `stamp`, the handle adopts a socket that the arrival addon watches before it connects.
  const watched = stamp ? watchedHandle(family, false) : undefined;
  const watch = watched?.watch;
  return new Promise<Closable>((resolve, reject) => {
    const handle = watched?.handle ?? new b.TCP(b.constants.SOCKET);
    const req = new b.TCPConnectWrap();
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      watch?.stop();
      handle.close();
    };
    const onAbort = (): void => {
      if (closed) return;
      close(); // a pending connect completes with ECANCELED, which `closed` ignores
      reject(new DeadlineError(isShutdown(signal)));
    };
    req.oncomplete = (status: number): void => {
      if (closed) return;
      signal.removeEventListener('abort', onAbort);
      if (status < 0) {
        close();
        reject(connectError(status, address, port));
        return;
      }
      const connectedAt = watch?.connectedAt();
      watch?.stop();
      resolve({ destroy: close, connectedAt });
    };
    const err = family === 6 ? handle.connect6(req, address, port) : handle.connect(req, address, port);
    if (err) {
      close();
      reject(connectError(err, address, port));
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** connectOnly through `net` (PORTPROBE_NET_SOCKET_ONLY=1, or no usable bare handle). */
async function connectOnlyNet(address: string, family: 4 | 6, port: number, signal: ProbeSignal, stamp: boolean): Promise<Closable> {
  const watched = stamp ? watchedSocket(family) : undefined;
  try {
    const socket = await connectTcp(address, port, signal, { noDelay: false, noRead: true, socket: watched?.socket });
    return { destroy: () => socket.destroy(), connectedAt: watched?.watch.connectedAt() };
  } finally {
    watched?.watch.stop();
  }
}

export interface TlsSettings {
  /** Server name for SNI and certificate checks; defaults to the target host when it is a name. */
  server_name?: string;
  insecure_skip_verify?: boolean;
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  min_version?: 'TLS10' | 'TLS11' | 'TLS12' | 'TLS13';
}

/** JSON Schema properties of the IP-version choice, shared by every prober that resolves names. */
export const IP_PROTOCOL_PROPERTIES = {
  preferred_ip_protocol: { enum: ['ip4', 'ip6'], description: 'IP version tried first when resolving the target.' },
  ip_protocol_fallback: {
    type: 'boolean',
    description: 'Use the other IP version when the preferred one has no address.',
  },
} as const;

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
  const tlsSocket = tls.connect(socket ? { ...opts, socket } : opts);
  trustAnchors.set(tlsSocket, opts.ca);
  const done = new Promise<tls.TLSSocket>((resolve, reject) => {
    tlsSocket.once('secureConnect', () => {
      tlsSocket.off('error', reject);
      resolve(tlsSocket);
    });
    tlsSocket.once('error', reject);
  });
  return untilAborted(done, signal, () => tlsSocket.destroy()).catch((err: unknown) => {
    tlsSocket.destroy();
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
  if (chain.earliestSeconds !== undefined) facts.push({ metric: 'probe_ssl_earliest_cert_expiry', value: chain.earliestSeconds });
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

export interface LineReaderLimits {
  /** Longest line accepted, in bytes (excluding CRLF). Longer lines are an error. */
  maxLineBytes: number;
  /** Total bytes buffered at once. */
  maxBufferedBytes: number;
}

export class LineTooLongError extends ProbeError {
  constructor(limit: number) {
    super('protocol_error', `peer sent a line longer than ${limit} bytes`);
  }
}

/**
 * Reads LF- or CRLF-terminated lines from a socket with hard caps: a peer that never sends a
 * newline cannot make the buffer grow past `maxLineBytes`. Pauses the socket when lines queue up.
 */
export class LineReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly lines: string[] = [];
  private waiter?: { resolve: (l: string) => void; reject: (e: unknown) => void };
  private error?: unknown;
  private ended = false;
  private readonly onData = (chunk: Buffer): void => this.push(chunk);
  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake();
  };
  private readonly onError = (err: unknown): void => {
    this.error = err;
    this.wake();
  };

  constructor(
    private readonly socket: net.Socket,
    private readonly limits: LineReaderLimits = { maxLineBytes: 8192, maxBufferedBytes: 65536 },
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /** Stops listening; the socket keeps any unread bytes. */
  detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
  }

  private push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let nl: number;
    while ((nl = this.buf.indexOf(0x0a)) >= 0) {
      let end = nl;
      if (end > 0 && this.buf[end - 1] === 0x0d) end -= 1;
      if (end > this.limits.maxLineBytes) {
        this.fail(new LineTooLongError(this.limits.maxLineBytes));
        return;
      }
      this.lines.push(this.buf.subarray(0, end).toString('latin1'));
      this.buf = this.buf.subarray(nl + 1);
    }
    if (this.buf.length > this.limits.maxLineBytes) {
      this.fail(new LineTooLongError(this.limits.maxLineBytes));
      return;
    }
    if (this.lines.length * 80 > this.limits.maxBufferedBytes) this.socket.pause();
    this.wake();
  }

  private fail(err: unknown): void {
    this.error = err;
    this.buf = Buffer.alloc(0);
    this.socket.destroy();
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.lines.length > 0) {
      this.waiter = undefined;
      w.resolve(this.lines.shift() as string);
      if (this.lines.length === 0) this.socket.resume();
    } else if (this.error !== undefined) {
      this.waiter = undefined;
      w.reject(this.error);
    } else if (this.ended) {
      this.waiter = undefined;
      const e = new Error('connection closed by peer') as NodeJS.ErrnoException;
      e.code = 'ECONNRESET';
      w.reject(e);
    }
  }

  /** Next line, or rejects on close, error, cap or abort. */
  readLine(signal: ProbeSignal): Promise<string> {
    if (this.waiter) return Promise.reject(new Error('LineReader: concurrent readLine'));
    const p = new Promise<string>((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
    this.wake();
    return untilAborted(p, signal, () => {
      this.waiter = undefined;
    });
  }
}
