// Linux fast path: the socket tables from <procfs>/net/*, streamed through the pure parser,
// and the inode -> process map from <procfs>/<pid>/fd, walked only for inodes not seen before.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProcNetParser, type Listener, type ProcNetTally, type ProcessInfo } from './procnet';

export type { ProcessInfo } from './procnet';
import { listenQueueCounters, type ListenQueueCounters } from './netstat';
import type { SocketProtocol } from './settings';

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
    throw new SocketSourceError(`cannot read ${file}: ${code ?? String(err)}; check the procfs setting and that the agent can read it`);
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
  /** Full or partial walks of <procfs>/<pid>/fd since the cache was created. */
  walks: number;
  /** Processes whose fd directory could not be read in the last walk (permissions). */
  unreadable: number;
}

/**
 * Socket inode -> owning process. Inodes are unique while a socket lives, so a hit never goes
 * stale; entries for sockets that are gone are dropped after each scan. An inode that a walk
 * could not attribute (another user's process, not root) is remembered as unknown, so it does
 * not cause a walk on every scan.
 */
export class InodeProcessCache {
  private known = new Map<number, ProcessInfo | null>();
  readonly stats: WalkStats = { walks: 0, unreadable: 0 };

  constructor(private readonly procfs: string) {}

  /**
   * Owners of the sockets; walks the fd directories only if some inode is new. `uid` is the
   * socket's owner from the table (-1 unknown): processes running as that user are searched
   * first, newest first, since a new socket most likely belongs to a young process.
   */
  async lookup(sockets: ReadonlyArray<{ inode: number; uid: number }>, signal: AbortSignal): Promise<Map<number, ProcessInfo | null>> {
    const missing = new Set<number>();
    const uids = new Set<number>();
    for (const s of sockets) {
      if (this.known.has(s.inode)) continue;
      missing.add(s.inode);
      if (s.uid >= 0) uids.add(s.uid);
    }
    if (missing.size > 0) await this.walk(missing, uids, signal);
    const next = new Map<number, ProcessInfo | null>();
    for (const s of sockets) next.set(s.inode, this.known.get(s.inode) ?? null);
    this.known = next;
    return next;
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

  private async walk(missing: Set<number>, uids: ReadonlySet<number>, signal: AbortSignal): Promise<void> {
    this.stats.walks++;
    this.stats.unreadable = 0;
    const pids = this.processOrder(uids);
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
      let name: string | undefined;
      try {
        for (;;) {
          if (missing.size === 0 || signal.aborted) break;
          if (++calls % YIELD_EVERY === 0) await turn();
          const entry = dir.readSync();
          if (entry === null) break;
          let link: string;
          try {
            link = fs.readlinkSync(`${fdDir}/${entry.name}`);
          } catch {
            continue;
          }
          if (!link.startsWith('socket:[')) continue;
          const inode = Number(link.slice(8, -1));
          if (!missing.has(inode)) continue;
          name ??= readComm(this.procfs, pid);
          this.known.set(inode, { pid, name });
          missing.delete(inode);
        }
      } catch {
        this.stats.unreadable++; // the process exited during the walk
      } finally {
        dir.closeSync();
      }
    }
    if (!signal.aborted) for (const i of missing) this.known.set(i, null);
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
  for (const [f, p, fam] of tables) tallies.push(await readProcNetTable(path.join(procfs, 'net', f), p, fam, signal, buffer));
  const listenQueue = await readListenQueueCounters(procfs);
  const out: ProcfsTables = { listeners: [], tcpStates: new Array<number>(16).fill(0), listenQueue, badLines: 0, badExamples: [], truncatedTables: [] };
  tallies.forEach((t, i) => {
    for (const l of t.listeners) out.listeners.push(l);
    if (t.protocol === 'tcp') for (let s = 0; s < 16; s++) out.tcpStates[s] += t.states[s];
    out.badLines += t.badLines;
    for (const e of t.badExamples) if (out.badExamples.length < 3) out.badExamples.push(`${tables[i][0]}: ${e}`);
    if (t.truncatedLastLine) out.truncatedTables.push(tables[i][0]);
  });
  return out;
}
