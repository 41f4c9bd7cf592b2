// Builds ProbeContexts for calling probers directly in tests.
import type { ModuleSpec, ProbeContext, ProbeLogger, ProberDef } from '../../exporters/types';
import { mergeDefaults } from '../../config/load';
import { DeadlineError } from '../../exporters/ladder';
import { ProbeAbort } from '../../exporters/signal';

export const silentLogger: ProbeLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** Collects log calls so tests can assert on them (e.g. that no secret is logged). */
export function recordingLogger(): ProbeLogger & { lines: string[] } {
  const lines: string[] = [];
  const rec = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
    lines.push(`${level} ${msg} ${fields ? JSON.stringify(fields) : ''}`);
  };
  return { lines, debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') };
}

export interface TestProbe<M> {
  ctx: ProbeContext<M>;
  abort: () => void;
  dispose: () => void;
}

/** A context with a real deadline that aborts the signal like the agent's runner does (same signal type). */
export function probeContext<M>(
  def: ProberDef<M>,
  address: string,
  settings: Partial<M> = {},
  timeoutMs = 2000,
  logger: ProbeLogger = silentLogger,
): TestProbe<M> {
  const controller = new ProbeAbort();
  const timer = setTimeout(() => controller.abort(new DeadlineError(false)), timeoutMs);
  const module: ModuleSpec<M> = {
    name: `test_${def.name}`,
    prober: def.name,
    timeoutSeconds: timeoutMs / 1000,
    settings: mergeDefaults(def.defaults as Record<string, unknown>, settings) as M,
  };
  return {
    ctx: {
      target: { name: 'test-target', address, labels: {} },
      module,
      signal: controller,
      deadline: Date.now() + timeoutMs,
      logger,
    },
    abort: () => controller.abort(new DeadlineError(true)),
    dispose: () => clearTimeout(timer),
  };
}

/** Runs a prober with a fresh context and cleans the timer up. */
export async function runProber<M>(
  def: ProberDef<M>,
  address: string,
  settings: Partial<M> = {},
  timeoutMs = 2000,
): Promise<import('../../exporters/types').ProbeResult> {
  const p = probeContext(def, address, settings, timeoutMs);
  try {
    return await def.run(p.ctx);
  } finally {
    p.dispose();
  }
}
