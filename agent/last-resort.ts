// The last line of defence: errors that escaped every handler meant for them. A probe whose
// prober threw, an 'error' event nobody listened to, a promise rejection nobody awaited. The agent
// keeps serving and probing; each one is counted (portprobe_last_resort_errors_total) so that it
// is visible, and each distinct stack is logged once, so a peer that triggers it on every probe
// cannot flood the log. A count above zero is a bug of the agent's to report, not a peer's fault.
import type { ProbeLogger } from '../exporters/types';

export type LastResortKind = 'prober_threw' | 'uncaught_exception' | 'unhandled_rejection';

const counts = new Map<LastResortKind, number>();
const logged = new Set<string>();
const MAX_REMEMBERED = 1000;

/** Counts one error caught only by a last-resort guard and logs it the first time its stack is seen. */
export function lastResort(
  kind: LastResortKind,
  err: unknown,
  logger: ProbeLogger,
  fields: Record<string, unknown> = {},
): void {
  counts.set(kind, (counts.get(kind) ?? 0) + 1);
  const stack = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
  const key = `${kind}\n${stack}`;
  if (logged.has(key)) return;
  if (logged.size < MAX_REMEMBERED) logged.add(key);
  logger.error('BUG: error caught only by the last-resort guard (logged once per stack)', {
    ...fields,
    kind,
    err: err instanceof Error ? err.message : String(err),
    stack,
  });
}

/** The counts so far, for the self-metric. */
export function lastResortCounts(): ReadonlyMap<LastResortKind, number> {
  return counts;
}
