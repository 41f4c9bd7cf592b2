// The netlink (sock_diag) source on this machine's kernel, with real sockets: a listener that
// never accepts with clients in its queue (queue and backlog exact), one that holds N
// connections, IPv6, UDP, a network namespace with its own sockets, the kernel-side state
// filter keeping TIME_WAIT rows in the kernel, agreement with `ss` and with the /proc source,
// and the fall back to /proc when netlink cannot be used.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { resolveSource, socketsCollector, type ScanDetails } from '../../exporters/sockets';
import { loadSockDiag, sockDiagUnavailable } from '../../exporters/sockets/netlink';
import { ListenerReuse, readPackedTable } from '../../exporters/sockets/packed';
import type { Listener } from '../../exporters/sockets/procnet';
import { parseSockDiag, stateMask } from '../../exporters/sockets/sockdiag';
import { SOCKETS_DEFAULTS, type SocketsSettings } from '../../exporters/sockets/settings';
import type { CollectorResult, Fact, ProbeLogger } from '../../exporters/types';
import { silentLogger } from '../helpers/context';
import { Stuck, ssQueue, untilSsQueue } from './helpers';

const REPO = path.resolve(__dirname, '..', '..');
const signal = (): AbortSignal => new AbortController().signal;
const details = (r: CollectorResult): ScanDetails => r.details as unknown as ScanDetails;

function fact(r: CollectorResult, metric: string, labels: Record<string, string>): Fact | undefined {
  return r.facts.find((f) => f.metric === metric && Object.entries(labels).every(([k, v]) => f.labels?.[k] === v));
}

function collector(
  source: SocketsSettings['source'],
  over: Partial<SocketsSettings> = {},
  logger: ProbeLogger = silentLogger,
) {
  return socketsCollector.create({ ...SOCKETS_DEFAULTS, source, ...over }, logger);
}

/** The three per-listener series of one listener, in a form to compare between sources. */
function queueSeries(r: CollectorResult, address: string, port: number): Record<string, number | undefined> {
  const labels = { protocol: 'tcp', address, port: String(port) };
  return {
    queue: fact(r, 'portprobe_listener_accept_queue', labels)?.value,
    limit: fact(r, 'portprobe_listener_accept_queue_limit', labels)?.value,
    connections: fact(r, 'portprobe_listener_connections', labels)?.value,
  };
}

describe('the addon', () => {
  it('is built on Linux and loads', () => {
    expect(os.platform()).toBe('linux');
    expect(sockDiagUnavailable()).toBeUndefined();
    expect(typeof loadSockDiag().dump).toBe('function');
  });

  it('refuses bad arguments with an error instead of crashing', () => {
    const { dump } = loadSockDiag();
    expect(() => (dump as unknown as (...a: unknown[]) => unknown)(5, 6, 0, 0)).toThrow(
      'dump(family 4|6, protocol, states, ext)',
    );
    expect(() => (dump as unknown as (...a: unknown[]) => unknown)('4')).toThrow(
      'dump(family 4|6, protocol, states, ext)',
    );
  });

  it('keeps TIME_WAIT rows in the kernel when the state filter leaves them out', async () => {
    // One TIME_WAIT socket of our own: the client closes first.
    const srv = net.createServer((c) => c.on('end', () => c.end()));
    await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
    const port = (srv.address() as net.AddressInfo).port;
    const c = net.connect(port, '127.0.0.1');
    await new Promise((ok) => c.once('connect', ok));
    c.end();
    await new Promise((ok) => c.once('close', ok));
    srv.close();
    const { dump } = loadSockDiag();
    const all = parseSockDiag(dump(4, 6, 0xffff, 0), 'tcp');
    const filtered = parseSockDiag(dump(4, 6, 0xffff & ~(1 << 6), 0), 'tcp');
    expect(all.states[6]).toBeGreaterThanOrEqual(1);
    expect(filtered.states[6]).toBe(0);
    expect(filtered.done && all.done).toBe(true);
    const listenersOnly = parseSockDiag(dump(4, 6, stateMask([10]), 0), 'tcp');
    expect(listenersOnly.states.reduce((a, b) => a + b, 0)).toBe(listenersOnly.states[10]);
  });
});

describe('netlink with real sockets', () => {
  let stuck4: Stuck;
  let stuck6: Stuck;
  const server = net.createServer((c) => held.push(c));
  const held: net.Socket[] = [];
  const clients: net.Socket[] = [];
  let heldPort = 0;
  const N = 7;

  beforeAll(async () => {
    stuck4 = await Stuck.start('127.0.0.1', 8, 5);
    stuck6 = await Stuck.start('::1', 4, 4);
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', 100, ok));
    heldPort = (server.address() as net.AddressInfo).port;
    for (let i = 0; i < N; i++) {
      const c = net.connect(heldPort, '127.0.0.1');
      await new Promise((ok) => c.once('connect', ok));
      clients.push(c);
    }
    while (held.length < N) await new Promise((r) => setTimeout(r, 10));
    expect(await untilSsQueue(stuck4.port, 5)).toEqual({ recvQ: 5, sendQ: 8 });
    // A queue at its backlog: the kernel still takes one more, then drops.
    expect(await untilSsQueue(stuck6.port, 4)).toEqual({ recvQ: 4, sendQ: 4 });
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) c.destroy();
    for (const c of held) c.destroy();
    server.close();
    await stuck4?.stop();
    await stuck6?.stop();
  });

  const expectations = (): SocketsSettings['expect'] => [
    { port: stuck4.port, address: '127.0.0.1' },
    { port: stuck6.port, address: '::1' },
    { port: heldPort },
  ];

  it('a listener that never accepts: its queue and backlog, exactly; queued clients are connections', async () => {
    const c = collector('netlink', { expect: expectations() });
    const r = await c.scan(signal());
    c.close();
    expect(r.success).toBe(true);
    expect(details(r).source).toBe('netlink');
    expect(fact(r, 'portprobe_socket_scan_source_info', {})?.labels).toEqual({ source: 'netlink' });
    expect(queueSeries(r, '127.0.0.1', stuck4.port)).toEqual({ queue: 5, limit: 8, connections: 5 });
  });

  it('IPv6: the same on ::1, a queue at its backlog', async () => {
    const c = collector('netlink', { expect: expectations() });
    const r = await c.scan(signal());
    c.close();
    expect(queueSeries(r, '::1', stuck6.port)).toEqual({ queue: 4, limit: 4, connections: 4 });
  });

  it('a listener holding N accepted connections: connections N, queue 0', async () => {
    const c = collector('netlink', { expect: expectations() });
    const r = await c.scan(signal());
    c.close();
    expect(queueSeries(r, '127.0.0.1', heldPort)).toEqual({ queue: 0, limit: 100, connections: N });
    const estab = fact(r, 'portprobe_tcp_connection_states', { state: 'established' })?.value ?? 0;
    expect(estab).toBeGreaterThanOrEqual(2 * N + 5 * 2);
  });

  it('unexpected listeners within the cap get the series too; beyond the cap they do not', async () => {
    const c = collector('netlink', { max_unexpected_series: 100000 });
    const r = await c.scan(signal());
    c.close();
    expect(queueSeries(r, '127.0.0.1', stuck4.port)).toEqual({ queue: 5, limit: 8, connections: 5 });
    const none = collector('netlink', { max_unexpected_series: 0 });
    const r0 = await none.scan(signal());
    none.close();
    expect(r0.facts.filter((f) => f.metric.startsWith('portprobe_listener_accept_queue'))).toEqual([]);
  });

  it('UDP: bound sockets are listeners with owner, and get no accept-queue series', async () => {
    const { default: dgram } = await import('node:dgram');
    const u4 = dgram.createSocket('udp4');
    const u6 = dgram.createSocket({ type: 'udp6', ipv6Only: true });
    await new Promise<void>((ok) => u4.bind(0, '127.0.0.1', ok));
    await new Promise<void>((ok) => u6.bind(0, '::1', ok));
    try {
      const p4 = u4.address().port;
      const p6 = u6.address().port;
      const c = collector('netlink', {
        expect: [
          { port: p4, protocol: 'udp', address: '127.0.0.1' },
          { port: p6, protocol: 'udp', address: '::1', process: 'node' },
        ],
      });
      const r = await c.scan(signal());
      c.close();
      expect(fact(r, 'portprobe_listener_up', { protocol: 'udp', port: String(p4) })?.value).toBe(1);
      expect(fact(r, 'portprobe_listener_up', { protocol: 'udp', port: String(p6) })?.value).toBe(1);
      const mine = details(r).listeners.filter((l) => l.protocol === 'udp' && (l.port === p4 || l.port === p6));
      expect(mine.map((l) => [l.address, l.owner?.pid])).toEqual(
        expect.arrayContaining([
          ['127.0.0.1', process.pid],
          ['::1', process.pid],
        ]),
      );
      expect(
        r.facts.filter((f) => f.labels?.protocol === 'udp' && f.metric.startsWith('portprobe_listener_accept')),
      ).toEqual([]);
    } finally {
      u4.close();
      u6.close();
    }
  });

  it("finds what ss finds for our sockets, with ss's Recv-Q and Send-Q", async () => {
    const c = collector('netlink', { include_process: false });
    const r = await c.scan(signal());
    c.close();
    for (const [port, address] of [
      [stuck4.port, '127.0.0.1'],
      [stuck6.port, '::1'],
      [heldPort, '127.0.0.1'],
    ] as const) {
      const ss = ssQueue(port);
      const l = details(r).listeners.find((x) => x.protocol === 'tcp' && x.port === port);
      expect([address, l?.address, l?.acceptQueue, l?.acceptQueueLimit]).toEqual([
        address,
        address,
        ss.recvQ,
        ss.sendQ,
      ]);
    }
  });

  it('the /proc source gives the same series but the backlog, which /proc does not print', async () => {
    const nl = collector('netlink', { expect: expectations() });
    const pf = collector('procfs', { expect: expectations() });
    const a = await nl.scan(signal());
    const b = await pf.scan(signal());
    nl.close();
    pf.close();
    for (const [address, port] of [
      ['127.0.0.1', stuck4.port],
      ['::1', stuck6.port],
      ['127.0.0.1', heldPort],
    ] as const) {
      const n = queueSeries(a, address, port);
      const p = queueSeries(b, address, port);
      expect(p).toEqual({ ...n, limit: undefined });
      expect(n.limit).toBeGreaterThan(0);
    }
    const up = (r: CollectorResult) => r.facts.filter((f) => f.metric === 'portprobe_listener_up');
    expect(up(b)).toEqual(up(a));
    expect(fact(b, 'portprobe_socket_scan_source_info', {})?.labels).toEqual({ source: 'procfs' });
  });

  it('falls back to /proc when netlink cannot be used (auto), and fails clearly when it was asked for', async () => {
    const before = process.env.PORTPROBE_SOCK_DIAG;
    const warnings: unknown[][] = [];
    const infos: unknown[][] = [];
    const logger: ProbeLogger = {
      ...silentLogger,
      warn: (...a: unknown[]) => warnings.push(a),
      info: (...a: unknown[]) => infos.push(a),
    };
    try {
      // Resolved while the addon is usable, refused when the worker loads it.
      const auto = collector('auto', { expect: expectations() }, logger);
      const explicit = collector('netlink', { expect: expectations() });
      process.env.PORTPROBE_SOCK_DIAG = 'off';
      expect(resolveSource({ ...SOCKETS_DEFAULTS, source: 'auto' })).toBe('procfs');
      const r = await auto.scan(signal());
      const e = await explicit.scan(signal());
      auto.close();
      explicit.close();
      expect(r.success).toBe(true);
      expect(details(r).source).toBe('procfs');
      expect(warnings[0]?.[0]).toBe('netlink sock_diag unavailable, reading /proc instead');
      expect(infos).toEqual([['socket tables read via procfs', { source: 'procfs' }]]);
      expect(queueSeries(r, '127.0.0.1', stuck4.port)).toEqual({ queue: 5, limit: undefined, connections: 5 });
      expect(e.success).toBe(false);
      expect(e.error).toBe('socket scan via netlink failed: netlink unavailable: PORTPROBE_SOCK_DIAG=off');
    } finally {
      if (before === undefined) delete process.env.PORTPROBE_SOCK_DIAG;
      else process.env.PORTPROBE_SOCK_DIAG = before;
    }
    expect(resolveSource({ ...SOCKETS_DEFAULTS, source: 'auto' })).toBe('netlink');
    expect(resolveSource({ ...SOCKETS_DEFAULTS, source: 'auto' }, 'linux', 'not built')).toBe('procfs');
    expect(resolveSource({ ...SOCKETS_DEFAULTS, source: 'auto', procfs: '/nonexistent' }, 'darwin')).toBe(
      'systeminformation',
    );
  });
});

describe('after netlink has worked', () => {
  it('a later netlink failure is a failed scan, not a switch to /proc', async () => {
    const before = process.env.PORTPROBE_SOCK_DIAG;
    const c = collector('auto');
    try {
      const ok = await c.scan(signal());
      expect(details(ok).source).toBe('netlink');
      // The worker dies; its replacement cannot load the addon.
      process.env.PORTPROBE_SOCK_DIAG = 'off';
      (c as unknown as { netlink?: { close(): void } }).netlink?.close();
      const r = await c.scan(signal());
      expect([r.success, r.error]).toEqual([
        false,
        'socket scan via netlink failed: netlink unavailable: PORTPROBE_SOCK_DIAG=off',
      ]);
      expect(fact(r, 'portprobe_socket_scan_source_info', {})?.labels).toEqual({ source: 'netlink' });
    } finally {
      c.close();
      if (before === undefined) delete process.env.PORTPROBE_SOCK_DIAG;
      else process.env.PORTPROBE_SOCK_DIAG = before;
    }
  });
});

describe('one dump for both TCP families, and successive scans of one collector', () => {
  const servers: net.Server[] = [];
  const clients: net.Socket[] = [];
  const listen = async (address: string): Promise<number> => {
    const srv = net.createServer((c) => clients.push(c));
    servers.push(srv);
    await new Promise<void>((ok) => srv.listen(0, address, ok));
    return (srv.address() as net.AddressInfo).port;
  };
  afterAll(() => {
    for (const c of clients) c.destroy();
    for (const srv of servers) srv.close();
  });

  it('the both-families dump gives what one dump per family gives, IPv4 first', async () => {
    const p4 = await listen('127.0.0.1');
    const p6 = await listen('::1');
    const { scan } = loadSockDiag();
    const mine = (ls: Listener[]): string[] =>
      ls.filter((l) => l.port === p4 || l.port === p6).map((l) => `${l.family} ${l.address} ${l.port} ${l.inode}`);
    const mask = stateMask([1, 10]);
    const both = new ListenerReuse().listeners([readPackedTable(scan(0, 6, mask))]);
    const apart = new ListenerReuse().listeners([readPackedTable(scan(4, 6, mask)), readPackedTable(scan(6, 6, mask))]);
    expect(mine(both)).toEqual(mine(apart));
    expect(mine(both)).toHaveLength(2);
    expect(both.findIndex((l) => l.family === 6)).toBeGreaterThanOrEqual(both.filter((l) => l.family === 4).length);
  });

  it('a listener that closes leaves, a new one comes with its owner, connections follow', async () => {
    const a = await listen('127.0.0.1');
    const b = await listen('::1');
    const c = collector('netlink', { expect: [{ port: a }, { port: b }] });
    try {
      const first = await c.scan(signal());
      expect(fact(first, 'portprobe_listener_up', { port: String(a) })?.value).toBe(1);
      expect(queueSeries(first, '::1', b).connections).toBe(0);
      for (let i = 0; i < 3; i++) {
        const s = net.connect(b, '::1');
        await new Promise((ok) => s.once('connect', ok));
        clients.push(s);
      }
      const second = await c.scan(signal());
      expect(queueSeries(second, '::1', b)).toEqual({ queue: 0, limit: 511, connections: 3 });
      await new Promise<void>((ok) => servers[servers.length - 2].close(() => ok()));
      const n = await listen('127.0.0.1');
      const third = await c.scan(signal());
      expect(fact(third, 'portprobe_listener_up', { port: String(a) })?.value).toBe(0);
      const ls = details(third).listeners;
      expect(ls.some((l) => l.port === a)).toBe(false);
      expect(ls.find((l) => l.port === b)?.owner?.pid).toBe(process.pid);
      expect(ls.some((l) => l.port === n)).toBe(true);
      // The new socket may sit on the descriptor number of the closed one, which the quick walk
      // trusts: then its owner comes from the full walk of the next scan.
      const fourth = await c.scan(signal());
      expect(details(fourth).listeners.find((l) => l.port === n)?.owner?.pid).toBe(process.pid);
    } finally {
      c.close();
    }
  });
});

describe('deadlines and closing', () => {
  it('a scan aborted at its deadline fails with a clear error, and the next scan succeeds', async () => {
    const c = collector('netlink');
    const ac = new AbortController();
    const pending = c.scan(ac.signal);
    ac.abort();
    const r = await pending;
    expect(r.success).toBe(false);
    expect(r.error).toBe(
      'socket scan via netlink failed: socket scan aborted at its deadline (netlink dump still running)',
    );
    const again = await c.scan(signal());
    expect(again.success).toBe(true);
    c.close();
    const closed = await c.scan(signal());
    expect([closed.success, closed.error]).toEqual([false, 'the sockets collector was closed']);
  });
});

describe('a network namespace with its own sockets', () => {
  const ns = `portprobe-nl-${process.pid}`;
  let stuck: Stuck | undefined;
  let bound: ChildProcess | undefined;
  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  });
  afterAll(async () => {
    await stuck?.stop();
    if (bound?.exitCode === null) {
      bound.stdin?.end();
      await new Promise((ok) => bound?.once('exit', ok));
    }
    execFileSync('ip', ['netns', 'del', ns]);
  });

  it("sees the namespace's listener, queue and TIME_WAIT count, and none of the host's", async () => {
    stuck = await Stuck.start('127.0.0.1', 16, 3, ['ip', 'netns', 'exec', ns]);
    // A TCP socket bound and nothing else, held until its stdin closes: since Linux 6.5 a dump
    // that asks for state 13 (TCP_BOUND_INACTIVE) makes the kernel walk its whole bind hash and
    // report it, as state 7 (close). /proc/net/tcp does not show it; neither may the scan.
    bound = spawn(
      'ip',
      [
        ...['netns', 'exec', ns, 'python3', '-c'],
        "import socket,sys\ns=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1], flush=True); sys.stdin.read()",
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const boundPort = await new Promise<number>((ok) =>
      bound?.stdout?.once('data', (d: Buffer) => ok(Number(d.toString()))),
    );
    expect(boundPort).toBeGreaterThan(0);
    expect(await untilSsQueue(stuck.port, 3, ns)).toEqual({ recvQ: 3, sendQ: 16 });
    // Two TIME_WAIT sockets inside the namespace: a client that closes first, twice.
    execFileSync('ip', [
      'netns',
      'exec',
      ns,
      'python3',
      '-c',
      [
        'import socket',
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(8); p = s.getsockname()[1]",
        'for _ in range(2):',
        "    c = socket.socket(); c.connect(('127.0.0.1', p)); a, _x = s.accept(); c.close(); a.recv(1); a.close()",
      ].join('\n'),
    ]);
    const script = `
      const { socketsCollector } = require(${JSON.stringify(path.join(REPO, 'exporters/sockets'))});
      const { SOCKETS_DEFAULTS } = require(${JSON.stringify(path.join(REPO, 'exporters/sockets/settings'))});
      const quiet = { debug() {}, info() {}, warn() {}, error() {} };
      const c = socketsCollector.create({ ...SOCKETS_DEFAULTS, source: 'netlink', expect: [{ port: ${stuck.port} }], max_unexpected_series: 1000 }, quiet);
      const { loadSockDiag } = require(${JSON.stringify(path.join(REPO, 'exporters/sockets/netlink'))});
      const { parseSockDiag } = require(${JSON.stringify(path.join(REPO, 'exporters/sockets/sockdiag'))});
      const boundOnly = parseSockDiag(loadSockDiag().dump(4, 6, 1 << 13, 0), 'tcp').states[7];
      c.scan(new AbortController().signal).then((r) => {
        c.close();
        process.stdout.write(JSON.stringify({ facts: r.facts, listeners: r.details.listeners, timeWaitFrom: r.details.timeWaitFrom, boundOnly }));
      });`;
    const out = execFileSync(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--require', 'ts-node/register/transpile-only', '-e', script],
      {
        cwd: REPO,
        encoding: 'utf8',
      },
    );
    const r = JSON.parse(out) as {
      facts: Fact[];
      listeners: Array<{ protocol: string; address: string; port: number }>;
      timeWaitFrom: string;
      boundOnly: number;
    };
    const asResult = { success: true, durationSeconds: 0, facts: r.facts } as CollectorResult;
    expect(queueSeries(asResult, '127.0.0.1', stuck.port)).toEqual({ queue: 3, limit: 16, connections: 3 });
    expect(r.listeners.map((l) => `${l.protocol} ${l.address} ${l.port}`)).toEqual([`tcp 127.0.0.1 ${stuck.port}`]);
    expect(r.timeWaitFrom).toBe('sockstat');
    expect(fact(asResult, 'portprobe_tcp_connection_states', { state: 'time_wait' })?.value).toBe(2);
    expect(fact(asResult, 'portprobe_tcp_connection_states', { state: 'established' })?.value).toBe(6);
    expect(r.boundOnly).toBe(1);
    expect(fact(asResult, 'portprobe_tcp_connection_states', { state: 'close' })?.value).toBe(0);
  }, 60_000);
});

describe('a scan whose listener records are those of the last one', () => {
  const ns = `portprobe-kept-${process.pid}`;
  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  });
  afterAll(() => execFileSync('ip', ['netns', 'del', ns]));

  it('keeps the listeners and their evaluation, makes the state counts again, and notices any change', () => {
    // In a namespace of its own, so that no other socket changes between the scans.
    const req = (m: string): string => JSON.stringify(path.join(REPO, 'exporters/sockets', m));
    const script = `
      const net = require('node:net');
      const { loadSockDiag, runNetlinkScan } = require(${req('netlink')});
      const { ListenerReuse } = require(${req('packed')});
      const { EvaluationMemo } = require(${req('evaluate')});
      const { InodeProcessCache } = require(${req('procfs')});
      const { SOCKETS_DEFAULTS } = require(${req('settings')});
      const fresh = () => ({ owners: new InodeProcessCache('/proc'), reuse: new ListenerReuse(), memo: new EvaluationMemo() });
      const until = async (f) => { while (!f()) await new Promise((r) => setTimeout(r, 5)); };
      (async () => {
        const held = [];
        let closed = 0;
        const srv = net.createServer((c) => { held.push(c); c.on('end', () => c.end()); c.on('close', () => closed++); });
        await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
        const port = srv.address().port;
        const s = { ...SOCKETS_DEFAULTS, expect: [{ port }] };
        const { scan } = loadSockDiag();
        const state = fresh();
        const run = async (settings = s, st = state) => {
          const r = await runNetlinkScan(scan, settings, st);
          return { kept: r.listenersKept, facts: r.evaluation.facts, numbers: Array.from(r.listeners.numbers), strings: r.listeners.strings };
        };
        const out = {};
        out.first = await run();
        out.again = await run();
        // A connection that comes and goes, the client closing first: one TIME_WAIT socket more,
        // and the listener as it was.
        const c = net.connect(port, '127.0.0.1');
        await new Promise((ok) => c.once('connect', ok));
        c.end();
        await new Promise((ok) => c.once('close', ok));
        await until(() => closed === 1);
        out.timeWait = await run();
        out.timeWaitFresh = await run(s, fresh());
        // A connection held: the listener's connections change.
        const d = net.connect(port, '127.0.0.1');
        await new Promise((ok) => d.once('connect', ok));
        await until(() => held.length === 2);
        out.held = await run();
        out.heldAgain = await run();
        out.otherSettings = await run({ ...s, max_unexpected_series: 7 });
        d.destroy();
        srv.close();
        for (const h of held) h.destroy();
        process.stdout.write(JSON.stringify(out));
      })();`;
    const out = execFileSync(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--require', 'ts-node/register/transpile-only', '-e', script],
      { cwd: REPO, encoding: 'utf8' },
    );
    type Scan = { kept: boolean; facts: Fact[]; numbers: number[]; strings: string[] };
    const r = JSON.parse(out) as Record<string, Scan>;
    const value = (x: Scan, metric: string, labels: Record<string, string> = {}): number | undefined =>
      fact({ success: true, durationSeconds: 0, facts: x.facts }, metric, labels)?.value;
    const connections = (x: Scan): number | undefined => value(x, 'portprobe_listener_connections');
    const timeWait = (x: Scan): number | undefined =>
      value(x, 'portprobe_tcp_connection_states', { state: 'time_wait' });
    expect(Object.entries(r).map(([k, x]) => [k, x.kept])).toEqual([
      ['first', false],
      ['again', true],
      ['timeWait', true],
      ['timeWaitFresh', false],
      ['held', false],
      ['heldAgain', true],
      ['otherSettings', false],
    ]);
    expect(r.again).toEqual({ ...r.first, kept: true });
    // Kept, the state counts are new: what a scan with nothing kept says.
    expect([timeWait(r.first), timeWait(r.timeWait)]).toEqual([0, 1]);
    expect({ ...r.timeWait, kept: false }).toEqual(r.timeWaitFresh);
    expect([connections(r.timeWait), connections(r.held), connections(r.heldAgain)]).toEqual([0, 1, 1]);
    expect(r.held.numbers).not.toEqual(r.timeWait.numbers);
    expect(r.heldAgain.numbers).toEqual(r.held.numbers);
  }, 60_000);
});
