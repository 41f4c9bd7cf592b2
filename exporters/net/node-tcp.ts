// Node's own TCP handle binding: what `net.Socket` wraps. Connect-only probes use it bare (less
// CPU than a stream they never read), and arrival stamps hand it a descriptor they already watch.
// It is internal to Node, so its shape is checked once, and null means "use net instead".

/** The part of Node's TCP handle that portprobe uses. */
export interface TcpHandle {
  connect(req: object, address: string, port: number): number;
  connect6(req: object, address: string, port: number): number;
  /** Adopts an existing socket descriptor; 0 or a negative errno. */
  open(fd: number): number;
  close(): void;
}

export interface TcpBinding {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => { oncomplete?: (status: number) => void };
  constants: { SOCKET: number };
}

let cache: TcpBinding | null | undefined;

/** The binding, or null where this Node does not offer it in the expected shape. */
export function nodeTcpBinding(): TcpBinding | null {
  if (cache !== undefined) return cache;
  cache = null;
  try {
    const b = (process as unknown as { binding(name: string): Partial<TcpBinding> }).binding('tcp_wrap');
    const proto = (typeof b.TCP === 'function' ? b.TCP.prototype : {}) as Partial<TcpHandle>;
    if (
      typeof b.TCP === 'function' &&
      typeof b.TCPConnectWrap === 'function' &&
      typeof b.constants?.SOCKET === 'number' &&
      typeof proto.connect === 'function' &&
      typeof proto.connect6 === 'function' &&
      typeof proto.open === 'function' &&
      typeof proto.close === 'function'
    ) {
      cache = b as TcpBinding;
    }
  } catch {
    // not offered
  }
  return cache;
}
