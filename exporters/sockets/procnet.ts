// A streaming parser for /proc/net/{tcp,tcp6,udp,udp6}. Pure: it is fed text and keeps only
// the listeners and a count of TCP states, so a table of 100,000 connections costs no more
// memory than its listeners. The reader that feeds it from a file lives in procfs.ts.
import type { SocketProtocol } from './settings';

export interface ProcessInfo {
  pid: number;
  /** The kernel's name for the process (comm), at most 15 characters. */
  name: string;
}

/** A listening TCP socket or a bound, unconnected UDP socket. */
export interface Listener {
  protocol: SocketProtocol;
  family: 4 | 6;
  /** Canonical text form: 127.0.0.1, ::, ::1, ::ffff:10.0.0.1, fe80::1. */
  address: string;
  port: number;
  /** Socket inode, the key to the owning process. */
  inode: number;
  /** -1 when the source does not say. */
  uid: number;
  /** The owning process, filled in after parsing; null when unknown or not asked for. */
  owner: ProcessInfo | null;
  /** TCP listeners: connections waiting to be accepted (netlink and /proc). */
  acceptQueue?: number;
  /** TCP listeners: the backlog the queue may reach (netlink only: /proc does not print it). */
  acceptQueueLimit?: number;
  /** TCP listeners: established sockets whose local end is this listener's address and port. */
  connections?: number;
}

/** Kernel TCP states (include/net/tcp_states.h), index = the `st` column. */
export const TCP_STATE_NAMES: readonly string[] = [
  'unknown',
  'established',
  'syn_sent',
  'syn_recv',
  'fin_wait1',
  'fin_wait2',
  'time_wait',
  'close',
  'close_wait',
  'last_ack',
  'listen',
  'closing',
  'new_syn_recv',
];

const TCP_LISTEN = 0x0a;
const TCP_ESTABLISHED = 0x01;
/** An unconnected UDP socket shows TCP_CLOSE; a connect()ed one shows established. */
const UDP_UNCONNECTED = 0x07;
const MAX_BAD_EXAMPLES = 3;
/** Longest line kept while waiting for its end; rows are about 150 characters. */
const MAX_LINE = 4096;

export interface ProcNetTally {
  protocol: SocketProtocol;
  family: 4 | 6;
  listeners: Listener[];
  /** Sockets per state code (index 0..15). */
  states: number[];
  /** TCP: established sockets by `${family} ${address} ${port}` of their local end. */
  established: Map<string, number>;
  /** Socket lines parsed (the header excluded). */
  sockets: number;
  /** Lines that are not socket lines; a few examples are kept for the error message. */
  badLines: number;
  badExamples: string[];
  /** The text ended in the middle of a line (which was ignored). */
  truncatedLastLine: boolean;
}

/** Feed text chunks with push(), then call end(). Lines may be split across chunks. */
export class ProcNetParser {
  private readonly tally: ProcNetTally;
  private rest = '';
  private skipping = false;
  private readonly addrCache = new Map<string, string>();
  /** Token boundaries of the current line: start, end pairs. */
  private readonly tok = new Int32Array(20);

  constructor(
    readonly protocol: SocketProtocol,
    readonly family: 4 | 6,
    /** Byte order of the host that wrote the table; the kernel prints addresses as host-order words. */
    private readonly littleEndian = true,
  ) {
    this.tally = {
      protocol,
      family,
      listeners: [],
      states: new Array<number>(16).fill(0),
      established: new Map(),
      sockets: 0,
      badLines: 0,
      badExamples: [],
      truncatedLastLine: false,
    };
  }

  push(chunk: string): void {
    let text = chunk;
    let start = 0;
    if (this.skipping) {
      // Inside an overlong line: drop everything up to its end.
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      this.skipping = false;
      start = nl + 1;
    } else if (this.rest !== '') {
      text = this.rest + chunk;
    }
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      this.line(text, start, nl);
      start = nl + 1;
    }
    this.rest = start === 0 ? text : text.slice(start);
    if (this.rest.length > MAX_LINE) {
      // Not a socket table (a real row is about 150 characters): count it once and skip it.
      this.bad(this.rest, 0, this.rest.length);
      this.rest = '';
      this.skipping = true;
    }
  }

  end(): ProcNetTally {
    if (this.rest.trim() !== '') this.tally.truncatedLastLine = true;
    this.rest = '';
    this.skipping = false;
    return this.tally;
  }

  private bad(text: string, from: number, to: number): void {
    this.tally.badLines++;
    if (this.tally.badExamples.length < MAX_BAD_EXAMPLES) {
      this.tally.badExamples.push(text.slice(from, Math.min(to, from + 120)).trim());
    }
  }

  /**
   * Splits text[from, to) on spaces, tabs and CRs into tokens, starting at token `n` and
   * stopping after token `max - 1`; returns the number of tokens found so far.
   */
  private tokenize(text: string, from: number, to: number, n: number, max: number): number {
    const tok = this.tok;
    let i = from;
    while (i < to && n < max) {
      let c = text.charCodeAt(i);
      while ((c === 32 || c === 9 || c === 13) && i < to) c = text.charCodeAt(++i);
      if (i >= to) break;
      const s = i;
      while (c !== 32 && c !== 9 && c !== 13 && i < to) c = text.charCodeAt(++i);
      tok[2 * n] = s;
      tok[2 * n + 1] = i;
      n++;
    }
    return n;
  }

  private line(text: string, from: number, to: number): void {
    // Most rows are connections, of which only the state is needed: read four tokens first.
    let n = this.tokenize(text, from, to, 0, 4);
    if (n === 0) return;
    const tok = this.tok;
    // header: "sl local_address ..."
    if (tok[1] - tok[0] === 2 && text.startsWith('sl', tok[0])) return;
    // "12:" slot number
    if (n < 4 || text.charCodeAt(tok[1] - 1) !== 58 /* : */ || hex(text, tok[0], tok[1] - 1) < 0) {
      this.bad(text, from, to);
      return;
    }
    const state = tok[7] - tok[6] === 2 ? hex(text, tok[6], tok[7]) : -1;
    const addrLen = this.family === 4 ? 8 : 32;
    const ls = tok[2];
    const le = tok[3];
    if (state < 0 || le - ls !== addrLen + 5 || text.charCodeAt(ls + addrLen) !== 58) {
      this.bad(text, from, to);
      return;
    }
    const wanted = this.protocol === 'tcp' ? TCP_LISTEN : UDP_UNCONNECTED;
    if (state !== wanted) {
      if (state === TCP_ESTABLISHED && this.protocol === 'tcp') {
        // Counted by local end, to give each listener its connections.
        const port = hex(text, ls + addrLen + 1, le);
        const address = port < 0 ? undefined : this.address(text.slice(ls, ls + addrLen));
        if (address === undefined) {
          this.bad(text, from, to);
          return;
        }
        const key = `${this.family} ${address} ${port}`;
        this.tally.established.set(key, (this.tally.established.get(key) ?? 0) + 1);
      }
      this.tally.sockets++;
      this.tally.states[state]++;
      return;
    }
    // A listener: we also need its port, uid (token 7) and inode (token 9).
    n = this.tokenize(text, tok[7], to, n, 10);
    const port = hex(text, ls + addrLen + 1, le);
    const uid = n > 7 ? dec(text, tok[14], tok[15]) : -1;
    const inode = n > 9 ? dec(text, tok[18], tok[19]) : -1;
    const address = port < 0 ? undefined : this.address(text.slice(ls, ls + addrLen));
    if (address === undefined || uid < 0 || inode < 0) {
      this.bad(text, from, to);
      return;
    }
    const l: Listener = { protocol: this.protocol, family: this.family, address, port, inode, uid, owner: null };
    if (this.protocol === 'tcp') {
      // Token 4 is "tx_queue:rx_queue"; for a listener rx_queue is its accept queue.
      const q =
        n > 4 && tok[9] - tok[8] === 17 && text.charCodeAt(tok[8] + 8) === 58 ? hex(text, tok[8] + 9, tok[9]) : -1;
      if (q < 0) {
        this.bad(text, from, to);
        return;
      }
      l.acceptQueue = q;
    }
    this.tally.sockets++;
    this.tally.states[state]++;
    this.tally.listeners.push(l);
  }

  private address(hexText: string): string | undefined {
    let a = this.addrCache.get(hexText);
    if (a === undefined) {
      a = decodeProcAddress(hexText, this.littleEndian);
      if (a === undefined) return undefined;
      if (this.addrCache.size < 4096) this.addrCache.set(hexText, a);
    }
    return a;
  }
}

/** Parses one whole table. Pure. */
export function parseProcNet(text: string, protocol: SocketProtocol, family: 4 | 6, littleEndian = true): ProcNetTally {
  const p = new ProcNetParser(protocol, family, littleEndian);
  p.push(text);
  return p.end();
}

/** Value of the hex digits text[from, to), or -1 if there are none or one is not hex. */
function hex(text: string, from: number, to: number): number {
  if (to <= from || to - from > 8) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 65 && c <= 70) d = c - 55;
    else if (c >= 97 && c <= 102) d = c - 87;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

function dec(text: string, from: number, to: number): number {
  if (to <= from || to - from > 15) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v;
}

/**
 * The kernel prints an address as 32-bit words in host byte order: "0100007F" is 127.0.0.1 on
 * a little-endian host. 8 hex digits -> IPv4, 32 -> IPv6. Pure.
 */
export function decodeProcAddress(hexText: string, littleEndian = true): string | undefined {
  if (hexText.length !== 8 && hexText.length !== 32) return undefined;
  const bytes = new Array<number>(hexText.length / 2);
  for (let w = 0; w < hexText.length / 8; w++) {
    for (let b = 0; b < 4; b++) {
      const v = hex(hexText, w * 8 + b * 2, w * 8 + b * 2 + 2);
      if (v < 0) return undefined;
      bytes[w * 4 + (littleEndian ? 3 - b : b)] = v;
    }
  }
  return bytes.length === 4 ? bytes.join('.') : formatIPv6(bytes);
}

/** RFC 5952 text of 16 bytes: lower case, longest zero run (two groups or more) as "::". Pure. */
export function formatIPv6(bytes: readonly number[]): string {
  const isMapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (isMapped) return `::ffff:${bytes.slice(12).join('.')}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hexOf = (g: number): string => g.toString(16);
  if (bestLen < 2) return groups.map(hexOf).join(':');
  const head = groups.slice(0, bestStart).map(hexOf).join(':');
  const tail = groups
    .slice(bestStart + bestLen)
    .map(hexOf)
    .join(':');
  return `${head}::${tail}`;
}

/** 0-1023 well_known, 1024-49151 registered, 49152-65535 dynamic (IANA, RFC 6335). Pure. */
export type PortClass = 'well_known' | 'registered' | 'dynamic';
export const PORT_CLASSES: readonly PortClass[] = ['well_known', 'registered', 'dynamic'];
export function portClass(port: number): PortClass {
  if (port < 1024) return 'well_known';
  if (port < 49152) return 'registered';
  return 'dynamic';
}
