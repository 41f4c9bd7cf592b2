// A scripted FTP peer for behaviour no real server produces on demand. It speaks just enough
// FTP (USER, PASS, TYPE, EPSV, PASV, PORT, EPRT, LIST, RETR, QUIT) for a probe to reach the
// rung under test, then misbehaves in exactly one way. `well_behaved` is the control case,
// which the tests check with curl (an independent client) before trusting the others.
import net from 'node:net';

export type HostileBehaviour =
  /** Everything works: the script a real client must accept. */
  | 'well_behaved'
  /** The greeting arrives one byte at a time, slower than any deadline. */
  | 'dribbled_banner'
  /** "220-" continuation lines forever. */
  | 'endless_multiline'
  /** A 100 MB greeting line with no line ending. */
  | 'huge_banner'
  /** "421 Too many connections" instead of a greeting. */
  | 'too_many'
  /** Another protocol's greeting. */
  | 'not_ftp'
  /** LIST opens the data channel, sends some bytes and then never closes it nor replies 226. */
  | 'stalled_data'
  /** PASV/EPSV advertise a port on which nothing listens. */
  | 'closed_data_port'
  /** PORT/EPRT accepted, LIST answered 150, but the peer never connects back. */
  | 'active_never_connects'
  /** LIST after PORT answered "425 Can't open data connection". */
  | 'active_425'
  /** Login works, then EPSV and PASV are never answered. */
  | 'mute_passive'
  /** EPSV is not implemented (502), as on some old servers and middleboxes. */
  | 'no_epsv'
  /** Greets, then never answers this command (nor anything after it): a hung session. */
  | 'mute_user'
  | 'mute_pass'
  | 'mute_type'
  | 'mute_port'
  | 'mute_list';

export interface HostilePeer {
  host: string;
  port: number;
  /** Bytes the peer managed to write on control connections. */
  bytesWritten(): number;
  /** Outgoing connections the peer made for active mode. */
  activeConnects(): number;
  stop(): Promise<void>;
}

/** What LIST returns. */
export const LISTING = '-rw-r--r-- 1 ftp ftp 6 Jan 01 00:00 hello\r\n';

const CHUNK = Buffer.alloc(64 * 1024, 0x41); // "AAAA…", shared by every write of the huge banner

/** Writes until the socket closes or `total` bytes went out, honouring backpressure. */
async function flood(sock: net.Socket, total: number, next: () => Buffer, count: (n: number) => void): Promise<void> {
  let sent = 0;
  while (sent < total && !sock.destroyed) {
    const b = next();
    count(b.length);
    sent += b.length;
    if (!sock.write(b)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          sock.off('drain', done);
          sock.off('close', done);
          resolve();
        };
        sock.on('drain', done);
        sock.on('close', done);
      });
    }
  }
}

export async function startHostile(behaviour: HostileBehaviour): Promise<HostilePeer> {
  const sockets = new Set<net.Socket>();
  const servers = new Set<net.Server>();
  const timers = new Set<NodeJS.Timeout>();
  let written = 0;
  let connects = 0;
  const track = (s: net.Socket): net.Socket => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    return s;
  };

  const control = net.createServer((raw) => {
    const sock = track(raw);
    const send = (line: string): void => {
      if (sock.destroyed) return;
      written += line.length + 2;
      sock.write(`${line}\r\n`);
    };
    let dataSocket: Promise<net.Socket> | undefined;
    let activeTarget: { host: string; port: number } | undefined;

    const openPassive = async (): Promise<number> => {
      if (behaviour === 'closed_data_port') {
        const probe = net.createServer();
        await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
        const port = (probe.address() as net.AddressInfo).port;
        await new Promise<void>((r) => probe.close(() => r()));
        return port; // was free a moment ago; nothing listens there now
      }
      const srv = net.createServer();
      servers.add(srv);
      dataSocket = new Promise<net.Socket>((resolve) => {
        srv.once('connection', (d) => {
          resolve(track(d));
          srv.close();
        });
      });
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
      return (srv.address() as net.AddressInfo).port;
    };

    const transfer = async (body: string): Promise<void> => {
      if (activeTarget) {
        if (behaviour === 'active_425') {
          send("425 Can't open data connection.");
          return;
        }
        send('150 Opening data connection.');
        if (behaviour === 'active_never_connects') return;
        connects += 1;
        const target = activeTarget;
        dataSocket = new Promise<net.Socket>((resolve) => {
          const d = track(net.connect(target));
          d.once('connect', () => resolve(d));
        });
      } else {
        send('150 Here comes the data.');
      }
      const d = await (dataSocket as Promise<net.Socket>);
      dataSocket = undefined;
      activeTarget = undefined;
      if (behaviour === 'stalled_data') {
        d.write(body); // and then nothing, ever: no end, no 226
        return;
      }
      d.end(body, () => send('226 Transfer complete.'));
    };

    let hung = false;
    const onLine = (line: string): void => {
      const [verb, ...rest] = line.split(' ');
      const arg = rest.join(' ');
      if (behaviour === `mute_${verb.toLowerCase()}`) hung = true;
      if (hung) return;
      switch (verb.toUpperCase()) {
        case 'USER':
          send('331 Password please.');
          break;
        case 'PASS':
          send('230 Logged in.');
          break;
        case 'TYPE':
          send('200 Type set.');
          break;
        case 'EPSV':
          if (behaviour === 'mute_passive') break;
          if (behaviour === 'no_epsv') {
            send('502 Command not implemented.');
            break;
          }
          void openPassive().then((p) => send(`229 Entering Extended Passive Mode (|||${p}|)`));
          break;
        case 'PASV':
          if (behaviour === 'mute_passive') break;
          void openPassive().then((p) => send(`227 Entering Passive Mode (127,0,0,1,${p >> 8},${p & 255}).`));
          break;
        case 'PORT': {
          const n = arg.split(',').map(Number);
          activeTarget = { host: n.slice(0, 4).join('.'), port: n[4] * 256 + n[5] };
          send('200 PORT command successful.');
          break;
        }
        case 'EPRT': {
          const [, , host, port] = arg.split(arg[0]);
          activeTarget = { host, port: Number(port) };
          send('200 EPRT command successful.');
          break;
        }
        case 'LIST':
          void transfer(LISTING);
          break;
        case 'RETR':
          void transfer('hello\n');
          break;
        case 'QUIT':
          send('221 Bye.');
          sock.end();
          break;
        default:
          send('502 Not implemented.');
      }
    };

    let buf = '';
    sock.on('data', (b: Buffer) => {
      buf += b.toString('latin1');
      if (buf.length > 4096) sock.destroy();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        onLine(line);
      }
    });

    switch (behaviour) {
      case 'dribbled_banner': {
        const text = Buffer.from('220 slowly, very slowly\r\n');
        let i = 0;
        const t = setInterval(() => {
          if (sock.destroyed || i >= text.length) return clearInterval(t);
          written += 1;
          sock.write(text.subarray(i, i + 1));
          i += 1;
        }, 400);
        timers.add(t);
        break;
      }
      case 'endless_multiline': {
        let n = 0;
        void flood(
          sock,
          Number.MAX_SAFE_INTEGER,
          () => Buffer.from(`220-welcome line ${n++}\r\n`.repeat(64)),
          (k) => {
            written += k;
          },
        );
        break;
      }
      case 'huge_banner':
        void flood(
          sock,
          100 * 1024 * 1024,
          () => CHUNK,
          (k) => {
            written += k;
          },
        );
        break;
      case 'too_many':
        send('421 Too many connections (8) from this IP');
        sock.end();
        break;
      case 'not_ftp':
        send('SSH-2.0-OpenSSH_9.2p1 Debian-2');
        break;
      default:
        send('220-portprobe scripted peer');
        send('220 ready');
    }
  });
  servers.add(control);
  await new Promise<void>((r) => control.listen(0, '127.0.0.1', () => r()));
  const port = (control.address() as net.AddressInfo).port;

  return {
    host: '127.0.0.1',
    port,
    bytesWritten: () => written,
    activeConnects: () => connects,
    stop: async () => {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      await Promise.all([...servers].map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
