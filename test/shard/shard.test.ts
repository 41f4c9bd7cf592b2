import { jumpHash, key64, shardOf, stableHash } from '../../agent/shard';
import { parseFlags } from '../../agent/flags';

const names = Array.from({ length: 10000 }, (_, i) => `target-${i}`);

describe('shard assignment', () => {
  it('is stable across processes and versions (golden values)', () => {
    // Fixed forever: changing them moves targets between replicas on upgrade.
    expect(key64('sql-primary').toString(16)).toBe('b6f6b0053eaeaa8c');
    expect(['sql-primary', 'ftp.example.org', 'target-0', 'target-9999', 'ünïcode'].map((n) => shardOf(n, 5))).toEqual(
      GOLDEN,
    );
    expect(stableHash('abc')).toBe(0x1a47e90b);
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('N=%d: every target in exactly one shard, spread within ±10%%', (n) => {
    const counts = new Array<number>(n).fill(0);
    for (const name of names) {
      const s = shardOf(name, n);
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThan(n);
      counts[s]++;
    }
    expect(counts.reduce((a, b) => a + b, 0)).toBe(names.length);
    const mean = names.length / n;
    for (const c of counts) expect(Math.abs(c - mean) / mean).toBeLessThanOrEqual(0.1);
  });

  it('going from 4 to 5 shards moves at most 25% of the targets', () => {
    const moved = names.filter((n) => shardOf(n, 4) !== shardOf(n, 5)).length / names.length;
    expect(moved).toBeLessThanOrEqual(0.25);
    expect(moved).toBeGreaterThan(0.1); // about 1/5 must move to fill the new shard
  });

  it('jumpHash rejects a shard count below 1', () => {
    expect(() => jumpHash(1n, 0)).toThrow('buckets must be a positive integer');
  });
});

describe('shard flags', () => {
  it('reads index and count from flags or the environment', () => {
    expect(parseFlags(['--shard.count=3', '--shard.index=2'], {})).toMatchObject({ shardCount: 3, shardIndex: 2 });
    expect(parseFlags([], { PORTPROBE_SHARD_COUNT: '4', PORTPROBE_SHARD_INDEX: '1' })).toMatchObject({
      shardCount: 4,
      shardIndex: 1,
    });
  });
  it('derives the index from a StatefulSet pod name, with replicas per shard', () => {
    expect(parseFlags([], { PORTPROBE_SHARD_COUNT: '3', POD_NAME: 'portprobe-2' })).toMatchObject({ shardIndex: 2 });
    expect(
      parseFlags([], { PORTPROBE_SHARD_COUNT: '3', PORTPROBE_REPLICAS_PER_SHARD: '2', POD_NAME: 'portprobe-5' }),
    ).toMatchObject({ shardIndex: 2 });
    expect(() => parseFlags([], { PORTPROBE_SHARD_COUNT: '3', POD_NAME: 'portprobe-7' })).toThrow(
      '--shard.index 7 must be below --shard.count 3',
    );
    expect(() => parseFlags([], { PORTPROBE_SHARD_COUNT: '3', POD_NAME: 'portprobe' })).toThrow(
      'POD_NAME "portprobe" does not end in -<ordinal>; set --shard.index',
    );
  });
  it('ignores POD_NAME when sharding is off', () => {
    expect(parseFlags([], { POD_NAME: 'portprobe-7d9f8-abcde' })).toMatchObject({ shardCount: 1, shardIndex: 0 });
  });
});

// Computed independently (md5 prefix + jump consistent hash, in another language).
const GOLDEN = [1, 1, 3, 1, 1];
