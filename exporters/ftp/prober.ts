// The FTP ladder: resolve → connect → (implicit tls) → banner → (explicit tls) → login →
// one transfer per data-channel mode → quit.
import type tls from 'node:tls';
import { DeadlineError, ProbeError, runLadder, type Ladder } from '../ladder';
import type { MetricDef, ProberDef } from '../types';
import {
  TLS_METRICS,
  connectTcp,
  parseHostPort,
  resolveHost,
  tlsFacts,
  tlsOptions,
} from '../tcp/net';
import { ADVICE, loginFailure, probeError } from './advice';
import { readBanner } from './banner';
import { ControlConnection } from './control';
import { transfer, type DataEnv } from './data';
import { replyText, type Reply } from './reply';
import {
  DATA_MODES,
  FTP_DEFAULTS,
  FTP_SETTINGS_SCHEMA,
  defaultPort,
  validateFtpAddress,
  validateFtpSettings,
  type DataMode,
  type FtpSettings,
} from './settings';
import type { ProbeSignal } from '../signal';

export const FTP_PHASES = [
  'resolve',
  'connect',
  'banner',
  'tls',
  'login',
  ...DATA_MODES.map((m) => `data_${m}`),
  'quit',
] as const;

export const FTP_METRICS: readonly MetricDef[] = [
  {
    name: 'probe_ftp_status_code',
    help: 'Last FTP reply code received in each phase.',
    type: 'gauge',
    labelNames: ['phase'],
  },
  {
    name: 'probe_ftp_data_channel_success',
    help: 'Whether a transfer in this data-channel mode succeeded (1) or not (0).',
    type: 'gauge',
    labelNames: ['mode'],
  },
  {
    name: 'probe_ftp_data_duration_seconds',
    help: 'Time from the transfer command to the completion reply, per data-channel mode (0 when it failed).',
    type: 'gauge',
    labelNames: ['mode'],
  },
  {
    name: 'probe_ftp_transfer_bytes',
    help: 'Bytes received on the data channel per mode (listing or canary file; 0 when it failed).',
    type: 'gauge',
    labelNames: ['mode'],
  },
  {
    name: 'probe_ftp_pasv_address_mismatch',
    help: 'Whether the PASV reply advertised an address other than the control connection peer (1) or not (0).',
    type: 'gauge',
    labelNames: [],
  },
  {
    name: 'probe_ftp_server_info',
    help: 'The server greeting (first line, at most 128 characters), value 1.',
    type: 'gauge',
    labelNames: ['banner'],
  },
  ...TLS_METRICS,
];

const REPLY_LIMITS = { maxLineBytes: 2048, maxLines: 64 };
const MAX_BANNER_LABEL = 128;

/** The greeting for probe_ftp_server_info: first non-empty line, printable, bounded. */
export function bannerLabel(r: Reply): string {
  const first = r.lines.map((s) => s.trim()).find((s) => s !== '') ?? '';
  const clean = first.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return clean.length > MAX_BANNER_LABEL ? clean.slice(0, MAX_BANNER_LABEL) : clean;
}

/** AUTH TLS (explicit) and the handshake; returns the TLS socket. */
async function explicitTls(ctrl: ControlConnection, opts: tls.ConnectionOptions, signal: ProbeSignal): Promise<tls.TLSSocket> {
  const r = await ctrl.command('AUTH TLS', signal);
  if (r.code === 421) throw probeError('too_many_connections', `AUTH TLS: 421 ${replyText(r)}`);
  if (r.code !== 234) {
    throw new ProbeError('tls_error', `AUTH TLS: ${r.code} ${replyText(r)}`, ADVICE.tls_unsupported);
  }
  return ctrl.upgrade(opts, signal);
}

/** PBSZ 0 + PROT P. Returns false when the server wants them after login (530/503). */
async function protectData(ctrl: ControlConnection, signal: ProbeSignal, afterLogin: boolean): Promise<boolean> {
  for (const cmd of ['PBSZ 0', 'PROT P']) {
    const r = await ctrl.command(cmd, signal);
    if (r.code >= 200 && r.code < 300) continue;
    if (!afterLogin && (r.code === 530 || r.code === 503)) return false;
    throw new ProbeError('tls_error', `${cmd}: ${r.code} ${replyText(r)}`, ADVICE.tls_unsupported);
  }
  return true;
}

async function login(ctrl: ControlConnection, s: FtpSettings, signal: ProbeSignal): Promise<void> {
  const anonymous = s.username === 'anonymous' || s.username === 'ftp';
  const u = await ctrl.command(`USER ${s.username}`, signal);
  if (u.code === 230) return;
  if (u.code !== 331 && u.code !== 332) throw loginFailure('USER', u, s.tls);
  const password = s.password?.reveal() ?? (anonymous ? 'portprobe@' : '');
  const p = await ctrl.command(`PASS ${password}`, signal);
  if (p.code === 230 || p.code === 202) return;
  if (p.code === 332) throw new ProbeError('auth_failed', 'PASS: 332 the server also wants an account (ACCT), which the probe does not send', ADVICE.auth_failed);
  throw loginFailure('PASS', p, s.tls);
}

async function quit(ctrl: ControlConnection, signal: ProbeSignal): Promise<void> {
  let r: Reply;
  try {
    r = await ctrl.command('QUIT', signal);
  } catch (e) {
    // Closing without a 221 is rude but harmless once the work is done.
    if ((e as NodeJS.ErrnoException).code === 'ECONNRESET') return;
    throw e;
  }
  if (r.code !== 221 && r.code !== 200) throw probeError('protocol_error', `QUIT: ${r.code} ${replyText(r)}`);
}

interface ModeOutcome {
  success: boolean;
  seconds: number;
  bytes: number;
}

function emitFacts(l: Ladder, s: FtpSettings, codes: Map<string, number>, modes: Map<DataMode, ModeOutcome>, mismatch: number | undefined): void {
  for (const [phase, code] of codes) l.fact('probe_ftp_status_code', code, { phase });
  for (const mode of s.data_channel) {
    const o = modes.get(mode) ?? { success: false, seconds: 0, bytes: 0 };
    l.fact('probe_ftp_data_channel_success', o.success ? 1 : 0, { mode });
    l.fact('probe_ftp_data_duration_seconds', o.seconds, { mode });
    l.fact('probe_ftp_transfer_bytes', o.bytes, { mode });
  }
  if (s.data_channel.includes('pasv') || mismatch !== undefined) {
    l.fact('probe_ftp_pasv_address_mismatch', mismatch ?? 0);
  }
}

export const ftpProber: ProberDef<FtpSettings> = {
  name: 'ftp',
  phases: FTP_PHASES,
  metrics: FTP_METRICS,
  schema: FTP_SETTINGS_SCHEMA,
  defaults: FTP_DEFAULTS,
  validate: validateFtpSettings,
  validateAddress: validateFtpAddress,
  run: (ctx) =>
    runLadder(ctx, async (l) => {
      const s = { ...FTP_DEFAULTS, ...ctx.module.settings };
      const signal = ctx.signal;
      const hp = parseHostPort(ctx.target.address, defaultPort(s));
      if (typeof hp === 'string') throw new ProbeError('internal_error', hp);

      const codes = new Map<string, number>();
      const modes = new Map<DataMode, ModeOutcome>();
      let mismatch: number | undefined;
      let ctrl: ControlConnection | undefined;
      let plain: import('node:net').Socket | undefined;

      // A rung that talks FTP: remembers the last reply code it saw.
      const rung = async <T>(name: string, fn: (c: ControlConnection) => Promise<T>): Promise<T> => {
        const c = ctrl as ControlConnection;
        c.lastCode = undefined;
        try {
          return await l.phase(name, () => fn(c));
        } finally {
          if (c.lastCode !== undefined) codes.set(name, c.lastCode);
        }
      };

      try {
        const resolved = await l.phase('resolve', () =>
          resolveHost(hp.host, s.preferred_ip_protocol, s.ip_protocol_fallback, signal),
        );
        l.ipProtocol = resolved.family;
        l.details.peer = resolved.family === 6 ? `[${resolved.address}]:${hp.port}` : `${resolved.address}:${hp.port}`;
        plain = await l.phase('connect', () => connectTcp(resolved.address, hp.port, signal));
        ctrl = new ControlConnection(plain, REPLY_LIMITS, (line) => l.debug(line));
        // `host` names the peer for certificate checks when no server_name applies (an IP
        // target): over an existing socket Node would otherwise check against "localhost".
        const tlsOpts = s.tls === 'none' ? undefined : { ...tlsOptions(s.tls_config, hp.host), host: hp.host };
        let protectedData = false;

        if (s.tls === 'implicit' && tlsOpts) {
          const secure = await rung('tls', (c) => c.upgrade(tlsOpts, signal));
          l.facts.push(...tlsFacts(secure));
        }
        const banner = await rung('banner', (c) => readBanner(c, signal));
        l.details.banner = replyText(banner, 512);
        l.fact('probe_ftp_server_info', 1, { banner: bannerLabel(banner) });

        if (tlsOpts) {
          protectedData = await rung('tls', async (c) => {
            if (s.tls === 'explicit') {
              const secure = await explicitTls(c, tlsOpts, signal);
              l.facts.push(...tlsFacts(secure));
            }
            return protectData(c, signal, false);
          });
        }

        await rung('login', async (c) => {
          await login(c, s, signal);
          if (tlsOpts && !protectedData) protectedData = await protectData(c, signal, true);
        });

        const env: DataEnv = {
          ctrl,
          settings: s,
          signal,
          dataTls: tlsOpts && protectedData ? tlsOpts : undefined,
          log: (line) => l.debug(line),
          onPasvAddress: (host, port, mm) => {
            mismatch = mm ? 1 : 0;
            l.details.pasv_advertised = `${host}:${port}`;
          },
          desynced: false,
        };
        let typeSet = false;
        for (const mode of s.data_channel) {
          if (env.desynced) break;
          try {
            const result = await rung(`data_${mode}`, async (c) => {
              if (!typeSet) {
                const t = await c.command('TYPE I', signal);
                if (t.code < 200 || t.code >= 300) throw probeError('protocol_error', `TYPE I: ${t.code} ${replyText(t)}`);
                typeSet = true;
              }
              try {
                return await transfer(mode, env);
              } catch (e) {
                // The server went quiet mid-rung (no reply to EPSV/PASV/PORT/LIST): a data timeout.
                if (e instanceof DeadlineError && !e.shutdown) {
                  throw probeError('data_timeout', `${mode}: the server did not answer before the deadline`);
                }
                throw e;
              }
            });
            modes.set(mode, { success: true, seconds: result.seconds, bytes: result.bytes });
          } catch (e) {
            // One mode failing does not stop the others; the first failure is the probe's.
            modes.set(mode, { success: false, seconds: 0, bytes: 0 });
            if (!(e instanceof ProbeError)) throw e;
            if (signal.aborted) break; // past the deadline: no further mode, no QUIT
          }
        }
        if (!env.desynced && !signal.aborted) await rung('quit', (c) => quit(c, signal));
      } finally {
        if (ctrl) ctrl.destroy();
        else plain?.destroy();
        emitFacts(l, s, codes, modes, mismatch);
      }
    }),
};
