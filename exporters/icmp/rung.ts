// The checklist's first step before any ladder: ping the host. Any module may put this ICMP rung
// in front of its prober's ladder (`ping:` in the config, --ping for diagnose). The agent runs it
// through withPingRung; diagnose and the status page read its outcome here, so the rung's name,
// its verdict and its facts are known in one place.
import { abortSignalOf } from '../signal';
import type { Fact, ProbeContext, ProbeResult, Prober } from '../types';
import { parseHostPort } from '../net';
import { ICMP_DEFAULTS, icmpProber } from './prober';

/** The phase the ping rung reports, before the ladder's own phases. */
export const PING_PHASE = 'icmp';

/** Echo requests of a ping rung whose module does not say. */
export const DEFAULT_PING_PACKETS = 2;

export interface PingRung {
  /** A ping with no answer fails the probe; otherwise it is reported and the ladder goes on. */
  required: boolean;
  packets: number;
}

/** Whether modules of this prober ping already, and so take no ping rung of their own. */
export function pingsItself(prober: string): boolean {
  return prober === icmpProber.name;
}

/**
 * Runs the ping rung, then the ladder. A failed ping is recorded (phase "icmp", the probe_icmp_*
 * facts) and the ladder goes on unless the module requires the ping: many hosts drop ICMP while
 * their services work.
 */
export async function withPingRung(
  run: Prober<unknown>,
  ctx: ProbeContext<unknown>,
  ping: PingRung,
): Promise<ProbeResult> {
  const hp = parseHostPort(ctx.target.address, 1);
  const host = typeof hp === 'string' ? ctx.target.address : hp.host;
  // The ping gets a third of the time left (at most 2 s), so the ladder keeps enough for itself.
  const budgetMs = Math.round(Math.max(200, Math.min(2000, (ctx.deadline - Date.now()) / 3)));
  const pingSignal = AbortSignal.any([abortSignalOf(ctx.signal), AbortSignal.timeout(budgetMs)]);
  const pinged = await icmpProber.run({
    ...ctx,
    signal: pingSignal,
    deadline: Math.min(ctx.deadline, Date.now() + budgetMs),
    target: { ...ctx.target, address: host },
    module: { ...ctx.module, prober: icmpProber.name, settings: { ...ICMP_DEFAULTS, packets: ping.packets } },
  });
  const icmpPhase = { phase: PING_PHASE, seconds: pinged.phases.reduce((a, p) => a + p.seconds, 0) };
  if (!pinged.success && (ping.required || ctx.signal.aborted)) {
    return { ...pinged, phases: [icmpPhase] };
  }
  const main = await run(ctx);
  return {
    ...main,
    durationSeconds: main.durationSeconds + pinged.durationSeconds,
    phases: [icmpPhase, ...main.phases],
    facts: [...pinged.facts, ...main.facts],
    ...(pinged.findings || main.findings ? { findings: [...(pinged.findings ?? []), ...(main.findings ?? [])] } : {}),
    details: {
      ...(main.details ?? {}),
      ping: pinged.success ? 'answered' : `no answer: ${pinged.failure?.message ?? ''}`,
    },
  };
}

/** What a ping rung that was not required and got no answer said ("no answer: ..."); else undefined. Pure. */
export function unansweredPing(result: Pick<ProbeResult, 'details'>): string | undefined {
  const said = result.details?.ping;
  return typeof said === 'string' && said.startsWith('no answer') ? said : undefined;
}

export interface PingFacts {
  sent?: number;
  received?: number;
  /** Mean round trip of the echo replies (absent when none came back). */
  rttAvgSeconds?: number;
}

/** The ICMP rung's facts: what the ping rung is worth showing instead of its wall time. Pure. */
export function pingFacts(facts: readonly Fact[]): PingFacts {
  const one = (metric: string, stat?: string): number | undefined =>
    facts.find((f) => f.metric === metric && (stat === undefined || f.labels?.stat === stat))?.value;
  const out: PingFacts = {};
  const sent = one('probe_icmp_packets_sent');
  const received = one('probe_icmp_packets_received');
  const avg = one('probe_icmp_rtt_seconds', 'avg');
  if (sent !== undefined) out.sent = sent;
  if (received !== undefined) out.received = received;
  if (avg !== undefined && (received ?? 1) > 0) out.rttAvgSeconds = avg;
  return out;
}

/** "round trip 0.052 ms avg, 2 of 2 replies", or undefined without ICMP facts. Pure. */
export function pingText(facts: readonly Fact[]): string | undefined {
  const p = pingFacts(facts);
  if (p.sent === undefined) return undefined;
  const replies = `${p.received ?? 0} of ${p.sent} replies`;
  return p.rttAvgSeconds === undefined
    ? `no round trip: ${replies}`
    : `round trip ${(p.rttAvgSeconds * 1000).toFixed(3)} ms avg, ${replies}`;
}
