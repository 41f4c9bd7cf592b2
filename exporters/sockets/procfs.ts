// Linux fast path: the socket tables from <procfs>/net/*, streamed through the pure parser,
// and the inode -> process map from <procfs>/<pid>/fd, walked only for inodes not seen before.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProcNetParser, type Listener, type ProcNetTally, type ProcessInfo } from './procnet';
import { attributeConnections } from './connections';
import { listenQueueCounters, type ListenQueueCounters } from './netstat';
import type { SocketProtocol } from './settings';

export type { ProcessInfo } from './procnet';

const READ_CHUNK = 64 * 1024;
/** Bytes of a table read between two turns of the event loop (a few milliseconds of kernel work). */
const TURN_BYTES = 128 * 1024;
/** Filesystem calls of the fd walk between two turns of the event loop. */
const YIELD_EVERY = 256;
/** /proc/net/netstat is a few kilobytes; anything far larger is not it. */
const NETSTAT_CAP = 1024 * 1024;

/** Thrown for a table that cannot be read; the collector turns it into the result's error. */
export class SocketSourceError extends Error {}

/**
 * Streams one table through the parser. A missing tcp6/udp6 (IPv6 disabled
 * in the kernel) yields an empty tally; any other failure throws SocketSourceError naming the
 * file.
 *
 * The reads are synchronous with a turn of the event loop between chunks. Measured with 15,000
 * sockets, reading procfs through the libuv thread pool took 1.5 to 1.9 times as long as the
 * same reads on the main thread (see BENCHMARKS.md), while 128 KiB of reads between two
 * turns of the loop hold it for a few milliseconds.
 */
export async function readProcNetTable(
  file: string,
  protocol: SocketProtocol,
  family: 4 | 6,
  signal: AbortSignal,
  buffer: Buffer = Buffer.allocUnsafe(READ_CHUNK),
): Promise<ProcNetTally> {
  const parser = new ProcNetParser(protocol, family, os.endianness() === 'LE');
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    // The kernel's seq_file hands out about a page per read(), whatever the buffer size, so
    // turns of the loop are counted in bytes, not calls.
    let sinceTurn = 0;
    for (;;) {
      if (signal.aborted) throw new SocketSourceError(`scan aborted while reading ${file}`);
      const bytesRead = fs.readSync(fd, buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      parser.push(buffer.toString('latin1', 0, bytesRead));
      sinceTurn += bytesRead;
      if (sinceTurn >= TURN_BYTES) {
        sinceTurn = 0;
        await new Promise((r) => setImmediate(r));
      }
    }
  } catch (err) {
    if (err instanceof SocketSourceError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && family === 6) return parser.end();
    throw new SocketSourceError(
      `cannot read ${file}: ${code ?? String(err)}; check the procfs setting and that the agent can read it`,
    );
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  return parser.end();
}

/** The listen-queue counters from <procfs>/net/netstat, undefined when absent. */
export async function readListenQueueCounters(procfs: string): Promise<ListenQueueCounters | undefined> {
  try {
    const text = fs.readFileSync(path.join(procfs, 'net', 'netstat'), 'latin1');
    return text.length > NETSTAT_CAP ? undefined : listenQueueCounters(text);
  } catch {
    return undefined;
  }
}

export interface WalkStats {
  /** Walks of <procfs>/<pid>/fd since the cache was created (quick and full). */
  walks: number;
  /** Of those, full walks: every descriptor read again. */
  fullWalks: number;
  /** Processes whose fd directory could not be read in the last walk (permissions). */
  unreadable: number;
  /** New sockets the last quick walk did not find; a full walk looks for them next scan. */
  deferred: number;
}

/**
 * Socket inode -> owning process. Inodes are unique while a socket lives, so a hit never goes
 * stale; entries for sockets that are gone are dropped after each scan. A socket closed between
 * two scans whose inode number a new socket took is told apart by its protocol, family, address
 * and port: the new socket is looked up again. (A new socket with the same inode, protocol,
 * address and port as the old one cannot be told apart without a walk.)
 *
 * A new inode starts a quick walk: every process's fd directory is listed, but only descriptors
 * not seen in an earlier walk are read (readlink), which finds sockets of new processes and new
 * descriptors. A socket the quick walk misses (a descriptor number reused since the last walk,
 * or a socket already closed again) is looked for by a full walk in the next scan, and only if
 * it still exists then; so the short-lived sockets of other processes never cost a read of
 * every descriptor on the host. An inode a full walk cannot attribute (another user's process,
 * the agent not root) is remembered as unknown.
 *
 * A scan where no socket is new costs one map lookup per socket and allocates nothing.
 */
export class InodeProcessCache {
  private known = new Map<number, Owned>();
  /** Per process, descriptor name -> socket inode (0: not a socket), as of the last walk. */
  private fdLinks = new Map<number, Map<string, number>>();
  private deferred = new Set<number>();
  private scanNo = 0;
  readonly stats: WalkStats = { walks: 0, fullWalks: 0, unreadable: 0, deferred: 0 };

  constructor(private readonly procfs: string) {}

  /**
   * Sets each listener's owner (null: unknown); walks the fd directories only if some socket is
   * new. A socket's `uid` (-1 unknown) puts processes of that user first, newest first, since a
   * new socket most likely belongs to a young process.
   */
  async assign(listeners: readonly Listener[], signal: AbortSignal): Promise<void> {
    const scan = ++this.scanNo;
    let marked = 0;
    const missing = new Set<number>();
    const uids = new Set<number>();
    const pending: Listener[] = [];
    let full = false;
    for (const l of listeners) {
      let e = this.known.get(l.inode);
      if (e !== undefined && e.seen !== scan && !sameSocket(e, l)) {
        // The inode now names another socket: a descriptor read in an earlier walk may name the
        // old one, so read every descriptor again.
        this.known.delete(l.inode);
        e = undefined;
        full = true;
      }
      if (e !== undefined) {
        if (e.seen !== scan) {
          e.seen = scan;
          marked++;
        }
        l.owner = e.owner;
        continue;
      }
      l.owner = null;
      pending.push(l);
      if (missing.has(l.inode)) continue;
      missing.add(l.inode);
      if (l.uid >= 0) uids.add(l.uid);
      if (this.deferred.has(l.inode)) full = true;
    }
    if (missing.size > 0 || this.deferred.size > 0) this.deferred = new Set();
    if (missing.size > 0) {
      // A walk that read every descriptor is as good as a full one.
      const found = new Map<number, ProcessInfo>();
      const trusted = await this.walk(missing, found, uids, full, signal);
      if (!signal.aborted) for (const i of missing) if (trusted) this.deferred.add(i);
      for (const l of pending) {
        let e = this.known.get(l.inode);
        if (e === undefined || e.seen !== scan) {
          const owner = found.get(l.inode);
          if (owner === undefined && (signal.aborted || trusted || !missing.has(l.inode))) continue;
          e = {
            owner: owner ?? null,
            protocol: l.protocol,
            family: l.family,
            address: l.address,
            port: l.port,
            seen: scan,
          };
          this.known.set(l.inode, e);
          marked++;
        }
        l.owner = e.owner;
      }
    }
    this.stats.deferred = this.deferred.size;
    if (this.known.size > marked) for (const [inode, e] of this.known) if (e.seen !== scan) this.known.delete(inode);
  }

  get size(): number {
    return this.known.size;
  }

  /** Numeric entries of the procfs root: processes of `uids` first, then the rest; newest first. */
  private processOrder(uids: ReadonlySet<number>): number[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.procfs);
    } catch {
      return [];
    }
    const likely: number[] = [];
    const rest: number[] = [];
    for (const n of names) {
      const c = n.charCodeAt(0);
      if (c < 48 || c > 57 || !/^[0-9]+$/.test(n)) continue;
      let owner = -1;
      if (uids.size > 0) {
        try {
          owner = fs.statSync(path.join(this.procfs, n)).uid;
        } catch {
          continue; // exited
        }
      }
      (uids.has(owner) ? likely : rest).push(Number(n));
    }
    const newestFirst = (a: number, b: number): number => b - a;
    return [...likely.sort(newestFirst), ...rest.sort(newestFirst)];
  }

  /**
   * Moves the inodes it finds from `missing` to `found`. Unless `full`, trusts descriptors read in an earlier
   * walk; returns whether it did for any.
   */
  private async walk(
    missing: Set<number>,
    found: Map<number, ProcessInfo>,
    uids: ReadonlySet<number>,
    full: boolean,
    signal: AbortSignal,
  ): Promise<boolean> {
    let trusted = false;
    this.stats.walks++;
    if (full) this.stats.fullWalks++;
    this.stats.unreadable = 0;
    const pids = this.processOrder(uids);
    const alive = new Set(pids);
    for (const pid of this.fdLinks.keys()) if (!alive.has(pid)) this.fdLinks.delete(pid);
    // Sync calls are much cheaper than the thread pool for thousands of tiny readlinks; a turn
    // of the event loop every YIELD_EVERY calls keeps a large walk from holding it for long.
    let calls = 0;
    const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
    for (const pid of pids) {
      if (missing.size === 0 || signal.aborted) break;
      if (++calls % YIELD_EVERY === 0) await turn();
      const fdDir = path.join(this.procfs, String(pid), 'fd');
      // opendir reads the directory in batches, so a process with 100,000 descriptors is
      // walked with the same loop turns as many small ones.
      let dir: fs.Dir;
      try {
        dir = fs.opendirSync(fdDir, { bufferSize: 128 });
      } catch {
        this.stats.unreadable++;
        continue;
      }
      const before = full ? undefined : this.fdLinks.get(pid);
      const links = new Map<string, number>();
      this.fdLinks.set(pid, links);
      let name: string | undefined;
      try {
        for (;;) {
          if (missing.size === 0 || signal.aborted) break;
          const entry = dir.readSync();
          if (entry === null) break;
          let inode = before?.get(entry.name);
          if (inode !== undefined) trusted = true;
          else {
            if (++calls % YIELD_EVERY === 0) await turn();
            inode = socketInode(`${fdDir}/${entry.name}`);
          }
          links.set(entry.name, inode);
          if (inode === 0 || !missing.has(inode)) continue;
          name ??= readComm(this.procfs, pid);
          found.set(inode, { pid, name });
          missing.delete(inode);
        }
      } catch {
        this.stats.unreadable++; // the process exited during the walk
      } finally {
        dir.closeSync();
      }
    }
    return trusted;
  }
}

/** A cache entry: the owner, and the socket it was found for. */
interface Owned {
  owner: ProcessInfo | null;
  protocol: Listener['protocol'];
  family: 4 | 6;
  address: string;
  port: number;
  /** The scan that last saw the socket. */
  seen: number;
}

function sameSocket(e: Owned, l: Listener): boolean {
  return e.port === l.port && e.protocol === l.protocol && e.family === l.family && e.address === l.address;
}

/** The inode of a "socket:[N]" descriptor link, 0 for anything else or an unreadable link. */
function socketInode(fdPath: string): number {
  try {
    const link = fs.readlinkSync(fdPath);
    return link.startsWith('socket:[') ? Number(link.slice(8, -1)) : 0;
  } catch {
    return 0;
  }
}

function readComm(procfs: string, pid: number): string {
  try {
    return fs.readFileSync(path.join(procfs, String(pid), 'comm'), 'utf8').replace(/\n$/, '');
  } catch {
    return '';
  }
}

export interface ProcfsTables {
  listeners: Listener[];
  /** TCP sockets per state code, v4 and v6 together. */
  tcpStates: number[];
  listenQueue?: ListenQueueCounters;
  badLines: number;
  badExamples: string[];
  truncatedTables: string[];
}

/** Reads every table the settings ask for, one after the other. */
export async function readProcfsTables(procfs: string, ipv6: boolean, signal: AbortSignal): Promise<ProcfsTables> {
  const tables: Array<[string, SocketProtocol, 4 | 6]> = [
    ['tcp', 'tcp', 4],
    ['udp', 'udp', 4],
  ];
  if (ipv6) tables.push(['tcp6', 'tcp', 6], ['udp6', 'udp', 6]);
  const buffer = Buffer.allocUnsafe(READ_CHUNK);
  const tallies: ProcNetTally[] = [];
  for (const [f, p, fam] of tables)
    tallies.push(await readProcNetTable(path.join(procfs, 'net', f), p, fam, signal, buffer));
  const listenQueue = await readListenQueueCounters(procfs);
  const out: ProcfsTables = {
    listeners: [],
    tcpStates: new Array<number>(16).fill(0),
    listenQueue,
    badLines: 0,
    badExamples: [],
    truncatedTables: [],
  };
  tallies.forEach((t, i) => {
    for (const l of t.listeners) out.listeners.push(l);
    if (t.protocol === 'tcp') for (let s = 0; s < 16; s++) out.tcpStates[s] += t.states[s];
    out.badLines += t.badLines;
    for (const e of t.badExamples) if (out.badExamples.length < 3) out.badExamples.push(`${tables[i][0]}: ${e}`);
    if (t.truncatedLastLine) out.truncatedTables.push(tables[i][0]);
  });
  attributeConnections(
    out.listeners,
    tallies.map((t) => t.established),
  );
  return out;
}
