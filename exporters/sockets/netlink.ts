// The netlink source: socket tables from sock_diag dumps (native/sockdiag.c), parsed by the pure
// parser in sockdiag.ts. The blocking netlink reads, the parsing, the owner lookups and the
// evaluation all run on a worker thread (sockdiag-worker.ts): the event loop receives the facts
// and the listener list as one string, decoded only when something reads it (the status page).
// Measured at 5,000 listeners, cloning the listener objects across threads alone held the loop
// for 6 to 14 ms, and evaluating them as long again.
//
// What crosses from the kernel: TCP listeners and established sockets (and, when tcp_states is
// on, every other state but TIME_WAIT: the kernel's state filter keeps those rows in the kernel;
// their number comes from /proc/net/sockstat instead), and unconnected UDP sockets.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { packageRoot } from '../package-root';
import { attributeConnections } from './connections';
import { evaluate, type Evaluation } from './evaluate';
import { InodeProcessCache, readListenQueueCounters, type WalkStats } from './procfs';
import type { SocketsSettings } from './settings';
import { parseProcNet, type Listener } from './procnet';
import { parseSockDiag, stateMask, type SockDiagTally } from './sockdiag';

/** dump(family, protocol, states, ext): one sock_diag dump's raw reply. */
export type SockDiagDump = (family: 4 | 6, protocol: number, states: number, ext: number) => Uint8Array;

interface SockDiagAddon {
  dump: SockDiagDump;
}

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const TCP_TIME_WAIT = 6;
const ENOENT = 2;

/** The addon's file, whether it was built (it is built on Linux only). */
export function sockDiagAddonPath(): string {
  return path.join(packageRoot(), 'build', 'Release', 'sockdiag.node');
}

/** Why the netlink source cannot be used here, or undefined when it can be tried. */
export function sockDiagUnavailable(platform: NodeJS.Platform = process.platform): string | undefined {
  if (platform !== 'linux') return 'netlink sock_diag exists on Linux only';
  if (process.env.PORTPROBE_SOCK_DIAG === 'off') return 'PORTPROBE_SOCK_DIAG=off';
  if (!existsSync(sockDiagAddonPath())) return `the native addon ${sockDiagAddonPath()} was not built`;
  return undefined;
}

/** Loads the addon (in the worker). Throws with the reason when it cannot. */
export function loadSockDiag(): SockDiagAddon {
  const why = sockDiagUnavailable();
  if (why !== undefined) throw new Error(why);
  return require(sockDiagAddonPath()) as SockDiagAddon; // eslint-disable-line @typescript-eslint/no-require-imports
}

export interface NetlinkScanOptions {
  ipv6: boolean;
  /** Count TCP sockets in every state (else only listeners and established ones cross over). */
  tcpStates: boolean;
  /** Where to read the TIME_WAIT count ("tw" of the TCP line); undefined: dump TIME_WAIT rows instead. */
  sockstat?: string;
  /** /proc/net/sockstat6: an IPv6 protocol with "inuse 0" there is not dumped (each dump walks the whole table). */
  sockstat6?: string;
  /** Where to read UDP from when the kernel has no UDP diag module (the host's proc/net). */
  procNet?: string;
}

export interface NetlinkTables {
  listeners: Listener[];
  tcpStates: number[];
  badLines: number;
  badExamples: string[];
  /** Dumps that did not end with NLMSG_DONE, or ended inside a message. */
  truncatedTables: string[];
  /** A dump the kernel flagged as interrupted by concurrent changes. */
  interrupted: boolean;
  /** Where the TIME_WAIT count came from. */
  timeWaitFrom: 'sockstat' | 'dump' | 'none';
  /** UDP came from /proc because the kernel answered ENOENT (no udp_diag). */
  udpFromProc: boolean;
}

/** An error from a dump, with the errno name when there is one (EPERM: netlink not allowed). */
export class SockDiagError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** The "tw" count of the "TCP:" line of /proc/net/sockstat, or undefined. Pure. */
export function sockstatTimeWait(text: string): number | undefined {
  const m = /^TCP:.*\btw (\d+)/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** The "inuse" count of a line of /proc/net/sockstat6 ("TCP6", "UDP6"), or undefined. Pure. */
export function sockstatInUse(text: string, protocol: string): number | undefined {
  const m = new RegExp(`^${protocol}: inuse (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

function readOrEmpty(file: string | undefined): string {
  if (file === undefined) return '';
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return '';
  }
}

/**
 * One scan through `dump`: TCP and UDP, IPv4 and (when asked) IPv6. Throws SockDiagError when
 * a dump cannot be made or the kernel refuses it; a malformed reply is counted, not thrown.
 */
export function scanSockDiag(dump: SockDiagDump, opts: NetlinkScanOptions): NetlinkTables {
  const out: NetlinkTables = {
    listeners: [],
    tcpStates: new Array<number>(16).fill(0),
    badLines: 0,
    badExamples: [],
    truncatedTables: [],
    interrupted: false,
    timeWaitFrom: 'none',
    udpFromProc: false,
  };
  const timeWait = opts.tcpStates ? sockstatTimeWait(readOrEmpty(opts.sockstat)) : undefined;
  // A kernel that counts no IPv6 sockets of a protocol has none to dump: skip that walk. (Its
  // TIME_WAIT sockets are in sockstat's tw, which counts both families.)
  const v6 = readOrEmpty(opts.sockstat6);
  const skip6 = (proto: string): boolean => sockstatInUse(v6, proto) === 0;
  let tcpMask = stateMask([1, 10]);
  if (opts.tcpStates) {
    tcpMask = 0xffff;
    if (timeWait !== undefined) tcpMask &= ~(1 << TCP_TIME_WAIT);
    out.timeWaitFrom = timeWait !== undefined ? 'sockstat' : 'dump';
  }
  const families: Array<4 | 6> = opts.ipv6 ? [4, 6] : [4];
  const littleEndian = os.endianness() === 'LE';
  const established: Array<Map<string, number>> = [];
  const take = (t: SockDiagTally, name: string): void => {
    for (const l of t.listeners) out.listeners.push(l);
    out.badLines += t.badMessages;
    for (const e of t.badExamples) if (out.badExamples.length < 3) out.badExamples.push(`${name}: ${e}`);
    if (t.truncated || !t.done) out.truncatedTables.push(name);
    if (t.interrupted) out.interrupted = true;
  };
  const run = (family: 4 | 6, protocol: number, mask: number): Uint8Array => {
    try {
      return dump(family, protocol, mask, 0);
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new SockDiagError(err instanceof Error ? err.message : String(err), code);
    }
  };
  for (const family of families) {
    const name = family === 4 ? 'tcp' : 'tcp6';
    if (family === 6 && skip6('TCP6') && out.timeWaitFrom !== 'dump') continue;
    const t = parseSockDiag(run(family, IPPROTO_TCP, tcpMask), 'tcp', { littleEndian, family });
    if (t.errno !== undefined) {
      // EAFNOSUPPORT or ENOENT for tcp6 on a kernel without IPv6: no IPv6 sockets.
      if (family === 6) continue;
      throw new SockDiagError(`sock_diag ${name} dump refused by the kernel (errno ${t.errno})`, `errno ${t.errno}`);
    }
    take(t, name);
    for (let s = 0; s < 16; s++) out.tcpStates[s] += t.states[s];
    established.push(t.established);
  }
  if (timeWait !== undefined && out.timeWaitFrom === 'sockstat') out.tcpStates[TCP_TIME_WAIT] = timeWait;
  for (const family of families) {
    const name = family === 4 ? 'udp' : 'udp6';
    if (family === 6 && skip6('UDP6')) continue;
    const t = parseSockDiag(run(family, IPPROTO_UDP, stateMask([7])), 'udp', { littleEndian, family });
    if (t.errno === ENOENT && opts.procNet !== undefined) {
      // No udp_diag module: the UDP tables are small, read them from /proc.
      out.udpFromProc = true;
      let text: string;
      try {
        text = readFileSync(path.join(opts.procNet, name), 'latin1');
      } catch {
        if (family === 6) continue;
        throw new SockDiagError(`the kernel has no UDP sock_diag and ${path.join(opts.procNet, name)} cannot be read`);
      }
      const p = parseProcNet(text, 'udp', family, littleEndian);
      for (const l of p.listeners) out.listeners.push(l);
      out.badLines += p.badLines;
      continue;
    }
    if (t.errno !== undefined) {
      if (family === 6) continue;
      throw new SockDiagError(`sock_diag ${name} dump refused by the kernel (errno ${t.errno})`, `errno ${t.errno}`);
    }
    take(t, name);
  }
  attributeConnections(out.listeners, established);
  return out;
}

/** A whole scan's outcome, as the worker sends it: small, apart from one string. */
export interface NetlinkScanResult {
  evaluation: Evaluation;
  /** Every listener with its owner, as JSON (decoded on demand). */
  listenersJson: string;
  listenerCount: number;
  badLines: number;
  badExamples: string[];
  truncatedTables: string[];
  timeWaitFrom: NetlinkTables['timeWaitFrom'];
  interrupted: boolean;
  udpFromProc: boolean;
  walks: WalkStats;
  processCacheSize: number;
}

/** The scan the worker runs: dumps, owners (with a cache kept between scans), evaluation. */
export async function runNetlinkScan(
  dump: SockDiagDump,
  s: SocketsSettings,
  cache: InodeProcessCache,
): Promise<NetlinkScanResult> {
  const t = scanSockDiag(dump, {
    ipv6: s.ipv6,
    tcpStates: s.tcp_states,
    sockstat: path.join(s.procfs, 'net', 'sockstat'),
    sockstat6: path.join(s.procfs, 'net', 'sockstat6'),
    procNet: path.join(s.procfs, 'net'),
  });
  if (s.include_process) {
    const owners = await cache.lookup(t.listeners, new AbortController().signal);
    for (const l of t.listeners) l.owner = owners.get(l.inode) ?? null;
  }
  const evaluation = evaluate(
    { listeners: t.listeners, tcpStates: t.tcpStates, listenQueue: await readListenQueueCounters(s.procfs) },
    s,
  );
  return {
    evaluation,
    listenersJson: JSON.stringify(t.listeners),
    listenerCount: t.listeners.length,
    badLines: t.badLines,
    badExamples: t.badExamples,
    truncatedTables: t.truncatedTables,
    timeWaitFrom: t.timeWaitFrom,
    interrupted: t.interrupted,
    udpFromProc: t.udpFromProc,
    walks: { ...cache.stats },
    processCacheSize: cache.size,
  };
}

/** What the worker answers: the scan, or an error message with its code. */
type WorkerReply =
  { id: number; ok: true; result: NetlinkScanResult } | { id: number; ok: false; message: string; code?: string };

/**
 * A worker thread that makes the dumps and parses them. One per collector; started on the first
 * scan, unref'd so it never keeps the process alive.
 */
export class SockDiagWorker {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (t: NetlinkScanResult) => void; reject: (e: Error) => void }>();

  scan(settings: SocketsSettings, signal: AbortSignal): Promise<NetlinkScanResult> {
    if (signal.aborted) return Promise.reject(new SockDiagError('socket scan aborted at its deadline'));
    const w = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise<NetlinkScanResult>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiting.delete(id);
        reject(new SockDiagError('socket scan aborted at its deadline (netlink dump still running)'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.set(id, {
        resolve: (t) => {
          signal.removeEventListener('abort', onAbort);
          resolve(t);
        },
        reject: (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
      w.postMessage({ id, settings });
    });
  }

  close(): void {
    const w = this.worker;
    this.worker = undefined;
    if (w) void w.terminate();
    this.failAll(new SockDiagError('the sockets collector was closed'));
  }

  private failAll(e: Error): void {
    for (const p of this.waiting.values()) p.reject(e);
    this.waiting.clear();
  }

  private start(): Worker {
    // From the compiled agent the worker is a .js file; from the TypeScript sources (tests,
    // benchmarks) it is compiled on load by ts-node.
    const ext = path.extname(__filename);
    const file = path.join(__dirname, `sockdiag-worker${ext}`);
    // The environment as this thread sees it now (PORTPROBE_SOCK_DIAG=off switches the addon off).
    const w = new Worker(file, {
      env: { ...process.env },
      execArgv: ext === '.ts' ? ['--require', 'ts-node/register/transpile-only'] : [],
    });
    w.unref();
    w.on('message', (m: WorkerReply) => {
      const p = this.waiting.get(m.id);
      if (!p) return;
      this.waiting.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new SockDiagError(m.message, m.code));
    });
    // A dead worker fails what it was doing; the next scan starts a new one. A worker already
    // replaced (closed, then a new scan) must not fail its successor's scans.
    w.on('error', (err) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      this.failAll(new SockDiagError(`the netlink worker failed: ${err.message}`));
    });
    w.on('exit', () => {
      if (this.worker !== w) return;
      this.worker = undefined;
      this.failAll(new SockDiagError('the netlink worker exited'));
    });
    this.worker = w;
    return w;
  }
}
