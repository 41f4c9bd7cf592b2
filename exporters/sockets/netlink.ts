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
import { evaluate, type Evaluation, type EvaluationMemo } from './evaluate';
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
 * One scan through `scan`: TCP and UDP, IPv4 and (when asked) IPv6. Throws SockDiagError when
 * a dump cannot be made or the kernel refuses it; a malformed reply is counted, not thrown.
 * `reuse` keeps listener objects from one scan to the next.
 */
export function scanSockDiag(
  scan: SockDiagScan,
  opts: NetlinkScanOptions,
  reuse: ListenerReuse = new ListenerReuse(),
): NetlinkTables {
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
  // A kernel that counts no IPv6 sockets of a protocol has none to dump: leave them out. (Its
  // TIME_WAIT sockets are in sockstat's tw, which counts both families.)
  const v6 = readOrEmpty(opts.sockstat6);
  const skip6 = (proto: string): boolean => sockstatInUse(v6, proto) === 0;
  let tcpMask = stateMask([1, 10]);
  if (opts.tcpStates) {
    tcpMask = 0xffff;
    if (timeWait !== undefined) tcpMask &= ~(1 << TCP_TIME_WAIT);
    out.timeWaitFrom = timeWait !== undefined ? 'sockstat' : 'dump';
  }
  const tables: PackedTable[] = [];
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
  const udpFromProc: Listener[] = [];
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
  reuse.listeners(tables, out.listeners);
  for (const l of udpFromProc) out.listeners.push(l);
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
}

/** What the worker keeps from one scan to the next. */
export interface NetlinkScanState {
  owners: InodeProcessCache;
  reuse: ListenerReuse;
  memo: EvaluationMemo;
}

/** The scan the worker runs: dumps, owners (with a cache kept between scans), evaluation. */
export async function runNetlinkScan(
  scan: SockDiagScan,
  s: SocketsSettings,
  state: NetlinkScanState,
): Promise<NetlinkScanResult> {
  const t = scanSockDiag(
    scan,
    {
      ipv6: s.ipv6,
      tcpStates: s.tcp_states,
      sockstat: path.join(s.procfs, 'net', 'sockstat'),
      sockstat6: path.join(s.procfs, 'net', 'sockstat6'),
      procNet: path.join(s.procfs, 'net'),
    },
    state.reuse,
  );
  if (s.include_process) await state.owners.assign(t.listeners, new AbortController().signal);
  else for (const l of t.listeners) l.owner = null;
  const evaluation = evaluate(
    { listeners: t.listeners, tcpStates: t.tcpStates, listenQueue: await readListenQueueCounters(s.procfs) },
    s,
    state.memo,
  );
  return {
    evaluation,
    listeners: packListeners(t.listeners),
    listenerCount: t.listeners.length,
    badLines: t.badLines,
    badExamples: t.badExamples,
    truncatedTables: t.truncatedTables,
    timeWaitFrom: t.timeWaitFrom,
    interrupted: t.interrupted,
    udpFromProc: t.udpFromProc,
    walks: { ...state.owners.stats },
    processCacheSize: state.owners.size,
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
