// When a socket's bytes really arrived. JavaScript sees them only when the event loop gets to
// them, which under load (thousands of other probes, a garbage collection, a scrape) is
// milliseconds late. The native addon (native/arrival.c, built by `npm install`) stamps each
// arrival from a thread of its own, on the monotonic clock that performance.now() counts on.
// Without the addon every phase is timed on the event loop, as it always was.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { packageRoot } from '../agent/package-root';

interface Addon {
  watch(fd: number): number;
  last(slot: number): number;
  connected(slot: number): number;
  unwatch(slot: number, fd: number): void;
  now(): number;
}

let addon: Addon | null | undefined;
/** performance.now() minus the addon's clock. */
let offsetMs = 0;

/** The addon's file, whether it was built. */
export function arrivalAddonPath(): string {
  return path.join(packageRoot(), 'build', 'Release', 'arrival.node');
}

/** Loads the addon once; null when it is not built or PORTPROBE_ARRIVAL_STAMPS=off. */
export function arrivalAddon(): Addon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.env.PORTPROBE_ARRIVAL_STAMPS === 'off') return null;
  const file = arrivalAddonPath();
  if (!existsSync(file)) return null;
  try {
    const a = require(file) as Addon; // eslint-disable-line @typescript-eslint/no-require-imports
    // Both clocks are CLOCK_MONOTONIC; the tightest of a few paired readings gives the offset.
    let best = Infinity;
    for (let i = 0; i < 5; i++) {
      const before = performance.now();
      const t = a.now();
      const after = performance.now();
      if (after - before < best) {
        best = after - before;
        offsetMs = (before + after) / 2 - t;
      }
    }
    addon = a;
  } catch {
    addon = null;
  }
  return addon;
}

/** Whether arrival stamps are in use (exposed in the agent's own metrics). */
export function arrivalStampsEnabled(): boolean {
  return arrivalAddon() !== null;
}

/** Turns the stamps off or back on (tests compare the two). */
export function setArrivalStamps(enabled: boolean): void {
  addon = enabled ? undefined : null;
}

/** The file descriptor under a socket (a TLS socket's is its transport's), if it has one. */
function socketFd(socket: object): number | undefined {
  const s = socket as { _handle?: { fd?: unknown }; _parent?: { _handle?: { fd?: unknown } } };
  const fd = s._handle?.fd ?? s._parent?._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Stamps the arrivals on one socket from now until stop(). */
export class ArrivalWatch {
  private stopped = false;

  private constructor(
    private readonly a: Addon,
    private readonly slot: number,
    private readonly fd: number,
  ) {}

  /** Starts watching; undefined when there is no addon or no descriptor (then time on the loop). */
  static start(socket: object): ArrivalWatch | undefined {
    const a = arrivalAddon();
    if (!a) return undefined;
    const fd = socketFd(socket);
    if (fd === undefined) return undefined;
    const slot = a.watch(fd);
    return slot >= 0 ? new ArrivalWatch(a, slot, fd) : undefined;
  }

  /** performance.now() time of the latest arrival so far, or undefined when none was seen. */
  lastArrival(): number | undefined {
    if (this.stopped) return undefined;
    const t = this.a.last(this.slot);
    return t > 0 ? t + offsetMs : undefined;
  }

  /** performance.now() time the connection was first seen established, or undefined. */
  connectedAt(): number | undefined {
    if (this.stopped) return undefined;
    const t = this.a.connected(this.slot);
    return t > 0 ? t + offsetMs : undefined;
  }

  /** Stops watching. Call before the socket is destroyed (its descriptor may be reused after). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.a.unwatch(this.slot, this.fd);
  }
}
