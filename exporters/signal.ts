// A probe's deadline signal. Probers only ask whether it fired, why, and to be called when it
// does; a Node AbortController answers that too, but one per probe measurably costs the agent:
// it is an EventTarget with two maps, and its objects outlive young-generation collections, so
// at thousands of probes a second they were most of what the collector copied and promoted
// (BENCHMARKS.md, scenario 1). ProbeAbort is a plain object with at most a few listeners.

/** The part of AbortSignal a prober may use. A real AbortSignal is one too. */
export interface ProbeSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Fires once, with a reason; listeners run in the order they were added. */
export class ProbeAbort implements ProbeSignal {
  aborted = false;
  reason: unknown = undefined;
  // Nearly always zero or one listener at a time: no array until a second one comes.
  private first: (() => void) | undefined = undefined;
  private more: (() => void)[] | undefined = undefined;
  private native: AbortController | undefined = undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted || listener === this.first || this.more?.includes(listener)) return;
    if (this.first === undefined) this.first = listener;
    else (this.more ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.first === listener) {
      this.first = this.more?.shift();
      return;
    }
    const i = this.more ? this.more.indexOf(listener) : -1;
    if (i >= 0) (this.more as (() => void)[]).splice(i, 1);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.first === undefined ? [] : [this.first, ...(this.more ?? [])];
    this.first = undefined;
    this.more = undefined;
    // Listeners close sockets and reject promises; one that throws must not keep the others
    // from running, nor reach the event loop as an uncaught exception.
    for (const fn of listeners) {
      try {
        fn();
      } catch {
        // nothing to do: the probe ends at its deadline either way
      }
    }
    this.native?.abort(reason);
  }

  /** A real AbortSignal that fires with this one, for the Node APIs that take only that. */
  toAbortSignal(): AbortSignal {
    if (!this.native) {
      this.native = new AbortController();
      if (this.aborted) this.native.abort(this.reason);
    }
    return this.native.signal;
  }
}

/** A real AbortSignal for any ProbeSignal. */
export function abortSignalOf(signal: ProbeSignal): AbortSignal {
  if (signal instanceof AbortSignal) return signal;
  if (signal instanceof ProbeAbort) return signal.toAbortSignal();
  const c = new AbortController();
  if (signal.aborted) c.abort(signal.reason);
  else signal.addEventListener('abort', () => c.abort(signal.reason), { once: true });
  return c.signal;
}
