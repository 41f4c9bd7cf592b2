// Hostile peers for the socket-level fuzzers: an FTP server that answers every rung with mutated
// or random reply streams, and a TLS server that answers a ClientHello with mutated or random
// records. Cases come from a seeded PRNG, so a failing seed reproduces; each peer serves one case
// at a time (the test sets `peer.current`), and closes any connection left idle, so that no case
// waits for the probe's deadline.
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { prng } from '../helpers/prng';

export { prng } from '../helpers/prng';

export class Rng {
  constructor(readonly next: () => number) {}
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** What the peer does once an answer is written. */
export type After = 'stay' | 'end' | 'reset';

export interface Answer {
  chunks: Buffer[];
  after: After;
}

// ---------------------------------------------------------------------------------------------
// FTP

export interface FtpCase {
  seed: number;
  /** Chance that any one answer is mutated. */
  breakage: number;
  /** The peer's passive data listener, advertised in valid EPSV/PASV replies. */
  dataPort: number;
  /** What the data listener sends to each data connection (passive) or on connect-back (active). */
  data: Buffer;
  /** Whether to connect back to PORT/EPRT addresses. */
  connectBack: boolean;
  /** The probe's module settings for this case (data-channel modes, pasv_mismatch, retrieve, user). */
  settings: Record<string, unknown>;
}

const CRLF = '\r\n';

/** A plausible, valid reply for a command, so that cases reach deep rungs. */
function validReply(cmd: string, dataPort: number): string {
  const verb = cmd.split(' ')[0].toUpperCase();
  switch (verb) {
    case '':
      return `220 fuzz ready${CRLF}`;
    case 'USER':
      return `331 password please${CRLF}`;
    case 'PASS':
      return `230 logged in${CRLF}`;
    case 'TYPE':
      return `200 type set${CRLF}`;
    case 'EPSV':
      return `229 Entering Extended Passive Mode (|||${dataPort}|)${CRLF}`;
    case 'PASV':
      return `227 Entering Passive Mode (127,0,0,1,${dataPort >> 8},${dataPort & 255})${CRLF}`;
    case 'PORT':
    case 'EPRT':
      return `200 ok${CRLF}`;
    case 'LIST':
    case 'RETR':
      return `150 here it comes${CRLF}226 done${CRLF}`;
    case 'QUIT':
      return `221 bye${CRLF}`;
    case 'AUTH':
      return `234 go ahead${CRLF}`;
    default:
      return `200 ok${CRLF}`;
  }
}

const CODES = [
  '220',
  '221',
  '226',
  '227',
  '229',
  '230',
  '150',
  '120',
  '125',
  '200',
  '331',
  '332',
  '421',
  '425',
  '426',
  '450',
  '500',
  '530',
  '550',
  '999',
  '000',
  '22',
  '2200',
  'abc',
];

/** A reply-shaped or random byte stream for one answer. */
function mutatedReply(rng: Rng, valid: string, dataPort: number): Buffer {
  switch (rng.int(14)) {
    case 0: // random bytes
      return rng.bytes(rng.int(300));
    case 1: {
      // multi-line, properly closed or not
      const code = rng.pick(CODES);
      const lines = Array.from(
        { length: rng.int(80) },
        (_, i) => `${rng.chance(0.1) ? rng.pick(CODES) : code}${rng.pick(['-', ' ', ''])}line ${i}`,
      );
      if (rng.chance(0.5)) lines.unshift(`${code}-start`);
      if (rng.chance(0.6)) lines.push(`${code} end`);
      return Buffer.from(lines.join(rng.pick([CRLF, '\n', '\r'])) + CRLF);
    }
    case 2: // a huge line
      return Buffer.from(`${rng.pick(CODES)} ${'x'.repeat(1000 + rng.int(8000))}${rng.chance(0.5) ? CRLF : ''}`);
    case 3: // bad code
      return Buffer.from(`${rng.pick(CODES)}${rng.pick([' ', '-', '', '\t'])}text${CRLF}`);
    case 4: {
      // NULs and control bytes inside a reply
      const b = Buffer.from(valid);
      for (let i = 0; i < 1 + rng.int(4); i++) b[rng.int(b.length)] = rng.pick([0, 1, 8, 13, 10, 0x7f, 0xff]);
      return b;
    }
    case 5: // a partial line
      return Buffer.from(valid.slice(0, rng.int(valid.length)));
    case 6: // the valid reply twice, or two replies in one chunk
      return Buffer.from(valid + validReply(rng.pick(['', 'USER', 'PASS', 'EPSV', 'LIST']), dataPort));
    case 7: // EPSV/PASV with hostile numbers
      return Buffer.from(
        rng.pick([
          `229 (|||${rng.int(70000)}|)`,
          `229 (|||${rng.pick(['-1', '0', '65536', '99999999999', 'abc', ''])}|)`,
          `229 (${rng.pick(['!!!', '|||', '|1|', '||||'])}${dataPort}|)`,
          `227 (${[0, 0, 0, 0, 0, 0].map(() => rng.int(400)).join(',')})`,
          `227 (127,0,0,1,${rng.int(300)},${rng.int(300)})`,
          `227 (${rng.int(256)},${rng.int(256)},${rng.int(256)},${rng.int(256)},${dataPort >> 8},${dataPort & 255})`,
          '227 =127,0,0,1,1,1',
          '227',
          '229',
        ]) + CRLF,
      );
    case 8: // a preliminary reply only, or the wrong completion
      return Buffer.from(
        `${rng.pick(['150', '120', '125', '110'])} wait${CRLF}${rng.chance(0.5) ? `${rng.pick(CODES)} then${CRLF}` : ''}`,
      );
    case 9: {
      // flipped bits in the valid reply
      const b = Buffer.from(valid);
      for (let i = 0; i < 1 + rng.int(3); i++) b[rng.int(b.length)] ^= 1 << rng.int(8);
      return b;
    }
    case 10: // many short replies
      return Buffer.from(Array.from({ length: rng.int(100) }, () => `${rng.pick(CODES)} x${CRLF}`).join(''));
    case 11: // UTF-8 and invalid UTF-8
      return Buffer.concat([
        Buffer.from(`${rng.pick(CODES)} `),
        Buffer.from([0xc3, 0x28, 0xe2, 0x82, 0xf0, 0x9f, 0x98]),
        Buffer.from('é ✓\r\n'),
      ]);
    case 12: // nothing (then the idle close)
      return Buffer.alloc(0);
    default:
      return Buffer.from(valid);
  }
}

/** Splits bytes into 1..4 chunks at random points. */
function split(rng: Rng, b: Buffer): Buffer[] {
  if (b.length < 2 || rng.chance(0.6)) return [b];
  const cuts = [...new Set(Array.from({ length: 1 + rng.int(3) }, () => 1 + rng.int(b.length - 1)))].sort(
    (x, y) => x - y,
  );
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, b.length]) {
    out.push(b.subarray(prev, c));
    prev = c;
  }
  return out;
}

export function ftpCase(seed: number, dataPort: number): FtpCase {
  const rng = new Rng(prng(seed));
  // How broken this case is: from "one rung in fifty broken" to "everything random".
  const breakage = rng.pick([0.02, 0.05, 0.1, 0.2, 0.4, 1]);
  const modes = rng.pick([
    ['epsv'],
    ['pasv'],
    ['active'],
    ['epsv', 'pasv'],
    ['epsv', 'pasv', 'active'],
    ['active', 'epsv'],
  ]);
  const settings: Record<string, unknown> = {
    data_channel: modes,
    pasv_mismatch: rng.pick(['fail', 'follow_control_address']),
  };
  if (rng.chance(0.3)) settings.retrieve = 'canary.txt';
  if (rng.chance(0.3)) settings.username = 'probe';
  const data = rng.chance(0.5) ? Buffer.from('-rw-r--r-- 1 ftp ftp 5 Jan 1 00:00 hello\r\n') : rng.bytes(rng.int(2000));
  return { seed, breakage, dataPort, data, connectBack: rng.chance(0.95), settings };
}

/**
 * The answer to one command (or to the connect, cmd ""), drawn from the connection's own PRNG:
 * the valid reply for the command the probe really sent, or a mutation of it.
 */
export function answerFor(rng: Rng, c: FtpCase, cmd: string): Answer {
  const valid = validReply(cmd, c.dataPort);
  const b = rng.chance(c.breakage) ? mutatedReply(rng, valid, c.dataPort) : Buffer.from(valid);
  const after: After = rng.chance(c.breakage * 0.3) ? rng.pick<After>(['end', 'reset']) : 'stay';
  return { chunks: split(rng, b), after };
}

export interface FuzzPeer {
  port: number;
  /** The case new connections are served from. */
  current?: FtpCase;
  /** When set, each new control connection is served the next case this returns (an agent probing on its own schedule). */
  cycle?: () => FtpCase;
  /** Sockets the peer holds open now (control, data, connect-back). */
  open(): number;
  close(): Promise<void>;
}

/** Bytes from the peer to one socket, then its `after`; never throws. */
function writeAnswer(s: net.Socket, a: Answer): void {
  if (s.destroyed) return;
  for (const c of a.chunks) if (c.length > 0) s.write(c);
  if (a.after === 'end') s.end();
  else if (a.after === 'reset') s.resetAndDestroy();
}

/** Closes `s` unless something arrives within `ms` (so no case waits for a deadline). */
function idleClose(s: net.Socket, ms: number): () => void {
  let t: NodeJS.Timeout | undefined;
  const arm = (): void => {
    if (t) clearTimeout(t);
    t = setTimeout(() => s.destroy(), ms);
  };
  s.on('close', () => t && clearTimeout(t));
  arm();
  return arm;
}

const IDLE_MS = 25;

function track(sockets: Set<net.Socket>, s: net.Socket): void {
  // Chunks go out as written: with Nagle's algorithm a split reply would wait for an ACK.
  s.setNoDelay(true);
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
  s.on('error', () => undefined);
}

/** Parses the address of a PORT/EPRT command (bounded), or undefined. */
function activeTarget(line: string): { host: string; port: number } | undefined {
  const port = /^PORT (\d+),(\d+),(\d+),(\d+),(\d+),(\d+)$/i.exec(line);
  if (port) return { host: port.slice(1, 5).join('.'), port: Number(port[5]) * 256 + Number(port[6]) };
  const eprt = /^EPRT \|([12])\|([^|]{1,64})\|(\d{1,5})\|$/i.exec(line);
  if (eprt) return { host: eprt[2], port: Number(eprt[3]) };
  return undefined;
}

export async function startFtpFuzzPeer(): Promise<FuzzPeer & { dataPort: number }> {
  const sockets = new Set<net.Socket>();
  let current: FtpCase | undefined;
  const data = net.createServer((s) => {
    track(sockets, s);
    s.resume();
    const c = current;
    if (!c) return void s.destroy();
    s.end(c.data);
  });
  let cycle: (() => FtpCase) | undefined;
  const control = net.createServer((s) => {
    track(sockets, s);
    if (cycle) current = cycle();
    const c = current;
    if (!c) return void s.destroy();
    let step = 0;
    let buf = '';
    const rng = new Rng(prng(c.seed ^ 0x9e3779b9));
    const rearm = idleClose(s, IDLE_MS);
    const answer = (cmd: string): void => {
      if (step++ > 40) return void s.end();
      writeAnswer(s, answerFor(rng, c, cmd));
      rearm();
    };
    answer('');
    s.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      if (buf.length > 4096) return void s.destroy();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        const target = activeTarget(line);
        if (target && c.connectBack && (target.host === '127.0.0.1' || target.host === '::1')) {
          const back = net.connect(target.port, target.host);
          track(sockets, back);
          back.on('connect', () => back.end(c.data));
          back.setTimeout(200, () => back.destroy());
        }
        answer(line);
      }
    });
  });
  await new Promise<void>((r) => data.listen(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => control.listen(0, '127.0.0.1', () => r()));
  const peer = {
    port: (control.address() as net.AddressInfo).port,
    dataPort: (data.address() as net.AddressInfo).port,
    get current() {
      return current;
    },
    set current(c: FtpCase | undefined) {
      current = c;
    },
    get cycle() {
      return cycle;
    },
    set cycle(f: (() => FtpCase) | undefined) {
      cycle = f;
    },
    open: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        let n = 2;
        const done = (): void => {
          if (--n === 0) resolve();
        };
        data.close(done);
        control.close(done);
      }),
  };
  return peer;
}

// ---------------------------------------------------------------------------------------------
// TLS

export type TlsTarget = 'ftp-implicit' | 'ftp-explicit' | 'tcp-tls';

export interface TlsCase {
  seed: number;
  target: TlsTarget;
  /** Answer to the ClientHello (the first bytes after any FTP preamble). */
  answer: Answer;
  /** Answers to anything after that (a second flight, bytes after a finished handshake). */
  later: Answer[];
}

/** A real server's first flight, recorded once from Node's TLS server: the base for mutations. */
export async function recordServerFlights(certFile: string, keyFile: string, hello: Buffer): Promise<Buffer[]> {
  const flights: Buffer[] = [];
  for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
    const server = tls.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), maxVersion });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const got = await new Promise<Buffer>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(hello));
      const parts: Buffer[] = [];
      s.on('data', (d: Buffer) => parts.push(d));
      s.setTimeout(300, () => s.destroy());
      s.on('error', () => undefined);
      s.on('close', () => resolve(Buffer.concat(parts)));
    });
    server.close();
    flights.push(got);
  }
  return flights;
}

/** Splits a byte stream into TLS records (header + body), keeping any tail as the last piece. */
function records(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i + 5 <= b.length) {
    const len = b.readUInt16BE(i + 3);
    out.push(b.subarray(i, Math.min(b.length, i + 5 + len)));
    i += 5 + len;
  }
  if (i < b.length) out.push(b.subarray(i));
  return out;
}

function mutateFlight(rng: Rng, flight: Buffer): Buffer {
  const recs = records(flight);
  switch (rng.int(10)) {
    case 0: // truncated
      return flight.subarray(0, rng.int(flight.length));
    case 1: {
      // flipped bits
      const b = Buffer.from(flight);
      for (let i = 0; i < 1 + rng.int(8); i++) b[rng.int(b.length)] ^= 1 << rng.int(8);
      return b;
    }
    case 2: {
      // a record length that lies
      const b = Buffer.from(flight);
      if (b.length >= 5) b.writeUInt16BE(rng.pick([0, 1, 0x4000, 0x4001, 0xffff, rng.int(0x10000)]), 3);
      return b;
    }
    case 3: {
      // a record of another type or version
      const b = Buffer.from(flight);
      if (b.length >= 3) {
        b[0] = rng.pick([0x14, 0x15, 0x16, 0x17, 0x18, 0x00, 0xff]);
        b[1] = rng.pick([3, 3, 2, 0xfe]);
        b[2] = rng.int(5);
      }
      return b;
    }
    case 4: // records reordered or repeated
      return Buffer.concat(Array.from({ length: recs.length + rng.int(3) }, () => rng.pick(recs)));
    case 5: {
      // a handshake message whose inner length lies
      const b = Buffer.from(flight);
      if (b.length >= 9) {
        b[6] = rng.int(256);
        b[7] = rng.int(256);
        b[8] = rng.int(256);
      }
      return b;
    }
    case 6: // random bytes after a valid header
      return Buffer.concat([
        Buffer.from([0x16, 0x03, rng.int(5)]),
        Buffer.from([rng.int(256), rng.int(256)]),
        rng.bytes(rng.int(600)),
      ]);
    case 7: // an alert, valid or not
      return Buffer.from([0x15, 0x03, rng.int(5), 0x00, 0x02, rng.pick([1, 2, 3]), rng.int(256)]);
    case 8: // the first record only, then garbage
      return Buffer.concat([recs[0] ?? Buffer.alloc(0), rng.bytes(rng.int(200))]);
    default:
      return rng.bytes(rng.int(1500));
  }
}

export function tlsCase(seed: number, flights: Buffer[], only?: TlsTarget): TlsCase {
  const rng = new Rng(prng(seed));
  const drawn = rng.pick<TlsTarget>(['ftp-implicit', 'ftp-explicit', 'tcp-tls']);
  const target = only ?? drawn;
  const flight = rng.pick(flights);
  const first = rng.chance(0.15) ? flight : rng.chance(0.85) ? mutateFlight(rng, flight) : rng.bytes(rng.int(2000));
  const answer: Answer = {
    chunks: split(rng, first),
    after: rng.chance(0.2) ? rng.pick<After>(['end', 'reset']) : 'stay',
  };
  const later: Answer[] = Array.from({ length: rng.int(3) }, () => ({
    chunks: split(rng, rng.chance(0.5) ? mutateFlight(rng, flight) : rng.bytes(rng.int(400))),
    after: rng.chance(0.3) ? rng.pick<After>(['end', 'reset']) : 'stay',
  }));
  return { seed, target, answer, later };
}

/** A server that greets (for explicit FTP), then answers whatever TLS bytes come with the case's bytes. */
export interface TlsFuzzPeer {
  port: number;
  current?: TlsCase;
  /** When set, each new connection is served the next case this returns. */
  cycle?: () => TlsCase;
  open(): number;
  close(): Promise<void>;
}

export async function startTlsFuzzPeer(): Promise<TlsFuzzPeer> {
  const sockets = new Set<net.Socket>();
  let current: TlsCase | undefined;
  let cycle: (() => TlsCase) | undefined;
  const server = net.createServer((s) => {
    track(sockets, s);
    if (cycle) current = cycle();
    const c = current;
    if (!c) return void s.destroy();
    const rearm = idleClose(s, IDLE_MS);
    let stage = c.target === 'ftp-explicit' ? 'greeting' : 'hello';
    let step = 0;
    let text = '';
    if (stage === 'greeting') {
      s.write(`220 fuzz ready${CRLF}`);
      stage = 'auth';
    }
    s.on('data', (chunk: Buffer) => {
      rearm();
      if (stage === 'auth') {
        text += chunk.toString('latin1');
        if (text.length > 1024) return void s.destroy();
        if (!text.includes('\n')) return;
        s.write(`234 go ahead${CRLF}`);
        stage = 'hello';
        return;
      }
      const a = step === 0 ? c.answer : c.later[step - 1];
      step++;
      if (!a) return void s.end();
      writeAnswer(s, a);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    get current() {
      return current;
    },
    set current(c: TlsCase | undefined) {
      current = c;
    },
    get cycle() {
      return cycle;
    },
    set cycle(f: (() => TlsCase) | undefined) {
      cycle = f;
    },
    open: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
