// The sockets collector: one instance per agent, scanning on sockets.interval. It keeps the
// inode -> process cache between scans. A scan never throws: a table it cannot read becomes
// the result's error and portprobe_socket_scan_success 0.
import fs from 'node:fs';
import path from 'node:path';
import type { Collector, CollectorDef, CollectorResult, Fact, ProbeLogger } from '../types';
import { evaluate, type OwnedListener, type SocketTable } from './evaluate';
import type { Listener } from './procnet';
import { M, SOCKETS_METRICS } from './metrics';
import { SockDiagError, SockDiagWorker, sockDiagUnavailable, type NetlinkScanResult } from './netlink';
import { unpackListeners } from './packed';
import { InodeProcessCache, SocketSourceError, readProcfsTables } from './procfs';
import { readSiTables } from './sysinfo';
import {
  SOCKETS_DEFAULTS,
  SOCKETS_SETTINGS_SCHEMA,
  validateSocketsSettings,
  type SocketSource,
  type SocketsSettings,
} from './settings';

/**
 * The source a scan will use: `auto` is netlink on Linux when the addon is built (and not
 * switched off with PORTPROBE_SOCK_DIAG=off), else procfs on Linux or wherever <procfs>/net/tcp
 * exists, else systeminformation. An `auto` netlink that the kernel refuses falls back to procfs
 * at the first scan.
 */
export function resolveSource(
  s: SocketsSettings,
  platform: NodeJS.Platform = process.platform,
  netlinkUnavailable: string | undefined = sockDiagUnavailable(platform),
): Exclude<SocketSource, 'auto'> {
  if (s.source !== 'auto') return s.source;
  if (platform === 'linux' && netlinkUnavailable === undefined) return 'netlink';
  if (platform === 'linux' || fs.existsSync(path.join(s.procfs, 'net', 'tcp'))) return 'procfs';
  return 'systeminformation';
}

export interface ScanDetails {
  source: Exclude<SocketSource, 'auto'>;
  /** Every listener found, with its owner when known. */
  listeners: Listener[];
  expectations: ReturnType<typeof evaluate>['expectations'];
  unexpected: ReturnType<typeof evaluate>['unexpected'];
  unexpectedCount: number;
  truncated: boolean;
  /** Lines of the socket tables that could not be parsed (garbage, truncation). */
  badLines: number;
  badExamples: string[];
  truncatedTables: string[];
  /** Walks of /proc/<pid>/fd so far; only new socket inodes cause one. */
  processWalks: number;
  /** Of those, walks that read every descriptor again (for sockets a quick walk missed). */
  processFullWalks: number;
  /** New listeners whose process the quick walk did not find; looked up again next scan. */
  ownersDeferred: number;
  processCacheSize: number;
  /** Processes whose fd directory the last walk could not read (the agent is not root). */
  unreadableProcesses: number;
  /** Netlink: where the TIME_WAIT count came from (sockstat: the rows never left the kernel). */
  timeWaitFrom?: 'sockstat' | 'dump' | 'none';
  /** Netlink: the kernel flagged a dump as interrupted by concurrent changes. */
  interrupted?: boolean;
}

type Table = SocketTable & {
  badLines: number;
  badExamples: string[];
  truncatedTables: string[];
};

/** systeminformation takes no signal: stop waiting for it (it finishes in the background). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new SocketSourceError('socket scan aborted at its deadline'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void =>
      reject(new SocketSourceError('socket scan aborted at its deadline (systeminformation still running)'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export class SocketsCollector implements Collector {
  private readonly cache: InodeProcessCache;
  private source: Exclude<SocketSource, 'auto'>;
  private netlink: SockDiagWorker | undefined;
  /** The source the log last named (said once, and again when it changes). */
  private announced: string | undefined;
  /** A netlink scan has succeeded: later netlink errors are failed scans, not a reason to switch. */
  private netlinkWorked = false;
  private closed = false;

  constructor(
    private readonly settings: SocketsSettings,
    private readonly logger: ProbeLogger,
  ) {
    this.cache = new InodeProcessCache(settings.procfs);
    this.source = resolveSource(settings);
  }

  /** Reads the socket table (and owners) from /proc or systeminformation. Throws SocketSourceError. */
  async readTable(signal: AbortSignal): Promise<Table> {
    if (this.source === 'systeminformation') {
      const t = await untilAborted(readSiTables(), signal);
      const listeners = t.listeners;
      if (!this.settings.include_process) for (const l of listeners) l.owner = null;
      return {
        listeners: this.settings.ipv6 ? listeners : listeners.filter((l) => l.family === 4),
        tcpStates: t.tcpStates,
        badLines: t.badLines,
        badExamples: [],
        truncatedTables: [],
      };
    }
    const t = await readProcfsTables(this.settings.procfs, this.settings.ipv6, signal);
    if (this.settings.include_process) {
      await this.cache.assign(t.listeners, signal);
    }
    const listeners: OwnedListener[] = t.listeners;
    return {
      listeners,
      tcpStates: t.tcpStates,
      listenQueue: t.listenQueue,
      badLines: t.badLines,
      badExamples: t.badExamples,
      truncatedTables: t.truncatedTables,
    };
  }

  /**
   * A netlink scan, made whole on the worker thread. Returns undefined when an `auto` source
   * finds netlink unusable before it ever worked (not allowed here, the addon cannot load): the
   * caller reads /proc, from now on.
   */
  private async scanNetlink(signal: AbortSignal, seconds: () => number): Promise<CollectorResult | undefined> {
    let r: NetlinkScanResult;
    try {
      this.netlink ??= new SockDiagWorker();
      r = await this.netlink.scan(this.settings, signal);
    } catch (err) {
      const message = `socket scan via netlink failed: ${err instanceof Error ? err.message : String(err)}`;
      if (signal.aborted || this.settings.source !== 'auto' || this.netlinkWorked || !(err instanceof SockDiagError)) {
        this.logger.warn('socket scan failed', { source: 'netlink', err: message });
        return this.failed(seconds(), message);
      }
      this.logger.warn('netlink sock_diag unavailable, reading /proc instead', { err: err.message, code: err.code });
      this.netlink?.close();
      this.netlink = undefined;
      this.source = 'procfs';
      return undefined;
    }
    this.netlinkWorked = true;
    if (r.badLines > 0)
      this.logger.warn('sock_diag messages could not be parsed', { count: r.badLines, examples: r.badExamples });
    const ev = r.evaluation;
    const details = {
      source: 'netlink',
      expectations: ev.expectations,
      unexpected: ev.unexpected,
      unexpectedCount: ev.unexpectedCount,
      truncated: ev.truncated,
      badLines: r.badLines,
      badExamples: r.badExamples,
      truncatedTables: r.truncatedTables,
      processWalks: r.walks.walks,
      processFullWalks: r.walks.fullWalks,
      ownersDeferred: r.walks.deferred,
      processCacheSize: r.processCacheSize,
      unreadableProcesses: r.walks.unreadable,
      timeWaitFrom: r.timeWaitFrom,
      interrupted: r.interrupted,
    } as Omit<ScanDetails, 'listeners'> as ScanDetails;
    // The listener list becomes objects when it is read (the status page), not on every scan.
    let listeners: ScanDetails['listeners'] | undefined;
    Object.defineProperty(details, 'listeners', {
      enumerable: true,
      get: () => (listeners ??= unpackListeners(r.listeners)),
    });
    const duration = seconds();
    const facts: Fact[] = [
      ...ev.facts,
      { metric: M.scanSuccess, value: 1 },
      { metric: M.scanDuration, value: duration },
      { metric: M.scanSource, labels: { source: 'netlink' }, value: 1 },
    ];
    return { success: true, durationSeconds: duration, facts, details: details as unknown as Record<string, unknown> };
  }

  async scan(signal: AbortSignal): Promise<CollectorResult> {
    const r = await this.scanOnce(signal);
    if (r.success && this.announced !== this.source) {
      this.announced = this.source;
      this.logger.info('socket tables read via ' + this.source, { source: this.source });
    }
    return r;
  }

  private async scanOnce(signal: AbortSignal): Promise<CollectorResult> {
    const started = process.hrtime.bigint();
    const seconds = (): number => Number(process.hrtime.bigint() - started) / 1e9;
    if (this.closed) return this.failed(seconds(), 'the sockets collector was closed');
    if (this.source === 'netlink') {
      const r = await this.scanNetlink(signal, seconds);
      if (r !== undefined) return r;
    }
    let table: Table;
    try {
      table = await this.readTable(signal);
    } catch (err) {
      const message =
        err instanceof SocketSourceError
          ? err.message
          : `socket scan via ${this.source} failed: ${err instanceof Error ? err.message : String(err)}`;
      this.logger.warn('socket scan failed', { source: this.source, err: message });
      return this.failed(seconds(), message);
    }
    if (signal.aborted) return this.failed(seconds(), 'socket scan aborted at its deadline');
    const ev = evaluate(table, this.settings);
    if (table.badLines > 0) {
      this.logger.warn('socket table lines could not be parsed', {
        count: table.badLines,
        examples: table.badExamples,
      });
    }
    const details: ScanDetails = {
      source: this.source,
      listeners: table.listeners,
      expectations: ev.expectations,
      unexpected: ev.unexpected,
      unexpectedCount: ev.unexpectedCount,
      truncated: ev.truncated,
      badLines: table.badLines,
      badExamples: table.badExamples,
      truncatedTables: table.truncatedTables,
      processWalks: this.cache.stats.walks,
      processFullWalks: this.cache.stats.fullWalks,
      ownersDeferred: this.cache.stats.deferred,
      processCacheSize: this.cache.size,
      unreadableProcesses: this.cache.stats.unreadable,
    };
    const duration = seconds();
    const facts: Fact[] = [
      ...ev.facts,
      { metric: M.scanSuccess, value: 1 },
      { metric: M.scanDuration, value: duration },
      { metric: M.scanSource, labels: { source: this.source }, value: 1 },
    ];
    return { success: true, durationSeconds: duration, facts, details: details as unknown as Record<string, unknown> };
  }

  close(): void {
    this.closed = true;
    this.netlink?.close();
    this.netlink = undefined;
  }

  private failed(durationSeconds: number, error: string): CollectorResult {
    return {
      success: false,
      durationSeconds,
      error,
      facts: [
        { metric: M.scanSuccess, value: 0 },
        { metric: M.scanDuration, value: durationSeconds },
        { metric: M.scanSource, labels: { source: this.source }, value: 1 },
      ],
    };
  }
}

export const socketsCollector: CollectorDef<SocketsSettings> = {
  name: 'sockets',
  metrics: SOCKETS_METRICS,
  schema: SOCKETS_SETTINGS_SCHEMA,
  defaults: SOCKETS_DEFAULTS,
  validate: validateSocketsSettings,
  create: (settings, logger) => new SocketsCollector(settings, logger),
};
