// Builds sock_diag dump replies byte by byte (little-endian host), for the parser's tests and
// fuzzers, and the fuzzers' arbitrary records. The layout is checked against real kernel dumps in
// netlink.test.ts.
import net from 'node:net';
import fc from 'fast-check';

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

const ipv4 = fc.oneof(
  fc.constant('0.0.0.0'),
  fc.constant('127.0.0.1'),
  fc.constant('10.0.0.1'),
  fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.')),
);
const ipv6 = fc.oneof(
  fc.constant('::'),
  fc.constant('::1'),
  fc.constant('fe80::1'),
  fc.constant('2001:db8::a:b'),
  ipv4.map((a) => `::ffff:${a}`),
);
const attr = fc.tuple(fc.integer({ min: 1, max: 30 }), fc.uint8Array({ maxLength: 40 }));

/**
 * Any record, listeners and established sockets most often. Few addresses and ports recur, so
 * that established sockets meet their listeners (exact and wildcard); any other value can come.
 */
export const recordSpec: fc.Arbitrary<RecordSpec> = fc
  .oneof(
    fc.record({ family: fc.constant(4 as const), src: ipv4 }),
    fc.record({ family: fc.constant(6 as const), src: ipv6 }),
  )
  .chain((base) =>
    fc.record({
      family: fc.constant(base.family),
      src: fc.constant(base.src),
      state: fc.oneof(fc.constant(10), fc.constant(1), fc.constant(7), fc.integer({ min: 0, max: 15 })),
      sport: fc.oneof(fc.constantFrom(22, 80, 1433), fc.nat(65535)),
      dport: fc.nat(65535),
      rqueue: fc.nat(),
      wqueue: fc.nat(),
      uid: fc.nat(),
      inode: fc.nat(),
      attrs: fc.array(attr, { maxLength: 3 }),
    }),
  );
