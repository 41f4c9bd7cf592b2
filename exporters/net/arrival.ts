// When a socket's bytes really arrived. JavaScript sees them only when the event loop gets to
// them, which under load (thousands of other probes, a garbage collection, a scrape) is
// milliseconds late. The native addon (native/arrival.c, built by `npm install`) stamps each
// arrival from a thread of its own, on the monotonic clock that performance.now() counts on.
// Without the addon every phase is timed on the event loop, as it always was.
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { packageRoot } from '../package-root';
import { nodeTcpBinding, type TcpHandle } from './node-tcp';

interface Addon {
  open(family: 4 | 6, arrivals: boolean): number;
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

/** The addon's file, whether it was built: build/Release under the installation's root. */
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
    // A native addon at a path known only at run time (and maybe absent): import cannot load it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const a = require(file) as Addon;
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

/**
 * Whether arrival stamps are in use (exposed in the agent's own metrics): the addon is loaded and
 * this Node's TCP handle can adopt the sockets it makes.
 */
export function arrivalStampsEnabled(): boolean {
  return arrivalAddon() !== null && nodeTcpBinding() !== null;
}

/** Turns the stamps off or back on (tests compare the two). */
export function setArrivalStamps(enabled: boolean): void {
  addon = enabled ? undefined : null;
}

/**
 * Stamps for one TCP socket that the addon created and watches from before it connects, so
 * that no handshake completes unseen (native/arrival.c explains why that matters). After stop()
 * the descriptor stays in the addon's epoll set until the socket is closed; its events are then
 * ignored, so stop as soon as the stamps have been read.
 */
export class ArrivalWatch {
  private stopped = false;

  constructor(
    private readonly a: Addon,
    private readonly slot: number,
  ) {}

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

  /** Stops watching; the socket stays the caller's to close. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.a.release(this.slot, false);
  }
}

/**
 * A new, unconnected TCP handle of this family (Node's, as `net.Socket` wraps), watched; with
 * `arrivals` false only its connect is stamped. Undefined when there is no addon or this Node's
 * handle cannot adopt a descriptor: then the caller makes its own and times it on the event loop.
 */
export function watchedHandle(
  family: 4 | 6,
  arrivals: boolean,
): { watch: ArrivalWatch; handle: TcpHandle } | undefined {
  const a = arrivalAddon();
  const b = a && nodeTcpBinding();
  if (!a || !b) return undefined;
  const slot = a.open(family, arrivals);
  if (slot < 0) return undefined;
  const handle = new b.TCP(b.constants.SOCKET);
  if (handle.open(a.fd(slot)) !== 0) {
    handle.close();
    a.release(slot, true);
    return undefined;
  }
  return { watch: new ArrivalWatch(a, slot), handle };
}

/** The same as a `net.Socket`, for connectTcp's `socket` option. */
export function watchedSocket(family: 4 | 6): { watch: ArrivalWatch; socket: net.Socket } | undefined {
  const w = watchedHandle(family, true);
  if (!w) return undefined;
  // manualStart: read only once connected, as a socket that net.connect made does.
  const socket = new net.Socket({ handle: w.handle, manualStart: true } as net.SocketConstructorOpts);
  return { watch: w.watch, socket };
}
