// The hand-over between a socket's reader and the probe: what the reader has parsed (lines,
// replies) waits in a queue for one reader at a time, and the stream's end or error reaches that
// reader as a rejection. The socket is paused while `highWater` items wait unread, so a peer that
// talks faster than the probe reads fills the kernel's buffers, not ours.
import { DeadlineError, isShutdown } from '../ladder';
import type { ProbeSignal } from '../signal';

export interface ReadQueueOptions {
  /** Pauses and resumes the (current) socket. */
  pause(): void;
  resume(): void;
  /** Items queued at which the socket is paused. */
  highWater: number;
  /** What the reader gets once the peer closed and nothing is left to read. */
  closedMessage: string;
  /** Who reads, for the error on a second concurrent read. */
  name: string;
}

export class ReadQueue<T> {
  private readonly items: T[] = [];
  private waiter?: { resolve: (item: T) => void; reject: (e: unknown) => void };
  private failure?: unknown;
  private ended = false;

  constructor(private readonly opts: ReadQueueOptions) {}

  /** Items waiting unread. */
  get length(): number {
    return this.items.length;
  }

  /** Whether the stream ended or failed. */
  get done(): boolean {
    return this.ended || this.failure !== undefined;
  }

  push(item: T): void {
    this.items.push(item);
    if (this.items.length >= this.opts.highWater) this.opts.pause();
    this.wake();
  }

  /** The stream failed; the first failure is the one the reader gets. */
  fail(err: unknown): void {
    if (this.failure === undefined) this.failure = err;
    this.wake();
  }

  /** The peer closed. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  /** The stream goes on over a new socket (a TLS upgrade): it has not ended. */
  reopen(): void {
    this.ended = false;
  }

  /**
   * The next item, or rejects on close, failure or abort. One promise per read, with the abort
   * listener attached only while the read waits (an item already queued is handed over at once).
   */
  next(signal: ProbeSignal): Promise<T> {
    if (this.waiter) return Promise.reject(new Error(`${this.opts.name}: concurrent read`));
    if (signal.aborted) return Promise.reject(new DeadlineError(isShutdown(signal)));
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.waiter !== waiter) return;
        this.waiter = undefined;
        reject(new DeadlineError(isShutdown(signal)));
      };
      const waiter = {
        resolve: (item: T): void => {
          if (listening) signal.removeEventListener('abort', onAbort);
          resolve(item);
        },
        reject: (e: unknown): void => {
          if (listening) signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      let listening = false;
      this.waiter = waiter;
      this.wake();
      if (this.waiter === waiter) {
        listening = true;
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.items.length > 0) {
      this.waiter = undefined;
      const item = this.items.shift() as T;
      if (this.items.length < this.opts.highWater) this.opts.resume();
      w.resolve(item);
    } else if (this.failure !== undefined) {
      this.waiter = undefined;
      w.reject(this.failure);
    } else if (this.ended) {
      this.waiter = undefined;
      const e = new Error(this.opts.closedMessage) as NodeJS.ErrnoException;
      e.code = 'ECONNRESET';
      w.reject(e);
    }
  }
}
