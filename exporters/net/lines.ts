// A line reader with hard size caps, for banners and line protocols.
import type net from 'node:net';
import { ProbeError } from '../ladder';
import type { ProbeSignal } from '../signal';
import { ReadQueue } from './read-queue';

export interface LineReaderLimits {
  /** Longest line accepted, in bytes (excluding CRLF). Longer lines are an error. */
  maxLineBytes: number;
  /** Total bytes buffered at once. */
  maxBufferedBytes: number;
}

export class LineTooLongError extends ProbeError {
  constructor(limit: number) {
    super('protocol_error', `peer sent a line longer than ${limit} bytes`);
  }
}

/**
 * Reads LF- or CRLF-terminated lines from a socket with hard caps: a peer that never sends a
 * newline cannot make the buffer grow past `maxLineBytes`. Pauses the socket when lines queue up.
 */
export class LineReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly queue: ReadQueue<string>;
  private readonly onData = (chunk: Buffer): void => this.push(chunk);
  private readonly onEnd = (): void => this.queue.end();
  private readonly onError = (err: unknown): void => this.queue.fail(err);

  constructor(
    private readonly socket: net.Socket,
    private readonly limits: LineReaderLimits = { maxLineBytes: 8192, maxBufferedBytes: 65536 },
  ) {
    this.queue = new ReadQueue<string>({
      pause: () => socket.pause(),
      resume: () => socket.resume(),
      // Lines are counted at 80 bytes each against the buffer cap.
      highWater: Math.floor(limits.maxBufferedBytes / 80) + 1,
      closedMessage: 'connection closed by peer',
      name: 'LineReader',
    });
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /** Stops listening; the socket keeps any unread bytes. */
  detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
  }

  private push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let nl: number;
    while ((nl = this.buf.indexOf(0x0a)) >= 0) {
      let end = nl;
      if (end > 0 && this.buf[end - 1] === 0x0d) end -= 1;
      if (end > this.limits.maxLineBytes) {
        this.fail(new LineTooLongError(this.limits.maxLineBytes));
        return;
      }
      this.queue.push(this.buf.subarray(0, end).toString('latin1'));
      this.buf = this.buf.subarray(nl + 1);
    }
    if (this.buf.length > this.limits.maxLineBytes) this.fail(new LineTooLongError(this.limits.maxLineBytes));
  }

  private fail(err: unknown): void {
    this.buf = Buffer.alloc(0);
    this.queue.fail(err);
    this.socket.destroy();
  }

  /** Next line, or rejects on close, error, cap or abort. */
  readLine(signal: ProbeSignal): Promise<string> {
    return this.queue.next(signal);
  }
}
