// Stable hashing for spreading targets over an interval and over agent replicas.

/** 32-bit FNV-1a of a string's UTF-8 bytes. Stable across processes and versions. */
export function stableHash(s: string): number {
  let h = 0x811c9dc5;
  // ASCII names (nearly all) hash from their char codes, without a buffer per name.
  let ascii = true;
  for (let i = 0; i < s.length && ascii; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) ascii = false;
    else {
      h ^= c;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  if (ascii) return h >>> 0;
  h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** First 64 bits of the MD5 of the name, as Prometheus' hashmod relabelling takes its hash. */
export function key64(name: string): bigint {
  // node:crypto on first use: an agent that is not sharded never loads it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- see above
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  return createHash('md5').update(name, 'utf8').digest().readBigUInt64BE(0);
}

const MASK64 = (1n << 64n) - 1n;

/**
 * Jump consistent hash (Lamping and Veach, 2014): maps a 64-bit key to one of `buckets` shards
 * so that going from N to N+1 shards moves only about 1/(N+1) of the keys.
 */
export function jumpHash(key: bigint, buckets: number): number {
  if (!Number.isInteger(buckets) || buckets < 1) throw new RangeError('buckets must be a positive integer');
  let k = key & MASK64;
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    k = (k * 2862933555777941757n + 1n) & MASK64;
    j = Math.floor(((b + 1) * 2 ** 31) / (Number(k >> 33n) + 1));
  }
  return b;
}

/** The shard a target belongs to. */
export function shardOf(targetName: string, count: number): number {
  return jumpHash(key64(targetName), count);
}
