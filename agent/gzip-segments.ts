// A gzip body assembled from pieces compressed separately. Each piece is a raw deflate stream
// ended with a sync flush (byte-aligned, not final, no reference to anything before it), so
// pieces can be compressed once, kept, and laid end to end in any order; one final empty block
// and the trailer (CRC-32 of the whole text, combined from the pieces' CRCs, and its length)
// close the member. RFC 1951 section 3.2.3 and RFC 1952 section 2.3.
import { constants, crc32, deflateRawSync } from 'node:zlib';

/** One compressed piece: its deflate bytes, and the CRC-32 and length of the text it holds. */
export interface Segment {
  data: Buffer;
  crc: number;
  len: number;
}

/** Compresses `text` (level 1) into a piece that can be joined to others. */
export function deflateSegment(text: Buffer): Segment {
  const data = deflateRawSync(text, { level: constants.Z_BEST_SPEED, finishFlush: constants.Z_SYNC_FLUSH });
  return { data, crc: crc32(text), len: text.length };
}

// CRC-32 combination over GF(2): the CRC of A followed by B is CRC(A) multiplied by x^(8·len(B))
// modulo the polynomial, plus CRC(B). Polynomials are kept bit-reflected, as the CRC is.
const POLY = 0xedb88320;

/** a·b modulo the CRC polynomial (both reflected; x^0 is the top bit). */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** X2N[k] = x^(2^k) modulo the polynomial. */
const X2N = new Uint32Array(32);
X2N[0] = 0x40000000; // x^1
for (let k = 1; k < 32; k++) X2N[k] = multModP(X2N[k - 1], X2N[k - 1]);

/** x^(n·2^k) modulo the polynomial. */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000; // x^0
  while (n > 0) {
    if (n % 2 === 1) p = multModP(X2N[k & 31], p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/** CRC-32 of A followed by B, from CRC(A), CRC(B) and B's length in bytes. */
export function crc32Combine(crcA: number, crcB: number, lenB: number): number {
  return (multModP(x2nModP(lenB, 3), crcA) ^ crcB) >>> 0;
}

const HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
/** A final fixed-Huffman block holding only its end code. */
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

/** One gzip member holding the pieces' texts in order. Empty pieces may be passed; they add nothing. */
export function joinSegments(segments: readonly Segment[]): Buffer {
  let size = HEADER.length + FINAL_BLOCK.length + 8;
  let crc = 0;
  let len = 0;
  for (const s of segments) {
    if (s.len === 0) continue;
    size += s.data.length;
    crc = crc32Combine(crc, s.crc, s.len);
    len += s.len;
  }
  const out = Buffer.allocUnsafe(size);
  let at = HEADER.copy(out, 0);
  for (const s of segments) if (s.len > 0) at += s.data.copy(out, at);
  at += FINAL_BLOCK.copy(out, at);
  out.writeUInt32LE(crc, at);
  out.writeUInt32LE(len % 2 ** 32, at + 4);
  return out;
}

/**
 * The same pieces with their compressed bytes moved into one buffer of the exact size: zlib
 * hands its output back as slices of larger chunks, which a piece kept for minutes would pin.
 */
export function compact(segments: readonly (Segment | undefined)[]): (Segment | undefined)[] {
  let size = 0;
  for (const s of segments) if (s) size += s.data.length;
  const all = Buffer.allocUnsafeSlow(size);
  let at = 0;
  return segments.map((s) => {
    if (!s) return undefined;
    const data = all.subarray(at, at + s.data.length);
    at += s.data.copy(all, at);
    return { data, crc: s.crc, len: s.len };
  });
}
