// Runs one probe with its deadline. Whatever the prober does — throw, hang past its deadline,
// ignore the signal — the caller gets a result within deadline + grace.
import { performance } from 'node:perf_hooks';
import { PROBERS } from '../exporters';
import { DeadlineError, classifyError } from '../exporters/ladder';
import type { FailureReason, ModuleSpec, ProbeLogger, ProbeResult, TargetSpec } from '../exporters/types';

/** How long past its deadline a prober may take to notice the abort before it is abandoned. */
export const ABANDON_GRACE_MS = 50;

export interface RunOptions {
  target: TargetSpec;
  module: ModuleSpec<unknown>;
  /** Overrides the module timeout (e.g. the scrape timeout of a /probe request). */
  timeoutMs?: number;
  /** Aborts the probe when the agent shuts down. */
  shutdown?: AbortSignal;
  logger: ProbeLogger;
}

export async function runProbe(opts: RunOptions): Promise<ProbeResult> {
  const def = PROBERS[opts.module.prober];
  const timeoutMs = Math.max(1, opts.timeoutMs ?? opts.module.timeoutSeconds * 1000);
  const started = performance.now();
  const controller = new AbortController();
  const deadline = Date.now() + timeoutMs;
  const timer = setTimeout(() => controller.abort(new DeadlineError(false)), timeoutMs);
  const onShutdown = (): void => controller.abort(new DeadlineError(true));
  if (opts.shutdown?.aborted) onShutdown();
  else opts.shutdown?.addEventListener('abort', onShutdown, { once: true });

  let guard: NodeJS.Timeout | undefined;
  try {
    const probe = Promise.resolve()
      .then(() =>
        def.run({
          target: opts.target,
          module: opts.module,
          signal: controller.signal,
          deadline,
          logger: opts.logger,
        }),
      )
      .catch((err: unknown): ProbeResult => {
        opts.logger.error('prober threw instead of returning a result', {
          target: opts.target.name,
          err: err instanceof Error ? err.message : String(err),
        });
        const c = classifyError(err, controller.signal);
        return failed(started, 'setup', c.reason === 'timeout' ? 'timeout' : 'internal_error', c.message);
      });
    const abandon = new Promise<ProbeResult>((resolve) => {
      const fire = (): void => {
        guard = setTimeout(() => {
          const shutdown = controller.signal.reason instanceof DeadlineError && controller.signal.reason.shutdown;
          resolve(
            failed(started, 'setup', shutdown ? 'aborted' : 'timeout', 'probe did not stop at its deadline; abandoned'),
          );
        }, ABANDON_GRACE_MS);
      };
      if (controller.signal.aborted) fire();
      else controller.signal.addEventListener('abort', fire, { once: true });
    });
    return await Promise.race([probe, abandon]);
  } finally {
    clearTimeout(timer);
    if (guard) clearTimeout(guard);
    opts.shutdown?.removeEventListener('abort', onShutdown);
  }
}

function failed(started: number, phase: string, reason: FailureReason, message: string): ProbeResult {
  return {
    success: false,
    durationSeconds: (performance.now() - started) / 1000,
    phases: [],
    facts: [],
    failure: { phase, reason, message },
  };
}
