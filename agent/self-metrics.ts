// The agent's own metrics, in an explicit prom-client registry (never the global one).
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { arrivalStampsEnabled } from '../exporters/net';
import { lastResortCounts } from './last-resort';

export interface SelfMetrics {
  registry: Registry;
  configReloadSuccessful: Gauge;
  configReloadTimestamp: Gauge;
  probesTotal: Counter<'module' | 'result'>;
  /** Counts a completed probe: a map update, the counter reads the counts when collected. */
  countProbe(module: string, success: boolean): void;
  schedulerSkipped: Counter;
  probesInFlight: Gauge;
  targets: Gauge<'state'>;
  shardInfo: Gauge<'index' | 'count'>;
}

export function createSelfMetrics(build: { version: string; revision: string }): SelfMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  // These default gauges end in _total, which promtool's linter (rightly) rejects for non-counters.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  const buildInfo = new Gauge({
    name: 'portprobe_build_info',
    help: 'Version of the running portprobe agent (value 1).',
    labelNames: ['version', 'revision', 'nodejs'],
    registers: [registry],
  });
  buildInfo.set({ version: build.version, revision: build.revision, nodejs: process.version }, 1);
  new Gauge({
    name: 'portprobe_arrival_stamps_enabled',
    help: 'Whether probe phases are dated by the native arrival-stamp addon (1) or by the event loop (0: not built, or turned off).',
    registers: [registry],
    collect() {
      this.set(arrivalStampsEnabled() ? 1 : 0);
    },
  });
  new Counter({
    name: 'portprobe_last_resort_errors_total',
    help: 'Errors caught only by a last-resort guard (a prober that threw, an uncaught exception, an unhandled rejection); the agent kept running. Above 0 is a bug to report.',
    labelNames: ['kind'],
    registers: [registry],
    collect(this: Counter<'kind'>): void {
      this.reset();
      for (const kind of ['prober_threw', 'uncaught_exception', 'unhandled_rejection'] as const) {
        this.inc({ kind }, lastResortCounts().get(kind) ?? 0);
      }
    },
  });
  // Thousands of probes a second each hashing a label set cost more than the counter is worth;
  // keep plain counts per module and hand them to the counter when it is collected.
  const counts = new Map<string, { success: number; failure: number }>();
  return {
    countProbe(module: string, success: boolean): void {
      let c = counts.get(module);
      if (!c) counts.set(module, (c = { success: 0, failure: 0 }));
      if (success) c.success++;
      else c.failure++;
    },
    registry,
    configReloadSuccessful: new Gauge({
      name: 'portprobe_config_last_reload_successful',
      help: 'Whether the last configuration (re)load succeeded (1) or was rejected (0).',
      registers: [registry],
    }),
    configReloadTimestamp: new Gauge({
      name: 'portprobe_config_last_reload_success_timestamp_seconds',
      help: 'When the configuration was last loaded successfully, seconds since the epoch.',
      registers: [registry],
    }),
    probesTotal: new Counter({
      name: 'portprobe_probes_total',
      help: 'Scheduled probes completed, by module and result (success or failure).',
      labelNames: ['module', 'result'],
      registers: [registry],
      collect(this: Counter<'module' | 'result'>): void {
        this.reset();
        for (const [module, c] of counts) {
          if (c.success > 0) this.inc({ module, result: 'success' }, c.success);
          if (c.failure > 0) this.inc({ module, result: 'failure' }, c.failure);
        }
      },
    }),
    schedulerSkipped: new Counter({
      name: 'portprobe_scheduler_skipped_total',
      help: 'Scheduled runs skipped because the previous run of the same target was still going, and results discarded because a reload changed the target or its module during the probe.',
      registers: [registry],
    }),
    probesInFlight: new Gauge({
      name: 'portprobe_probes_in_flight',
      help: 'Probes running or waiting for a concurrency slot right now.',
      registers: [registry],
    }),
    targets: new Gauge({
      name: 'portprobe_targets',
      help: 'Configured targets, by whether this replica probes them (assigned) or leaves them to another shard (skipped).',
      labelNames: ['state'],
      registers: [registry],
    }),
    shardInfo: new Gauge({
      name: 'portprobe_shard_info',
      help: 'Shard of the targets this replica probes (value 1).',
      labelNames: ['index', 'count'],
      registers: [registry],
    }),
  };
}
