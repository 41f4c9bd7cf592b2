// The first rung of every ladder: does the host answer ping? Node has no raw sockets, so the
// system's iputils ping runs with a fixed argument list (no shell) and its output is parsed.
import net from 'node:net';
import type { FailureReason, ProberDef } from '../types';
import { DeadlineError, ProbeError, runLadder, type Ladder } from '../ladder';
import { IP_PROTOCOL_PROPERTIES, resolveHost, type IpPreference } from '../net';
import { classifyPingError, parsePingOutput } from './parse';
import { abortSignalOf, type ProbeSignal } from '../signal';

export interface IcmpSettings {
  preferred_ip_protocol: IpPreference;
  ip_protocol_fallback: boolean;
  /** Echo requests to send. */
  packets: number;
  /** Seconds between requests (iputils allows 0.2 s and up for unprivileged users). */
  interval_seconds: number;
  /** Payload bytes. */
  payload_size: number;
  /** Fail when more than this share of the packets is lost (0 = any loss fails). */
  max_loss_ratio: number;
  /** The ping binary (iputils). */
  ping_path: string;
}

export const ICMP_METRICS = [
  { name: 'probe_icmp_packets_sent', help: 'Echo requests sent in the last probe.', type: 'gauge', labelNames: [] },
  {
    name: 'probe_icmp_packets_received',
    help: 'Echo replies received in the last probe.',
    type: 'gauge',
    labelNames: [],
  },
  {
    name: 'probe_icmp_rtt_seconds',
    help: 'Round-trip time of the echo replies in the last probe, by statistic (min, avg, max, mdev).',
    type: 'gauge',
    labelNames: ['stat'],
  },
] as const;

export const ICMP_SETTINGS_SCHEMA = {
  type: 'object',
  description: 'ICMP echo (ping) probe settings.',
  additionalProperties: false,
  properties: {
    ...IP_PROTOCOL_PROPERTIES,
    packets: { type: 'integer', minimum: 1, maximum: 100, description: 'Echo requests per probe (default 3).' },
    interval_seconds: {
      type: 'number',
      minimum: 0.2,
      maximum: 10,
      description: 'Seconds between echo requests (default 0.2, the shortest unprivileged ping allows).',
    },
    payload_size: { type: 'integer', minimum: 0, maximum: 65000, description: 'Payload bytes (default 56).' },
    max_loss_ratio: {
      type: 'number',
      minimum: 0,
      maximum: 1,
      description: 'Fail when more than this share is lost: 0 fails on any loss (default), 0.5 tolerates half.',
    },
    ping_path: { type: 'string', minLength: 1, description: 'The iputils ping binary (default: ping on PATH).' },
  },
} as const;

const HOST_NAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9_.])?$/;

/** A host name or IP address (no port, nothing ping could read as an option). Pure. */
export function validateIcmpAddress(address: string): string | undefined {
  const a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (net.isIP(a)) return undefined;
  if (!HOST_NAME.test(a)) return `"${address}": expected a host name or IP address, without a port`;
  return undefined;
}

interface PingRun {
  code: number | string | null;
  stdout: string;
  stderr: string;
}

function runPing(path: string, args: string[], signal: ProbeSignal): Promise<PingRun> {
  return new Promise((resolve) => {
    try {
      // node:child_process on first use: an agent without ICMP modules or ping rungs never loads it.
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- see above
      const { execFile } = require('node:child_process') as typeof import('node:child_process');
      execFile(
        path,
        args,
        { signal: abortSignalOf(signal), timeout: 0, maxBuffer: 256 * 1024, encoding: 'utf8', env: { LC_ALL: 'C' } },
        (err, stdout, stderr) => {
          const code = err ? ((err as NodeJS.ErrnoException).code ?? (err as { status?: number }).status ?? 1) : 0;
          resolve({ code, stdout: String(stdout ?? ''), stderr: String(stderr ?? '') });
        },
      );
    } catch (err) {
      // Some spawn failures throw at once instead of calling back (EPERM, below).
      resolve({ code: (err as NodeJS.ErrnoException).code ?? 1, stdout: '', stderr: '' });
    }
  });
}

/**
 * Runs the ping rung inside any ladder: the ICMP prober itself, or the optional first rung of
 * the FTP and SQL Server ladders. Throws ProbeError on failure; records facts on the ladder.
 */
export async function pingRung(
  l: Ladder,
  address: string,
  family: 4 | 6,
  s: IcmpSettings,
  signal: ProbeSignal,
): Promise<void> {
  // -W bounds the wait for each reply; the probe's signal bounds the whole run. (-w would make
  // ping keep sending until `packets` replies arrive, which hides loss.)
  // Leave ping time to print its summary before the deadline: the sends take (packets-1) *
  // interval, starting the process a little more.
  const spare = l.remainingMs() - (s.packets - 1) * s.interval_seconds * 1000 - 300;
  const waitSeconds = Math.max(0.2, Math.min(5, spare / 1000)).toFixed(1);
  const args = [
    '-n',
    family === 6 ? '-6' : '-4',
    '-c',
    String(s.packets),
    '-i',
    String(s.interval_seconds),
    '-s',
    String(s.payload_size),
    '-W',
    waitSeconds,
    '--',
    address,
  ];
  const r = await runPing(s.ping_path, args, signal);
  if (signal.aborted) throw signal.reason instanceof DeadlineError ? signal.reason : new DeadlineError(false);
  if (r.code === 'ENOENT' || r.code === 'EACCES') {
    throw new ProbeError(
      'icmp_unavailable',
      `cannot run ${s.ping_path}: ${r.code}`,
      'Install iputils-ping, or drop the ICMP rung: without ping the agent cannot test reachability by ICMP.',
    );
  }
  // The kernel refuses to start a ping that carries cap_net_raw as a file capability when this
  // process may not hold it (no_new_privs, NET_RAW not in its bounding set): a container without
  // NET_RAW.
  if (r.code === 'EPERM') {
    throw new ProbeError(
      'icmp_unavailable',
      `cannot run ${s.ping_path}: EPERM (it needs NET_RAW, which this process may not have)`,
      'Grant the agent NET_RAW (in Kubernetes: securityContext.capabilities.add), or drop the ICMP rung.',
    );
  }
  const summary = parsePingOutput(r.stdout);
  if (!summary) {
    const e = classifyPingError(`${r.stderr}\n${r.stdout}`);
    const reason: FailureReason =
      e.kind === 'unavailable'
        ? 'icmp_unavailable'
        : e.kind === 'dns'
          ? 'dns_error'
          : e.kind === 'unreachable'
            ? 'unreachable'
            : 'internal_error';
    throw new ProbeError(
      reason,
      `ping: ${e.message}`,
      reason === 'icmp_unavailable'
        ? "ping needs NET_RAW or a net.ipv4.ping_group_range that includes the agent's group."
        : undefined,
    );
  }
  l.fact('probe_icmp_packets_sent', summary.transmitted);
  l.fact('probe_icmp_packets_received', summary.received);
  if (summary.rtt) {
    for (const [stat, v] of Object.entries(summary.rtt)) l.fact('probe_icmp_rtt_seconds', v, { stat });
  }
  l.details.ping = summary;
  const lost = summary.transmitted === 0 ? 1 : 1 - summary.received / summary.transmitted;
  if (summary.received === 0) {
    throw new ProbeError(
      'timeout',
      `no echo reply: ${summary.transmitted} sent, 0 received`,
      'The host does not answer ping: it is down, unreachable, or a firewall drops ICMP. Many hosts block ping; try the TCP rung before concluding.',
    );
  }
  if (lost > s.max_loss_ratio) {
    throw new ProbeError(
      'packet_loss',
      `${summary.transmitted - summary.received} of ${summary.transmitted} echo requests lost (${Math.round(lost * 100)}%)`,
      'The path loses packets: check links, interface errors and overloaded firewalls between the agent and the host.',
    );
  }
}

export const ICMP_DEFAULTS: IcmpSettings = {
  preferred_ip_protocol: 'ip4',
  ip_protocol_fallback: true,
  packets: 3,
  interval_seconds: 0.2,
  payload_size: 56,
  max_loss_ratio: 0,
  ping_path: 'ping',
};

export const icmpProber: ProberDef<IcmpSettings> = {
  name: 'icmp',
  urls: { schemes: ['icmp'], usage: 'icmp://host', fromUrl: (u) => ({ address: u.host, settings: {} }) },
  phases: ['resolve', 'icmp'],
  metrics: ICMP_METRICS,
  schema: ICMP_SETTINGS_SCHEMA,
  defaults: ICMP_DEFAULTS,
  validateAddress: (address) => validateIcmpAddress(address),
  run: (ctx) =>
    runLadder(ctx, async (l) => {
      const s = ctx.module.settings;
      const raw = ctx.target.address;
      const host = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
      const bad = validateIcmpAddress(raw);
      if (bad) throw new ProbeError('internal_error', bad);
      const resolved = await l.phase('resolve', () =>
        resolveHost(host, s.preferred_ip_protocol, s.ip_protocol_fallback, ctx.signal),
      );
      l.ipProtocol = resolved.family;
      await l.phase('icmp', () => pingRung(l, resolved.address, resolved.family, s, ctx.signal));
    }),
};
