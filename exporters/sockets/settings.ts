// The `sockets:` section of the agent's config: its type, JSON Schema, defaults and the
// semantic checks the schema cannot express.
import net from 'node:net';
import { DURATION_PATTERN, parseDuration } from '../duration';
import type { JsonSchema } from '../types';

export type SocketProtocol = 'tcp' | 'udp';

/**
 * Where the listener table comes from. `auto`: netlink (sock_diag) on Linux when the native
 * addon is built and the kernel allows it, else procfs on Linux, systeminformation elsewhere.
 */
export type SocketSource = 'auto' | 'netlink' | 'procfs' | 'systeminformation';

export interface ListenerExpectation {
  port: number;
  /** Default tcp. */
  protocol?: SocketProtocol;
  /** Exact local address (0.0.0.0, ::, 127.0.0.1 ...). Absent: any address. */
  address?: string;
  /** Process name as the kernel reports it (comm, at most 15 characters). Absent: any process. */
  process?: string;
}

export interface SocketsSettings {
  enabled: boolean;
  /** Scan interval, a duration such as 15s; the agent parses it. */
  interval: string;
  source: SocketSource;
  /** Root of the proc filesystem; /host/proc in a DaemonSet, a fixture tree in tests. */
  procfs: string;
  /** Resolve the owning process of each listener (needs root or the same user). */
  include_process: boolean;
  /** Read tcp6/udp6 as well. */
  ipv6: boolean;
  /** Count TCP connections by state (portprobe_tcp_connection_states). */
  tcp_states: boolean;
  expect: ListenerExpectation[];
  allow: {
    /** Port numbers or inclusive ranges "N-M" whose listeners are never unexpected. */
    ports: Array<number | string>;
    /** Process names whose listeners are never unexpected. */
    processes: string[];
  };
  /** At most this many portprobe_unexpected_listener_info series per scan. */
  max_unexpected_series: number;
}

const PORT_RANGE_PATTERN = '^[0-9]{1,5}(-[0-9]{1,5})?$';

export const SOCKETS_SETTINGS_SCHEMA: JsonSchema = {
  type: 'object',
  description:
    "This host's listening sockets as metrics: expected listeners up or down, unexpected listeners, " +
    'counts by port class and TCP connection states.',
  additionalProperties: false,
  properties: {
    enabled: { type: 'boolean', description: 'Scan the local sockets. Present and not false: on.' },
    interval: {
      type: 'string',
      pattern: DURATION_PATTERN,
      description: 'How often to scan, e.g. 15s.',
    },
    source: {
      enum: ['auto', 'netlink', 'procfs', 'systeminformation'],
      description:
        'Where the socket table comes from: auto picks netlink (sock_diag) on Linux when the native addon is built and allowed, ' +
        'else procfs on Linux, and systeminformation elsewhere.',
    },
    procfs: {
      type: 'string',
      minLength: 1,
      description:
        "Root of the proc filesystem; set /host/proc when the agent reads the host's sockets from a container.",
    },
    include_process: {
      type: 'boolean',
      description: 'Resolve the process owning each listener (root or the same user is needed to see other processes).',
    },
    ipv6: { type: 'boolean', description: 'Include IPv6 sockets (tcp6, udp6).' },
    tcp_states: { type: 'boolean', description: 'Export portprobe_tcp_connection_states.' },
    expect: {
      type: 'array',
      description: 'Listeners that must exist; each becomes portprobe_listener_up 1 or 0.',
      items: {
        type: 'object',
        description: 'One expected listener.',
        additionalProperties: false,
        required: ['port'],
        properties: {
          port: { type: 'integer', minimum: 0, maximum: 65535, description: 'Local port.' },
          protocol: { enum: ['tcp', 'udp'], description: 'tcp (listening) or udp (bound). Default tcp.' },
          address: {
            type: 'string',
            description: 'Exact local address such as 0.0.0.0, :: or 127.0.0.1; absent means any address.',
          },
          process: {
            type: 'string',
            minLength: 1,
            description: 'Process name (as in /proc/PID/comm, 15 characters at most); absent means any process.',
          },
        },
      },
    },
    allow: {
      type: 'object',
      description: 'Listeners that are never reported as unexpected.',
      additionalProperties: false,
      properties: {
        ports: {
          type: 'array',
          description: 'Ports or inclusive ranges such as "8000-8099".',
          items: {
            description: 'A port number or a range "N-M".',
            anyOf: [
              { type: 'integer', minimum: 0, maximum: 65535 },
              { type: 'string', pattern: PORT_RANGE_PATTERN },
            ],
          },
        },
        processes: {
          type: 'array',
          description: 'Process names whose listeners are allowed.',
          items: { type: 'string', minLength: 1, description: 'A process name.' },
        },
      },
    },
    max_unexpected_series: {
      type: 'integer',
      minimum: 0,
      maximum: 100000,
      description:
        'Cap on portprobe_unexpected_listener_info series; beyond it portprobe_unexpected_listeners_truncated is 1.',
    },
  },
};

export const SOCKETS_DEFAULTS: SocketsSettings = {
  enabled: true,
  interval: '15s',
  source: 'auto',
  procfs: '/proc',
  include_process: true,
  ipv6: true,
  tcp_states: true,
  expect: [],
  allow: { ports: [], processes: [] },
  max_unexpected_series: 100,
};

/** An inclusive port range. */
export interface PortRange {
  from: number;
  to: number;
}

/** 22 -> {22,22}; "8000-8099" -> {8000,8099}; anything else -> an error string. Pure. */
export function parsePortRange(spec: number | string): PortRange | string {
  if (typeof spec === 'number') {
    if (!Number.isInteger(spec) || spec < 0 || spec > 65535) return `${spec} is not a port (0-65535)`;
    return { from: spec, to: spec };
  }
  const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(spec);
  if (!m) return `"${spec}" is not a port or a range such as "8000-8099"`;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from > 65535 || to > 65535) return `"${spec}" is outside 0-65535`;
  if (from > to) return `"${spec}" starts after it ends`;
  return { from, to };
}

/** Linux keeps 15 characters of a process name; compare names the way the kernel stores them. */
export function commName(name: string): string {
  return name.slice(0, 15);
}

/** Milliseconds of "1m30s"-style text, undefined when it is not one (the schema reports that). Pure. */
function durationMs(text: string): number | undefined {
  try {
    return parseDuration(text);
  } catch {
    return undefined;
  }
}

/** Semantic checks; each message starts with the field path inside `sockets`. Pure. */
export function validateSocketsSettings(s: SocketsSettings): string[] {
  const problems: string[] = [];
  s.allow.ports.forEach((p, i) => {
    const r = parsePortRange(p);
    if (typeof r === 'string') problems.push(`allow.ports[${i}]: ${r}`);
  });
  const seen = new Map<string, number>();
  s.expect.forEach((e, i) => {
    if (e.address !== undefined && net.isIP(e.address) === 0) {
      problems.push(`expect[${i}].address: "${e.address}" is not an IP address such as 0.0.0.0 or ::1`);
    }
    if (e.process !== undefined && e.process.length > 15) {
      problems.push(
        `expect[${i}].process: "${e.process}" is longer than the 15 characters the kernel keeps; use "${commName(e.process)}"`,
      );
    }
    const key = `${e.protocol ?? 'tcp'}/${e.port}/${e.address ?? '*'}/${e.process ?? '*'}`;
    const first = seen.get(key);
    if (first !== undefined) problems.push(`expect[${i}]: same listener as expect[${first}]`);
    else seen.set(key, i);
  });
  const ms = durationMs(s.interval);
  if (ms !== undefined && ms < 1000) problems.push(`interval: must be at least 1s, got ${s.interval}`);
  if (!s.procfs.startsWith('/')) {
    problems.push(`procfs: "${s.procfs}" must be an absolute path such as /proc`);
  }
  return problems;
}
