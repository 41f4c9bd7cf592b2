// The collector on this machine's real /proc: sockets a child process binds on random ports are
// found exactly, with their class and process; the full listener set matches `ss -ltnuH`; the
// systeminformation path agrees with the procfs path; expectations go up and down.
import fs from 'node:fs';
import { socketsCollector, type ScanDetails } from '../../exporters/sockets';
import { readSiTables } from '../../exporters/sockets/sysinfo';
import { portClass } from '../../exporters/sockets/procnet';
import { SOCKETS_DEFAULTS, type SocketsSettings } from '../../exporters/sockets/settings';
import type { CollectorResult } from '../../exporters/types';
import { silentLogger } from '../helpers/context';
import { SocketHolder, ssListeners } from './helpers';

const signal = (): AbortSignal => new AbortController().signal;
const details = (r: CollectorResult): ScanDetails => r.details as unknown as ScanDetails;
const key = (l: { protocol: string; address: string; port: number }): string => `${l.protocol} ${l.address} ${l.port}`;
const procfsCollector = (over: Partial<SocketsSettings> = {}) =>
  socketsCollector.create({ ...SOCKETS_DEFAULTS, source: 'procfs', max_unexpected_series: 100000, ...over }, silentLogger);

let holder: SocketHolder;
beforeAll(async () => {
  holder = await SocketHolder.start([
    { protocol: 'tcp', address: '127.0.0.1' },
    { protocol: 'tcp', address: '::1' },
    { protocol: 'udp', address: '127.0.0.1' },
    { protocol: 'udp', address: '::1' },
    { protocol: 'tcp', address: '0.0.0.0' },
  ]);
});
afterAll(async () => {
  await holder?.stop();
});

test('finds exactly the listeners a process opened, with class and process name', async () => {
  const r = await procfsCollector().scan(signal());
  expect(r.success).toBe(true);
  const mine = details(r)
    .listeners.filter((l) => l.owner?.pid === holder.pid)
    .map(key)
    .sort();
  expect(mine).toEqual(holder.sockets.map(key).sort());
  const comm = fs.readFileSync(`/proc/${holder.pid}/comm`, 'utf8').trim();
  expect(comm).toBe('node');
  for (const s of holder.sockets) {
    const info = r.facts.find(
      (f) =>
        f.metric === 'portprobe_unexpected_listener_info' &&
        f.labels?.port === String(s.port) &&
        f.labels.address === s.address &&
        f.labels.protocol === s.protocol,
    );
    expect(info?.labels).toEqual({ protocol: s.protocol, address: s.address, port: String(s.port), port_class: portClass(s.port), process: 'node' });
  }
});

test('the listener set equals what ss -ltnuH reports', async () => {
  // Other processes may open or close sockets meanwhile: what ss saw both before and after
  // must be in the scan, and the scan may hold nothing ss saw neither before nor after.
  const before = ssListeners();
  const r = await procfsCollector().scan(signal());
  const after = ssListeners();
  const scanned = details(r).listeners.map(key);
  const matchesSs = (ssKey: string, k: string): boolean => {
    const [p, a, port] = ssKey.split(' ');
    if (a === '*') return k === `${p} 0.0.0.0 ${port}` || k === `${p} :: ${port}`;
    return k === ssKey;
  };
  const stable = before.filter((k) => after.includes(k));
  for (const s of stable) expect([s, scanned.some((k) => matchesSs(s, k))]).toEqual([s, true]);
  const seenBySs = [...before, ...after];
  for (const k of scanned) expect([k, seenBySs.some((s) => matchesSs(s, k))]).toEqual([k, true]);
  expect(scanned.length).toBeGreaterThanOrEqual(holder.sockets.length);
  for (const s of holder.sockets) expect(stable.some((k) => matchesSs(k, key(s)))).toBe(true);
});

test('systeminformation and procfs agree on the sockets both see', async () => {
  const procBefore = details(await procfsCollector().scan(signal()));
  const si = await readSiTables();
  const procAfter = details(await procfsCollector().scan(signal()));
  const procSeen = new Map([...procBefore.listeners, ...procAfter.listeners].map((l) => [key(l), l]));
  const procStable = new Set(procBefore.listeners.map(key).filter((k) => procAfter.listeners.some((l) => key(l) === k)));
  const siKeys = new Set(si.listeners.map(key));
  // systeminformation reports TCP listeners on Linux (its netstat/ss filter drops unconnected UDP).
  const tcpStable = [...procStable].filter((k) => k.startsWith('tcp '));
  expect(tcpStable.length).toBeGreaterThan(0);
  for (const k of tcpStable) expect([k, siKeys.has(k)]).toEqual([k, true]);
  for (const l of si.listeners) {
    const p = procSeen.get(key(l));
    expect([key(l), p !== undefined]).toEqual([key(l), true]);
    if (p?.owner?.name && l.owner?.name) expect([key(l), l.owner.name]).toEqual([key(l), p.owner.name]);
  }
  // The holder's TCP sockets, in particular, with the same process.
  for (const s of holder.sockets.filter((h) => h.protocol === 'tcp')) {
    const l = si.listeners.find((x) => key(x) === key(s));
    expect(l?.owner).toEqual({ pid: holder.pid, name: 'node' });
  }
});

test('the systeminformation source as a whole: a successful scan with the same expectations', async () => {
  const tcp = holder.sockets[0];
  const r = await socketsCollector
    .create({ ...SOCKETS_DEFAULTS, source: 'systeminformation', expect: [{ port: tcp.port, protocol: 'tcp', address: tcp.address, process: 'node' }] }, silentLogger)
    .scan(signal());
  expect(r.success).toBe(true);
  expect(details(r).source).toBe('systeminformation');
  expect(r.facts.find((f) => f.metric === 'portprobe_listener_up')?.value).toBe(1);
});

test('expectation up, then down when the listener closes; the fd walk only for new inodes', async () => {
  const extra = await SocketHolder.start([
    { protocol: 'tcp', address: '127.0.0.1' },
    { protocol: 'udp', address: '::1' },
  ]);
  try {
    const [tcp, udp] = extra.sockets;
    const c = procfsCollector({
      expect: [
        { port: tcp.port, protocol: 'tcp', address: '127.0.0.1', process: 'node' },
        { port: udp.port, protocol: 'udp', address: '::1' },
        { port: tcp.port, protocol: 'tcp', process: 'not-node' },
      ],
    });
    const up = (r: CollectorResult): number[] => r.facts.filter((f) => f.metric === 'portprobe_listener_up').map((f) => f.value);
    const first = await c.scan(signal());
    expect(up(first)).toEqual([1, 1, 0]);
    expect(details(first).expectations[2].note).toBe(`a listener exists but belongs to "node" (pid ${extra.pid})`);
    // expected sockets are not unexpected
    expect(first.facts.some((f) => f.metric === 'portprobe_unexpected_listener_info' && f.labels?.port === String(tcp.port))).toBe(false);
    const walks = details(first).processWalks;

    await extra.close(0);
    const second = await c.scan(signal());
    expect(up(second)).toEqual([0, 1, 0]);

    await extra.close(1);
    const third = await c.scan(signal());
    expect(up(third)).toEqual([0, 0, 0]);
    // Closing sockets never needs a walk (unless some other process opened one meanwhile).
    expect(details(third).processWalks - walks).toBeLessThanOrEqual(2);
  } finally {
    await extra.stop();
  }
});
