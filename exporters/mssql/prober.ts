// The SQL Server ladder: resolve → browser (named instance) → connect → prelogin → tls → login →
// query. Without credentials it stops after prelogin (and TLS when the server requires it or the
// module asks): version and encryption policy need no login. Login and queries use tedious.
import net from 'node:net';
import { IP_PROTOCOL_PROPERTIES } from '../tcp/net';
import type tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Connection, ConnectionConfiguration } from 'tedious';
import type { Fact, MetricDef, ProberDef } from '../types';
import { Ladder, ProbeError, classifyError, isShutdown, oneLine, runLadder } from '../ladder';
import { SECRET_REF_PATTERN, type Secret } from '../secret';
import {
  TLS_METRICS,
  connectTcp,
  parseHostPort,
  resolveHost,
  startTls,
  recordTls,
  type IpPreference,
} from '../tcp/net';
import { parseDuration } from '../../config/duration';
import { PacketType, encodeMessage } from './packet';
import { Encrypt, buildPrelogin, formatVersion, instanceValidity, parsePrelogin, type Prelogin } from './prelogin';
import {
  MAX_INSTANCE_NAME_BYTES,
  buildUcastEx,
  buildUcastInst,
  findInstance,
  parseSvrResp,
  queryBrowser,
} from './browser';
import { advise, formatBuild, nameVersion, parseBuild, type Advisory } from './versions';
import { NOT_TDS_ADVICE, readMessage, tlsOverTds } from './wire';
import { TokenStreamError, containTokenErrors, isTokenStreamError } from './contain';
import { encryptionFinding, patchAdvisoryFinding, untrustedCertificateFinding } from './findings';
import type { ProbeSignal } from '../signal';
import { mssqlAdvice } from './advice';
import { MSSQL_URLS } from './url';

/**
 * tedious, loaded on the first login: it is the agent's largest dependency (its Azure and date
 * libraries alone are megabytes of code), and an agent with no mssql login module never needs it.
 */
function tedious(): typeof import('tedious') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('tedious') as typeof import('tedious');
}

export interface MssqlQuery {
  /** Metric name of the gauge (or counter) this query feeds. */
  name: string;
  help: string;
  /** Default gauge. */
  type?: 'gauge' | 'counter';
  /** Result columns that become labels, one series per row. */
  key_labels?: string[];
  /** Result column holding the sample value. */
  value_column: string;
  query: string;
  /** Duration text, e.g. "5s" (default 5s); bounded by the probe's own deadline. */
  timeout?: string;
}

export interface MssqlSettings {
  preferred_ip_protocol: IpPreference;
  ip_protocol_fallback: boolean;
  /** Named instance, resolved to a TCP port through the SQL Server Browser. */
  instance?: string;
  browser_port: number;
  username?: string;
  /** Resolved by the config loader from `password_file` or a `${ENV}` reference. */
  password?: Secret;
  password_file?: string;
  /** Windows domain: switches login to NTLM. */
  domain?: string;
  database?: string;
  /** true: TLS inside TDS after PRELOGIN; 'strict': TDS 8, TLS before any TDS byte. */
  encrypt: boolean | 'strict';
  trust_server_certificate: boolean;
  /** Name expected in the server certificate (default: the target host when it is a name). */
  server_name?: string;
  /** PEM file of CA certificates that sign the server's certificate. */
  ca_file?: string;
  queries: MssqlQuery[];
  /** Minimum build per major version, e.g. {"15": "15.0.4355", "16": "16.0.4135"}. */
  min_build: Record<string, string>;
}

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
    help: 'Whether a query succeeded (query="version" is SELECT @@VERSION; others are configured queries).',
    type: 'gauge',
    labelNames: ['query'],
  },
  {
    name: 'probe_mssql_query_rows_skipped',
    help: 'Rows of a configured query skipped because their value_column is NULL (they have no sample).',
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

const METRIC_NAME = '^[a-zA-Z_:][a-zA-Z0-9_:]*$';
const LABEL_NAME = '^[a-zA-Z_][a-zA-Z0-9_]*$';
const ENV_REF = SECRET_REF_PATTERN;
const DURATION = '^([0-9]+(ms|s|m|h))+$';

export const MSSQL_SETTINGS_SCHEMA = {
  type: 'object',
  description: 'SQL Server probe: Browser, PRELOGIN version and encryption, optional TLS, login and queries.',
  additionalProperties: false,
  properties: {
    ...IP_PROTOCOL_PROPERTIES,
    instance: {
      type: 'string',
      minLength: 1,
      maxLength: MAX_INSTANCE_NAME_BYTES,
      pattern: '^[A-Za-z0-9_$#-]+$',
      description: 'Named instance (e.g. SQLEXPRESS), resolved to a port through the SQL Server Browser on UDP.',
    },
    browser_port: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'UDP port of the SQL Server Browser (default 1434).',
    },
    username: {
      type: 'string',
      minLength: 1,
      maxLength: 128,
      description: 'Login name. Without it the probe stops after PRELOGIN (and TLS): no credentials needed.',
    },
    password_file: { type: 'string', minLength: 1, description: 'File holding the password (one line).' },
    password: {
      type: 'string',
      pattern: ENV_REF,
      description: 'Environment reference holding the password, such as ${MSSQL_PASSWORD}; inline passwords are rejected.',
    },
    domain: {
      type: 'string',
      minLength: 1,
      maxLength: 255,
      description: 'Windows domain: log in with NTLM as DOMAIN\\username instead of SQL authentication.',
    },
    database: { type: 'string', minLength: 1, maxLength: 128, description: 'Database to log in to (default: the login\'s default).' },
    encrypt: {
      enum: [true, false, 'strict'],
      description:
        'Encrypt the connection: true for TLS negotiated in PRELOGIN (needed when the server forces encryption), ' +
        'strict for TDS 8 (TLS first, as SQL Server 2022 "Force Strict Encryption" requires; the certificate is always verified).',
    },
    trust_server_certificate: {
      type: 'boolean',
      description: 'Accept the server certificate without verifying it (self-signed certificates).',
    },
    server_name: { type: 'string', minLength: 1, description: 'Name expected in the server certificate.' },
    ca_file: { type: 'string', minLength: 1, description: 'PEM file of CA certificates that sign the server certificate.' },
    queries: {
      type: 'array',
      maxItems: 50,
      description: 'Custom queries whose result columns become metrics, one series per row.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'help', 'query', 'value_column'],
        properties: {
          name: { type: 'string', pattern: METRIC_NAME, maxLength: 200, description: 'Metric name, e.g. mssql_database_size_bytes.' },
          help: { type: 'string', minLength: 1, maxLength: 500, description: 'HELP text of the metric.' },
          type: { enum: ['gauge', 'counter'], description: 'Metric type (default gauge).' },
          key_labels: {
            type: 'array',
            maxItems: 10,
            items: { type: 'string', pattern: LABEL_NAME },
            description: 'Columns whose values become labels of the same name.',
          },
          value_column: { type: 'string', minLength: 1, description: 'Column holding the numeric value.' },
          query: { type: 'string', minLength: 1, maxLength: 10000, description: 'The SQL batch to run.' },
          timeout: { type: 'string', pattern: DURATION, description: 'Deadline of this query (default 5s), within the probe timeout.' },
        },
      },
    },
    min_build: {
      type: 'object',
      description: 'Minimum build per major version ("15": "15.0.4355"); older builds set probe_mssql_patch_advisory 1.',
      additionalProperties: false,
      patternProperties: {
        '^[0-9]{1,2}$': { type: 'string', pattern: '^[0-9]+\\.[0-9]+\\.[0-9]+(\\.[0-9]+)?$', description: 'A build such as 15.0.4355.' },
      },
    },
  },
} as const;

/** Most bytes one login connection may read (login, @@VERSION and every configured query). */
export const MAX_ANSWER_BYTES = 32 * (1 << 20);
const ANSWER_CAP_CHECK_MS = 20;

const RESERVED_LABELS = new Set(['target', 'module', 'query', 'instance', 'sql_instance', 'job', 'le', 'quantile']);
const MAX_ROWS = 1000;
const MAX_LABEL_VALUE = 200;
const DEFAULT_QUERY_TIMEOUT = '5s';

export function validateMssql(s: MssqlSettings): string[] {
  const errors: string[] = [];
  if (s.username === undefined && (s.password !== undefined || s.domain !== undefined)) {
    errors.push('username: required when a password or domain is set');
  }
  if (s.username !== undefined && s.password === undefined) {
    errors.push('password: a username needs password_file or password: ${VAR}');
  }
  if (s.encrypt === 'strict' && s.trust_server_certificate) {
    errors.push('trust_server_certificate: strict encryption always verifies the certificate; use ca_file for a private or self-signed one');
  }
  if (s.queries.length > 0 && s.username === undefined) {
    errors.push('queries: need a username and password to log in');
  }
  const builtin = new Set(MSSQL_METRICS.map((m) => m.name));
  const seen = new Map<string, number>();
  s.queries.forEach((q, i) => {
    if (builtin.has(q.name) || q.name.startsWith('probe_') || q.name.startsWith('portprobe_')) {
      errors.push(`queries[${i}].name: "${q.name}" is reserved for the exporter's own metrics`);
    }
    const prev = seen.get(q.name);
    if (prev !== undefined) errors.push(`queries[${i}].name: "${q.name}" is already used by queries[${prev}]`);
    seen.set(q.name, i);
    const labels = q.key_labels ?? [];
    labels.forEach((k, j) => {
      if (RESERVED_LABELS.has(k)) errors.push(`queries[${i}].key_labels[${j}]: "${k}" is reserved`);
      if (labels.indexOf(k) !== j) errors.push(`queries[${i}].key_labels[${j}]: "${k}" is listed twice`);
    });
    if (labels.includes(q.value_column)) {
      errors.push(`queries[${i}].value_column: "${q.value_column}" is also a key label`);
    }
  });
  for (const [major, build] of Object.entries(s.min_build ?? {})) {
    const b = parseBuild(build);
    if (!b) errors.push(`min_build.${major}: "${build}" is not a build number such as 15.0.4355`);
    else if (String(b.major) !== major) errors.push(`min_build.${major}: build ${build} belongs to major version ${b.major}`);
  }
  return errors;
}

export function validateMssqlAddress(address: string): string | undefined {
  const hp = parseHostPort(address, 1433);
  return typeof hp === 'string' ? hp : undefined;
}

/** What the operator should check when the TCP connection is refused. */
function refusedAdvice(port: number, instance?: string): string {
  return (
    `Connection refused on ${port}: is the SQL Server service running, is TCP/IP enabled in SQL Server ` +
    `Configuration Manager (Network Configuration), does it listen on ${port} ` +
    `(${instance ? 'a named instance uses a dynamic port unless one is fixed' : 'a hidden instance moves to 2433'}), ` +
    'and does the Windows firewall allow the port?'
  );
}

const TIMEOUT_ADVICE = 'No answer in time: a firewall or routing drops the packets; try ping and a traceroute to the server.';

/** A SYN that got no answer at all: the one silence that is the network's. */
function connectTimeoutAdvice(port: number): string {
  return (
    `No answer to the TCP connection request on port ${port}: a firewall drops the packets (most do, rather than reject) or routing loses them. ` +
    `Check that the Windows firewall and every firewall on the path allow TCP ${port}; try ping and a traceroute to the server.`
  );
}

const NO_RESPONSE_ADVICE =
  'The TCP connection was accepted, so the network path is fine, but the PRELOGIN got no answer: the SQL Server service may be hung ' +
  '(check its ERRORLOG and the Windows event log), or another service holds the port: one that waits for its client to speak first, ' +
  'or a TLS-only listener (a SQL Server 2022 set to Force Strict Encryption expects TLS first: try encrypt: strict).';

const STALLED_PRELOGIN_ADVICE =
  'SQL Server began its PRELOGIN answer and stopped: the service is hung or overloaded, not the network (the handshake completed). Check its ERRORLOG.';

const STALLED_LOGIN_ADVICE =
  'SQL Server answered the PRELOGIN, then did not finish the login before the deadline: the network is fine. The service is hung or overloaded ' +
  '(worker threads exhausted), or the login waits on something: a logon trigger, the authentication backend (a domain controller for Windows logins), ' +
  'a database in recovery. Check the ERRORLOG, and connect with the dedicated admin connection (DAC) to see what the sessions wait on.';

const STALLED_QUERY_ADVICE =
  'SQL Server accepted the login, then did not answer the query before the deadline: the service is hung or overloaded (worker threads, blocking), ' +
  'not the network. Check the ERRORLOG, and connect with the dedicated admin connection (DAC) to see what the sessions wait on.';

/** Where tedious was when the deadline stopped it (its state names), in the operator's words. */
function stalledStep(state: string | undefined): string {
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

export const mssqlProber: ProberDef<MssqlSettings> = {
  name: 'mssql',
  defaultPort: 1433,
  urls: MSSQL_URLS,
  advice: mssqlAdvice,
  phases: MSSQL_PHASES,
  metrics: MSSQL_METRICS,
  schema: MSSQL_SETTINGS_SCHEMA,
  defaults: {
    preferred_ip_protocol: 'ip4',
    ip_protocol_fallback: true,
    browser_port: 1434,
    encrypt: false,
    trust_server_certificate: false,
    queries: [],
    min_build: {},
  },
  validate: validateMssql,
  validateAddress: validateMssqlAddress,
  run: (ctx) =>
    runLadder(ctx, async (l) => {
      const s = ctx.module.settings;
      const explicit = parseHostPort(ctx.target.address);
      const hp = typeof explicit === 'string' ? parseHostPort(ctx.target.address, 1433) : explicit;
      if (typeof hp === 'string') throw new ProbeError('internal_error', hp);
      const hasPort = typeof explicit !== 'string';
      if (s.queries.length > 0) {
        l.details.customMetrics = s.queries.map((q) => ({ name: q.name, help: q.help, type: q.type ?? 'gauge' }));
      }

      const resolved = await l.phase('resolve', () =>
        resolveHost(hp.host, s.preferred_ip_protocol, s.ip_protocol_fallback, ctx.signal),
      );
      l.ipProtocol = resolved.family;

      let port = hp.port;
      if (s.instance !== undefined) {
        const instance = s.instance;
        port = await l.phase('browser', () => browse(l, resolved.address, s.browser_port, instance, hasPort ? hp.port : undefined));
      }

      let socket: net.Socket | undefined;
      let tlsSocket: tls.TLSSocket | undefined;
      let prelogin: Prelogin;
      try {
        socket = await l.phase('connect', () =>
          connectTcp(resolved.address, port, ctx.signal).catch((err: unknown) => {
            const c = classifyError(err, ctx.signal);
            if (c.reason === 'refused') throw new ProbeError('refused', c.message, refusedAdvice(port, s.instance));
            if (c.reason === 'timeout') throw new ProbeError('timeout', c.message, connectTimeoutAdvice(port));
            throw err;
          }),
        );
        l.details.peer = `${resolved.address}:${port}`;
        const tcp = socket;
        if (s.encrypt === 'strict') {
          // TDS 8: TLS first (ALPN tds/8.0), then PRELOGIN inside it.
          tlsSocket = await l.phase('tls', () =>
            startTls(tcp, { ...tdsTlsOptions(s, hp.host), ALPNProtocols: ['tds/8.0'] }, ctx.signal).catch((err: unknown) => {
              const c = classifyError(err, ctx.signal);
              if (c.reason !== 'tls_error') throw err;
              throw new ProbeError(
                'tls_error',
                c.message,
                /reset|closed|EOF|socket disconnected/i.test(c.message)
                  ? 'The server closed the TLS handshake: it does not speak TDS 8 strict encryption; use encrypt: true.'
                  : TLS_ADVICE,
              );
            }),
          );
          recordTls(l, 'SQL Server', tlsSocket);
          const secure = tlsSocket;
          prelogin = await l.phase('prelogin', () => preloginPhase(l, secure, s, ctx.signal, true));
          l.fact('probe_mssql_encryption_info', 1, { mode: 'strict' });
          l.details.encryption = 'strict';
          l.finding(encryptionFinding('strict'));
        } else {
          prelogin = await l.phase('prelogin', () => preloginPhase(l, tcp, s, ctx.signal, false));
          const encryption = prelogin.encryption;
          if (encryption) {
            l.fact('probe_mssql_encryption_info', 1, { mode: encryption });
            l.finding(encryptionFinding(encryption));
          }
          l.details.encryption = encryption;
          const loginWanted = s.username !== undefined;
          if (s.encrypt && encryption === 'not_supported') {
            throw new ProbeError(
              'encryption_mismatch',
              'the module asks for encryption but the server has none (ENCRYPT_NOT_SUP)',
              'Install a certificate for SQL Server (SQL Server Configuration Manager, Protocols, Certificate) or set encrypt: false.',
            );
          }
          if (loginWanted && !s.encrypt && (encryption === 'required' || encryption === 'on')) {
            l.fail(
              'prelogin',
              'encryption_mismatch',
              'the server requires encryption but the module has encrypt: false',
              'Set encrypt: true in the module (with trust_server_certificate: true or ca_file when the certificate is self-signed).',
            );
            return;
          }
          if (encryption !== 'not_supported' && (s.encrypt || encryption === 'required' || encryption === 'on')) {
            // Without credentials the certificate is looked at, not enforced: the version is already
            // known, nothing secret travels, and an untrusted certificate becomes a finding (see the
            // README, "Force Encryption with a self-signed certificate"). A login module verifies it.
            const judge = !loginWanted && !s.trust_server_certificate;
            const opts = tdsTlsOptions(s, hp.host);
            tlsSocket = await l.phase('tls', () =>
              tlsOverTds(tcp, judge ? { ...opts, rejectUnauthorized: false } : opts, ctx.signal).catch((err: unknown) => {
                const c = classifyError(err, ctx.signal);
                if (c.reason === 'tls_error') throw new ProbeError('tls_error', c.message, c.advice ?? TLS_ADVICE);
                throw err;
              }),
            );
            recordTls(l, 'SQL Server', tlsSocket);
            if (judge && !tlsSocket.authorized) {
              const why = String(tlsSocket.authorizationError ?? 'unverified');
              l.details.certificate = `not trusted: ${why}`;
              l.finding(untrustedCertificateFinding(why));
            }
          }
        }
      } finally {
        tlsSocket?.destroy();
        socket?.destroy();
      }

      if (s.username === undefined) return;
      const advisory = advise(prelogin.version ?? { major: 0, minor: 0, build: 0, subbuild: 0 }, s.min_build);
      await loginAndQuery(l, ctx.signal, s, resolved.address, hp.host, port, advisory);
    }),
};

/** Resolves the instance's port through the Browser; see the README for the hidden-instance rule. */
async function browse(l: Ladder, address: string, browserPort: number, instance: string, fallbackPort?: number): Promise<number> {
  const wait = (): number => Math.max(50, Math.min(1500, l.remainingMs() / 3));
  const hidden = (why: string, browserAnswered: boolean): number => {
    l.fact('probe_mssql_instance_hidden', 1, { sql_instance: instance });
    l.details.browser = why;
    l.finding({
      code: 'mssql_hidden_instance',
      // A Browser that answers without the instance: hidden on purpose. No answer at all: hidden,
      // or the Browser is stopped or filtered, which other clients would notice.
      severity: browserAnswered ? 'info' : 'warning',
      message: `${why}; probed the port in the target address, ${fallbackPort}`,
      advice: browserAnswered
        ? 'Clients that connect by instance name cannot find a hidden instance: they need the port (host,port in connection strings).'
        : 'If the instance is not hidden on purpose, check that the SQL Server Browser service runs and that UDP 1434 is open.',
    });
    l.debug(`browser: ${why}; using the configured port ${fallbackPort}`);
    return fallbackPort as number;
  };
  const seen: { refused?: boolean } = {};
  const direct = await queryBrowser(address, browserPort, buildUcastInst(instance), l.signal, wait(), seen);
  if (direct) {
    const r = parseSvrResp(direct);
    if (!r.ok) throw new ProbeError('protocol_error', `the Browser's answer cannot be read: ${r.error}`);
    const found = findInstance(r.instances, instance);
    if (found?.tcpPort !== undefined) {
      l.fact('probe_mssql_browser_port', found.tcpPort, { sql_instance: instance });
      l.fact('probe_mssql_instance_hidden', 0, { sql_instance: instance });
      l.details.browser = `instance ${found.instanceName} on TCP port ${found.tcpPort} (Browser version ${found.version})`;
      if (fallbackPort !== undefined && fallbackPort !== found.tcpPort) {
        l.details.browser += `; the target address says port ${fallbackPort}, the Browser's port is used`;
      }
      l.finding(browserPortFinding(l.details.browser as string));
      return found.tcpPort;
    }
    if (found) {
      throw new ProbeError(
        'instance_not_found',
        `the Browser knows instance ${instance} but it offers no TCP port`,
        'Enable TCP/IP for this instance in SQL Server Configuration Manager and restart it.',
      );
    }
  }
  const listing = await queryBrowser(address, browserPort, buildUcastEx(), l.signal, wait(), seen);
  if (listing) {
    const r = parseSvrResp(listing);
    const names = r.ok ? r.instances.map((i) => i.instanceName) : [];
    const found = r.ok ? findInstance(r.instances, instance) : undefined;
    if (found?.tcpPort !== undefined) {
      l.fact('probe_mssql_browser_port', found.tcpPort, { sql_instance: instance });
      l.fact('probe_mssql_instance_hidden', 0, { sql_instance: instance });
      l.details.browser = `instance ${found.instanceName} on TCP port ${found.tcpPort} (from the Browser's list)`;
      l.finding(browserPortFinding(l.details.browser as string));
      return found.tcpPort;
    }
    if (fallbackPort !== undefined) return hidden(`the Browser does not list ${instance} (hidden instance)`, true);
    throw new ProbeError(
      'instance_not_found',
      `the Browser on UDP ${browserPort} does not know instance ${instance}${names.length ? ` (it lists ${names.join(', ').slice(0, 200)})` : ''}`,
      'Check the instance name; a hidden instance is not announced: put its port in the target address (host:port).',
    );
  }
  if (fallbackPort !== undefined) return hidden(`no answer from the Browser on UDP ${browserPort} (hidden instance or Browser stopped)`, false);
  throw new ProbeError(
    'browser_no_answer',
    seen.refused
      ? `UDP ${browserPort} is closed: ICMP port unreachable (the Browser is not running, or a firewall rejects)`
      : `no answer from the SQL Server Browser on UDP ${browserPort}`,
    'Is the SQL Server Browser service running, and does the firewall allow UDP 1434? Or put the instance\'s TCP port in the target address (host:port).',
  );
}

function browserPortFinding(what: string): import('../types').Finding {
  return { code: 'mssql_browser_port', severity: 'info', message: `the Browser reported ${what}` };
}

/** The prelogin rung, with a dropped or silent connection explained in the operator's terms. */
function preloginPhase(l: Ladder, socket: net.Socket, s: MssqlSettings, signal: ProbeSignal, strict: boolean): Promise<Prelogin> {
  return doPrelogin(l, socket, s, signal, strict).catch((err: unknown) => {
    const c = classifyError(err, signal);
    if (c.reason === 'reset') {
      throw new ProbeError(
        'reset',
        `the server closed the connection before answering the PRELOGIN (${c.message})`,
        strict
          ? 'The server dropped a PRELOGIN sent inside TLS: it may not support TDS 8 strict encryption; try encrypt: true.'
          : 'The port accepts connections but drops them: a server at its connection limit or starting up, ' +
              'a firewall or IPS that resets TDS, or a server that requires TDS 8 strict encryption (set encrypt: strict).',
      );
    }
    if (c.reason === 'timeout') {
      const received = (err as { received?: number }).received ?? 0;
      if (received > 0) {
        throw new ProbeError('stalled', `the PRELOGIN answer stopped after ${received} bytes`, STALLED_PRELOGIN_ADVICE);
      }
      throw new ProbeError('no_response', 'the TCP connection was accepted but the PRELOGIN got no answer before the deadline', NO_RESPONSE_ADVICE);
    }
    throw err;
  });
}

async function doPrelogin(l: Ladder, socket: net.Socket, s: MssqlSettings, signal: ProbeSignal, strict: boolean): Promise<Prelogin> {
  // Offering encryption (OFF = "available, not required") makes the answer tell the server's
  // policy: OFF available, REQ forced, NOT_SUP no certificate. Under TDS 8 the value is ignored.
  const request = buildPrelogin({ encryption: strict ? Encrypt.NOT_SUP : Encrypt.OFF, instance: s.instance ?? '', threadId: process.pid });
  for (const p of encodeMessage(PacketType.PRELOGIN, request)) socket.write(p);
  const answer = await readMessage(socket, signal);
  if (answer.type !== PacketType.TABULAR_RESULT) {
    throw new ProbeError('not_tds', `not a TDS server: PRELOGIN answered with packet type 0x${answer.type.toString(16)}`, NOT_TDS_ADVICE);
  }
  const parsed = parsePrelogin(answer.payload);
  if (!parsed.ok) throw new ProbeError('protocol_error', `PRELOGIN answer cannot be read: ${parsed.error}`);
  const p = parsed.prelogin;
  if (p.version) {
    const v = p.version;
    const named = nameVersion(v);
    const advisory = advise(v, s.min_build);
    l.fact('probe_mssql_version_info', 1, { version: formatVersion(v), product: named.product, level: named.level });
    l.fact('probe_mssql_patch_advisory', advisory.below ? 1 : 0);
    l.details.version = formatVersion(v);
    l.details.versionName = named.name;
    l.details.build = formatBuild(v);
    if (advisory.below) l.details.advisory = advisory.message;
    const finding = patchAdvisoryFinding(advisory, s.min_build?.[String(v.major)] !== undefined);
    if (finding) l.finding(finding);
  }
  if (p.mars !== undefined) l.details.mars = p.mars;
  if (p.fedAuthRequired !== undefined) l.details.fedAuthRequired = p.fedAuthRequired;
  if (s.instance !== undefined && instanceValidity(p) === 'invalid') {
    throw new ProbeError(
      'instance_not_found',
      `the server on this port is not instance ${s.instance} (PRELOGIN INSTOPT)`,
      'The port belongs to another instance: check the instance name or the port in the target address.',
    );
  }
  l.debug(`prelogin: version ${l.details.version ?? '?'} encryption ${p.encryption ?? '?'}`);
  return p;
}

function tdsTlsOptions(s: MssqlSettings, host: string): tls.ConnectionOptions {
  const servername = s.server_name ?? (net.isIP(host) ? undefined : host);
  const opts: tls.ConnectionOptions = { rejectUnauthorized: !s.trust_server_certificate, servername };
  if (s.ca_file) opts.ca = readFileSync(s.ca_file);
  return opts;
}

interface ServerError {
  number: number;
  state: number;
  class: number;
  message: string;
}

/** tedious's connection error codes, mapped to the rung's reason. */
export function mapTediousError(
  err: unknown,
  phase: 'login' | 'query',
  ctx: {
    port: number;
    instance?: string;
    advisory?: Advisory;
    serverError?: ServerError;
    /** A token stream tedious could not parse on this connection (see contain.ts): the real cause. */
    tokenError?: TokenStreamError;
    /** tedious's state when the deadline fired (login), e.g. SentLogin7WithStandardLogin. */
    tediousState?: string;
    /** The query running, for messages. */
    query?: string;
    signal: ProbeSignal;
  },
): ProbeError {
  const e = err as { code?: string; message?: string; cause?: unknown; errors?: unknown[] };
  const code = e?.code ?? '';
  const msg = oneLine(e?.message ?? String(err));
  if (ctx.tokenError || isTokenStreamError(err)) {
    const te = ctx.tokenError ?? (err as TokenStreamError);
    return new ProbeError('protocol_error', `${phase}: ${te.message}`, PROTOCOL_ADVICE);
  }
  if (ctx.signal.aborted) {
    if (isShutdown(ctx.signal)) return new ProbeError('aborted', 'probe aborted: agent shutting down');
    // Our own PRELOGIN was answered moments ago: silence now is the service's, not the network's.
    if (phase === 'login') {
      return new ProbeError('stalled', `${stalledStep(ctx.tediousState)} before the deadline`, STALLED_LOGIN_ADVICE);
    }
    return new ProbeError('stalled', `no answer to ${ctx.query ?? 'the query'} before the deadline`, STALLED_QUERY_ADVICE);
  }
  if (code === 'ELOGIN' && phase === 'login' && !ctx.serverError) {
    // tedious says "Login failed." when the answer ends without LOGINACK; a server that
    // refuses a login always says why in an ERROR token.
    return new ProbeError('protocol_error', 'the answer to LOGIN7 ended with neither a LOGINACK nor an error message', PROTOCOL_ADVICE);
  }
  switch (code) {
    case 'ELOGIN':
    case 'EFEDAUTH': {
      const n = ctx.serverError ? ` (server error ${ctx.serverError.number}, state ${ctx.serverError.state})` : '';
      return new ProbeError('auth_failed', `${msg}${n}`, loginAdvice(ctx.serverError?.number));
    }
    case 'EENCRYPT':
      return new ProbeError('encryption_mismatch', msg, 'Set encrypt: true (the server forces encryption).');
    case 'ETIMEOUT':
      return phase === 'query'
        ? new ProbeError('query_error', msg, 'The query ran past its timeout: raise queries[].timeout or make it cheaper.')
        : new ProbeError('timeout', msg, TIMEOUT_ADVICE);
    case 'EINSTLOOKUP':
      return new ProbeError('instance_not_found', msg);
    case 'ETDS':
    case 'EINTERFACENOTSUPP':
      return new ProbeError('protocol_error', msg);
    case 'EREQUEST': {
      return new ProbeError('query_error', msg, 'Run the query by hand with the same login (permissions, object names).');
    }
    case 'ECANCEL':
      return new ProbeError(phase === 'query' ? 'query_error' : 'timeout', msg);
    case 'ECLOSE':
    case 'ESOCKET': {
      const c = classifyError(e.cause ?? err, ctx.signal);
      if (ctx.advisory?.refusesRemote) {
        return new ProbeError('version_refuses_remote', msg, ctx.advisory.message);
      }
      if (c.reason === 'refused') return new ProbeError('refused', msg, refusedAdvice(ctx.port, ctx.instance));
      if (c.reason === 'timeout') return new ProbeError('timeout', msg, TIMEOUT_ADVICE);
      if (c.reason === 'tls_error' || /certificate|ssl|tls/i.test(msg)) {
        return new ProbeError('tls_error', msg, TLS_ADVICE);
      }
      if (c.reason === 'dns_error' || c.reason === 'unreachable') return new ProbeError(c.reason, msg);
      return new ProbeError('reset', msg, RESET_ADVICE);
    }
    case 'EALREADYCONNECTED':
    case 'EINVALIDSTATE':
    case 'EPARAM':
      return new ProbeError('internal_error', msg);
    default: {
      const c = classifyError(err, ctx.signal);
      if (c.reason === 'tls_error') return new ProbeError('tls_error', c.message, TLS_ADVICE);
      if (c.reason === 'reset') return new ProbeError('reset', c.message, RESET_ADVICE);
      return new ProbeError(c.reason === 'internal_error' && phase === 'query' ? 'query_error' : c.reason, c.message, c.advice);
    }
  }
}

const RESET_ADVICE =
  'The server closed the connection: check its error log (ERRORLOG) for the reason; a firewall or IPS that resets TDS sessions does the same.';

const PROTOCOL_ADVICE =
  'The server answered with bytes that are not valid TDS for this step: something other than SQL Server ' +
  '(a proxy, a broken middlebox, another service) answers after the PRELOGIN, or the server is faulty; check what listens on the port and the server\'s ERRORLOG.';

const TLS_ADVICE =
  'The server certificate was not accepted: set trust_server_certificate: true for a self-signed certificate, ' +
  'ca_file for a private CA, or server_name to the name in the certificate.';

function loginAdvice(number?: number): string {
  switch (number) {
    case 18456:
      return 'Login failed: check the user name and password (password_file), that the login exists and is enabled, and that the server allows SQL Server authentication (mixed mode).';
    case 18452:
      return 'The server refused a Windows (NTLM) login: check the domain, or use a SQL login without domain.';
    case 4060:
      return 'The database cannot be opened for this login: check database: and the login\'s permissions.';
    default:
      return 'Login failed: the server error log (ERRORLOG) names the reason for this login attempt.';
  }
}

/** tedious's connection settings from the module's. Reads ca_file. */
function tediousConfig(s: MssqlSettings, address: string, host: string, port: number, remainingMs: number): ConnectionConfiguration {
  const password = s.password?.reveal() ?? '';
  const authentication: ConnectionConfiguration['authentication'] = s.domain
    ? { type: 'ntlm', options: { userName: s.username as string, password, domain: s.domain } }
    : { type: 'default', options: { userName: s.username as string, password } };
  const serverName = s.server_name ?? (net.isIP(host) ? undefined : host);
  return {
    server: address,
    authentication,
    options: {
      port,
      encrypt: s.encrypt,
      trustServerCertificate: s.trust_server_certificate,
      // Past the probe's deadline: the deadline (an abort that records tedious's state) ends a
      // login first, so a stalled step is named rather than reported as tedious's timeout.
      connectTimeout: Math.max(100, remainingMs) + 1000,
      requestTimeout: 0,
      cancelTimeout: 1000,
      appName: 'portprobe',
      ...(serverName ? { serverName } : {}),
      ...(s.database ? { database: s.database } : {}),
      ...(s.ca_file ? { cryptoCredentialsDetails: { ca: readFileSync(s.ca_file) } } : {}),
    },
  };
}

async function loginAndQuery(
  l: Ladder,
  signal: ProbeSignal,
  s: MssqlSettings,
  address: string,
  host: string,
  port: number,
  advisory: Advisory,
): Promise<void> {
  let serverError: ServerError | undefined;
  let tokenError: TokenStreamError | undefined;
  let tediousState: string | undefined;
  let query: string | undefined;
  const mapCtx = (): Parameters<typeof mapTediousError>[2] => ({
    port,
    instance: s.instance,
    advisory,
    serverError,
    tokenError,
    tediousState,
    query,
    signal,
  });
  let connection: Connection | undefined;
  const onAbort = (): void => {
    // Which step the deadline stopped (tedious keeps it as state.name): the stalled rung's message names it.
    tediousState = (connection as unknown as { state?: { name?: string } } | undefined)?.state?.name;
    connection?.close();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  // tedious parses answers as they stream in, but keeps a PLP value (nvarchar(max) and the like)
  // whole until its last chunk: a server that never ends one would grow the heap until the
  // deadline. The bytes read on tedious's socket are capped instead; past the cap the connection
  // is ended as a protocol error.
  const cap = setInterval(() => {
    const sock = (connection as unknown as { socket?: net.Socket } | undefined)?.socket;
    if (sock && sock.bytesRead > MAX_ANSWER_BYTES && !tokenError) {
      tokenError = new TokenStreamError(`the server sent more than ${MAX_ANSWER_BYTES / (1 << 20)} MiB on one connection`);
      l.debug(tokenError.message);
      sock.destroy(tokenError);
      connection?.close();
    }
  }, ANSWER_CAP_CHECK_MS);
  try {
    const conn = await l.phase('login', () => {
      // Built inside the rung so that a bad ca_file or a rejected option fails the login rung.
      const c = new (tedious().Connection)(tediousConfig(s, address, host, port, l.remainingMs()));
      connection = c;
      const contained = containTokenErrors(c, (err) => {
        tokenError ??= err;
        l.debug(`token stream error: ${oneLine(err.parserMessage)}`);
      });
      if (!contained) {
        throw new ProbeError(
          'internal_error',
          'this tedious version has no Connection#createTokenStreamParser: a malformed server answer could end the agent, so no login is attempted',
          'Install the tedious version this portprobe release was built with.',
        );
      }
      c.on('errorMessage', (m: ServerError) => {
        serverError = { number: m.number, state: m.state, class: m.class, message: oneLine(m.message) };
        l.debug(`server error ${m.number} state ${m.state} class ${m.class}: ${oneLine(m.message)}`);
        l.details.serverError = serverError;
      });
      // Late socket errors after a failure must not become unhandled events.
      c.on('error', (err: Error) => l.debug(`connection error: ${oneLine(err.message)}`));
      return new Promise<Connection>((resolve, reject) => {
        c.once('connect', (err?: Error) => (err ? reject(mapTediousError(err, 'login', mapCtx())) : resolve(c)));
        c.once('end', () => reject(mapTediousError(Object.assign(new Error('connection closed'), { code: 'ECLOSE' }), 'login', mapCtx())));
        c.connect();
      });
    });
    conn.removeAllListeners('end');
    serverError = undefined;
    await l.phase('query', async () => {
      query = 'SELECT @@VERSION';
      // No timeout of its own: the probe's deadline ends it, and silence then is "stalled".
      const rows = await runQuery(conn, query, 0, l, 'version', mapCtx).catch((err: unknown) => {
        l.fact('probe_mssql_query_success', 0, { query: 'version' });
        throw err;
      });
      l.fact('probe_mssql_query_success', 1, { query: 'version' });
      const text = String(rows.rows[0]?.[0] ?? '');
      l.details.versionString = oneLine(text.split('\n')[0] ?? '', 200);
      for (const q of s.queries) {
        serverError = undefined;
        query = `query ${q.name}`;
        const timeoutMs = Math.max(1, Math.min(parseDuration(q.timeout ?? DEFAULT_QUERY_TIMEOUT), l.remainingMs()));
        try {
          const r = await runQuery(conn, q.query, timeoutMs, l, q.name, mapCtx);
          // Converted before anything is recorded: a query either succeeds with its samples or fails.
          const { facts, skipped } = rowsToFacts(q, r);
          l.fact('probe_mssql_query_success', 1, { query: q.name });
          l.fact('probe_mssql_query_rows_skipped', skipped, { query: q.name });
          for (const f of facts) l.facts.push(f);
        } catch (err) {
          l.fact('probe_mssql_query_success', 0, { query: q.name });
          const pe = err instanceof ProbeError ? err : mapTediousError(err, 'query', mapCtx());
          l.debug(`query ${q.name} failed: ${pe.message}`);
          if (signal.aborted) throw pe;
          // The connection is gone after a stream that cannot be parsed: that is the verdict.
          if (pe.reason === 'protocol_error') throw pe;
          l.fail('query', 'query_error', `query ${q.name}: ${pe.message}`, pe.advice);
        }
      }
    });
  } finally {
    clearInterval(cap);
    signal.removeEventListener('abort', onAbort);
    connection?.close();
  }
}

interface QueryRows {
  columns: string[];
  rows: unknown[][];
}

function runQuery(
  connection: Connection,
  sql: string,
  timeoutMs: number,
  l: Ladder,
  name: string,
  mapCtx: () => Parameters<typeof mapTediousError>[2],
): Promise<QueryRows> {
  const t0 = performance.now();
  return new Promise<QueryRows>((resolve, reject) => {
    const out: QueryRows = { columns: [], rows: [] };
    let tooMany = false;
    const request = new (tedious().Request)(sql, (err) => {
      l.fact('probe_mssql_query_duration_seconds', (performance.now() - t0) / 1000, { query: name });
      if (err) reject(mapTediousError(err, 'query', mapCtx()));
      else if (tooMany) reject(new ProbeError('query_error', `more than ${MAX_ROWS} rows`, 'Aggregate the query so it returns fewer rows.'));
      else resolve(out);
    });
    request.setTimeout(timeoutMs);
    request.on('columnMetadata', (cols: { colName: string }[] | Record<string, { colName: string }>) => {
      out.columns = (Array.isArray(cols) ? cols : Object.values(cols)).map((c) => c.colName);
    });
    request.on('row', (cols: { value: unknown }[]) => {
      if (out.rows.length >= MAX_ROWS) {
        tooMany = true;
        return;
      }
      out.rows.push(cols.map((c) => c.value));
    });
    connection.execSqlBatch(request);
  });
}

/**
 * Turns rows into samples: key_labels become labels, value_column the value. Pure.
 * The NULL rule: a row whose value is NULL has no sample (SQL's "no value", e.g. a database that
 * is offline) and is counted in `skipped`; a value that is not a number fails the whole query,
 * naming the column and the row (1-based), since its samples would be wrong rather than missing.
 */
export function rowsToFacts(q: Pick<MssqlQuery, 'name' | 'key_labels' | 'value_column'>, r: QueryRows): { facts: Fact[]; skipped: number } {
  const lower = r.columns.map((c) => c.toLowerCase());
  const idx = (c: string): number => lower.indexOf(c.toLowerCase());
  const vi = idx(q.value_column);
  if (vi < 0) {
    throw new ProbeError('query_error', `the result has no column ${q.value_column} (columns: ${r.columns.join(', ').slice(0, 200)})`);
  }
  const keys = (q.key_labels ?? []).map((k) => {
    const i = idx(k);
    if (i < 0) throw new ProbeError('query_error', `the result has no column ${k} for key_labels`);
    return [k, i] as const;
  });
  const facts: Fact[] = [];
  const seen = new Set<string>();
  let skipped = 0;
  r.rows.forEach((row, n) => {
    const raw = row[vi];
    if (raw === null || raw === undefined) {
      skipped++;
      return;
    }
    const value = toNumber(raw);
    if (value === undefined) {
      throw new ProbeError(
        'query_error',
        `column ${q.value_column} of row ${n + 1} holds ${JSON.stringify(String(raw).slice(0, 40))}, not a number`,
        'Make value_column numeric in the query (CAST or CONVERT), or filter the rows that are not.',
      );
    }
    const labels: Record<string, string> = {};
    for (const [k, i] of keys) labels[k] = String(row[i] ?? '').slice(0, MAX_LABEL_VALUE);
    const id = JSON.stringify(labels);
    if (seen.has(id)) throw new ProbeError('query_error', `two rows have the same key_labels ${id.slice(0, 200)}`);
    seen.add(id);
    facts.push(keys.length ? { metric: q.name, labels, value } : { metric: q.name, value });
  });
  return { facts, skipped };
}

/** A sample value from a column value: numbers, bigint, bit, and numeric text; undefined otherwise. */
function toNumber(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isNaN(raw) ? undefined : raw;
  if (typeof raw === 'bigint') return Number(raw);
  if (typeof raw === 'boolean') return raw ? 1 : 0;
  if (typeof raw === 'string') {
    const t = raw.trim();
    if (t === '') return undefined;
    const v = Number(t);
    return Number.isNaN(v) ? undefined : v;
  }
  return undefined;
}
