// Builds sock_diag dump replies byte by byte (little-endian host), for the parser's tests and
// fuzzers. The layout is checked against real kernel dumps in netlink.test.ts.
import net from 'node:net';

export interface RecordSpec {
  family: 4 | 6;
  state: number;
  sport: number;
  dport?: number;
  /** Dotted IPv4 or IPv6 text. */
  src: string;
  dst?: string;
  rqueue?: number;
  wqueue?: number;
  uid?: number;
  inode?: number;
  /** Attributes after the record: [type, payload]. */
  attrs?: Array<[number, Uint8Array]>;
}

function addressBytes(text: string, family: 4 | 6): Buffer {
  const out = Buffer.alloc(16);
  if (family === 4) {
    text.split('.').forEach((p, i) => (out[i] = Number(p)));
    return out;
  }
  // Expand :: and an embedded dotted quad, then write the eight groups.
  let t = text;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (dotted) {
    const b = dotted[1].split('.').map(Number);
    t = t.slice(0, -dotted[1].length) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = t.includes('::') ? t.split('::') : [t, undefined];
  const h = head === '' ? [] : head.split(':');
  const tl = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - tl.length).fill('0'), ...tl];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (!net.isIP(text)) throw new Error(`not an address: ${text}`);
  return out;
}

/** One inet_diag_msg (72 bytes) followed by its attributes. */
export function record(r: RecordSpec): Buffer {
  const attrs = (r.attrs ?? []).map(([type, payload]) => {
    const len = 4 + payload.length;
    const b = Buffer.alloc((len + 3) & ~3);
    b.writeUInt16LE(len, 0);
    b.writeUInt16LE(type, 2);
    Buffer.from(payload).copy(b, 4);
    return b;
  });
  const m = Buffer.alloc(72);
  m[0] = r.family === 4 ? 2 : 10;
  m[1] = r.state;
  m.writeUInt16BE(r.sport, 4);
  m.writeUInt16BE(r.dport ?? 0, 6);
  addressBytes(r.src, r.family).copy(m, 8);
  addressBytes(r.dst ?? (r.family === 4 ? '0.0.0.0' : '::'), r.family).copy(m, 24);
  m.writeUInt32LE(r.rqueue ?? 0, 56);
  m.writeUInt32LE(r.wqueue ?? 0, 60);
  m.writeUInt32LE(r.uid ?? 0, 64);
  m.writeUInt32LE(r.inode ?? 0, 68);
  return Buffer.concat([m, ...attrs]);
}

/** A netlink message: nlmsghdr (16 bytes) + payload, padded to 4 bytes. */
export function frame(type: number, payload: Uint8Array, flags = 2 /* NLM_F_MULTI */, seq = 1): Buffer {
  const len = 16 + payload.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(flags, 6);
  b.writeUInt32LE(seq, 8);
  Buffer.from(payload).copy(b, 16);
  return b;
}

export const done = (): Buffer => frame(3, Buffer.alloc(4));

/** NLMSG_ERROR with -errno and a copy of a request header. */
export function errorFrame(errno: number): Buffer {
  const p = Buffer.alloc(20);
  p.writeInt32LE(-errno, 0);
  return frame(2, p, 0);
}

/**
 * A whole reply: each record as a SOCK_DIAG_BY_FAMILY message (or `type`: 18 answers the
 * both-families TCPDIAG_GETSOCK request), then NLMSG_DONE.
 */
export function reply(records: RecordSpec[], flags = 2, type = 20): Buffer {
  return Buffer.concat([...records.map((r) => frame(type, record(r), flags)), done()]);
}
