// The FTP ladder: resolve → connect → (implicit tls) → banner → (explicit tls) → login →
// one transfer per data-channel mode → quit.
import type tls from 'node:tls';
import { DeadlineError, ProbeError, isShutdown, runLadder, type Ladder } from '../ladder';
import type { MetricDef, ProberDef } from '../types';
// From the modules, not the folder's index: its re-exports are getters, paid on every call.
import { parseTargetAddress, resolveHost } from '../net/address';
import { connectTcp } from '../net/connect';
import { TLS_METRICS, recordTls, tlsOptions } from '../net/tls';
import { ADVICE, ftpAdvice, loginFailure, probeError } from './advice';
import { FTP_URLS } from './url';
import { readBanner } from './banner';
import { ControlConnection } from './control';
import { transfer, type DataEnv } from './data';
import { replyText, type Reply, type ReplyLimits } from './reply';
import {
  DATA_MODES,
  FTP_DEFAULTS,
  FTP_DEFAULT_PORT,
  FTP_SETTINGS_SCHEMA,
  defaultPort,
  validateFtpAddress,
  validateFtpSettings,
  type DataMode,
  type FtpSettings,
} from './settings';
import { ProbeAbort, type ProbeSignal } from '../signal';
import { secretValues } from '../secret';

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
async function explicitTls(
  ctrl: ControlConnection,
  opts: tls.ConnectionOptions,
  signal: ProbeSignal,
): Promise<tls.TLSSocket> {
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
  if (p.code === 332)
    throw new ProbeError(
      'auth_failed',
      'PASS: 332 the server also wants an account (ACCT), which the probe does not send',
      ADVICE.auth_failed,
    );
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

/**
 * Only modes that ran are exported: a mode the probe never got to (login failed, the agent
 * shut down) has no series rather than a 0 that would read as "this mode is broken". The
 * PASV mismatch gauge likewise exists only when a PASV reply was parsed.
 */
function emitFacts(
  l: Ladder,
  s: FtpSettings,
  codes: Map<string, number>,
  modes: Map<DataMode, ModeOutcome>,
  mismatch: number | undefined,
): void {
  for (const [phase, code] of codes) l.fact('probe_ftp_status_code', code, { phase });
  for (const mode of s.data_channel) {
    const o = modes.get(mode);
    if (!o) continue;
    l.fact('probe_ftp_data_channel_success', o.success ? 1 : 0, { mode });
    l.fact('probe_ftp_data_duration_seconds', o.seconds, { mode });
    l.fact('probe_ftp_transfer_bytes', o.bytes, { mode });
  }
  if (mismatch !== undefined) l.fact('probe_ftp_pasv_address_mismatch', mismatch);
}

/**
 * A signal that fires `ms` from now, or with `parent` (and its reason) if that comes first.
 * `release` detaches it from the parent and clears its timer.
 */
function budgetSignal(parent: ProbeSignal, ms: number): { signal: ProbeAbort; release: () => void } {
  const child = new ProbeAbort();
  const onParent = (): void => child.abort(parent.reason);
  if (parent.aborted) onParent();
  else parent.addEventListener('abort', onParent, { once: true });
  const timer = setTimeout(() => child.abort(new DeadlineError(false)), Math.max(0, ms));
  return {
    signal: child,
    release: () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', onParent);
    },
  };
}

const FOLLOWED_ADVICE =
  "Clients that do not follow the control address cannot use passive mode: set the server's passive address (vsftpd pasv_address, proftpd MasqueradeAddress, pure-ftpd -P, pyftpdlib masquerade_address) to the address clients reach, or enable the NAT's FTP helper.";

/** One FTP session up to a logged-in control connection. */
interface Session {
  ctrl: ControlConnection;
  protectedData: boolean;
  typeSet: boolean;
}

/** A module's settings with the defaults under them, and its reply limits: worked out once per module. */
const preparedSettings = new WeakMap<FtpSettings, { s: FtpSettings; replyLimits: Partial<ReplyLimits> }>();
function prepared(settings: FtpSettings): { s: FtpSettings; replyLimits: Partial<ReplyLimits> } {
  let p = preparedSettings.get(settings);
  if (!p) {
    p = {
      s: { ...FTP_DEFAULTS, ...settings },
      replyLimits: { ...REPLY_LIMITS, secrets: secretValues(settings) },
    };
    preparedSettings.set(settings, p);
  }
  return p;
}

export const ftpProber: ProberDef<FtpSettings> = {
  name: 'ftp',
  defaultPort: FTP_DEFAULT_PORT,
  urls: FTP_URLS,
  advice: ftpAdvice,
  phases: FTP_PHASES,
  metrics: FTP_METRICS,
  schema: FTP_SETTINGS_SCHEMA,
  defaults: FTP_DEFAULTS,
  validate: validateFtpSettings,
  validateAddress: validateFtpAddress,
  run: (ctx) =>
    runLadder(ctx, async (l) => {
      const { s, replyLimits } = prepared(ctx.module.settings);
      const signal = ctx.signal;
      const hp = parseTargetAddress(ctx.target, defaultPort(s));
      if (typeof hp === 'string') throw new ProbeError('internal_error', hp);

      const codes = new Map<string, number>();
      const modes = new Map<DataMode, ModeOutcome>();
      let mismatch: number | undefined;
      let session: Session | undefined;
      let plain: import('node:net').Socket | undefined;
      // `host` names the peer for certificate checks when no server_name applies (an IP
      // target): over an existing socket Node would otherwise check against "localhost".
      const tlsOpts = s.tls === 'none' ? undefined : { ...tlsOptions(s.tls_config, hp.host), host: hp.host };

      // Runs fn on the current session as rung `phase` (or, with asRung false, inside the rung
      // already running), remembering under `phase` the last reply code the session saw.
      const talk = async <T>(phase: string, fn: (c: ControlConnection) => Promise<T>, asRung = true): Promise<T> => {
        const c = (session as Session).ctrl;
        c.lastCode = undefined;
        try {
          return asRung ? await l.phase(phase, () => fn(c)) : await fn(c);
        } finally {
          if (c.lastCode !== undefined) codes.set(phase, c.lastCode);
        }
      };

      /**
       * Connect, greeting, TLS and login. The first session climbs these as their own rungs;
       * a later one (after a failed mode) runs inside that mode's rung, on that mode's time.
       */
      const openSession = async (address: string, sig: ProbeSignal, mode?: DataMode): Promise<void> => {
        const asRung = mode === undefined;
        const at = (phase: string): string => (asRung ? phase : `data_${mode}`);
        const sock = asRung
          ? await l.phase('connect', () => connectTcp(address, hp.port, sig))
          : await connectTcp(address, hp.port, sig);
        plain = sock;
        session = {
          ctrl: new ControlConnection(sock, replyLimits, (line) => l.debug(line)),
          protectedData: false,
          typeSet: false,
        };
        const sess = session;
        if (s.tls === 'implicit' && tlsOpts) {
          const secure = await talk(at('tls'), (c) => c.upgrade(tlsOpts, sig), asRung);
          if (asRung) recordTls(l, 'FTP server', secure);
        }
        const banner = await talk(at('banner'), (c) => readBanner(c, sig, { deadline: ctx.deadline }), asRung);
        if (asRung) {
          l.details.banner = replyText(banner, 512);
          l.fact('probe_ftp_server_info', 1, { banner: bannerLabel(banner) });
        }
        if (tlsOpts) {
          sess.protectedData = await talk(
            at('tls'),
            async (c) => {
              if (s.tls === 'explicit') {
                const secure = await explicitTls(c, tlsOpts, sig);
                if (asRung) recordTls(l, 'FTP server', secure);
              }
              return protectData(c, sig, false);
            },
            asRung,
          );
        }
        await talk(
          at('login'),
          async (c) => {
            await login(c, s, sig);
            if (tlsOpts && !sess.protectedData) sess.protectedData = await protectData(c, sig, true);
          },
          asRung,
        );
      };

      const closeSession = (): void => {
        if (session) session.ctrl.destroy();
        else plain?.destroy();
        session = undefined;
        plain = undefined;
      };

      try {
        const resolved = await l.phase('resolve', () =>
          resolveHost(hp.host, s.preferred_ip_protocol, s.ip_protocol_fallback, signal),
        );
        l.ipProtocol = resolved.family;
        l.details.peer = resolved.family === 6 ? `[${resolved.address}]:${hp.port}` : `${resolved.address}:${hp.port}`;
        await openSession(resolved.address, signal);

        // Each mode gets an equal share of the time left, and a mode that finishes early
        // passes what it did not use on: a mode whose packets are silently dropped can use up
        // its own share only, so the modes after it are still tested. A failed mode may leave
        // the control connection mid-reply (a late 425 or 226, a connect-back still pending):
        // then the next mode starts on a fresh session instead of reading that reply as its own.
        const list = s.data_channel;
        for (let i = 0; i < list.length; i++) {
          const mode = list[i];
          if (signal.aborted) break;
          const shareMs = Math.max(0, ctx.deadline - Date.now()) / (list.length - i);
          const budget = budgetSignal(signal, shareMs);
          const sig = budget.signal;
          const phase = `data_${mode}`;
          try {
            const result = await l.phase(phase, async () => {
              try {
                if (!session) await openSession(resolved.address, sig, mode);
                const sess = session as Session;
                return await talk(
                  phase,
                  async (c) => {
                    if (!sess.typeSet) {
                      const t = await c.command('TYPE I', sig);
                      if (t.code < 200 || t.code >= 300)
                        throw probeError('protocol_error', `TYPE I: ${t.code} ${replyText(t)}`);
                      sess.typeSet = true;
                    }
                    const env: DataEnv = {
                      ctrl: c,
                      settings: s,
                      signal: sig,
                      budgetSeconds: shareMs / 1000,
                      dataTls: tlsOpts && sess.protectedData ? tlsOpts : undefined,
                      log: (line) => l.debug(line),
                      onPasvAddress: (host, port, mm) => {
                        mismatch = mm ? 1 : 0;
                        l.details.pasv_advertised = `${host}:${port}`;
                      },
                      onPasvFollowed: (advertised, peer) =>
                        l.finding({
                          code: 'ftp_pasv_mismatch_followed',
                          severity: 'warning',
                          message: `PASV advertised ${advertised}, not the control address ${peer}; the probe followed the control address (pasv_mismatch: follow_control_address)`,
                          advice: FOLLOWED_ADVICE,
                        }),
                    };
                    return transfer(mode, env);
                  },
                  false,
                );
              } catch (e) {
                // A connect or greeting of a fresh session that this mode's share ran out on.
                if (e instanceof DeadlineError && !e.shutdown && !signal.aborted) {
                  throw probeError('timeout', `${mode}: no answer within this mode's ${(shareMs / 1000).toFixed(1)} s`);
                }
                throw e;
              }
            });
            modes.set(mode, { success: true, seconds: result.seconds, bytes: result.bytes });
          } catch (e) {
            if (isShutdownError(e, signal)) break; // the agent is stopping: this mode was not tested
            // One mode failing does not stop the others; the first failure is the probe's.
            modes.set(mode, { success: false, seconds: 0, bytes: 0 });
            // A refusal read in full (EPSV 502, PORT 550, a PASV mismatch) leaves the session
            // usable; an abandoned command does not: its reply may still come.
            if (!session?.ctrl.inStep) closeSession();
            if (!(e instanceof ProbeError) && !(e instanceof DeadlineError) && !isErrno(e)) throw e;
          } finally {
            budget.release();
          }
        }
        if (session && !signal.aborted) await talk('quit', (c) => quit(c, signal));
      } finally {
        closeSession();
        emitFacts(l, s, codes, modes, mismatch);
      }
    }),
};

function isShutdownError(e: unknown, signal: ProbeSignal): boolean {
  return (e instanceof DeadlineError && e.shutdown) || (signal.aborted && isShutdown(signal));
}

/** A socket error (ECONNRESET, ECONNREFUSED ...): the mode failed, the ladder records why. */
function isErrno(e: unknown): boolean {
  return typeof (e as NodeJS.ErrnoException)?.code === 'string';
}
