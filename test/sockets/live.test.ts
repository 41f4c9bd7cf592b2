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
  socketsCollector.create(
    { ...SOCKETS_DEFAULTS, source: 'procfs', max_unexpected_series: 100000, ...over },
    silentLogger,
  );

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
    expect(info?.labels).toEqual({
      protocol: s.protocol,
      address: s.address,
      port: String(s.port),
      port_class: portClass(s.port),
      process: 'node',
    });
  }
});

/** ss before and after one scan: what ss saw both times must be found, and nothing ss never saw. */
async function compareWithSs(): Promise<{ problems: string[]; stable: string[]; scanned: string[] }> {
  const before = ssListeners();
  const r = await procfsCollector().scan(signal());
  const after = ssListeners();
  const scanned = details(r).listeners.map(key);
  const stable = before.filter((k) => after.includes(k));
  const seenBySs = [...before, ...after];
  const problems: string[] = [];
  for (const s of stable)
    if (!scanned.some((k) => matchesSs(s, k))) problems.push(`ss saw ${s} throughout, the scan did not`);
  for (const k of scanned) if (!seenBySs.some((s) => matchesSs(s, k))) problems.push(`the scan saw ${k}, ss did not`);
  return { problems, stable, scanned };
}

/** ss prints "*" for a wildcard address in some versions. */
function matchesSs(ssKey: string, k: string): boolean {
  const [p, a, port] = ssKey.split(' ');
  if (a === '*') return k === `${p} 0.0.0.0 ${port}` || k === `${p} :: ${port}`;
  return k === ssKey;
}

test('the listener set equals what ss -ltnuH reports', async () => {
  // Other processes may open or close sockets meanwhile; a disagreement must persist over
  // three attempts to count.
  let last = await compareWithSs();
  for (let attempt = 1; attempt < 3 && last.problems.length > 0; attempt++) last = await compareWithSs();
  expect(last.problems).toEqual([]);
  expect(last.scanned.length).toBeGreaterThanOrEqual(holder.sockets.length);
  for (const s of holder.sockets) expect(last.stable.some((k) => matchesSs(k, key(s)))).toBe(true);
});

/**
 * One comparison of systeminformation with procfs scans taken just before and after it.
 * Returns the disagreements; sockets that came and went between the scans cannot be judged.
 */
async function compareWithSystemInformation(): Promise<{
  problems: string[];
  tcpStable: number;
  si: Awaited<ReturnType<typeof readSiTables>>;
}> {
  const procBefore = details(await procfsCollector().scan(signal()));
  const si = await readSiTables();
  const procAfter = details(await procfsCollector().scan(signal()));
  const procSeen = new Map([...procBefore.listeners, ...procAfter.listeners].map((l) => [key(l), l]));
  const afterKeys = new Set(procAfter.listeners.map(key));
  const procStable = procBefore.listeners.map(key).filter((k) => afterKeys.has(k));
  const siKeys = new Set(si.listeners.map(key));
  const problems: string[] = [];
  // systeminformation reports TCP listeners on Linux (its netstat/ss filter drops unconnected UDP).
  const tcpStable = procStable.filter((k) => k.startsWith('tcp '));
  for (const k of tcpStable) if (!siKeys.has(k)) problems.push(`procfs saw ${k} throughout, systeminformation did not`);
  for (const l of si.listeners) {
    const p = procSeen.get(key(l));
    if (p === undefined) problems.push(`systeminformation saw ${key(l)}, procfs did not`);
    else if (p.owner?.name && l.owner?.name && p.owner.name !== l.owner.name) {
      problems.push(`${key(l)}: process ${l.owner.name} (systeminformation) vs ${p.owner.name} (procfs)`);
    }
  }
  return { problems, tcpStable: tcpStable.length, si };
}

test('systeminformation and procfs agree on the sockets both see', async () => {
  // Other processes on a busy machine open short-lived listeners; a disagreement must
  // persist over three attempts to count.
  let last = await compareWithSystemInformation();
  for (let attempt = 1; attempt < 3 && last.problems.length > 0; attempt++) last = await compareWithSystemInformation();
  expect(last.problems).toEqual([]);
  expect(last.tcpStable).toBeGreaterThan(0);
  // The holder's TCP sockets, in particular, with the same process.
  for (const s of holder.sockets.filter((h) => h.protocol === 'tcp')) {
    const l = last.si.listeners.find((x) => key(x) === key(s));
    expect(l?.owner).toEqual({ pid: holder.pid, name: 'node' });
  }
});

test('the systeminformation source as a whole: a successful scan with the same expectations', async () => {
  const tcp = holder.sockets[0];
  const r = await socketsCollector
    .create(
      {
        ...SOCKETS_DEFAULTS,
        source: 'systeminformation',
        expect: [{ port: tcp.port, protocol: 'tcp', address: tcp.address, process: 'node' }],
      },
      silentLogger,
    )
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
    const up = (r: CollectorResult): number[] =>
      r.facts.filter((f) => f.metric === 'portprobe_listener_up').map((f) => f.value);
    const first = await c.scan(signal());
    expect(up(first)).toEqual([1, 1, 0]);
    expect(details(first).expectations[2].note).toBe(`a listener exists but belongs to "node" (pid ${extra.pid})`);
    // expected sockets are not unexpected
    expect(
      first.facts.some((f) => f.metric === 'portprobe_unexpected_listener_info' && f.labels?.port === String(tcp.port)),
    ).toBe(false);
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
