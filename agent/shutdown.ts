// Tells every probe in flight that the agent is stopping. An AbortSignal would do, but each
// listener added to one walks all the listeners it already has: with thousands of probes waiting
// (a slow network, a backlog after a stall) that made every new probe cost more than the last.
// Here subscribing and unsubscribing are constant time.
export class Shutdown {
  private readonly subscribers = new Set<() => void>();
  private readonly controller = new AbortController();

  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  /** For the few long-lived users that take a signal (collectors). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Calls `fn` once on shutdown (now, if already stopping); returns the unsubscribe. */
  subscribe(fn: () => void): () => void {
    if (this.aborted) {
      fn();
      return () => undefined;
    }
    this.subscribers.add(fn);
    return () => {
      this.subscribers.delete(fn);
    };
  }

  abort(): void {
    if (this.aborted) return;
    this.controller.abort();
    const fns = [...this.subscribers];
    this.subscribers.clear();
    for (const fn of fns) fn();
  }
}
