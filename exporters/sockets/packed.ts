// Packed socket tables, in two forms:
//  - what native/sockdiag.c's scan() and parse() return: a header (state counts, bad-message
//    examples, done, truncated...) and one 40-byte record per listener, parsed in C with the
//    rules of parseSockDiag() and each TCP listener's connections already counted;
//  - how a netlink scan's listener list crosses from the worker thread to the event loop: one
//    Float64Array (transferred, not copied) and a short string table (addresses and process
//    names, each once), turned back into objects only when something reads the list.
// Listener objects are kept between scans (ListenerReuse): a socket seen in the last scan keeps
// its object, its address string and its owner; only new sockets make new ones.
import { formatIPv6, type Listener } from './procnet';
import type { SockDiagStatus } from './sockdiag';

export const PACKED_MAGIC = 0x53440002;
const HEADER_WORDS = 48;
const HEADER_BYTES = HEADER_WORDS * 4;
const RECORD = 40;
const H_MAGIC = 0;
const H_FLAGS = 1;
const H_ERRNO = 2;
const H_SOCKETS = 3;
const H_BAD = 4;
const H_LISTENERS = 5;
const H_RECORD = 6;
const H_STATES = 8;
const H_EXAMPLES = 24;
const H_NEXAMPLES = 36;
const F_DONE = 1;
const F_TRUNCATED = 2;
const F_INTERRUPTED = 4;
const F_ERRNO = 8;
const NO_CONNECTIONS = 0xffffffff;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
/** The records are in the byte order of the host that made them: this one. */
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** One dump as the C parser packed it: its status, and its listener records. */
export interface PackedTable extends SockDiagStatus {
  /** Listener records. */
  count: number;
  /** The records, RECORD bytes each, in host byte order. */
  records: DataView;
}

/** The words parseSockDiag() uses for each kind of bad message. */
function example(kind: number, a: number, b: number, at: number): string {
  switch (kind) {
    case 1:
      return `message length ${a} with ${b} bytes left at byte ${at}`;
    case 2:
      return `short error message at byte ${at}`;
    case 3:
      return `message type ${a} at byte ${at}`;
    case 4:
      return `record of ${a} bytes at byte ${at}`;
    case 5:
      return `address family ${a} at byte ${at}`;
    case 6:
      return `attribute length out of bounds at byte ${at}`;
    case 7:
      return `state ${a} at byte ${at}`;
    default:
      return `bad message (kind ${kind}) at byte ${at}`;
  }
}

/** Reads the header of a packed table. Throws when the bytes are not one (a mismatched addon). */
export function readPackedTable(ab: ArrayBuffer): PackedTable {
  if (ab.byteLength < HEADER_BYTES) throw new Error(`packed socket table of ${ab.byteLength} bytes`);
  const h = new Uint32Array(ab, 0, HEADER_WORDS);
  if (h[H_MAGIC] !== PACKED_MAGIC || h[H_RECORD] !== RECORD || ab.byteLength !== HEADER_BYTES + h[H_LISTENERS] * RECORD)
    throw new Error('the sock_diag addon returned a table of another layout (rebuild it)');
  const flags = h[H_FLAGS];
  const badExamples: string[] = [];
  for (let i = 0; i < Math.min(3, h[H_NEXAMPLES]); i++) {
    const w = H_EXAMPLES + 4 * i;
    badExamples.push(example(h[w], h[w + 1], h[w + 2], h[w + 3]));
  }
  const t: PackedTable = {
    states: Array.from(h.subarray(H_STATES, H_STATES + 16)),
    sockets: h[H_SOCKETS],
    badMessages: h[H_BAD],
    badExamples,
    truncated: (flags & F_TRUNCATED) !== 0,
    done: (flags & F_DONE) !== 0,
    interrupted: (flags & F_INTERRUPTED) !== 0,
    count: h[H_LISTENERS],
    records: new DataView(ab, HEADER_BYTES),
  };
  if ((flags & F_ERRNO) !== 0) t.errno = h[H_ERRNO];
  return t;
}

interface Kept {
  l: Listener;
  a0: number;
  a1: number;
  a2: number;
  a3: number;
  seen: number;
}

/** The text form of a record's address. */
function addressText(v: DataView, o: number, family: 4 | 6): string {
  if (family === 4) return `${v.getUint8(o)}.${v.getUint8(o + 1)}.${v.getUint8(o + 2)}.${v.getUint8(o + 3)}`;
  const bytes = new Array<number>(16);
  for (let i = 0; i < 16; i++) bytes[i] = v.getUint8(o + i);
  return formatIPv6(bytes);
}

/**
 * Listener objects for packed records, kept from one scan to the next by socket inode. A record
 * whose inode was seen in the last scan with the same protocol, family, address and port is the
 * same socket: its object is reused with the new queue, backlog and connection numbers. An inode
 * that now names another socket (closed, its number reused) gets a new object.
 */
export class ListenerReuse {
  private kept = new Map<number, Kept>();
  private scanNo = 0;
  /** New objects made by the last call (sockets not seen in the scan before). */
  made = 0;

  listeners(tables: readonly PackedTable[], out: Listener[] = []): Listener[] {
    const scan = ++this.scanNo;
    let seen = 0;
    this.made = 0;
    for (const t of tables) {
      const v = t.records;
      for (let i = 0; i < t.count; i++) {
        const o = i * RECORD;
        const family = v.getUint8(o) === 6 ? 6 : 4;
        const protocol = v.getUint8(o + 1) === IPPROTO_UDP ? 'udp' : 'tcp';
        const port = v.getUint16(o + 2, HOST_LE);
        const a0 = v.getUint32(o + 4, HOST_LE);
        const a1 = v.getUint32(o + 8, HOST_LE);
        const a2 = v.getUint32(o + 12, HOST_LE);
        const a3 = v.getUint32(o + 16, HOST_LE);
        const inode = v.getUint32(o + 20, HOST_LE);
        const rq = v.getUint32(o + 28, HOST_LE);
        const wq = v.getUint32(o + 32, HOST_LE);
        const conns = v.getUint32(o + 36, HOST_LE);
        let k = this.kept.get(inode);
        if (
          k === undefined ||
          k.seen === scan ||
          k.l.protocol !== protocol ||
          k.l.family !== family ||
          k.l.port !== port ||
          k.a0 !== a0 ||
          k.a1 !== a1 ||
          k.a2 !== a2 ||
          k.a3 !== a3
        ) {
          const l: Listener = {
            protocol,
            family,
            address: addressText(v, o + 4, family),
            port,
            inode,
            uid: v.getUint32(o + 24, HOST_LE),
            owner: null,
          };
          this.made++;
          // A second record with an inode already used in this scan (never from a kernel) is
          // not kept: the first one owns the inode.
          if (k !== undefined && k.seen === scan) {
            setNumbers(l, protocol, rq, wq, conns);
            out.push(l);
            continue;
          }
          k = { l, a0, a1, a2, a3, seen: 0 };
          this.kept.set(inode, k);
        }
        k.seen = scan;
        seen++;
        k.l.uid = v.getUint32(o + 24, HOST_LE);
        setNumbers(k.l, protocol, rq, wq, conns);
        out.push(k.l);
      }
    }
    if (this.kept.size > seen) for (const [inode, k] of this.kept) if (k.seen !== scan) this.kept.delete(inode);
    return out;
  }
}

function setNumbers(l: Listener, protocol: 'tcp' | 'udp', rq: number, wq: number, conns: number): void {
  if (protocol !== 'tcp') return;
  l.acceptQueue = rq;
  l.acceptQueueLimit = wq;
  l.connections = conns === NO_CONNECTIONS ? undefined : conns;
}

/** A listener list as it crosses between threads: numbers (transferred) and a string table. */
export interface PackedListeners {
  numbers: Float64Array;
  strings: string[];
}

/** Numbers per listener in PackedListeners. */
const FIELDS = 11;

/** Packs listeners (with owners) for postMessage; NaN stands for a number that is not there. */
export function packListeners(listeners: readonly Listener[]): PackedListeners {
  const numbers = new Float64Array(listeners.length * FIELDS);
  const strings: string[] = [];
  const index = new Map<string, number>();
  const str = (s: string): number => {
    let i = index.get(s);
    if (i === undefined) {
      i = strings.length;
      strings.push(s);
      index.set(s, i);
    }
    return i;
  };
  let o = 0;
  for (const l of listeners) {
    numbers[o] = l.protocol === 'tcp' ? 0 : 1;
    numbers[o + 1] = l.family;
    numbers[o + 2] = str(l.address);
    numbers[o + 3] = l.port;
    numbers[o + 4] = l.inode;
    numbers[o + 5] = l.uid;
    numbers[o + 6] = l.acceptQueue ?? NaN;
    numbers[o + 7] = l.acceptQueueLimit ?? NaN;
    numbers[o + 8] = l.connections ?? NaN;
    numbers[o + 9] = l.owner === null ? NaN : l.owner.pid;
    numbers[o + 10] = l.owner === null ? NaN : str(l.owner.name);
    o += FIELDS;
  }
  return { numbers, strings };
}

/** The listener objects back, as packListeners() was given them (fields that were absent stay absent). */
export function unpackListeners(p: PackedListeners): Listener[] {
  const out: Listener[] = [];
  const { numbers: n, strings } = p;
  for (let o = 0; o + FIELDS <= n.length; o += FIELDS) {
    const l: Listener = {
      protocol: n[o] === 0 ? 'tcp' : 'udp',
      family: n[o + 1] === 6 ? 6 : 4,
      address: strings[n[o + 2]],
      port: n[o + 3],
      inode: n[o + 4],
      uid: n[o + 5],
      owner: Number.isNaN(n[o + 9]) ? null : { pid: n[o + 9], name: strings[n[o + 10]] },
    };
    if (!Number.isNaN(n[o + 6])) l.acceptQueue = n[o + 6];
    if (!Number.isNaN(n[o + 7])) l.acceptQueueLimit = n[o + 7];
    if (!Number.isNaN(n[o + 8])) l.connections = n[o + 8];
    out.push(l);
  }
  return out;
}

export { IPPROTO_TCP, IPPROTO_UDP };
