// The netlink source: socket tables from sock_diag dumps (native/sockdiag.c), which the addon
// also parses, in C, into packed tables (packed.ts): listeners with their queues, backlogs and
// connections, and state counts. The blocking netlink reads, the parsing, the owner lookups and
// the evaluation all run on a worker thread (sockdiag-worker.ts); the event loop receives the
// facts, the evaluation and the listener list as numbers in one transferred buffer, turned into
// objects only when something reads them (the status page). Measured at 5,000 listeners,
// cloning the listener objects across threads alone held the loop for 6 to 14 ms, and
// evaluating them as long again.
//
// What crosses from the kernel: TCP listeners and established sockets (and, when tcp_states is
// on, every other state but TIME_WAIT: the kernel's state filter keeps those rows in the kernel;
// their number comes from /proc/net/sockstat instead), and unconnected UDP sockets. IPv4 and
// IPv6 TCP sockets come in one dump (both live in one connection hash, which each dump walks
// whole); UDP is dumped per family.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ownModule, packageRoot } from '../package-root';
import { countFacts, evaluate, type Evaluation, type EvaluationMemo } from './evaluate';
import { InodeProcessCache, readListenQueueCounters, type WalkStats } from './procfs';
import type { SocketsSettings } from './settings';
import { ListenerReuse, packListeners, readPackedTable, type PackedListeners, type PackedTable } from './packed';
import { parseProcNet, type Listener } from './procnet';
import { stateMask } from './sockdiag';

/** dump(family, protocol, states, ext): one sock_diag dump's raw reply. */
export type SockDiagDump = (family: 4 | 6, protocol: number, states: number, ext: number) => Uint8Array;

/**
 * scan(family, protocol, states): one dump, parsed by the addon into a packed table (packed.ts).
 * Family 0: IPv4 and IPv6 TCP sockets in one dump.
 */
export type SockDiagScan = (family: 0 | 4 | 6, protocol: number, states: number) => ArrayBuffer;

/** parse(bytes, protocol, family): the addon's parser over given bytes (family 0: either). */
export type SockDiagParse = (bytes: Uint8Array, protocol: number, family: 0 | 4 | 6) => ArrayBuffer;

interface SockDiagAddon {
  dump: SockDiagDump;
  scan: SockDiagScan;
  parse: SockDiagParse;
}

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const TCP_TIME_WAIT = 6;
/**
 * The TCP states a state-counting dump asks for: ESTABLISHED (1) to NEW_SYN_RECV (12), the
 * states /proc/net/tcp prints. Not 13, TCP_BOUND_INACTIVE (Linux 6.5 and later: bound sockets
 * that neither listen nor connect, which /proc does not show and no series counts): asking for
 * it makes the kernel walk its whole bind hash on every dump, 1.7 ms of a 7 ms dump at 15,000
 * sockets (BENCHMARKS.md, "Netlink socket scan"); 0, 14 and 15 are no state.
 */
export const COUNTED_STATES = stateMask([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
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

/** The dumps of one scan, before listener objects are made of them. */
export interface SockDiagDumps extends Omit<NetlinkTables, 'listeners'> {
  /** The packed tables, in the order their listeners are listed. */
  tables: PackedTable[];
  /** UDP listeners read from /proc (no UDP diag module), listed after the tables' ones. */
  procListeners: Listener[];
}

/**
 * One scan through `scan`: TCP and UDP, IPv4 and (when asked) IPv6. Throws SockDiagError when
 * a dump cannot be made or the kernel refuses it; a malformed reply is counted, not thrown.
 * `reuse` keeps listener objects from one scan to the next.
 */
export function scanSockDiag(
  scan: SockDiagScan,
  opts: NetlinkScanOptions,
  reuse: ListenerReuse = new ListenerReuse(),
): NetlinkTables {
  const { tables, procListeners, ...rest } = dumpSockDiag(scan, opts);
  const listeners = reuse.listeners(tables);
  for (const l of procListeners) listeners.push(l);
  return { ...rest, listeners };
}

/** The dumps of scanSockDiag(), their listener records still packed. */
export function dumpSockDiag(scan: SockDiagScan, opts: NetlinkScanOptions): SockDiagDumps {
  const out: SockDiagDumps = {
    tables: [],
    procListeners: [],
    tcpStates: new Array<number>(16).fill(0),
    badLines: 0,
    badExamples: [],
    truncatedTables: [],
    interrupted: false,
    timeWaitFrom: 'none',
    udpFromProc: false,
  };
  const timeWait = opts.tcpStates ? sockstatTimeWait(readOrEmpty(opts.sockstat)) : undefined;
  // A kernel that counts no IPv6 sockets of a protocol has none to dump: leave them out. (Its
  // TIME_WAIT sockets are in sockstat's tw, which counts both families.)
  const v6 = readOrEmpty(opts.sockstat6);
  const skip6 = (proto: string): boolean => sockstatInUse(v6, proto) === 0;
  let tcpMask = stateMask([1, 10]);
  if (opts.tcpStates) {
    tcpMask = COUNTED_STATES;
    if (timeWait !== undefined) tcpMask &= ~(1 << TCP_TIME_WAIT);
    out.timeWaitFrom = timeWait !== undefined ? 'sockstat' : 'dump';
  }
  const tables = out.tables;
  const take = (t: PackedTable, name: string): void => {
    tables.push(t);
    out.badLines += t.badMessages;
    for (const e of t.badExamples) if (out.badExamples.length < 3) out.badExamples.push(`${name}: ${e}`);
    if (t.truncated || !t.done) out.truncatedTables.push(name);
    if (t.interrupted) out.interrupted = true;
  };
  const run = (family: 0 | 4 | 6, protocol: number, mask: number): PackedTable => {
    let ab: ArrayBuffer;
    try {
      ab = scan(family, protocol, mask);
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new SockDiagError(err instanceof Error ? err.message : String(err), code);
    }
    return readPackedTable(ab);
  };
  const tcpTable = (t: PackedTable, name: string): void => {
    take(t, name);
    for (let s = 0; s < 16; s++) out.tcpStates[s] += t.states[s];
  };
  const want6 = opts.ipv6 && !(skip6('TCP6') && out.timeWaitFrom !== 'dump');
  // Both families in one dump; a kernel that refuses that request gets one per family.
  const both = want6 ? run(0, IPPROTO_TCP, tcpMask) : undefined;
  if (both !== undefined && both.errno === undefined) tcpTable(both, 'tcp+tcp6');
  else {
    for (const family of want6 ? ([4, 6] as const) : ([4] as const)) {
      const name = family === 4 ? 'tcp' : 'tcp6';
      const t = run(family, IPPROTO_TCP, tcpMask);
      if (t.errno !== undefined) {
        // EAFNOSUPPORT or ENOENT for tcp6 on a kernel without IPv6: no IPv6 sockets.
        if (family === 6) continue;
        throw new SockDiagError(`sock_diag ${name} dump refused by the kernel (errno ${t.errno})`, `errno ${t.errno}`);
      }
      tcpTable(t, name);
    }
  }
  if (timeWait !== undefined && out.timeWaitFrom === 'sockstat') out.tcpStates[TCP_TIME_WAIT] = timeWait;
  const udpFromProc = out.procListeners;
  for (const family of opts.ipv6 ? ([4, 6] as const) : ([4] as const)) {
    const name = family === 4 ? 'udp' : 'udp6';
    if (family === 6 && skip6('UDP6')) continue;
    const t = run(family, IPPROTO_UDP, stateMask([7]));
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
      const p = parseProcNet(text, 'udp', family, os.endianness() === 'LE');
      for (const l of p.listeners) udpFromProc.push(l);
      out.badLines += p.badLines;
      continue;
    }
    if (t.errno !== undefined) {
      if (family === 6) continue;
      throw new SockDiagError(`sock_diag ${name} dump refused by the kernel (errno ${t.errno})`, `errno ${t.errno}`);
    }
    take(t, name);
  }
  return out;
}

/** A whole scan's outcome, as the worker sends it: small, apart from the packed listener list. */
export interface NetlinkScanResult {
  evaluation: Evaluation;
  /** Every listener with its owner (its numbers are transferred, not copied). */
  listeners: PackedListeners;
  listenerCount: number;
  badLines: number;
  badExamples: string[];
  truncatedTables: string[];
  timeWaitFrom: NetlinkTables['timeWaitFrom'];
  interrupted: boolean;
  udpFromProc: boolean;
  walks: WalkStats;
  processCacheSize: number;
  /** The listener records were those of the last scan, to the byte: its listeners and evaluation were kept. */
  listenersKept: boolean;
}

/** What the worker keeps from one scan to the next. */
export interface NetlinkScanState {
  owners: InodeProcessCache;
  reuse: ListenerReuse;
  memo: EvaluationMemo;
  /** The last scan that made its listener list and evaluation. */
  last?: LastScan;
}

interface LastScan {
  /** The settings, as JSON: other settings evaluate afresh. */
  settings: string;
  /** Each table's listener records. */
  records: Buffer[];
  listenerCount: number;
  /** The evaluation, and how many of its facts come before countFacts()'s. */
  evaluation: Evaluation;
  listenerFacts: number;
  /** The packed listener list (a copy: what was sent is transferred). */
  numbers: Float64Array;
  strings: string[];
}

function recordBytes(t: PackedTable): Buffer {
  return Buffer.from(t.records.buffer, t.records.byteOffset, t.records.byteLength);
}

/** Whether these dumps hold the last scan's listener records exactly, under the same settings. */
function sameListeners(last: LastScan | undefined, d: SockDiagDumps, settings: string): last is LastScan {
  if (last === undefined || last.settings !== settings || d.procListeners.length > 0) return false;
  if (last.records.length !== d.tables.length) return false;
  return d.tables.every((t, i) => recordBytes(t).equals(last.records[i]));
}

/**
 * The scan the worker runs: dumps, owners (with a cache kept between scans), evaluation. When
 * every listener record (address, port, inode, uid, queue, backlog, connections) is what the last
 * scan found, to the byte, under the same settings and with no owner lookup pending, the listener
 * objects, owners and evaluation would come out the same: the last ones are kept and only the
 * state counts and listen-queue counters are made again. That is most scans of a host whose
 * listeners are idle; measured at 5,000 listeners, it saves about 1 ms of the worker's 2 ms of
 * JavaScript per scan (BENCHMARKS.md, "Netlink socket scan").
 */
export async function runNetlinkScan(
  scan: SockDiagScan,
  s: SocketsSettings,
  state: NetlinkScanState,
): Promise<NetlinkScanResult> {
  const d = dumpSockDiag(scan, {
    ipv6: s.ipv6,
    tcpStates: s.tcp_states,
    sockstat: path.join(s.procfs, 'net', 'sockstat'),
    sockstat6: path.join(s.procfs, 'net', 'sockstat6'),
    procNet: path.join(s.procfs, 'net'),
  });
  const listenQueue = await readListenQueueCounters(s.procfs);
  const settings = JSON.stringify(s);
  const rest = {
    badLines: d.badLines,
    badExamples: d.badExamples,
    truncatedTables: d.truncatedTables,
    timeWaitFrom: d.timeWaitFrom,
    interrupted: d.interrupted,
    udpFromProc: d.udpFromProc,
  };
  const last = state.last;
  if (sameListeners(last, d, settings) && state.owners.stats.deferred === 0) {
    const counts = countFacts({ listeners: [], tcpStates: d.tcpStates, listenQueue }, s);
    return {
      ...rest,
      evaluation: { ...last.evaluation, facts: last.evaluation.facts.slice(0, last.listenerFacts).concat(counts) },
      listeners: { numbers: last.numbers.slice(), strings: last.strings },
      listenerCount: last.listenerCount,
      walks: { ...state.owners.stats },
      processCacheSize: state.owners.size,
      listenersKept: true,
    };
  }
  const listeners = state.reuse.listeners(d.tables);
  for (const l of d.procListeners) listeners.push(l);
  if (s.include_process) await state.owners.assign(listeners, new AbortController().signal);
  else for (const l of listeners) l.owner = null;
  const table = { listeners, tcpStates: d.tcpStates, listenQueue };
  const evaluation = evaluate(table, s, state.memo);
  const packed = packListeners(listeners);
  state.last = {
    settings,
    records: d.tables.map(recordBytes),
    listenerCount: listeners.length,
    evaluation,
    listenerFacts: evaluation.facts.length - countFacts(table, s).length,
    numbers: packed.numbers.slice(),
    strings: packed.strings,
  };
  return {
    ...rest,
    evaluation,
    listeners: packed,
    listenerCount: listeners.length,
    walks: { ...state.owners.stats },
    processCacheSize: state.owners.size,
    listenersKept: false,
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
    const file = ownModule('exporters/sockets/sockdiag-worker');
    const ext = path.extname(file);
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
