// Runs the FTP prober once, the way the scheduler would: defaults merged, secrets resolved,
// a deadline on the AbortSignal.
import { ftpProber, type FtpSettings } from '../../exporters/ftp';
import { Secret } from '../../exporters/secret';
import type { Fact, ProbeResult } from '../../exporters/types';

export interface ProbeArgs extends Partial<Omit<FtpSettings, 'password'>> {
  password?: string;
}

export async function probeFtp(address: string, args: ProbeArgs = {}, timeoutSeconds = 5): Promise<ProbeResult> {
  const { password, ...rest } = args;
  const settings: FtpSettings = {
    ...ftpProber.defaults,
    ...rest,
    ...(password !== undefined ? { password: new Secret(password) } : {}),
  };
  const errors = ftpProber.validate?.(settings) ?? [];
  if (errors.length > 0) throw new Error(`invalid test settings: ${errors.join('; ')}`);
  const ac = new AbortController();
  const deadline = Date.now() + timeoutSeconds * 1000;
  const timer = setTimeout(() => ac.abort(), timeoutSeconds * 1000);
  try {
    const result = await ftpProber.run({
      target: { name: 't', address, labels: {} },
      module: { name: 'm', prober: 'ftp', timeoutSeconds, settings },
      signal: ac.signal,
      deadline,
      // The ladder keeps debug lines in result.log; nothing else needs them.
      logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    return result;
  } finally {
    clearTimeout(timer);
  }
}

/** The value of one fact, or undefined. */
export function fact(r: ProbeResult, metric: string, labels: Record<string, string> = {}): number | undefined {
  const match = (f: Fact): boolean =>
    f.metric === metric && Object.entries(labels).every(([k, v]) => f.labels?.[k] === v);
  return r.facts.find(match)?.value;
}

export function phaseNames(r: ProbeResult): string[] {
  return r.phases.map((p) => p.phase);
}
