// Silence after a completed TCP handshake, told apart from a dropped SYN. A service that should
// speak first (an FTP greeting, a TCP expect_banner) and says nothing is not a network fault: the
// handshake went through. Something is hung, or the port is held by a service that waits for its
// client (an HTTP server, an implicit-TLS port probed in clear text).
//
// To tell these apart without spoiling the probe's own dialogue, a share of the deadline into the
// silence the probe takes a second look: it opens a side connection to the same address and sends a
// TLS ClientHello followed by CRLF. A TLS server answers the hello with a handshake record or an
// alert; an HTTP server answers the line with an error page; an FTP or SMTP server greets the new
// connection anyway; a tarpit or a hung service says nothing. The probe's own connection keeps
// waiting for its greeting all the while, so a slow but healthy server (a reverse-DNS lookup before
// the greeting) is never failed by the look, and never sees a stray command on its session.
import net from 'node:net';
import { Duplex } from 'node:stream';
import { nodeTls } from './net/lazy-tls';
import { DeadlineError, ProbeError } from './ladder';
import type { ProbeSignal } from './signal';

/** What answered the second look. */
export type Look =
  | { kind: 'tls'; detail: string }
  | { kind: 'http'; detail: string }
  | { kind: 'ssh'; detail: string }
  /** A reply-coded greeting (FTP, SMTP): the service greets new connections. */
  | { kind: 'greeted'; detail: string }
  /** Bytes that are none of the above. */
  | { kind: 'other'; detail: string }
  /** The peer closed (or reset) the side connection without a byte. */
  | { kind: 'closed'; detail: string }
  /** Nothing came back before the deadline (or the side connection could not be made). */
  | { kind: 'silent'; detail: string };

/** Most bytes of the answer the look keeps. */
const LOOK_BYTES = 512;

/** Printable, one line, bounded: for messages. */
function printable(s: string, max = 80): string {
  const flat = s
    .replace(/[^\x20-\x7e]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function firstLine(b: Buffer): string {
  const nl = b.indexOf(0x0a);
  return b
    .subarray(0, nl >= 0 ? nl : b.length)
    .toString('latin1')
    .replace(/\r$/, '');
}

/**
 * Classifies the first bytes a service sent (in answer to the look, or unasked). Pure. `complete`
 * says no more bytes will come (closed), so a short prefix is judged as it stands.
 * Returns undefined while more bytes are needed to decide.
 */
export function classifyAnswer(b: Buffer, complete: boolean): Look | undefined {
  if (b.length === 0) return complete ? { kind: 'closed', detail: 'closed the connection without a byte' } : undefined;
  // TLS record: content type handshake (22) or alert (21), then major version 3.
  if (b[0] === 0x16 || b[0] === 0x15) {
    if (b.length < 2) return complete ? { kind: 'other', detail: `one byte 0x${b[0].toString(16)}` } : undefined;
    if (b[1] === 0x03) {
      return { kind: 'tls', detail: b[0] === 0x16 ? 'a TLS handshake record' : 'a TLS alert' };
    }
  }
  const text = b[0] === 0x09 || (b[0] >= 0x20 && b[0] < 0x7f);
  if (!text) return { kind: 'other', detail: `${b.length} bytes of binary data` };
  // Text: judged by its first line, once that line is complete.
  if (b.indexOf(0x0a) < 0 && !complete && b.length < LOOK_BYTES) return undefined;
  const line = firstLine(b);
  if (/^HTTP\/\d(\.\d)? \d{3}/.test(line)) return { kind: 'http', detail: printable(line) };
  // An HTTP/0.9-style error page (Python's http.server answers a bad request line this way).
  if (/^\s*<(!doctype html|html|head|body|title)\b/i.test(b.toString('latin1', 0, Math.min(b.length, 64)))) {
    return { kind: 'http', detail: 'an HTML page without a status line' };
  }
  if (/^SSH-\d/.test(line)) return { kind: 'ssh', detail: printable(line) };
  if (/^[1-5]\d\d([ -]|$)/.test(line)) return { kind: 'greeted', detail: printable(line) };
  return { kind: 'other', detail: printable(line) || `${b.length} bytes of binary data` };
}

/** What the looked-at service is, in words, for the start of a message. */
export function lookSays(look: Look): string {
  switch (look.kind) {
    case 'tls':
      return `the port answers a TLS ClientHello with ${look.detail}: it speaks TLS from the first byte`;
    case 'http':
      return `an HTTP server answers on this port (${look.detail})`;
    case 'ssh':
      return `an SSH server answers on this port (${JSON.stringify(look.detail)})`;
    case 'greeted':
      return `a second connection was greeted at once (${JSON.stringify(look.detail)})`;
    case 'other':
      return `another service answers on this port when spoken to (${JSON.stringify(look.detail)})`;
    case 'closed':
      return 'a second connection, sent a TLS ClientHello, was closed without a byte';
    case 'silent':
      return `a second connection ${look.detail}`;
  }
}

let helloCache: Promise<Buffer> | undefined;

/**
 * The ClientHello Node's own TLS client sends (caught from a handshake over a stream that goes
 * nowhere), followed by CRLF so that line-based services see one complete line. Made once.
 */
export function clientHello(): Promise<Buffer> {
  helloCache ??= new Promise<Buffer>((resolve) => {
    let caught = false;
    const sink = new Duplex({
      read() {
        // nothing ever arrives
      },
      write(chunk: Buffer, _enc, cb) {
        if (!caught) {
          caught = true;
          resolve(Buffer.concat([chunk, Buffer.from('\r\n')]));
          setImmediate(() => t.destroy());
        }
        cb();
      },
    });
    const t = nodeTls().connect({ socket: sink, rejectUnauthorized: false, servername: 'portprobe.invalid' });
    t.on('error', () => undefined);
  });
  return helloCache;
}

/**
 * Opens a side connection and reports what answers a ClientHello+CRLF. Never rejects; `stop()`
 * closes the connection at once and judges what came so far ('silent' when nothing did).
 */
export function secondLook(address: string, port: number): { result: Promise<Look>; stop: () => void } {
  let socket: net.Socket | undefined;
  let settle: (l: Look) => void = () => undefined;
  let done = false;
  const result = new Promise<Look>((resolve) => {
    settle = (l) => {
      if (done) return;
      done = true;
      socket?.destroy();
      resolve(l);
    };
  });
  let buf = Buffer.alloc(0);
  void clientHello().then((hello) => {
    if (done) return;
    const s = net.connect({ host: address, port });
    socket = s;
    s.setNoDelay(true);
    s.on('connect', () => s.write(hello));
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]).subarray(0, LOOK_BYTES);
      const l = classifyAnswer(buf, buf.length >= LOOK_BYTES);
      if (l) settle(l);
    });
    const end = (): void => settle(classifyAnswer(buf, true) as Look);
    s.on('end', end);
    s.on('close', end);
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (buf.length > 0) end();
      else if (e.code === 'ECONNRESET') settle({ kind: 'closed', detail: 'was reset without a byte' });
      else settle({ kind: 'silent', detail: `could not be made (${e.code ?? e.message})` });
    });
  });
  // Stopped at the deadline: what came so far is all there is.
  const stop = (): void =>
    settle(buf.length > 0 ? (classifyAnswer(buf, true) as Look) : { kind: 'silent', detail: 'got no answer either' });
  return { result, stop };
}

export interface SilenceOptions {
  /** The probe's signal: its deadline ends the wait. */
  signal: ProbeSignal;
  /** Absolute deadline (ms since the epoch), to place the look; without it the look waits LOOK_DEFAULT_MS. */
  deadline?: number;
  /** The connection the probe waits on: its bytes are counted, its peer is looked at. */
  socket: net.Socket;
  /** Whether the connection is clear text (a side look in clear text only means something then). */
  clearText: boolean;
  /** 'greeting': the service speaks first; 'response': the probe spoke first (`send`). */
  expecting: 'greeting' | 'response';
  /** For messages: "greeting", "banner". */
  what: string;
  /** Advice per outcome, in the prober's terms. */
  advice: { silent: string; stalled: string; tls: string; other: string };
}

/** Whether a look's answer names what holds the port (rather than adding a note to silence). */
function isDecisive(l: Look): boolean {
  return l.kind === 'tls' || l.kind === 'http' || l.kind === 'ssh' || l.kind === 'other';
}

function lookError(l: Look, message: string, o: SilenceOptions): ProbeError {
  return l.kind === 'tls'
    ? new ProbeError('tls_expected', message, o.advice.tls)
    : new ProbeError('banner_unexpected', message, o.advice.other);
}

/** Share of the time left when the wait starts after which the look is taken. */
export const LOOK_SHARE = 1 / 3;
/** When the caller does not know its deadline: the look starts this long into the silence. */
export const LOOK_DEFAULT_MS = 500;

/**
 * Waits for `read` (the first reply/line on `socket`). If it has not come after a share of the
 * time left, takes a second look at the peer. A look that finds TLS, HTTP, SSH or other bytes
 * ends the wait with tls_expected or banner_unexpected; at the deadline the wait ends with
 * no_greeting / no_response (nothing at all came on the connection) or stalled (part of an
 * answer came, then nothing). A shutdown, and every other failure of `read`, passes through.
 */
export async function readOrExplain<T>(read: Promise<T>, o: SilenceOptions): Promise<T> {
  let bytes = 0;
  const count = (chunk: Buffer): void => {
    bytes += chunk.length;
  };
  o.socket.on('data', count);
  const started = Date.now();
  const wait = o.deadline === undefined ? LOOK_DEFAULT_MS : Math.max(0, (o.deadline - started) * LOOK_SHARE);
  let look: { result: Promise<Look>; stop: () => void } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const address = o.socket.remoteAddress;
  const port = o.socket.remotePort;
  const decisive = new Promise<Look>((resolve) => {
    if (!o.clearText || address === undefined || port === undefined) return;
    timer = setTimeout(() => {
      if (bytes > 0) return; // it began to answer: a look would say nothing new
      look = secondLook(address, port);
      void look.result.then((l) => {
        if (isDecisive(l)) resolve(l);
      });
    }, wait);
  });
  const ended = Symbol('look');
  try {
    const first = await Promise.race([read, decisive.then((l) => ({ [ended]: l }))]);
    if (typeof first === 'object' && first !== null && ended in first) {
      read.catch(() => undefined);
      const l = first[ended];
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      throw lookError(l, `${o.what}: nothing in ${secs} s, and ${lookSays(l)}`, o);
    }
    return first;
  } catch (e) {
    if (!(e instanceof DeadlineError) || e.shutdown) throw e;
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    if (bytes > 0) {
      throw new ProbeError(
        'stalled',
        `${o.what}: the service sent only ${bytes} byte${bytes === 1 ? '' : 's'} of its ${o.expecting === 'greeting' ? 'greeting' : 'answer'} (no complete reply) in ${secs} s`,
        o.advice.stalled,
      );
    }
    let note = '';
    if (look) {
      look.stop();
      const l = await look.result;
      // A look that heard a partial line by the deadline still names what answers.
      if (isDecisive(l)) throw lookError(l, `${o.what}: nothing in ${secs} s, and ${lookSays(l)}`, o);
      note = `; ${lookSays(l)}`;
    }
    const reason = o.expecting === 'greeting' ? 'no_greeting' : 'no_response';
    const said =
      o.expecting === 'greeting'
        ? 'the connection was accepted but the service sent nothing'
        : 'the connection was accepted and the request sent, but the service answered nothing';
    throw new ProbeError(reason, `${o.what}: ${said} in ${secs} s${note}`, o.advice.silent);
  } finally {
    if (timer) clearTimeout(timer);
    look?.stop();
    o.socket.off('data', count);
  }
}
