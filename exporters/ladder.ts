// Runs a prober's rungs in order, times each, and turns the first failure into a
// ProbeResult that names the rung and the reason. Probers use it so that none of them
// has to repeat the timing, the error mapping or the "never throw" guarantee.
import { performance } from 'node:perf_hooks';
import type { Fact, FailureReason, Finding, PhaseTiming, ProbeContext, ProbeFailure, ProbeResult } from './types';
import type { ProbeSignal } from './signal';
import { scrubText, secretValues } from './secret';

// A failed rung is an outcome, not a bug: its error carries a reason and a message, and nobody
// reads its call stack. Capturing one costs more than the rest of a failed probe's bookkeeping
// (about 10 µs with async frames), so these errors are made without it: `stackTraceLimit` is 0
// for the duration of the Error constructor only.

/** Throw inside a phase to fail it with a precise reason. */
export class ProbeError extends Error {
  readonly reason: FailureReason;
  readonly advice?: string;

  constructor(reason: FailureReason, message: string, advice?: string) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = 'ProbeError';
    this.reason = reason;
    this.advice = advice;
  }
}

/** Thrown by deadline helpers when the probe's signal fires. */
export class DeadlineError extends Error {
  readonly shutdown: boolean;

  constructor(shutdown: boolean) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(shutdown ? 'probe aborted: agent shutting down' : 'deadline exceeded');
    Error.stackTraceLimit = limit;
    this.name = 'DeadlineError';
    this.shutdown = shutdown;
  }
}

const ERRNO_REASONS: Record<string, FailureReason> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ECONNABORTED: 'reset',
  ETIMEDOUT: 'timeout',
  ENOTFOUND: 'dns_error',
  EAI_AGAIN: 'dns_error',
  EAI_FAIL: 'dns_error',
  EAI_NONAME: 'dns_error',
  EAI_NODATA: 'dns_error',
  ENODATA: 'dns_error',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ENETDOWN: 'unreachable',
  EADDRNOTAVAIL: 'unreachable',
};

const FD_ADVICE =
  "The agent has no file descriptor left for a new socket: raise its open-files limit (ulimit -n, LimitNOFILE in the systemd unit, the container runtime's nofile) or lower global.concurrency; portprobe_probes_in_flight and process_open_fds show how many it uses.";

/** True for errors raised by Node's TLS layer or OpenSSL. */
function isTlsError(err: NodeJS.ErrnoException): boolean {
  const code = err.code ?? '';
  return (
    code.startsWith('ERR_SSL') ||
    code.startsWith('ERR_TLS') ||
    code.includes('CERT') ||
    code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ||
    code === 'SELF_SIGNED_CERT_IN_CHAIN' ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    code === 'ERR_TLS_CERT_ALTNAME_INVALID' ||
    /ssl|tls|certificate/i.test(err.message)
  );
}

/** Maps any thrown value to a reason and a one-line message. Pure apart from reading signal. */
export function classifyError(
  err: unknown,
  signal?: ProbeSignal,
  secrets: readonly string[] = [],
): { reason: FailureReason; message: string; advice?: string } {
  // Secrets are hidden before the message is cut to one line (see scrubText).
  const line = (m: string): string => oneLine(m, 300, secrets);
  if (err instanceof ProbeError) {
    return { reason: err.reason, message: scrubText(err.message, secrets), advice: err.advice };
  }
  if (err instanceof DeadlineError) {
    return err.shutdown ? { reason: 'aborted', message: err.message } : { reason: 'timeout', message: err.message };
  }
  if (signal?.aborted) {
    const shutdown = isShutdown(signal);
    return shutdown
      ? { reason: 'aborted', message: 'probe aborted: agent shutting down' }
      : { reason: 'timeout', message: 'deadline exceeded' };
  }
  // Duck-typed: errors from another realm (vm contexts, test sandboxes) fail `instanceof Error`.
  if (typeof err === 'object' && err !== null && typeof (err as Error).message === 'string') {
    const e = err as NodeJS.ErrnoException;
    const code = e.code ?? '';
    if (code === 'EMFILE' || code === 'ENFILE') {
      // Not the target's fault: the agent itself could not open one more socket.
      return {
        reason: 'internal_error',
        message: `the agent ran out of file descriptors (${code}${code === 'ENFILE' ? ': the whole system' : ''}); the target was not tried`,
        advice: FD_ADVICE,
      };
    }
    const mapped = ERRNO_REASONS[code];
    if (mapped) return { reason: mapped, message: line(e.message) };
    if (isTlsError(e)) return { reason: 'tls_error', message: line(e.message) };
    if (e.name === 'AbortError' || e.name === 'TimeoutError') {
      return { reason: 'timeout', message: 'deadline exceeded' };
    }
    return { reason: 'internal_error', message: line(e.message || e.name) };
  }
  return { reason: 'internal_error', message: line(String(err)) };
}

/** A line break or tab anywhere, or white space at either end: what oneLine changes. */
const NEEDS_FLATTENING = /[\r\n\t]|^\s|\s$/;

/**
 * Keeps messages to one bounded line: they end up in logs and on the status page. With the
 * module's secrets given, every fragment of them is hidden first, before the cut.
 */
export function oneLine(s: string, max = 300, secrets: readonly string[] = []): string {
  // Most texts are one short clean line already: hand them back without copying.
  if (secrets.length === 0 && s.length <= max && !NEEDS_FLATTENING.test(s)) return s;
  const flat = scrubText(s, secrets)
    .replace(/[\r\n\t]+/g, ' ')
    .trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** The object a prober fills while it climbs its ladder. */
export class Ladder {
  readonly facts: Fact[] = [];
  readonly details: Record<string, unknown> = {};
  readonly log: string[] = [];
  readonly findings: Finding[] = [];
  ipProtocol?: 4 | 6;
  private readonly phases: PhaseTiming[] = [];
  private readonly started = performance.now();
  private failure?: ProbeFailure;
  private readonly later: ProbeFailure[] = [];
  private currentPhase = 'setup';
  private phaseEnd?: number;
  /** The declared end of the phase just finished: the next phase starts there. */
  private carry?: number;

  /** The module's secrets: every text the ladder keeps is scrubbed of them before it is cut. */
  private readonly secrets: readonly string[];

  constructor(private readonly ctx: ProbeContext<unknown>) {
    this.secrets = secretValues(ctx.module.settings);
  }

  get signal(): ProbeSignal {
    return this.ctx.signal;
  }

  /** Milliseconds left before the deadline (never negative). */
  remainingMs(): number {
    return Math.max(0, this.ctx.deadline - Date.now());
  }

  /**
   * Runs one rung. Its time is recorded even when it fails; a failure is remembered with
   * the phase name and rethrown so the prober stops climbing.
   */
  async phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const called = performance.now();
    const t0 = this.carry !== undefined && this.carry <= called ? this.carry : called;
    this.carry = undefined;
    this.currentPhase = name;
    this.phaseEnd = undefined;
    try {
      if (this.ctx.signal.aborted) throw new DeadlineError(isShutdown(this.ctx.signal));
      return await fn();
    } catch (err) {
      this.recordFailure(name, err);
      throw err;
    } finally {
      const now = performance.now();
      const stated = this.phaseEnd;
      const end = stated !== undefined && stated >= t0 && stated <= now ? stated : now;
      this.carry = end === stated ? end : undefined;
      this.phaseEnd = undefined;
      this.addTime(name, (end - t0) / 1000);
    }
  }

  /**
   * Says when the running phase really ended (a performance.now() time), when that is earlier
   * than the moment its code got to run: the arrival of the bytes that completed it
   * (exporters/net/arrival.ts). Ignored unless it lies within the phase. The next phase, if it
   * follows at once, starts at that time too, so no phase absorbs the event loop's delay.
   */
  endedAt(t: number): void {
    this.phaseEnd = t;
  }

  /** Adds a sample of one of the prober's families. */
  fact(metric: string, value: number, labels?: Record<string, string>): void {
    this.facts.push(labels ? { metric, value, labels } : { metric, value });
  }

  /** Records a non-fatal finding (one per code: a later one with the same code replaces it). */
  finding(f: Finding): void {
    const clean: Finding = { ...f, message: oneLine(f.message, 300, this.secrets) };
    if (f.advice === undefined) delete clean.advice;
    else clean.advice = scrubText(f.advice, this.secrets);
    const i = this.findings.findIndex((x) => x.code === f.code);
    if (i >= 0) this.findings[i] = clean;
    else this.findings.push(clean);
  }

  debug(line: string): void {
    const clean = scrubText(line, this.secrets);
    if (this.log.length < 200) this.log.push(oneLine(clean, 500));
    this.ctx.logger.debug(clean, (this.logFields ??= { target: this.ctx.target.name }));
  }

  /** The fields of every debug line of this probe (one object, not one per line). */
  private logFields?: { target: string };

  /** Marks a failure without throwing, for rungs that report and carry on (e.g. one data mode). */
  fail(phase: string, reason: FailureReason, message: string, advice?: string): void {
    this.remember({
      phase,
      reason,
      message: oneLine(message, 300, this.secrets),
      advice: advice === undefined ? undefined : scrubText(advice, this.secrets),
    });
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  private recordFailure(phase: string, err: unknown): void {
    // The same error rethrown by enclosing code is already recorded for its phase.
    if (this.failure?.phase === phase || this.later.some((f) => f.phase === phase)) return;
    const c = classifyError(err, this.ctx.signal, this.secrets);
    this.remember({ phase, reason: c.reason, message: c.message, advice: c.advice });
  }

  /** The first failure is the probe's; later ones (other rungs that report and carry on) are kept apart. */
  private remember(f: ProbeFailure): void {
    if (!this.failure) this.failure = f;
    else if (f.phase !== this.failure.phase && this.later.length < 8 && !this.later.some((x) => x.phase === f.phase))
      this.later.push(f);
  }

  private addTime(phase: string, seconds: number): void {
    const existing = this.phases.find((p) => p.phase === phase);
    if (existing) existing.seconds += seconds;
    else this.phases.push({ phase, seconds });
  }

  /** Builds the result. `err` is what escaped the body, if anything. */
  finish(err?: unknown): ProbeResult {
    if (err !== undefined) this.recordFailure(this.currentPhase, err);
    const result: ProbeResult = {
      success: this.failure === undefined,
      durationSeconds: (performance.now() - this.started) / 1000,
      phases: this.phases,
      facts: this.facts,
    };
    if (this.failure) result.failure = this.failure;
    if (this.later.length > 0) result.laterFailures = this.later;
    if (this.ipProtocol) result.ipProtocol = this.ipProtocol;
    if (Object.keys(this.details).length > 0) result.details = this.details;
    if (this.log.length > 0) result.log = this.log;
    if (this.findings.length > 0) result.findings = this.findings;
    return result;
  }
}

/** Whether the signal fired because the agent is shutting down (not at the probe's deadline). */
export function isShutdown(signal: ProbeSignal): boolean {
  return signal.reason instanceof DeadlineError && signal.reason.shutdown;
}

/**
 * Runs a prober body and always returns a result: whatever the body throws becomes the failure
 * of the phase it was in.
 */
export async function runLadder(ctx: ProbeContext<unknown>, body: (l: Ladder) => Promise<void>): Promise<ProbeResult> {
  const ladder = new Ladder(ctx);
  try {
    await body(ladder);
    return ladder.finish();
  } catch (err) {
    return ladder.finish(err);
  }
}

/**
 * Resolves with the promise, or rejects with DeadlineError as soon as the signal fires.
 * `onAbort` runs first (close the socket there).
 */
export function untilAborted<T>(promise: Promise<T>, signal: ProbeSignal, onAbort?: () => void): Promise<T> {
  if (signal.aborted) {
    onAbort?.();
    promise.catch(() => undefined);
    return Promise.reject(new DeadlineError(isShutdown(signal)));
  }
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => {
      onAbort?.();
      reject(new DeadlineError(isShutdown(signal)));
    };
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(e);
      },
    );
  });
}
