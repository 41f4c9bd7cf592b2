// TCP connects that honour the probe's deadline signal: through `net` for probes that talk, and
// on Node's bare TCP handle for connect-only probes, with arrival stamps when the addon is there.
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { DeadlineError, isShutdown } from '../ladder';
import type { ProbeSignal } from '../signal';
import { watchedHandle, watchedSocket } from './arrival';
import { nodeTcpBinding, type TcpBinding } from './node-tcp';

export interface ConnectOptions {
  localAddress?: string;
  /**
   * Disable Nagle's algorithm (default true): right for request/reply protocols. A probe that
   * writes at most once gains nothing from it and saves a system call per probe.
   */
  noDelay?: boolean;
  /** Do not start reading once connected: a connect-only probe never reads, and saves a system call. */
  noRead?: boolean;
  /** An unconnected socket to connect instead of a new one (watchedSocket in arrival.ts makes one). */
  socket?: net.Socket;
}

/**
 * Opens a TCP connection. On abort the half-open socket is destroyed and DeadlineError is
 * thrown. The caller owns the returned socket and must destroy it in `finally`.
 */
export function connectTcp(
  address: string,
  port: number,
  signal: ProbeSignal,
  opts: ConnectOptions = {},
): Promise<net.Socket> {
  const target = { host: address, port, localAddress: opts.localAddress };
  const socket = opts.socket ? opts.socket.connect(target) : net.connect(target);
  if (opts.noDelay !== false) socket.setNoDelay(true);
  if (opts.noRead) socket.pause();
  return settled(socket, 'connect', signal);
}

/**
 * The socket once it emits `event` (connect, secureConnect); rejects with its error, or with
 * DeadlineError on abort. On either the socket is destroyed.
 */
export function settled<S extends net.Socket>(socket: S, event: string, signal: ProbeSignal): Promise<S> {
  // One promise and three listeners: this runs once per probe.
  return new Promise<S>((resolve, reject) => {
    if (signal.aborted) {
      socket.destroy();
      reject(new DeadlineError(isShutdown(signal)));
      return;
    }
    const onEvent = (): void => {
      socket.off('error', onError);
      signal.removeEventListener('abort', onAbort);
      resolve(socket);
    };
    const onError = (err: unknown): void => {
      socket.off(event, onEvent);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(err);
    };
    // The error listener stays: a destroyed socket's late error must not go unheard.
    const onAbort = (): void => {
      socket.off(event, onEvent);
      socket.destroy();
      reject(new DeadlineError(isShutdown(signal)));
    };
    socket.once(event, onEvent);
    socket.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** What a connect-only probe holds once connected: something to close, and when it connected. */
export interface Closable {
  destroy(): void;
  /** performance.now() time the handshake was seen complete (arrival stamps), if known. */
  connectedAt?: number;
}

let bareConnect = process.env.PORTPROBE_NET_SOCKET_ONLY !== '1';

/**
 * Whether connect-only probes may use the bare TCP handle (the default, unless the environment
 * sets PORTPROBE_NET_SOCKET_ONLY=1). With false they go through `net` like every other probe.
 */
export function setBareConnect(enabled: boolean): void {
  bareConnect = enabled;
}

/** The binding connect-only probes use, or null when they go through `net` as every other probe does. */
export function tcpBinding(): TcpBinding | null {
  return bareConnect ? nodeTcpBinding() : null;
}

/** The error `net` gives for a failed connect, from a libuv status. */
function connectError(status: number, address: string, port: number): Error {
  let code: string;
  try {
    code = getSystemErrorName(status);
  } catch {
    code = `E${-status}`;
  }
  return Object.assign(new Error(`connect ${code} ${address}:${port}`), {
    code,
    errno: status,
    syscall: 'connect',
    address,
    port,
  });
}

/**
 * A TCP connect and nothing else, for probes that only ask whether the port accepts. It opens
 * Node's TCP handle directly instead of a `net.Socket`, whose stream machinery a connection that
 * is closed unread never uses (about a quarter less CPU per connect: BENCHMARKS.md).
 * Same contract as connectTcp: rejects with the connect error, or DeadlineError on abort.
 */
export function connectOnly(
  address: string,
  family: 4 | 6,
  port: number,
  signal: ProbeSignal,
  stamp = false,
): Promise<Closable> {
  if (signal.aborted) return Promise.reject(new DeadlineError(isShutdown(signal)));
  const b = tcpBinding();
  if (!b) return connectOnlyNet(address, family, port, signal, stamp);
  // With `stamp`, the handle adopts a socket that the arrival addon watches before it connects.
  const watched = stamp ? watchedHandle(family, false) : undefined;
  const watch = watched?.watch;
  return new Promise<Closable>((resolve, reject) => {
    const handle = watched?.handle ?? new b.TCP(b.constants.SOCKET);
    const req = new b.TCPConnectWrap();
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      watch?.stop();
      handle.close();
    };
    const onAbort = (): void => {
      if (closed) return;
      close(); // a pending connect completes with ECANCELED, which `closed` ignores
      reject(new DeadlineError(isShutdown(signal)));
    };
    req.oncomplete = (status: number): void => {
      if (closed) return;
      signal.removeEventListener('abort', onAbort);
      if (status < 0) {
        close();
        reject(connectError(status, address, port));
        return;
      }
      const connectedAt = watch?.connectedAt();
      watch?.stop();
      resolve({ destroy: close, connectedAt });
    };
    const err = family === 6 ? handle.connect6(req, address, port) : handle.connect(req, address, port);
    if (err) {
      close();
      reject(connectError(err, address, port));
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** connectOnly through `net` (PORTPROBE_NET_SOCKET_ONLY=1, or no usable bare handle). */
async function connectOnlyNet(
  address: string,
  family: 4 | 6,
  port: number,
  signal: ProbeSignal,
  stamp: boolean,
): Promise<Closable> {
  const watched = stamp ? watchedSocket(family) : undefined;
  try {
    const socket = await connectTcp(address, port, signal, { noDelay: false, noRead: true, socket: watched?.socket });
    return { destroy: () => socket.destroy(), connectedAt: watched?.watch.connectedAt() };
  } finally {
    watched?.watch.stop();
  }
}
