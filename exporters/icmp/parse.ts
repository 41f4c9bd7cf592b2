// Pure parsing of iputils ping output: the summary, round-trip statistics and the errors that
// name why ping could not run.

export interface PingSummary {
  transmitted: number;
  received: number;
  /** Seconds; absent when nothing came back. */
  rtt?: { min: number; avg: number; max: number; mdev: number };
}

export type PingError =
  | { kind: 'unavailable'; message: string }
  | { kind: 'dns'; message: string }
  | { kind: 'unreachable'; message: string }
  | { kind: 'other'; message: string };

/** Reads "N packets transmitted, M received" and "rtt min/avg/max/mdev = a/b/c/d ms". */
export function parsePingOutput(text: string): PingSummary | undefined {
  const counts = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(text);
  if (!counts) return undefined;
  const out: PingSummary = { transmitted: Number(counts[1]), received: Number(counts[2]) };
  const rtt = /(?:rtt|round-trip) min\/avg\/max\/(?:mdev|stddev) = ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(
    text,
  );
  if (rtt) {
    const [min, avg, max, mdev] = rtt.slice(1, 5).map((v) => Number(v) / 1000);
    out.rtt = { min, avg, max, mdev };
  }
  return out;
}

/** Classifies ping's complaint on stderr (or stdout) when it exited with status 2. */
export function classifyPingError(text: string): PingError {
  const line =
    text
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim()
      .slice(0, 200) ?? 'ping failed';
  if (/Operation not permitted|Permission denied|socket: .*permitted|ping_group_range|cap_net_raw/i.test(text)) {
    return { kind: 'unavailable', message: line };
  }
  if (/Name or service not known|Temporary failure in name resolution|unknown host|No address associated/i.test(text)) {
    return { kind: 'dns', message: line };
  }
  if (
    /Network is unreachable|No route to host|Destination Host Unreachable|Cannot assign requested address/i.test(text)
  ) {
    return { kind: 'unreachable', message: line };
  }
  return { kind: 'other', message: line };
}
