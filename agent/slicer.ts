// Long work on the agent's thread (a reload of 100,000 targets) done in slices: the worker checks
// `due()` now and then and, once its slice has used its budget, awaits `pause()`, which lets
// timers, probes and HTTP requests run before it goes on.
import { performance } from 'node:perf_hooks';

/** The default slice: well under the 50 ms no reload may stall the event loop for. */
export const SLICE_MS = 10;

export class Slicer {
  private started = performance.now();
  /** Slices handed back to the event loop so far. */
  pauses = 0;

  constructor(private readonly budgetMs = SLICE_MS) {}

  due(): boolean {
    return performance.now() - this.started >= this.budgetMs;
  }

  /** Lets the event loop run (timers and I/O included), then starts a new slice. */
  async pause(): Promise<void> {
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    this.pauses++;
    this.started = performance.now();
  }
}
