// The FTP greeting rung: the first reply a server sends after the TCP (or implicit TLS) handshake.
import type { ProbeSignal } from '../signal';
import { probeError } from './advice';
import { ReplyStreamError, type ControlConnection } from './control';
import { replyText, type Reply } from './reply';

export async function readBanner(ctrl: ControlConnection, signal: ProbeSignal): Promise<Reply> {
  let r: Reply;
  try {
    r = await ctrl.read(signal);
  } catch (e) {
    // A first line that is no FTP reply at all: another service listens here.
    if (e instanceof ReplyStreamError && e.kind === 'malformed') {
      throw probeError('banner_unexpected', `greeting: ${e.message.replace(/^control connection: /, '')}`);
    }
    throw e;
  }
  // 120: "service ready in nnn minutes", followed by 220 when it is.
  for (let i = 0; i < 3 && r.code === 120; i++) r = await ctrl.read(signal);
  if (r.code === 220) return r;
  if (r.code === 421) {
    throw probeError('too_many_connections', `greeting: 421 ${replyText(r)}`);
  }
  throw probeError('banner_unexpected', `greeting: expected 220, got ${r.code} ${replyText(r)}`);
}
