// The collector against fixture procfs trees: owners from the fd walk, the inode cache, and
// every way the tables can be bad, none of which may throw.
import fs from 'node:fs';
import path from 'node:path';
import { socketsCollector, type ScanDetails } from '../../exporters/sockets';
import { SOCKETS_DEFAULTS, type SocketsSettings } from '../../exporters/sockets/settings';
import type { CollectorResult } from '../../exporters/types';
import { silentLogger, recordingLogger } from '../helpers/context';
import { FIXTURES, FixtureProc } from './helpers';

const signal = (): AbortSignal => new AbortController().signal;
const details = (r: CollectorResult): ScanDetails => r.details as unknown as ScanDetails;
const fact = (r: CollectorResult, metric: string, labels: Record<string, string> = {}): number | undefined =>
  r.facts.find((f) => f.metric === metric && Object.entries(labels).every(([k, v]) => f.labels?.[k] === v))?.value;

const ALL_TABLES = {
  tcp: 'tcp-v4.txt',
  tcp6: 'tcp6.txt',
  udp: 'udp.txt',
  udp6: 'udp6.txt',
  netstat: 'netstat.txt',
} as const;
const PROCS = [
  { pid: 1, comm: 'systemd', inodes: [] },
  { pid: 210, comm: 'sshd', inodes: [1002, 2004] },
  { pid: 330, comm: 'mysqld', inodes: [1001, 1004] },
  { pid: 331, comm: 'mysqld', inodes: [1001] }, // a forked worker sharing the listener
  { pid: 400, comm: 'nginx', inodes: [2001] },
  { pid: 500, comm: 'systemd-resolve', inodes: [4002] },
  { pid: 600, comm: 'hidden' }, // fd directory unreadable
];

let tree: FixtureProc;
afterEach(() => tree?.dispose());

function collector(over: Partial<SocketsSettings> = {}, logger = silentLogger) {
  return socketsCollector.create({ ...SOCKETS_DEFAULTS, procfs: tree.root, source: 'procfs', ...over }, logger);
}

test('owners from the fd walk, newest process first, unknown when no process holds the inode', async () => {
  tree = new FixtureProc(ALL_TABLES, PROCS);
  const r = await collector({
    expect: [{ port: 3306, protocol: 'tcp', address: '127.0.0.1', process: 'mysqld' }],
  }).scan(signal());
  expect(r.success).toBe(true);
  const byPort = new Map(details(r).listeners.map((l) => [`${l.protocol} ${l.address} ${l.port}`, l]));
  expect(byPort.get('tcp 127.0.0.1 3306')?.owner).toEqual({ pid: 331, name: 'mysqld' }); // the forked worker
  expect(byPort.get('tcp 0.0.0.0 22')?.owner).toEqual({ pid: 210, name: 'sshd' });
  expect(byPort.get('tcp 2001:db8::5 22')?.owner).toEqual({ pid: 210, name: 'sshd' });
  expect(byPort.get('udp 127.0.0.53 53')?.owner).toEqual({ pid: 500, name: 'systemd-resolve' });
  expect(byPort.get('tcp 10.0.0.10 50001')?.owner).toBeNull();
  expect(details(r).listeners).toHaveLength(3 + 4 + 3 + 2);
  expect(fact(r, 'portprobe_listener_up', { port: '3306' })).toBe(1);
  expect(fact(r, 'portprobe_listening_sockets', { protocol: 'tcp', port_class: 'well_known' })).toBe(4); // 22, 80, 443, 22
  expect(fact(r, 'portprobe_listening_sockets', { protocol: 'udp', port_class: 'dynamic' })).toBe(1);
  expect(fact(r, 'portprobe_unexpected_listener_info', { port: '50001', port_class: 'dynamic', process: '' })).toBe(1);
  expect(fact(r, 'portprobe_tcp_connection_states', { state: 'established' })).toBe(3);
  expect(fact(r, 'portprobe_tcp_connection_states', { state: 'listen' })).toBe(7);
  expect(fact(r, 'portprobe_tcp_listen_overflows_total')).toBe(17);
  expect(fact(r, 'portprobe_tcp_listen_drops_total')).toBe(23);
  expect(fact(r, 'portprobe_socket_scan_success')).toBe(1);
  expect(fact(r, 'portprobe_socket_scan_duration_seconds')).toBeGreaterThan(0);
});

test("processes running as the socket's user are searched first", async () => {
  tree = new FixtureProc(ALL_TABLES, PROCS);
  // The listener on 3306 belongs to uid 106 in the table; pid 330 runs as that user, its newer
  // sibling 331 (which shares the socket) as a user no socket belongs to.
  fs.chownSync(path.join(tree.root, '330'), 106, 106);
  fs.chownSync(path.join(tree.root, '331'), 2000, 2000);
  const r = await collector().scan(signal());
  const l = details(r).listeners.find((x) => x.port === 3306);
  expect(l?.owner).toEqual({ pid: 330, name: 'mysqld' });
});

test('the fd walk runs only when a new inode appears; gone sockets leave the cache', async () => {
  tree = new FixtureProc(ALL_TABLES, PROCS);
  const c = collector();
  const first = details(await c.scan(signal()));
  expect(first.processWalks).toBe(1);
  expect(first.processCacheSize).toBe(12);
  expect(first.unreadableProcesses).toBe(1); // pid 600 has no readable fd directory
  // Nothing new (including the inodes nobody owns): no walk.
  expect(details(await c.scan(signal())).processWalks).toBe(1);
  expect(details(await c.scan(signal())).processWalks).toBe(1);

  // A new listener owned by a new process: one walk, and its owner is found.
  tree.appendTable(
    'tcp',
    '   8: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 9001 1 0000000000000000 100 0 0 10 0\n',
  );
  tree.addProcess({ pid: 700, comm: 'node', inodes: [9001] });
  const third = details(await c.scan(signal()));
  expect(third.processWalks).toBe(2);
  expect(third.listeners.find((l) => l.port === 8000)?.owner).toEqual({ pid: 700, name: 'node' });
  expect(details(await c.scan(signal())).processWalks).toBe(2);

  // A process reuses a descriptor number for a new socket: the quick walk trusts what it read
  // before and misses it; the next scan's full walk finds it.
  fs.unlinkSync(path.join(tree.root, '210', 'fd', '3'));
  fs.symlinkSync('socket:[9100]', path.join(tree.root, '210', 'fd', '3'));
  tree.appendTable(
    'tcp',
    '   9: 00000000:2328 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9100 1 0000000000000000 100 0 0 10 0\n',
  );
  const reuse = details(await c.scan(signal()));
  expect(reuse.processWalks).toBe(3);
  expect(reuse.ownersDeferred).toBe(1);
  expect(reuse.listeners.find((l) => l.port === 9000)?.owner).toBeNull();
  const found = details(await c.scan(signal()));
  expect([found.processWalks, found.processFullWalks, found.ownersDeferred]).toEqual([4, 1, 0]);
  expect(found.listeners.find((l) => l.port === 9000)?.owner).toEqual({ pid: 210, name: 'sshd' });

  // A socket that is gone before anyone finds its process costs one quick walk, never a full one.
  const withShortLived = fs.readFileSync(path.join(tree.root, 'net', 'udp'), 'latin1');
  tree.appendTable(
    'udp',
    ' 2000: 0100007F:9C41 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 9200 2 0000000000000000 0\n',
  );
  expect(details(await c.scan(signal())).ownersDeferred).toBe(1);
  tree.setTable('udp', withShortLived);
  const gone = details(await c.scan(signal()));
  expect([gone.processWalks, gone.processFullWalks, gone.ownersDeferred]).toEqual([5, 1, 0]);

  // The table loses its IPv6 listeners: their inodes leave the cache, no walk needed.
  tree.setTable('tcp6', fs.readFileSync(path.join(FIXTURES, 'empty-tcp.txt'), 'latin1'));
  const last = details(await c.scan(signal()));
  expect(last.processWalks).toBe(5);
  expect(last.processCacheSize).toBe(14 - 4);
});

test('include_process: false never walks and leaves process labels empty', async () => {
  tree = new FixtureProc(ALL_TABLES, PROCS);
  const r = await collector({ include_process: false }).scan(signal());
  expect(details(r).processWalks).toBe(0);
  expect(details(r).listeners.every((l) => l.owner === null)).toBe(true);
  expect(fact(r, 'portprobe_unexpected_listener_info', { port: '22', address: '0.0.0.0', process: '' })).toBe(1);
});

test('ipv6: false reads neither tcp6 nor udp6', async () => {
  tree = new FixtureProc(ALL_TABLES, PROCS);
  const r = await collector({ ipv6: false }).scan(signal());
  expect(details(r).listeners.every((l) => !l.address.includes(':'))).toBe(true);
  expect(details(r).listeners).toHaveLength(6);
});

test('a kernel without IPv6 (no tcp6, udp6) is not an error', async () => {
  tree = new FixtureProc({ tcp: 'tcp-v4.txt', udp: 'udp.txt' }, PROCS);
  const r = await collector().scan(signal());
  expect(r.success).toBe(true);
  expect(details(r).listeners).toHaveLength(6);
  // no netstat file: the counters are left out rather than reported as 0
  expect(fact(r, 'portprobe_tcp_listen_overflows_total')).toBeUndefined();
});

test('garbage lines and a truncated table: the scan succeeds and says what it skipped', async () => {
  tree = new FixtureProc({ tcp: 'garbage.txt', udp: 'udp.txt', tcp6: 'truncated.txt' }, PROCS);
  const logger = recordingLogger();
  const r = await collector({}, logger).scan(signal());
  expect(r.success).toBe(true);
  expect(details(r).badLines).toBe(6 + 2); // truncated.txt holds IPv4 rows: bad as IPv6
  expect(details(r).badExamples[0]).toBe('tcp: this is not a socket line');
  expect(details(r).truncatedTables).toEqual(['tcp6']);
  expect(logger.lines.some((l) => l.startsWith('warn socket table lines could not be parsed'))).toBe(true);
});

test('an unreadable procfs: a failed result naming the file, never a throw', async () => {
  tree = new FixtureProc({});
  const missing = path.join(tree.root, 'nope');
  const r = await socketsCollector
    .create({ ...SOCKETS_DEFAULTS, procfs: missing, source: 'procfs' }, silentLogger)
    .scan(signal());
  expect(r.success).toBe(false);
  expect(r.error).toBe(
    `cannot read ${missing}/net/tcp: ENOENT; check the procfs setting and that the agent can read it`,
  );
  expect(r.facts.map((f) => [f.metric, f.value])).toEqual([
    ['portprobe_socket_scan_success', 0],
    ['portprobe_socket_scan_duration_seconds', expect.any(Number)],
    ['portprobe_socket_scan_source_info', 1],
  ]);
  expect(r.facts.find((f) => f.metric === 'portprobe_socket_scan_source_info')?.labels).toEqual({ source: 'procfs' });

  fs.mkdirSync(path.join(tree.root, 'net', 'tcp'));
  const dir = await collector().scan(signal());
  expect(dir.success).toBe(false);
  expect(dir.error).toMatch(/^cannot read .*\/net\/tcp: EISDIR;/);
});

test('an aborted scan and a closed collector fail cleanly', async () => {
  tree = new FixtureProc(ALL_TABLES, PROCS);
  const ac = new AbortController();
  ac.abort();
  const r = await collector().scan(ac.signal);
  expect(r.success).toBe(false);
  expect(r.error).toMatch(/aborted/);
  const c = collector();
  c.close();
  expect((await c.scan(signal())).error).toBe('the sockets collector was closed');
});

test('the systeminformation source stops waiting at the deadline', async () => {
  const ac = new AbortController();
  const c = socketsCollector.create({ ...SOCKETS_DEFAULTS, source: 'systeminformation' }, silentLogger);
  const pending = c.scan(ac.signal);
  ac.abort();
  const r = await pending;
  expect(r.success).toBe(false);
  expect(r.error).toMatch(/^socket scan aborted at its deadline/);
});
