// --web.config.file in the exporter-toolkit format that Prometheus exporters share: TLS for the
// HTTP server and basic auth with bcrypt hashes. Existing exporters' files work unchanged; the
// few Go-specific knobs (cipher suite names, curves, http2) are accepted and reported as ignored.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { SecureContextOptions, SecureVersion } from 'node:tls';
import { Worker } from 'node:worker_threads';
import { ConfigError, compileSchema, parseYamlAgainst } from '../config/load';

const TLS_VERSIONS = ['TLS10', 'TLS11', 'TLS12', 'TLS13'] as const;
const CLIENT_AUTH = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;

const WEB_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    tls_server_config: {
      type: 'object',
      additionalProperties: false,
      required: ['cert_file', 'key_file'],
      properties: {
        cert_file: { type: 'string', minLength: 1 },
        key_file: { type: 'string', minLength: 1 },
        client_auth_type: { enum: CLIENT_AUTH },
        client_ca_file: { type: 'string' },
        client_allowed_sans: { type: 'array', items: { type: 'string' } },
        min_version: { enum: TLS_VERSIONS },
        max_version: { enum: TLS_VERSIONS },
        cipher_suites: { type: 'array', items: { type: 'string' } },
        prefer_server_cipher_suites: { type: 'boolean' },
        curve_preferences: { type: 'array', items: { type: 'string' } },
      },
    },
    http_server_config: {
      type: 'object',
      additionalProperties: false,
      properties: {
        http2: { type: 'boolean' },
        headers: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
    basic_auth_users: {
      type: 'object',
      additionalProperties: { type: 'string', pattern: '^\\$2[abxy]?\\$[0-9]{2}\\$[./A-Za-z0-9]{53}$' },
    },
  },
};

const VERSION_MAP: Record<(typeof TLS_VERSIONS)[number], SecureVersion> = {
  TLS10: 'TLSv1',
  TLS11: 'TLSv1.1',
  TLS12: 'TLSv1.2',
  TLS13: 'TLSv1.3',
};

export interface WebConfig {
  /** Options for https.createServer, when TLS is configured. */
  tls?: SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean };
  /** Client certificate SANs allowed (empty: any verified certificate). */
  clientAllowedSans: string[];
  headers: Record<string, string>;
  /** user -> bcrypt hash; empty means no authentication. */
  users: Map<string, string>;
  /** Settings accepted for compatibility but not applied. */
  ignored: string[];
}

interface RawWebConfig {
  tls_server_config?: {
    cert_file: string;
    key_file: string;
    client_auth_type?: (typeof CLIENT_AUTH)[number];
    client_ca_file?: string;
    client_allowed_sans?: string[];
    min_version?: (typeof TLS_VERSIONS)[number];
    max_version?: (typeof TLS_VERSIONS)[number];
    cipher_suites?: string[];
    prefer_server_cipher_suites?: boolean;
    curve_preferences?: string[];
  };
  http_server_config?: { http2?: boolean; headers?: Record<string, string> };
  basic_auth_users?: Record<string, string>;
}

let validateWeb: ReturnType<typeof compileSchema> | undefined;

/** Reads and checks a web config file; throws ConfigError with file:line messages. */
export function loadWebConfig(file: string): WebConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([`${file}: cannot read web config: ${(e as NodeJS.ErrnoException).code ?? 'error'}`]);
  }
  validateWeb ??= compileSchema(WEB_CONFIG_SCHEMA);
  const { raw, locate } = parseYamlAgainst(text, file, validateWeb);
  const cfg = raw as RawWebConfig;
  const dir = path.dirname(path.resolve(file));
  const errors: string[] = [];
  const read = (parts: string[], p: string): Buffer | undefined => {
    const full = path.resolve(dir, p);
    try {
      return readFileSync(full);
    } catch (e) {
      errors.push(
        `${locate(parts)}: ${parts.join('.')}: cannot read ${full}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
      );
      return undefined;
    }
  };
  const out: WebConfig = { clientAllowedSans: [], headers: {}, users: new Map(), ignored: [] };
  const t = cfg.tls_server_config;
  if (t) {
    const cert = read(['tls_server_config', 'cert_file'], t.cert_file);
    const key = read(['tls_server_config', 'key_file'], t.key_file);
    const auth = t.client_auth_type ?? 'NoClientCert';
    const verify = auth === 'VerifyClientCertIfGiven' || auth === 'RequireAndVerifyClientCert';
    let ca: Buffer | undefined;
    if (t.client_ca_file) ca = read(['tls_server_config', 'client_ca_file'], t.client_ca_file);
    if (verify && !t.client_ca_file) {
      errors.push(
        `${locate(['tls_server_config', 'client_auth_type'])}: tls_server_config.client_auth_type: ${auth} needs client_ca_file`,
      );
    }
    if (auth === 'RequireAnyClientCert' || auth === 'RequestClientCert') {
      out.ignored.push(
        `tls_server_config.client_auth_type ${auth} is served as ${auth === 'RequestClientCert' ? 'VerifyClientCertIfGiven' : 'RequireAndVerifyClientCert'}`,
      );
    }
    out.tls = {
      cert,
      key,
      ca,
      requestCert: auth !== 'NoClientCert',
      rejectUnauthorized: auth === 'RequireAndVerifyClientCert' || auth === 'RequireAnyClientCert',
      minVersion: VERSION_MAP[t.min_version ?? 'TLS12'],
      maxVersion: t.max_version ? VERSION_MAP[t.max_version] : undefined,
    };
    out.clientAllowedSans = t.client_allowed_sans ?? [];
    if (t.cipher_suites)
      out.ignored.push('tls_server_config.cipher_suites (Go cipher names; Node uses its own safe defaults)');
    if (t.curve_preferences) out.ignored.push('tls_server_config.curve_preferences');
    if (t.prefer_server_cipher_suites !== undefined) out.ignored.push('tls_server_config.prefer_server_cipher_suites');
  }
  if (cfg.http_server_config?.http2 !== undefined) out.ignored.push('http_server_config.http2 (HTTP/1.1 is served)');
  out.headers = { ...(cfg.http_server_config?.headers ?? {}) };
  for (const [user, hash] of Object.entries(cfg.basic_auth_users ?? {})) out.users.set(user, hash);
  if (errors.length > 0) throw new ConfigError(errors);
  return out;
}

/** Checks a password against a bcrypt hash; resolves false for a malformed hash. */
export type VerifyFn = (password: string, hash: string) => Promise<boolean>;

export type AuthOutcome = 'ok' | 'denied' | 'busy';

export interface BasicAuthOptions {
  /** The bcrypt comparison (default: on a worker thread, off the event loop). */
  verify?: VerifyFn;
  /** bcrypt comparisons running or waiting at most; more are answered 'busy' at once. */
  maxPending?: number;
  /** Of those, at most this many for one client address, so one source cannot take them all. */
  maxPendingPerSource?: number;
  /** Distinct (user, password) pairs remembered as good and as bad, each (least recently used go). */
  remember?: number;
}

/**
 * Checks HTTP basic credentials against bcrypt hashes, without letting a flood of bad passwords
 * starve the good ones or tell who exists:
 * - bcrypt runs on a worker thread, so the event loop keeps serving while it works;
 * - at most `maxPending` comparisons run or wait, and at most `maxPendingPerSource` for one client
 *   address; beyond that the answer is 'busy' (503) at once, without any bcrypt work, so a flood
 *   costs the agent a hash of the header per request, and a client from another address (a
 *   Prometheus whose credentials are not remembered yet) still finds a place in the queue;
 * - pairs found good, and pairs found bad, are remembered (by a SHA-256 of user and password,
 *   never the password), so a scraper's credentials are checked once and a repeated bad
 *   password costs nothing;
 * - an unknown user is compared against a made-up hash of the same bcrypt cost as the slowest
 *   configured one, so it takes as long as a wrong password for a real user.
 */
export class BasicAuth {
  private readonly good = new Map<string, true>();
  private readonly bad = new Map<string, true>();
  private readonly dummy: string;
  private readonly verify: VerifyFn;
  private readonly maxPending: number;
  private readonly maxPerSource: number;
  private readonly remember: number;
  private pending = 0;
  private readonly pendingBySource = new Map<string, number>();

  constructor(
    private readonly users: ReadonlyMap<string, string>,
    opts: BasicAuthOptions = {},
  ) {
    this.verify = opts.verify ?? workerVerify;
    this.maxPending = opts.maxPending ?? 32;
    this.maxPerSource = opts.maxPendingPerSource ?? 4;
    this.remember = opts.remember ?? 10_000;
    this.dummy = dummyHash(users);
  }

  get enabled(): boolean {
    return this.users.size > 0;
  }

  /** The hash an unknown user's password is compared against. */
  get dummyHash(): string {
    return this.dummy;
  }

  /** `source` is the client's address, for the per-source share of the queue. */
  async check(header: string | undefined, source = ''): Promise<AuthOutcome> {
    if (!header || !/^Basic [A-Za-z0-9+/=]+$/i.test(header)) return 'denied';
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return 'denied';
    const user = decoded.slice(0, colon);
    const pass = decoded.slice(colon + 1);
    const key = createHash('sha256').update(user).update('\0').update(pass).digest('hex');
    if (this.good.has(key)) {
      remember(this.good, key, this.remember);
      return 'ok';
    }
    if (this.bad.has(key)) return 'denied';
    const mine = this.pendingBySource.get(source) ?? 0;
    if (this.pending >= this.maxPending || mine >= this.maxPerSource) return 'busy';
    this.pending++;
    this.pendingBySource.set(source, mine + 1);
    let matched: boolean;
    const hash = this.users.get(user);
    try {
      matched = await this.verify(pass, hash ?? this.dummy);
    } catch {
      matched = false;
    } finally {
      this.pending--;
      const left = (this.pendingBySource.get(source) ?? 1) - 1;
      if (left > 0) this.pendingBySource.set(source, left);
      else this.pendingBySource.delete(source);
    }
    if (matched && hash !== undefined) {
      remember(this.good, key, this.remember);
      return 'ok';
    }
    remember(this.bad, key, this.remember);
    return 'denied';
  }
}

function remember(m: Map<string, true>, key: string, max: number): void {
  m.delete(key);
  m.set(key, true);
  if (m.size > max) m.delete(m.keys().next().value as string);
}

/**
 * A well-formed bcrypt hash nobody's password matches, with the highest cost among the
 * configured hashes: comparing against it costs what comparing against a real user's costs.
 */
export function dummyHash(users: ReadonlyMap<string, string>): string {
  let cost = 10;
  let first = true;
  for (const h of users.values()) {
    const c = Number(/^\$2[abxy]?\$(\d{2})\$/.exec(h)?.[1]);
    if (Number.isFinite(c) && (first || c > cost)) cost = c;
    first = false;
  }
  // 22 characters of salt and 31 of hash from bcrypt's alphabet.
  return `$2b$${String(cost).padStart(2, '0')}$${'portprobenosuchuser.00'}${'A'.repeat(31)}`;
}

// bcrypt on a worker thread. The worker is an evaluated script so that it runs the same from the
// compiled agent and from the TypeScript tests; it loads bcryptjs from where this module found it.
let worker: Worker | undefined;
let nextId = 0;
const waiting = new Map<number, (ok: boolean) => void>();

function workerVerify(password: string, hash: string): Promise<boolean> {
  if (!worker) {
    const w = new Worker(
      `const { parentPort } = require('node:worker_threads');
const bcrypt = require(${JSON.stringify(require.resolve('bcryptjs'))});
parentPort.on('message', (m) => {
  let ok = false;
  try { ok = bcrypt.compareSync(m.password, m.hash); } catch { ok = false; }
  parentPort.postMessage({ id: m.id, ok });
});`,
      { eval: true },
    );
    w.on('message', (m: { id: number; ok: boolean }) => {
      const done = waiting.get(m.id);
      waiting.delete(m.id);
      done?.(m.ok);
    });
    w.on('error', () => {
      // A dead worker fails every waiting check closed; the next check starts a new one.
      for (const done of waiting.values()) done(false);
      waiting.clear();
      worker = undefined;
    });
    // After the listeners: adding a 'message' listener refs the worker's port again, and an idle
    // verifier must not keep the process (a test run, `--once`) alive.
    w.unref();
    worker = w;
  }
  const id = nextId++;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    (worker as Worker).postMessage({ id, password, hash });
  });
}

export { sanAllowed } from './san';
