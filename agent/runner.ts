// Runs one probe with its deadline. Whatever the prober does — throw, hang past its deadline,
// ignore the signal — the caller gets a result within deadline + grace.
import { performance } from 'node:perf_hooks';
import { PROBERS, pingsItself, withPingRung } from '../exporters';
import { DeadlineError, classifyError, isShutdown } from '../exporters/ladder';
import { scrubDeep, scrubText, secretValues } from '../exporters/secret';
import { ProbeAbort } from '../exporters/signal';
import { lastResort } from './last-resort';
import type { Shutdown } from './shutdown';
import type { FailureReason, ModuleSpec, ProbeLogger, ProbeResult, TargetSpec } from '../exporters/types';

/** How long past its deadline a prober may take to notice the abort before it is abandoned. */
export const ABANDON_GRACE_MS = 50;

export interface RunOptions {
  target: TargetSpec;
  module: ModuleSpec<unknown>;
  /** Overrides the module timeout (e.g. the scrape timeout of a /probe request). */
  timeoutMs?: number;
  /** Aborts the probe when the agent shuts down. */
  shutdown?: Shutdown;
  logger: ProbeLogger;
}

export async function runProbe(opts: RunOptions): Promise<ProbeResult> {
  const def = PROBERS[opts.module.prober];
  const logger = scrubbingLogger(opts.logger, secretValues(opts.module.settings));
  const timeoutMs = Math.max(1, opts.timeoutMs ?? opts.module.timeoutSeconds * 1000);
  const started = performance.now();
  const controller = new ProbeAbort();
  const deadline = Date.now() + timeoutMs;
  // Once the signal fires the prober has ABANDON_GRACE_MS to return; then its result is made up.
  let guard: NodeJS.Timeout | undefined;
  let abandonWith: (r: ProbeResult) => void = () => undefined;
  const abandon = new Promise<ProbeResult>((resolve) => (abandonWith = resolve));
  const startGuard = (): void => {
    guard ??= setTimeout(() => {
      const shutdown = isShutdown(controller);
      abandonWith(
        failed(started, 'setup', shutdown ? 'aborted' : 'timeout', 'probe did not stop at its deadline; abandoned'),
      );
    }, ABANDON_GRACE_MS);
  };
  const timer = setTimeout(() => {
    controller.abort(new DeadlineError(false));
    startGuard();
  }, timeoutMs);
  const onShutdown = (): void => {
    controller.abort(new DeadlineError(true));
    startGuard();
  };
  const unsubscribe = opts.shutdown?.subscribe(onShutdown);

  try {
    const probe = Promise.resolve()
      .then(() => {
        const ctx = { target: opts.target, module: opts.module, signal: controller, deadline, logger };
        return opts.module.ping && !pingsItself(opts.module.prober)
          ? withPingRung(def.run, ctx, opts.module.ping)
          : def.run(ctx);
      })
      .catch((err: unknown): ProbeResult => {
        lastResort('prober_threw', err, logger, { target: opts.target.name, prober: opts.module.prober });
        const c = classifyError(err, controller, secretValues(opts.module.settings));
        return failed(started, 'setup', c.reason === 'timeout' ? 'timeout' : 'internal_error', c.message);
      });
    return scrubSecrets(await Promise.race([probe, abandon]), opts.module.settings);
  } finally {
    clearTimeout(timer);
    if (guard) clearTimeout(guard);
    unsubscribe?.();
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

export { secretValues };

/**
 * Defence in depth: a peer may echo what it was sent (a 530 reply quoting the password), and a
 * prober may copy that text into its message. Hide every fragment of a secret of the module
 * (exporters/secret.ts scrubText) in the strings of the result before it reaches logs, metrics
 * or pages. The ladder scrubs before it cuts a message; this catches what a prober cut itself.
 */
export function scrubSecrets(result: ProbeResult, settings: unknown): ProbeResult {
  const secrets = secretValues(settings);
  if (secrets.length === 0) return result;
  const clean = (s: string): string => scrubText(s, secrets);
  const deep = (v: unknown, depth: number): unknown => scrubDeep(v, secrets, depth);
  // Failures and findings alike: a message for people and, sometimes, advice.
  const note = <T extends { message: string; advice?: string }>(f: T): T =>
    f.advice ? { ...f, message: clean(f.message), advice: clean(f.advice) } : { ...f, message: clean(f.message) };
  const out: ProbeResult = { ...result };
  if (result.failure) out.failure = note(result.failure);
  if (result.laterFailures) out.laterFailures = result.laterFailures.map(note);
  if (result.details) out.details = deep(result.details, 0) as Record<string, unknown>;
  if (result.log) out.log = result.log.map(clean);
  if (result.findings) out.findings = result.findings.map(note);
  out.facts = result.facts.map((f) =>
    f.labels ? { ...f, labels: Object.fromEntries(Object.entries(f.labels).map(([k, v]) => [k, clean(v)])) } : f,
  );
  return out;
}

/** A logger that replaces the given secrets in messages and string fields before logging. */
export function scrubbingLogger(inner: ProbeLogger, secrets: readonly string[]): ProbeLogger {
  if (secrets.length === 0) return inner;
  const wrap =
    (fn: (m: string, f?: Record<string, unknown>) => void) =>
    (msg: string, fields?: Record<string, unknown>): void =>
      fn(scrubText(msg, secrets), fields && (scrubDeep(fields, secrets) as Record<string, unknown>));
  return {
    debug: wrap(inner.debug.bind(inner)),
    info: wrap(inner.info.bind(inner)),
    warn: wrap(inner.warn.bind(inner)),
    error: wrap(inner.error.bind(inner)),
  };
}
