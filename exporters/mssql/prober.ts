// The SQL Server ladder: resolve → browser (named instance) → connect → prelogin → tls → login →
// query. Without credentials it stops after prelogin (and TLS when the server requires it or the
// module asks): version and encryption policy need no login. Login and queries use tedious.
import type net from 'node:net';
import type tls from 'node:tls';
import type { Finding, ProberDef } from '../types';
import { ProbeError, classifyError, runLadder } from '../ladder';
// From the modules, not the folder's index: its re-exports are getters, paid on every call.
import { parseTargetAddress, resolveHost } from '../net/address';
import { connectTcp } from '../net/connect';
import { recordTls, startTls } from '../net/tls';
import type { Prelogin } from './prelogin';
import { advise } from './versions';
import { tlsOverTds } from './wire';
import { encryptionFinding, untrustedCertificateFinding } from './findings';
import { TLS_ADVICE, connectTimeoutAdvice, mssqlAdvice, refusedAdvice } from './advice';
import { MSSQL_METRICS, MSSQL_PHASES } from './metrics';
import {
  MSSQL_DEFAULTS,
  MSSQL_SETTINGS_SCHEMA,
  validateMssql,
  validateMssqlAddress,
  type MssqlSettings,
} from './settings';
import { browse } from './browse';
import { preloginPhase, tdsTlsOptions } from './handshake';
import { loginAndQuery, queryFamilies } from './session';
import { MSSQL_URLS } from './url';

/** The encryption finding of each mode, made once: the ladder copies what it keeps. */
const encryptionFindings = new Map<string, Finding>();
function encryptionFindingFor(mode: NonNullable<Prelogin['encryption']>): Finding {
  let f = encryptionFindings.get(mode);
  if (!f) encryptionFindings.set(mode, (f = encryptionFinding(mode)));
  return f;
}

export const mssqlProber: ProberDef<MssqlSettings> = {
  name: 'mssql',
  defaultPort: 1433,
  urls: MSSQL_URLS,
  advice: mssqlAdvice,
  phases: MSSQL_PHASES,
  metrics: MSSQL_METRICS,
  schema: MSSQL_SETTINGS_SCHEMA,
  defaults: MSSQL_DEFAULTS,
  validate: validateMssql,
  validateAddress: validateMssqlAddress,
  run: (ctx) =>
    runLadder(ctx, async (l) => {
      const s = ctx.module.settings;
      const explicit = parseTargetAddress(ctx.target);
      const hp = typeof explicit === 'string' ? parseTargetAddress(ctx.target, 1433) : explicit;
      if (typeof hp === 'string') throw new ProbeError('internal_error', hp);
      const hasPort = typeof explicit !== 'string';
      if (s.queries.length > 0 || (s.query_packs ?? []).length > 0) l.details.customMetrics = queryFamilies(s);

      const resolved = await l.phase('resolve', () =>
        resolveHost(hp.host, s.preferred_ip_protocol, s.ip_protocol_fallback, ctx.signal),
      );
      l.ipProtocol = resolved.family;

      let port = hp.port;
      if (s.instance !== undefined) {
        const instance = s.instance;
        port = await l.phase('browser', () =>
          browse(l, resolved.address, s.browser_port, instance, hasPort ? hp.port : undefined),
        );
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
            startTls(tcp, { ...tdsTlsOptions(s, hp.host), ALPNProtocols: ['tds/8.0'] }, ctx.signal).catch(
              (err: unknown) => {
                const c = classifyError(err, ctx.signal);
                if (c.reason !== 'tls_error') throw err;
                throw new ProbeError(
                  'tls_error',
                  c.message,
                  /reset|closed|EOF|socket disconnected/i.test(c.message)
                    ? 'The server closed the TLS handshake: it does not speak TDS 8 strict encryption; use encrypt: true.'
                    : TLS_ADVICE,
                );
              },
            ),
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
            l.finding(encryptionFindingFor(encryption));
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
              tlsOverTds(tcp, judge ? { ...opts, rejectUnauthorized: false } : opts, ctx.signal).catch(
                (err: unknown) => {
                  const c = classifyError(err, ctx.signal);
                  if (c.reason === 'tls_error') throw new ProbeError('tls_error', c.message, c.advice ?? TLS_ADVICE);
                  throw err;
                },
              ),
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
      await loginAndQuery(l, ctx.signal, s, resolved.address, hp.host, port, advisory, {
        target: ctx.target.name,
        module: ctx.module.name,
      });
    }),
};
