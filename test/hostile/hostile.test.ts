// Every prober against every hostile peer: each probe ends within its deadline + 100 ms with
// the rung and reason that name the problem, memory stays bounded, and file descriptors
// return to where they were.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PROBERS } from '../../exporters';
import { arrivalAddon } from '../../exporters/net';
import type { ProbeResult } from '../../exporters/types';
import { runProber } from '../helpers/context';
import { openFdCount } from '../helpers/net';
import { createNetns, dropTcpPort, tsNodeArgv } from '../helpers/netns';
import { startHostilePeer, type HostilePeer, type Hostility } from '../peers/hostile';

jest.setTimeout(120000);

const DEADLINE_MS = 800;

type Variant = [label: string, prober: string, settings: Record<string, unknown>];
const VARIANTS: Variant[] = [
  ['tcp+banner', 'tcp', { expect_banner: '^SSH-' }],
  ['tcp+tls', 'tcp', { tls: true, tls_config: { insecure_skip_verify: true } }],
  ['ftp', 'ftp', {}],
  ['ftps-implicit', 'ftp', { tls: 'implicit', tls_config: { insecure_skip_verify: true } }],
  ['mssql', 'mssql', {}],
  ['mssql-strict', 'mssql', { encrypt: 'strict', trust_server_certificate: true }],
];

// Expected "phase/reason" for each behaviour, per variant (same order as VARIANTS).
const EXPECT: Record<Hostility, string[]> = {
  tarpit: ['banner/no_greeting', 'tls/timeout', 'banner/no_greeting', 'tls/timeout', 'prelogin/timeout', 'tls/timeout'],
  reset: ['connect/reset', 'connect/reset', 'connect/reset', 'connect/reset', 'connect/reset', 'connect/reset'],
  dribble: [
    'banner/no_greeting',
    'tls/timeout',
    'banner/no_greeting',
    'tls/timeout',
    'prelogin/timeout',
    'tls/timeout',
  ],
  huge_line: [
    'banner/protocol_error',
    'tls/tls_error',
    'banner/protocol_error',
    'tls/tls_error',
    'prelogin/not_tds',
    'tls/tls_error',
  ],
  endless_multiline: [
    'banner/banner_unexpected',
    'tls/tls_error',
    'banner/protocol_error',
    'tls/tls_error',
    'prelogin/not_tds',
    'tls/tls_error',
  ],
  garbage: [
    'banner/protocol_error',
    'tls/tls_error',
    'banner/protocol_error',
    'tls/tls_error',
    'prelogin/not_tds',
    'tls/tls_error',
  ],
  tds_length_lies: [
    'banner/stalled',
    'tls/tls_error',
    'banner/stalled',
    'tls/tls_error',
    'prelogin/timeout',
    'tls/tls_error',
  ],
  tls_stall: [
    'banner/no_greeting',
    'tls/timeout',
    'banner/no_greeting',
    'tls/timeout',
    'prelogin/timeout',
    'tls/timeout',
  ],
};

// SQL Server (column 4): silence after the handshake is the service's, not the network's timeout.
// Kept apart from the table above, which other probers' columns share.
const MSSQL_AFTER_HANDSHAKE: Partial<Record<Hostility, string>> = {
  tarpit: 'prelogin/no_response',
  dribble: 'prelogin/no_response',
  tds_length_lies: 'prelogin/stalled',
  tls_stall: 'prelogin/no_response',
};
for (const [kind, verdict] of Object.entries(MSSQL_AFTER_HANDSHAKE)) EXPECT[kind as Hostility][4] = verdict;

describe.each(Object.keys(EXPECT) as Hostility[])('hostile peer: %s', (kind) => {
  let peer: HostilePeer;
  beforeAll(async () => {
    // Once per process, the arrival addon opens its epoll descriptor: not a per-probe leak.
    arrivalAddon();
    peer = await startHostilePeer(kind);
  });
  afterAll(() => peer.close());

  it.each(VARIANTS.map((v, i) => [v[0], v, EXPECT[kind][i]] as const))(
    '%s ends in time as %s',
    async (_label, [, prober, settings], expected) => {
      const fdsBefore = openFdCount();
      const heapBefore = process.memoryUsage().heapUsed;
      const t0 = performance.now();
      const r = await runProber(PROBERS[prober], `127.0.0.1:${peer.port}`, settings as never, DEADLINE_MS);
      const elapsed = performance.now() - t0;
      expect(`${r.failure?.phase}/${r.failure?.reason}`).toBe(expected);
      expect(r.success).toBe(false);
      expect(elapsed).toBeLessThan(DEADLINE_MS + 100);
      // Bounded buffers: a 100 MB line or an endless reply must not be held in memory.
      expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(32 * 1024 * 1024);
      // Every socket the probe opened is closed by the time it returns (give close a tick).
      for (let i = 0; i < 20 && openFdCount() > fdsBefore; i++) await new Promise((res) => setTimeout(res, 10));
      expect(openFdCount()).toBeLessThanOrEqual(fdsBefore);
      for (let i = 0; i < 50 && peer.open() > 0; i++) await new Promise((res) => setTimeout(res, 10));
      expect(peer.open()).toBe(0);
    },
  );
});

describe('SYN blackhole inside a network namespace', () => {
  const ns = createNetns('hostile');
  beforeAll(() => dropTcpPort(ns, 7777));
  afterAll(() => ns.remove());

  it.each(VARIANTS)('%s: connect times out within deadline + 100 ms', async (_label, prober, settings) => {
    const out = await ns.exec(
      tsNodeArgv(path.join(__dirname, '..', 'helpers', 'probe-cli.ts'), [
        JSON.stringify({ prober, address: '127.0.0.1:7777', timeoutMs: DEADLINE_MS, settings }),
      ]),
    );
    const { result, elapsedMs } = JSON.parse(out.stdout) as { result: ProbeResult; elapsedMs: number };
    expect(result.failure).toMatchObject({ phase: 'connect', reason: 'timeout' });
    expect(elapsedMs).toBeLessThan(DEADLINE_MS + 100);
  });
});
