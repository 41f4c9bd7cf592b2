// Who may hold a connection to the HTTP server. A plain connection cap turns away the newest
// client, and the newest is the one that wants something: Prometheus arriving for a scrape while
// hundreds of connections sit idle after one request, dribble their headers (slowloris) or never
// send a TLS ClientHello. So the cap evicts instead: when it is reached, the connection that has
// been idle longest (no response being written on it) is closed to make room. Only connections
// with a response in flight are protected; only when every connection has one is the newcomer
// closed, as a plain cap would close it.
//
// The same bookkeeping lets a shutdown close at once the connections that never asked for
// anything, and wait for the responses in flight to be written and read to the end.
import type net from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';

interface Conn {
  /** The TCP socket the server accepted. */
  raw: net.Socket;
  /** The socket HTTP runs on (the TLS socket over `raw` for HTTPS), once a request came. */
  http?: net.Socket;
  /** Responses being written on it (more than one only with pipelining). */
  busy: number;
  /** Whether a response was ever written on it (else it may be a client that never asked). */
  served: boolean;
  /** Set once it was ended: it closes when the client has read everything and closed too. */
  ending?: NodeJS.Timeout;
}

/**
 * How long an ended connection waits for its client to read what is left and close. The last
 * bytes of a response sit in the kernel's buffers after Node has handed them over; closing the
 * socket and exiting then loses them, so the agent waits for the client's own close.
 */
export const LINGER_MS = 3000;

export interface ConnectionStats {
  open: number;
  busy: number;
  evicted: number;
  refused: number;
}

/** The server events the guard needs: 'connection' with the TCP socket, 'request'. */
export interface GuardedServer {
  on(event: 'connection', fn: (s: net.Socket) => void): unknown;
  on(event: 'request', fn: (req: IncomingMessage, res: ServerResponse) => void): unknown;
}

export class ConnectionGuard {
  /** Open connections, least recently used first (a Map keeps insertion order). */
  private readonly conns = new Map<net.Socket, Conn>();
  private evicted = 0;
  private refused = 0;
  private draining = false;
  private drained?: () => void;

  constructor(private readonly max: number) {}

  attach(server: GuardedServer): void {
    server.on('connection', (raw) => this.accept(raw));
    server.on('request', (req, res) => this.request(req, res));
  }

  get stats(): ConnectionStats {
    let busy = 0;
    for (const c of this.conns.values()) if (c.busy > 0) busy++;
    return { open: this.conns.size, busy, evicted: this.evicted, refused: this.refused };
  }

  private accept(raw: net.Socket): void {
    if (this.draining) {
      raw.destroy();
      return;
    }
    if (this.conns.size >= this.max && !this.evictOne()) {
      this.refused++;
      raw.destroy();
      return;
    }
    const conn: Conn = { raw, busy: 0, served: false };
    this.conns.set(raw, conn);
    raw.once('close', () => {
      if (conn.ending) clearTimeout(conn.ending);
      this.conns.delete(raw);
      this.checkDrained();
    });
  }

  /** Closes the least recently used connection without a response in flight. */
  private evictOne(): boolean {
    for (const c of this.conns.values()) {
      if (c.busy === 0) {
        this.conns.delete(c.raw);
        this.evicted++;
        c.raw.destroy();
        return true;
      }
    }
    return false;
  }

  private request(req: IncomingMessage, res: ServerResponse): void {
    const sock = req.socket as net.Socket & { _parent?: net.Socket };
    // For HTTPS the request runs on a TLS socket whose parent is the accepted TCP socket.
    const raw = this.conns.has(sock) ? sock : sock._parent;
    const conn = raw === undefined ? undefined : this.conns.get(raw);
    if (!conn) return;
    if (conn.http !== sock) {
      conn.http = sock;
      // After a `Connection: close` response the server destroys the socket as soon as Node has
      // handed the last bytes to the kernel; end it instead and let the client close it.
      (sock as net.Socket & { destroySoon: () => void }).destroySoon = () => this.endGently(conn);
    }
    conn.served = true;
    conn.busy++;
    this.touch(conn);
    res.once('close', () => {
      conn.busy--;
      this.touch(conn);
      if (this.draining && conn.busy === 0) this.endGently(conn);
    });
  }

  /** Moves a connection to the most recently used end. */
  private touch(conn: Conn): void {
    if (this.conns.delete(conn.raw)) this.conns.set(conn.raw, conn);
  }

  /**
   * Ends a connection after what was written to it has been flushed. It closes when the client
   * has read everything and answered the FIN, or LINGER_MS later.
   */
  private endGently(conn: Conn): void {
    if (conn.ending) return;
    (conn.http ?? conn.raw).end();
    conn.ending = setTimeout(() => conn.raw.destroy(), LINGER_MS);
    conn.ending.unref();
  }

  /**
   * For shutdown: refuses new connections, closes at once those that never got a response
   * (slowloris, TLS handshakes never finished), ends idle ones, and ends each busy one as soon as
   * its response is written. Resolves when every client has closed, or after `graceMs`, when
   * whatever remains is closed.
   */
  drain(graceMs: number): Promise<'drained' | 'grace_expired'> {
    this.draining = true;
    for (const c of [...this.conns.values()]) {
      if (c.busy > 0) continue;
      if (c.served) this.endGently(c);
      else {
        this.conns.delete(c.raw);
        c.raw.destroy();
      }
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.drained = undefined;
        for (const c of this.conns.values()) c.raw.destroy();
        resolve('grace_expired');
      }, graceMs);
      this.drained = () => {
        clearTimeout(timer);
        resolve('drained');
      };
      this.checkDrained();
    });
  }

  private checkDrained(): void {
    if (this.drained && this.conns.size === 0) {
      const d = this.drained;
      this.drained = undefined;
      d();
    }
  }
}
