// A parser for netlink sock_diag (INET_DIAG) dump replies: nlmsghdr-framed inet_diag_msg
// records, as native/sockdiag.c's dump() returns them. Pure: bytes in, a tally out, whatever the
// bytes say about their own lengths. It keeps the listeners with their accept queues, a count of
// TCP states, and established sockets by local address and port (to count each listener's
// connections).
//
// It is the reference: a scan parses in C (the addon's scan(), packed.ts reads its tables),
// with these rules, and test/fuzz/sockdiag-c.test.ts checks that both parsers agree on any
// bytes.
//
// Layouts (include/uapi/linux/netlink.h, inet_diag.h), host byte order unless noted:
//   nlmsghdr (16): u32 len, u16 type, u16 flags, u32 seq, u32 pid
//   inet_diag_msg (72): u8 family, u8 state, u8 timer, u8 retrans,
//     sockid: be16 sport, be16 dport, be32 src[4], be32 dst[4], u32 if, u32 cookie[2],
//     u32 expires, u32 rqueue, u32 wqueue, u32 uid, u32 inode
//   then rtattrs: u16 len, u16 type, payload, each padded to 4 bytes.
// For a listener the kernel puts its accept queue (sk_ack_backlog) in rqueue and its backlog
// (sk_max_ack_backlog) in wqueue; that is what `ss -lt` prints as Recv-Q and Send-Q.
import { formatIPv6, type Listener } from './procnet';
import type { SocketProtocol } from './settings';

export const NLMSG_HDRLEN = 16;
export const INET_DIAG_MSG_LEN = 72;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const SOCK_DIAG_BY_FAMILY = 20;
/** The type of the replies to the original TCPDIAG_GETSOCK request (both families in one dump). */
export const TCPDIAG_GETSOCK = 18;
/** nlmsg_flags: the dump was interrupted by a change to the table (its content may be inconsistent). */
export const NLM_F_DUMP_INTR = 0x10;
export const AF_INET = 2;
export const AF_INET6 = 10;

const TCP_ESTABLISHED = 1;
const TCP_CLOSE = 7;
const TCP_LISTEN = 10;
const MAX_BAD_EXAMPLES = 3;

/**
 * What a parsed dump says about itself, whichever parser read it: this one, or the addon's C
 * parser through its packed table (packed.ts).
 */
export interface SockDiagStatus {
  /** Sockets per state code (index 0..15). */
  states: number[];
  /** Socket records read. */
  sockets: number;
  /** Records that could not be read (short, wrong family, lying attribute lengths). */
  badMessages: number;
  badExamples: string[];
  /** The buffer ended inside a message or a message claimed more bytes than were left. */
  truncated: boolean;
  /** NLMSG_DONE was seen: the dump is complete. */
  done: boolean;
  /** The kernel answered NLMSG_ERROR with this errno (positive), e.g. 2 when a protocol has no diag module. */
  errno?: number;
  /** The kernel flagged the dump as interrupted by concurrent changes. */
  interrupted: boolean;
}

export interface SockDiagTally extends SockDiagStatus {
  protocol: SocketProtocol;
  listeners: Listener[];
  /** Established sockets by `${family} ${address} ${port}` of their local end. */
  established: Map<string, number>;
}

export interface SockDiagOptions {
  /** Byte order of the host that produced the buffer (netlink uses host order). */
  littleEndian?: boolean;
  /** The family the request asked for: records of another family are bad. Undefined: either. */
  family?: 4 | 6;
}

function bad(t: SockDiagTally, why: string, at: number): void {
  t.badMessages++;
  if (t.badExamples.length < MAX_BAD_EXAMPLES) t.badExamples.push(`${why} at byte ${at}`);
}

/**
 * Parses one dump reply (any number of datagrams, concatenated). Never throws; a message whose
 * length field lies ends the walk (nothing after it can be framed) and sets `truncated`.
 */
export function parseSockDiag(buf: Uint8Array, protocol: SocketProtocol, opts: SockDiagOptions = {}): SockDiagTally {
  const le = opts.littleEndian ?? true;
  const t: SockDiagTally = {
    protocol,
    listeners: [],
    states: new Array<number>(16).fill(0),
    established: new Map(),
    sockets: 0,
    badMessages: 0,
    badExamples: [],
    truncated: false,
    done: false,
    interrupted: false,
  };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const wanted = protocol === 'tcp' ? TCP_LISTEN : TCP_CLOSE;
  const addrCache = new Map<number, string>();
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLMSG_HDRLEN) {
      t.truncated = true;
      break;
    }
    const len = view.getUint32(off, le);
    const type = view.getUint16(off + 4, le);
    const flags = view.getUint16(off + 6, le);
    if (len < NLMSG_HDRLEN || len > buf.length - off) {
      t.truncated = true;
      bad(t, `message length ${len} with ${buf.length - off} bytes left`, off);
      break;
    }
    const body = off + NLMSG_HDRLEN;
    const end = off + len;
    // The next message starts at the 4-byte boundary after this one.
    off += (len + 3) & ~3;
    if ((flags & NLM_F_DUMP_INTR) !== 0) t.interrupted = true;
    if (type === NLMSG_DONE) {
      t.done = true;
      break;
    }
    if (type === NLMSG_ERROR) {
      // payload: s32 -errno, then the request's header
      if (end - body >= 4) {
        const e = -view.getInt32(body, le);
        if (e !== 0) t.errno = e > 0 ? e : -e;
      } else bad(t, 'short error message', body - NLMSG_HDRLEN);
      if (t.errno !== undefined) break;
      continue;
    }
    if (type === NLMSG_NOOP) continue;
    if (type !== SOCK_DIAG_BY_FAMILY && type !== TCPDIAG_GETSOCK) {
      bad(t, `message type ${type}`, body - NLMSG_HDRLEN);
      continue;
    }
    if (end - body < INET_DIAG_MSG_LEN) {
      bad(t, `record of ${end - body} bytes`, body);
      continue;
    }
    const afam = buf[body];
    const family: 4 | 6 | undefined = afam === AF_INET ? 4 : afam === AF_INET6 ? 6 : undefined;
    if (family === undefined || (opts.family !== undefined && family !== opts.family)) {
      bad(t, `address family ${afam}`, body);
      continue;
    }
    // Every attribute must lie inside the message (the last one's padding may run past it).
    let a = body + INET_DIAG_MSG_LEN;
    let attrsOk = true;
    while (end - a >= 4) {
      const alen = view.getUint16(a, le);
      if (alen < 4 || alen > end - a) {
        attrsOk = false;
        break;
      }
      a += (alen + 3) & ~3;
    }
    if (!attrsOk) {
      bad(t, 'attribute length out of bounds', a);
      continue;
    }
    const state = buf[body + 1];
    if (state > 15) {
      bad(t, `state ${state}`, body);
      continue;
    }
    t.sockets++;
    t.states[state]++;
    const isListener = state === wanted;
    if (!isListener && !(protocol === 'tcp' && state === TCP_ESTABLISHED)) continue;
    const port = (buf[body + 4] << 8) | buf[body + 5];
    const src = body + 8;
    let address: string;
    if (family === 4) {
      const key = view.getUint32(src, false);
      let cached = addrCache.get(key);
      if (cached === undefined) {
        cached = `${buf[src]}.${buf[src + 1]}.${buf[src + 2]}.${buf[src + 3]}`;
        if (addrCache.size < 4096) addrCache.set(key, cached);
      }
      address = cached;
    } else {
      address = formatIPv6(Array.from(buf.subarray(src, src + 16)));
    }
    if (!isListener) {
      const key = `${family} ${address} ${port}`;
      t.established.set(key, (t.established.get(key) ?? 0) + 1);
      continue;
    }
    const rqueue = view.getUint32(body + 56, le);
    const wqueue = view.getUint32(body + 60, le);
    const uid = view.getUint32(body + 64, le);
    const inode = view.getUint32(body + 68, le);
    const l: Listener = { protocol, family, address, port, inode, uid, owner: null };
    if (protocol === 'tcp') {
      l.acceptQueue = rqueue;
      l.acceptQueueLimit = wqueue;
    }
    t.listeners.push(l);
  }
  return t;
}

/** A dump request's TCP state mask: 1 << state for each state wanted. */
export function stateMask(states: readonly number[]): number {
  let m = 0;
  for (const s of states) m |= 1 << s;
  return m >>> 0;
}
