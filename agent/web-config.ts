// --web.config.file in the exporter-toolkit format that Prometheus exporters share: TLS for the
// HTTP server and basic auth with bcrypt hashes. Existing exporters' files work unchanged; the
// few Go-specific knobs (cipher suite names, curves, http2) are accepted and reported as ignored.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { SecureContextOptions, SecureVersion } from 'node:tls';
import bcrypt from 'bcryptjs';
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
      errors.push(`${locate(parts)}: ${parts.join('.')}: cannot read ${full}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
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
      errors.push(`${locate(['tls_server_config', 'client_auth_type'])}: tls_server_config.client_auth_type: ${auth} needs client_ca_file`);
    }
    if (auth === 'RequireAnyClientCert' || auth === 'RequestClientCert') {
      out.ignored.push(`tls_server_config.client_auth_type ${auth} is served as ${auth === 'RequestClientCert' ? 'VerifyClientCertIfGiven' : 'RequireAndVerifyClientCert'}`);
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
    if (t.cipher_suites) out.ignored.push('tls_server_config.cipher_suites (Go cipher names; Node uses its own safe defaults)');
    if (t.curve_preferences) out.ignored.push('tls_server_config.curve_preferences');
    if (t.prefer_server_cipher_suites !== undefined) out.ignored.push('tls_server_config.prefer_server_cipher_suites');
  }
  if (cfg.http_server_config?.http2 !== undefined) out.ignored.push('http_server_config.http2 (HTTP/1.1 is served)');
  out.headers = { ...(cfg.http_server_config?.headers ?? {}) };
  for (const [user, hash] of Object.entries(cfg.basic_auth_users ?? {})) out.users.set(user, hash);
  if (errors.length > 0) throw new ConfigError(errors);
  return out;
}

/**
 * Checks HTTP basic credentials against bcrypt hashes. bcrypt is slow on purpose, so verified
 * pairs are remembered (by a hash of user and password) for the process lifetime, bounded.
 */
export class BasicAuth {
  private readonly ok = new Set<string>();
  // A valid hash to compare against for unknown users, so timing does not reveal who exists.
  private static readonly DUMMY = bcrypt.hashSync('portprobe-no-such-user', 4);

  constructor(private readonly users: ReadonlyMap<string, string>) {}

  get enabled(): boolean {
    return this.users.size > 0;
  }

  async check(header: string | undefined): Promise<boolean> {
    if (!header || !/^Basic [A-Za-z0-9+/=]+$/i.test(header)) return false;
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const pass = decoded.slice(colon + 1);
    const key = createHash('sha256').update(user).update('\0').update(pass).digest('hex');
    if (this.ok.has(key)) return true;
    const hash = this.users.get(user);
    const good = await bcrypt.compare(pass, hash ?? BasicAuth.DUMMY);
    if (good && hash !== undefined) {
      if (this.ok.size > 1000) this.ok.clear();
      this.ok.add(key);
      return true;
    }
    return false;
  }
}

/** True when one of the certificate's SANs is in the allowed list (exact match). */
export function sanAllowed(subjectAltName: string | undefined, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  const sans = (subjectAltName ?? '').split(',').map((s) => s.trim().replace(/^(DNS|IP Address|email|URI):/, ''));
  return sans.some((s) => allowed.some((a) => a.length === s.length && timingSafeEqual(Buffer.from(a), Buffer.from(s))));
}
