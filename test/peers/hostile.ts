// Scripted hostile peers: behaviour no real server produces on demand. Each listens on
// 127.0.0.1 port 0 and misbehaves the same way for every connection.
import net from 'node:net';

export type Hostility =
  | 'tarpit' // accept, then silence
  | 'reset' // accept, then RST
  | 'dribble' // one byte per second of a plausible greeting
  | 'huge_line' // 100 MB with no newline
  | 'endless_multiline' // "220-..." continuation lines forever
  | 'garbage' // random bytes
  | 'tds_length_lies' // a TDS header whose length claims more than ever comes, then silence
  | 'tls_stall'; // reads the ClientHello, never answers it

export interface HostilePeer {
  port: number;
  /** Connections currently open on the peer side. */
  open(): number;
  close(): Promise<void>;
}

export async function startHostilePeer(kind: Hostility): Promise<HostilePeer> {
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.resume(); // read and drop whatever the client sends
    behave(kind, s, timers);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    open: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearInterval(t);
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function pump(s: net.Socket, next: () => Buffer): void {
  const go = (): void => {
    while (!s.destroyed && s.writable) {
      if (!s.write(next())) {
        s.once('drain', go);
        return;
      }
    }
  };
  go();
}

function behave(kind: Hostility, s: net.Socket, timers: Set<NodeJS.Timeout>): void {
  switch (kind) {
    case 'tarpit':
    case 'tls_stall':
      return;
    case 'reset':
      s.resetAndDestroy();
      return;
    case 'dribble': {
      const text = Buffer.from('220 slow greeting from a very patient server\r\n');
      let i = 0;
      const t = setInterval(() => {
        if (s.destroyed) return clearInterval(t);
        s.write(text.subarray(i % text.length, (i % text.length) + 1));
        i++;
      }, 1000);
      timers.add(t);
      return;
    }
    case 'huge_line': {
      const chunk = Buffer.alloc(64 * 1024, 0x58);
      let sent = 0;
      pump(s, () => {
        sent += chunk.length;
        if (sent >= 100 * 1024 * 1024) s.end();
        return chunk;
      });
      return;
    }
    case 'endless_multiline': {
      const line = Buffer.from('220-still greeting you, there is more to come\r\n'.repeat(64));
      pump(s, () => line);
      return;
    }
    case 'garbage': {
      let seed = 12345;
      pump(s, () => {
        const b = Buffer.alloc(4096);
        for (let i = 0; i < b.length; i++) {
          seed = (seed * 1103515245 + 12345) & 0x7fffffff;
          b[i] = seed & 0xff;
        }
        return b;
      });
      return;
    }
    case 'tds_length_lies': {
      // A PRELOGIN response header (type 0x04, status EOM) claiming 4096 bytes; 16 follow.
      const h = Buffer.from([0x04, 0x01, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00]);
      s.write(Buffer.concat([h, Buffer.alloc(16, 0xff)]));
      return;
    }
  }
}
