// When a socket's bytes really arrived. JavaScript sees them only when the event loop gets to
// them, which under load (thousands of other probes, a garbage collection, a scrape) is
// milliseconds late. The native addon (native/arrival.c, built by `npm install`) stamps each
// arrival from a thread of its own, on the monotonic clock that performance.now() counts on.
// Without the addon every phase is timed on the event loop, as it always was.
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { packageRoot } from '../agent/package-root';
import { nodeTcpBinding } from './tcp/net';

interface Addon {
  open(family: 4 | 6): number;
  fd(slot: number): number;
  last(slot: number): number;
  connected(slot: number): number;
  release(slot: number, close: boolean): void;
  inUse(): number;
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

/** Node's TCP handle, where it can adopt a descriptor (`open`). */
interface AdoptingHandle {
  open(fd: number): number;
  close(): void;
}

/**
 * A TCP socket whose arrivals are stamped from before it connects, so that no handshake can
 * complete unseen (exporters/arrival.c explains why that matters).
 */
export class ArrivalWatch {
  private stopped = false;

  private constructor(
    private readonly a: Addon,
    private readonly slot: number,
    /** Not yet connected: the caller connects it (connectTcp's `socket` option). */
    readonly socket: net.Socket,
  ) {}

  /**
   * A new, unconnected socket of this family, watched. Undefined when there is no addon, or
   * this Node's TCP handle cannot adopt a descriptor: then the caller makes its own socket
   * and times it on the event loop.
   */
  static socket(family: 4 | 6): ArrivalWatch | undefined {
    const a = arrivalAddon();
    const b = nodeTcpBinding();
    if (!a || !b || typeof (b.TCP.prototype as Partial<AdoptingHandle>).open !== 'function') return undefined;
    const slot = a.open(family);
    if (slot < 0) return undefined;
    const handle = new b.TCP(b.constants.SOCKET) as unknown as AdoptingHandle;
    if (handle.open(a.fd(slot)) !== 0) {
      handle.close();
      a.release(slot, true);
      return undefined;
    }
    // manualStart: read only once connected, as a socket that net.connect made does.
    const socket = new net.Socket({ handle, manualStart: true } as net.SocketConstructorOpts);
    return new ArrivalWatch(a, slot, socket);
  }

  /** How many watches are held in this process (0 without the addon). */
  static held(): number {
    return arrivalAddon()?.inUse() ?? 0;
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

  /** Stops watching (the socket stays the caller's to destroy). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.a.release(this.slot, false);
  }
}
