// The FTP control connection: send one command, read whole replies with the capped parser,
// upgrade to TLS in place (AUTH TLS). Written here rather than taken from basic-ftp because
// the probe needs what that client keeps to itself: the raw PASV address (to detect NAT
// mismatches before connecting anywhere), active mode (PORT/EPRT with our own listener),
// every reply code per rung, and hard caps on reply size.
import type net from 'node:net';
import type tls from 'node:tls';
import { DeadlineError, ProbeError } from '../ladder';
import { probeError } from './advice';
// From the modules, not the folder's index: its re-exports are getters, paid on every call.
import { ReadQueue } from '../net/read-queue';
import { startTls } from '../net/tls';
import { ReplyParser, type Reply, type ReplyErrorKind, type ReplyLimits } from './reply';
import type { ProbeSignal } from '../signal';

/** The server's byte stream broke the reply grammar or a size cap. */
export class ReplyStreamError extends ProbeError {
  constructor(
    readonly kind: ReplyErrorKind,
    message: string,
  ) {
    super('protocol_error', `control connection: ${message}`);
  }
}

/** The verb of a command line, for messages (never its argument: PASS carries a secret). */
export function verbOf(line: string): string {
  return line.split(' ')[0].toUpperCase();
}

/** The server answered earlier in this session and then let the deadline pass on `line`. */
export function stalledError(line: string): ProbeError {
  return probeError(
    'stalled',
    `${verbOf(line)}: no reply before the deadline, after the server had answered earlier commands`,
  );
}

/** Replies queued unread before the socket is paused. */
const MAX_QUEUED = 8;

export class ControlConnection {
  private sock: net.Socket;
  private parser: ReplyParser;
  private readonly queue = new ReadQueue<Reply>({
    pause: () => this.sock.pause(),
    resume: () => this.sock.resume(),
    highWater: MAX_QUEUED,
    closedMessage: 'control connection closed by the server',
    name: 'ControlConnection',
  });
  private tlsSession?: Buffer;
  /** The last reply code read, for probe_ftp_status_code. */
  lastCode?: number;
  /** Commands sent whose final (non-1xx) reply has not been read yet. */
  private outstanding = 0;

  private readonly onData = (chunk: Buffer): void => {
    const out = this.parser.push(chunk);
    for (const r of out.replies) this.queue.push(r);
    if (out.error) {
      this.queue.fail(new ReplyStreamError(out.error.kind, out.error.message));
      this.sock.destroy();
    }
  };
  private readonly onClose = (): void => this.queue.end();
  private readonly onError = (err: unknown): void => this.queue.fail(err);

  constructor(
    socket: net.Socket,
    private readonly limits: Partial<ReplyLimits> = {},
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.sock = socket;
    this.parser = new ReplyParser(limits);
    this.attach();
  }

  get socket(): net.Socket {
    return this.sock;
  }

  get remoteAddress(): string {
    return this.sock.remoteAddress ?? '';
  }

  get localAddress(): string {
    return this.sock.localAddress ?? '';
  }

  private attach(): void {
    this.sock.on('data', this.onData);
    this.sock.on('end', this.onClose);
    this.sock.on('close', this.onClose);
    this.sock.on('error', this.onError);
  }

  private detach(): void {
    this.sock.off('data', this.onData);
    this.sock.off('end', this.onClose);
    this.sock.off('close', this.onClose);
    this.sock.off('error', this.onError);
  }

  /** The next complete reply. Rejects on close, cap, socket error or abort. */
  read(signal: ProbeSignal): Promise<Reply> {
    return this.queue.next(signal).then((r) => {
      this.lastCode = r.code;
      if (r.code >= 200) this.outstanding = Math.max(0, this.outstanding - 1);
      this.log(`< ${r.code} ${r.lines[0] ?? ''}${r.lines.length > 1 ? ` (+${r.lines.length - 1} lines)` : ''}`);
      return r;
    });
  }

  /** Sends one command line. Refuses CR/LF inside it: settings must not smuggle commands. */
  send(line: string): void {
    if (/[\r\n]/.test(line)) throw new ProbeError('internal_error', 'FTP command contains a line break');
    this.log(`> ${line.startsWith('PASS ') ? 'PASS <secret>' : line}`);
    this.sock.write(`${line}\r\n`);
    this.outstanding += 1;
  }

  /**
   * Whether the next reply read will answer the next command sent: every command's final
   * reply has been read and the connection is still open. False after a command was abandoned
   * at a deadline, when its reply (a late 425 or 226) may still arrive.
   */
  get inStep(): boolean {
    return this.outstanding === 0 && !this.queue.done && !this.sock.destroyed;
  }

  /**
   * Sends a command and returns its first reply (which may be preliminary, 1xx). Commands are
   * only sent after the greeting, so a server that lets the deadline pass without answering
   * one has stopped mid-dialogue: `stalled`, not a network timeout.
   */
  async command(line: string, signal: ProbeSignal): Promise<Reply> {
    this.send(line);
    try {
      return await this.read(signal);
    } catch (e) {
      if (e instanceof DeadlineError && !e.shutdown) throw stalledError(line);
      throw e;
    }
  }

  /**
   * Replaces the plain socket with a TLS one on the same TCP connection (after AUTH TLS 234,
   * or right after connect for implicit TLS). Bytes the peer sent before the handshake are
   * a protocol error.
   */
  async upgrade(opts: tls.ConnectionOptions, signal: ProbeSignal): Promise<tls.TLSSocket> {
    if (this.queue.length > 0) {
      throw new ProbeError('protocol_error', 'server sent replies before the TLS handshake');
    }
    this.detach();
    const plain = this.sock;
    try {
      const secure = await startTls(plain, opts, signal);
      this.sock = secure;
      // TLS 1.3 delivers session tickets after the handshake; keep the newest for data channels.
      secure.on('session', (s: Buffer) => {
        this.tlsSession = s;
      });
      this.parser = new ReplyParser(this.limits);
      this.queue.reopen();
      return secure;
    } finally {
      // On failure the plain socket stays the one `destroy` closes; on success the TLS socket
      // owns it and destroying the TLS socket closes both.
      this.attach();
    }
  }

  /** The TLS session of the control connection, offered for reuse on data connections. */
  session(): Buffer | undefined {
    if (this.tlsSession) return this.tlsSession;
    const s = this.sock as tls.TLSSocket;
    return typeof s.getSession === 'function' ? s.getSession() : undefined;
  }

  destroy(): void {
    this.detach();
    this.sock.on('error', () => undefined);
    this.sock.destroy();
  }
}
