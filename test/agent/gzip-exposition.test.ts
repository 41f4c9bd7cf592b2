// The compressed /metrics body is assembled from blocks compressed separately and kept between
// scrapes. Whatever changed in between, it must decompress to exactly the plain body.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { crc32, gunzipSync } from 'node:zlib';
import { COMMON_METRICS, EMPTY_RENDERED, FamilyRegistry, ScrapeBuffer } from '../../agent/exposition';
import { crc32Combine, deflateSegment, joinSegments } from '../../agent/gzip-segments';
import { ResultStore, type TargetIdentity } from '../../agent/store';
import type { CollectorResult, ProbeResult } from '../../exporters/types';
import { assertExposition } from '../helpers/exposition-check';

const PHASES = ['resolve', 'connect', 'tls', 'banner'];

function identity(i: number, extra: Record<string, string> = {}): TargetIdentity {
  return {
    name: `t-${i}`,
    module: 'tcp',
    prober: 'tcp',
    address: `127.0.0.1:${1000 + i}`,
    labels: { env: 'x', ...extra },
  };
}

function result(i: number, round: number): ProbeResult {
  const ok = (i + round) % 3 !== 0;
  return {
    success: ok,
    durationSeconds: 0.001 * ((i * 7 + round) % 97),
    phases: [
      { phase: 'resolve', seconds: 0.00001 * i },
      { phase: 'connect', seconds: 0.0001 * round },
    ],
    facts: [],
    ipProtocol: 4,
    failure: ok ? undefined : { phase: 'connect', reason: 'refused', message: 'connection refused' },
  };
}

describe('gzip pieces', () => {
  it('combines CRC-32s as the CRC of the concatenation, at every length', () => {
    for (const [a, b] of [
      [0, 0],
      [0, 5],
      [1, 1],
      [17, 1000],
      [65_537, 3],
      [4096, 300_001],
    ]) {
      const x = randomBytes(a);
      const y = randomBytes(b);
      expect(crc32Combine(crc32(x), crc32(y), y.length)).toBe(crc32(Buffer.concat([x, y])));
    }
  });

  it('joins separately compressed pieces into one gzip member that gunzip and zcat read whole', () => {
    const texts = [
      Buffer.from('# HELP a A.\n# TYPE a gauge\n'),
      Buffer.alloc(0),
      randomBytes(200_000), // incompressible: stored blocks
      Buffer.from('a{x="1"} 1\n'.repeat(50_000)),
      Buffer.from('tail\n'),
    ];
    const body = joinSegments(texts.map(deflateSegment));
    const whole = Buffer.concat(texts);
    expect(gunzipSync(body).equals(whole)).toBe(true);
    // An independent reader checks the trailer (CRC and length) too.
    expect(execFileSync('gzip', ['-dc'], { input: body, maxBuffer: 1 << 26 }).equals(whole)).toBe(true);
    expect(gunzipSync(joinSegments([])).length).toBe(0);
  });
});

describe('ResultStore.gzipExposition', () => {
  it('decompresses to exactly the plain exposition across results, reloads and collectors', async () => {
    const families = new FamilyRegistry([
      ...COMMON_METRICS,
      { name: 'portprobe_socket_listening', help: 'Listening sockets.', type: 'gauge', labelNames: ['port'] },
    ]);
    const store = new ResultStore(families);
    const tail = Buffer.from('# HELP own_metric Own.\n# TYPE own_metric gauge\nown_metric 1\n');
    const same = async (why: string): Promise<void> => {
      const plain = store.exposition(tail);
      const gz = await store.gzipExposition(tail);
      expect({ why, text: gunzipSync(gz).toString() }).toEqual({ why, text: plain.toString() });
      assertExposition(plain.toString(), why);
    };
    await same('empty store');

    // Enough targets for several blocks.
    let ids = Array.from({ length: 3000 }, (_, i) => identity(i));
    store.sync(ids);
    await same('targets without results');
    for (const t of ids) store.record(t.name, PHASES, result(Number(t.name.slice(2)), 0));
    await same('first round');
    const first = await store.gzipExposition(tail);

    // Unchanged: the same bytes.
    expect((await store.gzipExposition(tail)).equals(first)).toBe(true);

    // A few results change, in one block and across blocks.
    for (let i = 0; i < 3000; i += 250) store.record(`t-${i}`, PHASES, result(i, 1));
    await same('some results changed');

    // Results arriving while a scrape is being compressed.
    const during = store.gzipExposition(tail);
    for (let i = 1; i < 3000; i += 2) store.record(`t-${i}`, PHASES, result(i, 2));
    const text = gunzipSync(await during).toString();
    assertExposition(text, 'compressed during changes');
    expect(text.match(/^probe_success\{/gm)).toHaveLength(3000);
    await same('after the changes');

    // A reload: targets removed, added, relabelled; then down to a count with fewer blocks.
    ids = [...ids.slice(500, 2500), identity(5000), identity(600, { env: 'y' })].filter(
      (t, k, a) => a.findIndex((u) => u.name === t.name) === k,
    );
    store.sync(ids);
    store.record('t-5000', PHASES, result(5000, 3));
    await same('after a reload');
    store.sync(ids.slice(0, 10));
    await same('after a shrink');

    // Collectors come after the targets within each family.
    const scan: CollectorResult = {
      success: true,
      durationSeconds: 0.01,
      facts: [{ metric: 'portprobe_socket_listening', labels: { port: '22' }, value: 1 }],
    };
    store.recordCollector('sockets', scan);
    await same('with a collector');
    store.dropCollector('sockets');
    await same('collector dropped');
  });

  it('drops the lines of compressed blocks while only gzip is asked for, and renders them again identically', async () => {
    const store = new ResultStore(new FamilyRegistry(COMMON_METRICS));
    const ids = Array.from({ length: 20_000 }, (_, i) => identity(i));
    store.sync(ids);
    for (const t of ids) store.record(t.name, PHASES, result(Number(t.name.slice(2)), 0));
    const tail = Buffer.from('x 1\n');
    const gz = gunzipSync(await store.gzipExposition(tail)).toString();
    expect(store.get('t-3')?.rendered).toBe(EMPTY_RENDERED);
    expect(store.get('t-3')?.result).toBeDefined();
    // Plain text, rendered again from the kept results: the same bytes.
    expect(store.exposition(tail).toString()).toBe(gz);
    // A new result and another compressed scrape: still the same text as the plain one.
    store.record('t-3', PHASES, result(3, 9));
    expect(store.get('t-3')?.rendered).not.toBe(EMPTY_RENDERED);
    const plain = store.exposition(tail).toString();
    expect(plain).toContain('probe_success{target="t-3",module="tcp",env="x"} 0\n');
    expect(gunzipSync(await store.gzipExposition(tail)).toString()).toBe(plain);
    // A plain scrape was asked for: lines are kept from now on.
    expect(store.get('t-3')?.rendered).not.toBe(EMPTY_RENDERED);
  });

  it('keeps the lines of a small store (under 16,384 targets) after compressing', async () => {
    const store = new ResultStore(new FamilyRegistry(COMMON_METRICS));
    const ids = Array.from({ length: 1000 }, (_, i) => identity(i));
    store.sync(ids);
    for (const t of ids) store.record(t.name, PHASES, result(Number(t.name.slice(2)), 0));
    await store.gzipExposition(Buffer.from('x 1\n'));
    expect(store.get('t-3')?.rendered).not.toBe(EMPTY_RENDERED);
  });

  it('compresses changed blocks ahead of the next scrape once their targets are quiet, after a first gzip scrape', async () => {
    const store = new ResultStore(new FamilyRegistry(COMMON_METRICS));
    const ids = Array.from({ length: 2000 }, (_, i) => identity(i));
    store.sync(ids);
    for (const t of ids) store.record(t.name, PHASES, result(Number(t.name.slice(2)), 0));
    // Nobody asked for gzip yet: nothing is compressed ahead.
    await new Promise((r) => setTimeout(r, 600));
    expect(store.staleBlocks).toBeGreaterThan(1);
    const tail = Buffer.from('x 1\n');
    await store.gzipExposition(tail);
    expect(store.staleBlocks).toBe(0);
    store.record('t-7', PHASES, result(7, 5));
    store.record('t-1999', PHASES, result(1999, 5));
    expect(store.staleBlocks).toBeGreaterThanOrEqual(1);
    const before = store.exposition(tail).toString();
    await new Promise((r) => setTimeout(r, 1000));
    expect(store.staleBlocks).toBe(0);
    const gz = await store.gzipExposition(tail);
    expect(gunzipSync(gz).toString()).toBe(before);
  });
});

describe('ScrapeBuffer above its size to keep', () => {
  it('does not hold a body larger than KEEP_MAX between scrapes, and keeps a smaller one', () => {
    const sb = new ScrapeBuffer();
    const big = sb.borrow();
    const first = big.alloc(ScrapeBuffer.KEEP_MAX + 1);
    big.release();
    const next = sb.borrow();
    expect(next.alloc(ScrapeBuffer.KEEP_MAX + 1).buffer).not.toBe(first.buffer);
    next.release();
    const small = sb.borrow();
    const kept = small.alloc(1 << 20);
    small.release();
    const again = sb.borrow();
    expect(again.alloc(1 << 20).buffer).toBe(kept.buffer);
    again.release();
  });
});
