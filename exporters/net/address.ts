// Target addresses: parsing host:port forms, and resolution with an IP-version preference that
// honours the probe's deadline signal.
import net from 'node:net';
import { ProbeError, untilAborted } from '../ladder';
import type { ProbeSignal } from '../signal';

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses `host:port`, `[v6]:port`, `host`, `v6` (bare, no port) or `scheme://host:port/...`.
 * Returns an error string for anything else. Pure.
 */
export function parseHostPort(address: string, defaultPort?: number): HostPort | string {
  let s = address.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(s);
  if (scheme) {
    s = s.slice(scheme[0].length);
    const at = s.lastIndexOf('@', s.search(/[/?#]|$/));
    if (at >= 0) s = s.slice(at + 1);
    s = s.replace(/[/?#].*$/, '');
  }
  if (s === '') return 'address is empty';
  let host: string;
  let portText: string | undefined;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) return `"${address}": missing "]" after IPv6 address`;
    host = s.slice(1, end);
    const rest = s.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return `"${address}": expected ":port" after "]"`;
      portText = rest.slice(1);
    }
    if (net.isIPv6(host) === false) return `"${address}": "${host}" is not an IPv6 address`;
  } else if (s.split(':').length > 2) {
    // A bare IPv6 address without brackets cannot carry a port.
    if (!net.isIPv6(s)) return `"${address}": not a host:port (use [v6]:port for IPv6)`;
    host = s;
  } else {
    const colon = s.indexOf(':');
    host = colon >= 0 ? s.slice(0, colon) : s;
    portText = colon >= 0 ? s.slice(colon + 1) : undefined;
  }
  if (host === '') return `"${address}": host is empty`;
  if (!net.isIP(host) && !/^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9_.])?$/.test(host)) {
    return `"${address}": "${host}" is not a valid host name or address`;
  }
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) return `"${address}": a port is required (host:port)`;
    port = defaultPort;
  } else {
    if (!/^[0-9]{1,5}$/.test(portText)) return `"${address}": port "${portText}" is not a number`;
    port = Number(portText);
  }
  if (port < 1 || port > 65535) return `"${address}": port ${port} is out of range 1-65535`;
  return { host, port };
}

const parsedTargets = new WeakMap<object, { address: string; byDefault: Map<number | undefined, HostPort | string> }>();

/**
 * parseHostPort of a target's address, remembered on the target object: a scheduled target probes
 * the same address every interval. The result is shared: read it, do not change it.
 */
export function parseTargetAddress(target: { readonly address: string }, defaultPort?: number): HostPort | string {
  let known = parsedTargets.get(target);
  if (!known || known.address !== target.address) {
    known = { address: target.address, byDefault: new Map() };
    parsedTargets.set(target, known);
  }
  let parsed = known.byDefault.get(defaultPort);
  if (parsed === undefined) {
    parsed = parseHostPort(target.address, defaultPort);
    known.byDefault.set(defaultPort, parsed);
  }
  return parsed;
}

export type IpPreference = 'ip4' | 'ip6';

export interface Resolved {
  address: string;
  family: 4 | 6;
}

/**
 * Resolves a host to one address, preferring the given IP version; with fallback the other
 * version is used when the preferred one has no address.
 */
export async function resolveHost(
  host: string,
  prefer: IpPreference,
  fallback: boolean,
  signal: ProbeSignal,
): Promise<Resolved> {
  const literal = net.isIP(host);
  if (literal === 4 || literal === 6) {
    const family = literal;
    if (!fallback && family !== (prefer === 'ip4' ? 4 : 6)) {
      throw new ProbeError('dns_error', `${host} is IPv${family} but the module requires ${prefer}`);
    }
    return { address: host, family };
  }
  // node:dns on first use: targets given as IP addresses never load it (start-up, BENCHMARKS.md).
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- see above
  const dns = (require('node:dns') as typeof import('node:dns')).promises;
  const all = await untilAborted(dns.lookup(host, { all: true, verbatim: true }), signal);
  const want = prefer === 'ip4' ? 4 : 6;
  const preferred = all.find((a) => a.family === want);
  if (preferred) return { address: preferred.address, family: want };
  const other = all.find((a) => a.family === (want === 4 ? 6 : 4));
  if (other && fallback) return { address: other.address, family: other.family as 4 | 6 };
  throw new ProbeError(
    'dns_error',
    `${host} has no ${prefer === 'ip4' ? 'IPv4' : 'IPv6'} address${fallback ? '' : ' (fallback disabled)'}`,
  );
}

/** JSON Schema properties of the IP-version choice, shared by every prober that resolves names. */
export const IP_PROTOCOL_PROPERTIES = {
  preferred_ip_protocol: { enum: ['ip4', 'ip6'], description: 'IP version tried first when resolving the target.' },
  ip_protocol_fallback: {
    type: 'boolean',
    description: 'Use the other IP version when the preferred one has no address.',
  },
} as const;
