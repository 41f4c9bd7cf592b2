// What a netlink scan keeps between scans and what crosses threads: listener objects reused by
// socket (and not when a closed socket's inode number names a new one), owners cached by inode
// with the same check, and the listener list packed into numbers and back.
import fs from 'node:fs';
import path from 'node:path';
import { loadSockDiag } from '../../exporters/sockets/netlink';
import { ListenerReuse, packListeners, readPackedTable, unpackListeners } from '../../exporters/sockets/packed';
import { InodeProcessCache } from '../../exporters/sockets/procfs';
import type { Listener } from '../../exporters/sockets/procnet';
import { FixtureProc } from './helpers';
import { reply, type RecordSpec } from './sockdiag-frames';

const { parse } = loadSockDiag();
const table = (records: RecordSpec[]) => readPackedTable(parse(reply(records), 6, 0));
const L = (over: Partial<RecordSpec>): RecordSpec => ({
  family: 4,
  state: 10,
  sport: 8080,
  src: '127.0.0.1',
  rqueue: 0,
  wqueue: 128,
  uid: 0,
  inode: 555,
  ...over,
});

describe('ListenerReuse', () => {
  it('keeps a socket’s object from scan to scan, with its new numbers', () => {
    const reuse = new ListenerReuse();
    const [a] = reuse.listeners([table([L({})])]);
    a.owner = { pid: 7, name: 'app' };
    expect(reuse.made).toBe(1);
    const [b] = reuse.listeners([table([L({ rqueue: 5 }), L({ state: 1, dport: 40000 })])]);
    expect(b).toBe(a);
    expect(reuse.made).toBe(0);
    expect(b).toMatchObject({ acceptQueue: 5, acceptQueueLimit: 128, connections: 1, owner: { pid: 7, name: 'app' } });
  });

  it('gives a new object when the inode names another socket, or the socket left and came back', () => {
    const reuse = new ListenerReuse();
    const [a] = reuse.listeners([table([L({})])]);
    // Closed; the kernel gave its inode number to a socket on another port, or address, or family.
    for (const other of [L({ sport: 9090 }), L({ src: '127.0.0.2' }), L({ family: 6, src: '::1' })]) {
      const [b] = reuse.listeners([table([other])]);
      expect(b).not.toBe(a);
      expect(b.owner).toBeNull();
      expect(reuse.made).toBe(1);
    }
    const first = reuse.listeners([table([L({}), L({ sport: 1, inode: 1 })])]);
    reuse.listeners([table([L({ sport: 1, inode: 1 })])]);
    const back = reuse.listeners([table([L({}), L({ sport: 1, inode: 1 })])]);
    expect(back[0]).not.toBe(first[0]);
    expect(back[1]).toBe(first[1]);
  });

  it('a UDP socket has no queue numbers; two records with one inode get two objects', () => {
    const reuse = new ListenerReuse();
    const udp = readPackedTable(parse(reply([L({ state: 7, sport: 53 })]), 17, 4));
    const [u] = reuse.listeners([udp]);
    expect(u).toEqual({ protocol: 'udp', family: 4, address: '127.0.0.1', port: 53, inode: 555, uid: 0, owner: null });
    const twins = reuse.listeners([table([L({}), L({ sport: 9 })])]);
    expect(twins.map((l) => l.port)).toEqual([8080, 9]);
    expect(twins[0]).not.toBe(twins[1]);
  });
});

describe('packed tables', () => {
  it('a table of another layout is refused', () => {
    expect(() => readPackedTable(new ArrayBuffer(10))).toThrow('packed socket table of 10 bytes');
    const ab = parse(reply([L({})]), 6, 0);
    expect(() => readPackedTable(ab.slice(0, ab.byteLength - 1))).toThrow(/another layout/);
    new Uint32Array(ab)[0] = 1;
    expect(() => readPackedTable(ab)).toThrow(/another layout/);
  });

  it('a listener list packs to numbers and a string table, and back to the same objects', () => {
    const listeners: Listener[] = [
      {
        protocol: 'tcp',
        family: 4,
        address: '0.0.0.0',
        port: 1433,
        inode: 4294967295,
        uid: 4294967294,
        owner: { pid: 900, name: 'sqlservr' },
        acceptQueue: 0,
        acceptQueueLimit: 4096,
        connections: 12,
      },
      { protocol: 'tcp', family: 6, address: '::1', port: 22, inode: 3, uid: -1, owner: null, acceptQueue: 2 },
      { protocol: 'udp', family: 6, address: '::1', port: 53, inode: 4, uid: 0, owner: { pid: 1, name: '' } },
    ];
    const p = packListeners(listeners);
    expect(p.strings).toEqual(['0.0.0.0', 'sqlservr', '::1', '']);
    expect(p.numbers).toHaveLength(33);
    expect(unpackListeners(p)).toEqual(listeners);
    expect(unpackListeners(packListeners([]))).toEqual([]);
  });
});

describe('InodeProcessCache.assign', () => {
  let proc: FixtureProc;
  afterEach(() => proc?.dispose());

  const listener = (port: number, inode: number): Listener => ({
    protocol: 'tcp',
    family: 4,
    address: '127.0.0.1',
    port,
    inode,
    uid: -1,
    owner: null,
  });

  it('walks only for new sockets, and again for an inode that now names another socket', async () => {
    proc = new FixtureProc({}, [
      { pid: 100, comm: 'old', inodes: [555] },
      { pid: 200, comm: 'other', inodes: [777] },
    ]);
    const cache = new InodeProcessCache(proc.root);
    const signal = new AbortController().signal;
    const a = [listener(8080, 555), listener(9000, 777)];
    await cache.assign(a, signal);
    expect(a.map((l) => l.owner)).toEqual([
      { pid: 100, name: 'old' },
      { pid: 200, name: 'other' },
    ]);
    expect(cache.stats.walks).toBe(1);
    // Nothing new: no walk.
    const b = [listener(8080, 555), listener(9000, 777)];
    await cache.assign(b, signal);
    expect([cache.stats.walks, b[0].owner]).toEqual([1, { pid: 100, name: 'old' }]);
    // The socket of "old" closes; process 300 opens one on another port that gets inode 555.
    fs.unlinkSync(path.join(proc.root, '100', 'fd', '3'));
    proc.addProcess({ pid: 300, comm: 'new', inodes: [555] });
    const c = [listener(9090, 555), listener(9000, 777)];
    await cache.assign(c, signal);
    expect(c.map((l) => l.owner)).toEqual([
      { pid: 300, name: 'new' },
      { pid: 200, name: 'other' },
    ]);
    expect([cache.stats.walks, cache.stats.fullWalks]).toEqual([2, 1]);
    expect(cache.size).toBe(2);
    // A socket that is gone leaves the cache.
    await cache.assign([listener(9000, 777)], signal);
    expect(cache.size).toBe(1);
  });

  it('an owner the walk cannot find is remembered as unknown, one the quick walk missed is looked for again', async () => {
    proc = new FixtureProc({}, [{ pid: 100, comm: 'app', inodes: [1] }]);
    const cache = new InodeProcessCache(proc.root);
    const signal = new AbortController().signal;
    await cache.assign([listener(1, 1)], signal);
    // Inode 2 appears on a descriptor number already read (the quick walk trusts it): deferred.
    fs.unlinkSync(path.join(proc.root, '100', 'fd', '3'));
    fs.symlinkSync('socket:[2]', path.join(proc.root, '100', 'fd', '3'));
    const next = [listener(2, 2)];
    await cache.assign(next, signal);
    expect([next[0].owner, cache.stats.deferred]).toEqual([null, 1]);
    const again = [listener(2, 2)];
    await cache.assign(again, signal);
    expect([again[0].owner, cache.stats.deferred, cache.stats.fullWalks]).toEqual([{ pid: 100, name: 'app' }, 0, 1]);
    // Nowhere to be found, even reading every descriptor (a quick walk, then a full one):
    // unknown, and not looked for again.
    const lost = [listener(3, 3)];
    await cache.assign(lost, signal);
    await cache.assign([listener(3, 3)], signal);
    expect([lost[0].owner, cache.stats.walks, cache.stats.fullWalks]).toEqual([null, 5, 2]);
    await cache.assign([listener(3, 3)], signal);
    expect(cache.stats.walks).toBe(5);
  });
});
