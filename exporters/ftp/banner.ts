// The FTP greeting rung: the first reply a server sends after the TCP (or implicit TLS) handshake.
// Silence here is not the network's fault (the handshake completed): see exporters/silence.ts for
// how a hung service, an HTTP server and an implicit-TLS port are told apart.
import type { ProbeSignal } from '../signal';
import { classifyAnswer, lookSays, readOrExplain } from '../silence';
import { probeError } from './advice';
import { ReplyStreamError, type ControlConnection } from './control';
import { replyText, type Reply } from './reply';
import { DeadlineError, ProbeError } from '../ladder';
import { nodeTls } from '../net/lazy-tls';

export const GREETING_ADVICE = {
  silent:
    'The TCP handshake completed, so the network path is fine: the FTP service accepted the connection but never greeted. It is hung or overloaded (a full worker pool, a reverse-DNS or ident lookup that blocks before the greeting), or a service that waits for its client holds the port. Check the FTP server process and its logs, and what listens on this port.',
  stalled:
    'The FTP service began its greeting and stopped: it is hung or overloaded, not the network. Check the FTP server process and its logs.',
  tls: 'The port expects TLS from the first byte (implicit FTPS, usually port 990): set tls: implicit in the module, or point the target at the clear-text port (21).',
  other:
    'Another service holds this port: check the port in the target (FTP listens on 21, implicit FTPS on 990) and what listens there on the host (ss -ltnp).',
} as const;

export interface BannerOptions {
  /** The probe's deadline (ms since the epoch): the second look is taken a share of it into the silence. */
  deadline?: number;
}

/** A first line that is no FTP reply, named when it is a known protocol. */
function notFtp(e: ReplyStreamError): ProbeError {
  const text = e.message.replace(/^control connection: /, '');
  const seen = /"(.*)"/.exec(text)?.[1];
  const look = seen === undefined ? undefined : classifyAnswer(Buffer.from(`${seen}\n`, 'latin1'), true);
  if (look && (look.kind === 'ssh' || look.kind === 'http')) {
    return new ProbeError('banner_unexpected', `greeting: ${lookSays(look)}`, GREETING_ADVICE.other);
  }
  return probeError('banner_unexpected', `greeting: ${text}`);
}

export async function readBanner(
  ctrl: ControlConnection,
  signal: ProbeSignal,
  opts: BannerOptions = {},
): Promise<Reply> {
  const explain = <T>(p: Promise<T>): Promise<T> =>
    readOrExplain(p, {
      signal,
      deadline: opts.deadline,
      socket: ctrl.socket,
      clearText: !(ctrl.socket instanceof nodeTls().TLSSocket),
      expecting: 'greeting',
      what: 'greeting',
      advice: GREETING_ADVICE,
    });
  let r: Reply;
  try {
    r = await explain(ctrl.read(signal));
    // 120: "service ready in nnn minutes", followed by 220 when it is.
    for (let i = 0; i < 3 && r.code === 120; i++) {
      r = await ctrl.read(signal).catch((e: unknown) => {
        if (!(e instanceof DeadlineError) || e.shutdown) throw e;
        throw new ProbeError(
          'stalled',
          `greeting: 120 ${replyText(r)}, then no 220 before the deadline`,
          GREETING_ADVICE.stalled,
        );
      });
    }
  } catch (e) {
    // A first line that is no FTP reply at all: another service listens here.
    if (e instanceof ReplyStreamError && e.kind === 'malformed') throw notFtp(e);
    throw e;
  }
  if (r.code === 220) return r;
  if (r.code === 421) {
    throw probeError('too_many_connections', `greeting: 421 ${replyText(r)}`);
  }
  throw probeError('banner_unexpected', `greeting: expected 220, got ${r.code} ${replyText(r)}`);
}
