// The running agent: current config, store, scheduler and self metrics, with reload.
import { PROBERS, COLLECTORS } from '../exporters';
import type { MetricDef, ProbeResult, TargetSpec } from '../exporters/types';
import { ConfigError, loadConfigFile, type AgentConfig, type TargetConfig } from '../config/load';
import { COMMON_METRICS, FamilyRegistry, ScrapeBuffer, joinRendered, renderResult } from './exposition';
import { ResultStore } from './store';
import { Scheduler } from './scheduler';
import { createSelfMetrics, type SelfMetrics } from './self-metrics';
import { runProbe } from './runner';
import { secretValues } from '../exporters/secret';
import { shardOf } from './shard';
import type { AgentLogger } from './logger';
import { quoteInput } from './quote';
import { loadConfigFileOffThread } from '../config/load-async';
import { Slicer } from './slicer';

export interface ShardSettings {
  index: number;
  count: number;
}

export interface BuildInfo {
  version: string;
  revision: string;
}

export interface AgentOptions {
  configFile: string;
  logger: AgentLogger;
  build: BuildInfo;
  shard?: ShardSettings;
  env?: NodeJS.ProcessEnv;
}

export interface ReloadOutcome {
  ok: boolean;
  errors: string[];
}

/** A reload that drops at least this many targets (and half of them) is followed by a full GC. */
export const SHRINK_GC_TARGETS = 10_000;
/** The second full collection after such a shrink comes this long after it. */
export const SHRINK_GC_AGAIN_MS = 3_000;

let gcFn: (() => void) | null | undefined;
/**
 * V8's full collection: `gc` when node runs with --expose-gc, else exposed once through V8's flags
 * (node:v8 and node:vm are loaded then, not at start). Undefined where neither works.
 */
export function fullGc(): (() => void) | undefined {
  if (gcFn === undefined) {
    const own = (globalThis as { gc?: unknown }).gc;
    if (typeof own === 'function') gcFn = own as () => void;
    else {
      try {
        /* eslint-disable @typescript-eslint/no-require-imports -- loaded on first use, after a large shrink */
        const v8 = require('node:v8') as typeof import('node:v8');
        const vm = require('node:vm') as typeof import('node:vm');
        /* eslint-enable @typescript-eslint/no-require-imports */
        v8.setFlagsFromString('--expose-gc');
        const fn = vm.runInNewContext('gc') as unknown;
        v8.setFlagsFromString('--no-expose-gc');
        gcFn = typeof fn === 'function' ? (fn as () => void) : null;
      } catch {
        gcFn = null;
      }
    }
  }
  return gcFn ?? undefined;
}

export function allFamilies(): MetricDef[] {
  const defs: MetricDef[] = [...COMMON_METRICS];
  for (const p of Object.values(PROBERS)) defs.push(...p.metrics);
  for (const c of Object.values(COLLECTORS)) defs.push(...c.metrics);
  return defs;
}

export class Agent {
  readonly families = new FamilyRegistry(allFamilies());
  readonly store = new ResultStore(this.families);
  private readonly scrapeBuffer = new ScrapeBuffer();
  readonly metrics: SelfMetrics;
  readonly scheduler: Scheduler;
  private current?: AgentConfig;
  private lastReloadErrors: string[] = [];
  private lastReloadAt?: number;
  private stopping = false;
  /** The reload running off the event loop, and the one waiting for it. */
  private running?: Promise<ReloadOutcome>;
  private queued?: Promise<ReloadOutcome>;

  constructor(private readonly opts: AgentOptions) {
    this.metrics = createSelfMetrics(opts.build);
    this.scheduler = new Scheduler({
      store: this.store,
      metrics: this.metrics,
      logger: opts.logger,
      concurrency: 1,
    });
    const shard = opts.shard ?? { index: 0, count: 1 };
    this.metrics.shardInfo.set({ index: String(shard.index), count: String(shard.count) }, 1);
  }

  get config(): AgentConfig | undefined {
    return this.current;
  }

  get reloadState(): { ok: boolean; errors: string[]; at?: number } {
    return { ok: this.lastReloadErrors.length === 0, errors: this.lastReloadErrors, at: this.lastReloadAt };
  }

  get ready(): boolean {
    return this.current !== undefined && !this.stopping;
  }

  /** Whether this replica probes the target on schedule. */
  assigned(name: string): boolean {
    const s = this.opts.shard;
    return !s || s.count <= 1 || shardOf(name, s.count) === s.index;
  }

  /**
   * Loads (or reloads) the config file. A bad file keeps the running config and is reported in
   * portprobe_config_last_reload_successful.
   */
  reload(): ReloadOutcome {
    let cfg: AgentConfig;
    try {
      cfg = loadConfigFile(this.opts.configFile, this.opts.env);
    } catch (e) {
      return this.rejected(e);
    }
    this.apply(cfg);
    return this.accepted(cfg);
  }

  private rejected(e: unknown): ReloadOutcome {
    const errors = e instanceof ConfigError ? e.errors : [`${this.opts.configFile}: ${(e as Error).message}`];
    this.lastReloadErrors = errors;
    this.metrics.configReloadSuccessful.set(0);
    this.opts.logger.error('config rejected; keeping the running config', { file: this.opts.configFile, errors });
    return { ok: false, errors };
  }

  private accepted(cfg: AgentConfig): ReloadOutcome {
    this.lastReloadErrors = [];
    this.lastReloadAt = Date.now();
    this.metrics.configReloadSuccessful.set(1);
    this.metrics.configReloadTimestamp.set(this.lastReloadAt / 1000);
    this.opts.logger.info('config loaded', {
      file: cfg.file,
      targets: cfg.targets.length,
      modules: cfg.modules.size,
    });
    return { ok: true, errors: [] };
  }

  /**
   * reload for a running agent (SIGHUP, POST /-/reload): the file is parsed and checked in a
   * child process and the new targets applied in slices, so probes keep their schedule and
   * scrapes are answered throughout. Reloads asked for while one runs wait for it, then run once.
   */
  reloadAsync(): Promise<ReloadOutcome> {
    if (this.queued) return this.queued;
    if (!this.running) return this.startReload();
    const next = (): Promise<ReloadOutcome> => {
      this.queued = undefined;
      return this.startReload();
    };
    this.queued = this.running.then(next, next);
    return this.queued;
  }

  private startReload(): Promise<ReloadOutcome> {
    const p = this.reloadOffThread()
      .catch((e: unknown) => this.rejected(e))
      .finally(() => {
        if (this.running === p) this.running = undefined;
      });
    this.running = p;
    return p;
  }

  private async reloadOffThread(): Promise<ReloadOutcome> {
    let cfg: AgentConfig;
    try {
      cfg = await loadConfigFileOffThread(this.opts.configFile, this.opts.env);
    } catch (e) {
      return this.rejected(e);
    }
    if (this.stopping) return { ok: false, errors: ['the agent is shutting down'] };
    const held = this.store.size;
    const slicer = new Slicer();
    const mine: TargetConfig[] = [];
    for (let i = 0; i < cfg.targets.length; i++) {
      if ((i & 255) === 255 && slicer.due()) await slicer.pause();
      if (this.assigned(cfg.targets[i].name)) mine.push(cfg.targets[i]);
    }
    const identities = [];
    for (let i = 0; i < mine.length; i++) {
      if ((i & 1023) === 1023 && slicer.due()) await slicer.pause();
      const t = mine[i];
      identities.push({
        name: t.name,
        module: t.module,
        prober: (cfg.modules.get(t.module) as { prober: string }).prober,
        address: t.address,
        labels: t.labels,
      });
    }
    await this.store.syncSliced(identities, slicer);
    await this.scheduler.applySliced(mine, cfg.modules, cfg.global.concurrency, slicer);
    this.scheduler.applyCollectors(cfg.collectors);
    this.metrics.targets.set({ state: 'assigned' }, mine.length);
    this.metrics.targets.set({ state: 'skipped' }, cfg.targets.length - mine.length);
    this.current = cfg;
    if (held - mine.length >= SHRINK_GC_TARGETS && mine.length * 2 <= held) {
      // What the dropped targets held is garbage now, but with few targets left the agent
      // allocates too little for V8 to collect it soon: RSS would stay at the large config's level.
      // One full collection, once this reload's own data is gone too (~25 ms at 100k dropped),
      // and one more when the probes of the dropped targets that still waited for a slot have been
      // turned away (Slots, a thousand a turn) and their promise chains are garbage too.
      setImmediate(() => fullGc()?.());
      setTimeout(() => fullGc()?.(), SHRINK_GC_AGAIN_MS).unref();
    }
    return this.accepted(cfg);
  }

  private apply(cfg: AgentConfig): void {
    const mine: TargetConfig[] = cfg.targets.filter((t) => this.assigned(t.name));
    this.store.sync(
      mine.map((t) => ({
        name: t.name,
        module: t.module,
        prober: (cfg.modules.get(t.module) as { prober: string }).prober,
        address: t.address,
        labels: t.labels,
      })),
    );
    this.scheduler.apply(mine, cfg.modules, cfg.global.concurrency);
    this.scheduler.applyCollectors(cfg.collectors);
    this.metrics.targets.set({ state: 'assigned' }, mine.length);
    this.metrics.targets.set({ state: 'skipped' }, cfg.targets.length - mine.length);
    this.current = cfg;
  }

  /**
   * The scheduled results plus the agent's own metrics. The body lives in a reused buffer: call
   * `release` once it has been compressed or written.
   */
  async metricsBody(): Promise<{ body: Buffer; release: () => void }> {
    const own = await this.metrics.registry.metrics();
    const lease = this.scrapeBuffer.borrow();
    try {
      return { body: this.store.exposition(Buffer.from(own), lease.alloc), release: lease.release };
    } catch (e) {
      lease.release();
      throw e;
    }
  }

  /** The same as `metricsBody`, gzip-compressed (the store keeps its unchanged parts compressed). */
  async metricsGzip(): Promise<Buffer> {
    return this.store.gzipExposition(Buffer.from(await this.metrics.registry.metrics()));
  }

  /**
   * Runs a configured target now (for /probe); renders without target labels. An address that is
   * not a configured target's name runs only when probe_api.allowed_addresses matches it and a
   * module is named.
   */
  async probeNow(
    targetName: string,
    moduleName: string | undefined,
    timeoutMs: number | undefined,
  ): Promise<{ result: ProbeResult; text: string } | { error: string; status: number }> {
    const cfg = this.current;
    if (!cfg) return { error: 'no configuration loaded', status: 503 };
    let target: TargetSpec | undefined = cfg.targets.find((t) => t.name === targetName);
    if (!target) {
      if (!cfg.probeApi.allowedAddresses.some((re) => re.test(targetName))) {
        return {
          error: `unknown target ${quoteInput(targetName)}: /probe only runs targets from the config`,
          status: 400,
        };
      }
      if (moduleName === undefined)
        return { error: 'parameter "module" is required for an address that is not a configured target', status: 400 };
      target = { name: targetName, address: targetName, labels: {} };
    }
    const module = cfg.modules.get(moduleName ?? (target as TargetConfig).module);
    if (!module) return { error: `unknown module ${quoteInput(moduleName ?? '')}`, status: 400 };
    // A module with credentials sends them only to an address configured with that module: a
    // password never reaches a host it was not configured for, whatever target is named.
    if (secretValues(module.settings).length > 0) {
      const address = target.address;
      if (!cfg.targets.some((t) => t.module === module.name && t.address === address)) {
        return {
          error: `module "${module.name}" carries credentials: /probe runs it only against the addresses of targets configured with it, and ${quoteInput(targetName)} is not one`,
          status: 403,
        };
      }
    }
    const addrProblem = PROBERS[module.prober].validateAddress?.(target.address, module.settings);
    if (addrProblem)
      return {
        error: `target ${quoteInput(targetName)} cannot use module "${module.name}": ${addrProblem}`,
        status: 400,
      };
    const result = await runProbe({
      target,
      module,
      timeoutMs: timeoutMs === undefined ? undefined : Math.min(timeoutMs, module.timeoutSeconds * 1000),
      shutdown: this.scheduler.shutdownHandle,
      logger: this.opts.logger,
    });
    const rendered = renderResult(this.families, '', PROBERS[module.prober].phases, result, Date.now());
    return { result, text: joinRendered(this.families, [rendered]).toString() };
  }

  /** Most /probe requests at once, from the running config. */
  get maxConcurrentProbes(): number {
    return this.current?.probeApi.maxConcurrent ?? 16;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.scheduler.stop();
  }
}
