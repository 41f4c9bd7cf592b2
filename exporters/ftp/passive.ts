// Data-channel address replies and commands: PASV (227, RFC 959), EPSV (229, RFC 2428),
// and the PORT / EPRT arguments the client sends for active mode. Pure functions.
import net from 'node:net';

export interface PasvAddress {
  host: string;
  port: number;
}

/**
 * Reads the address from a 227 reply text. Servers word it differently ("Entering Passive
 * Mode (h1,h2,h3,h4,p1,p2)", "=h1,...", no brackets at all), so the first run of six
 * comma-separated numbers counts. Returns an error string when there is none, when a
 * number is above 255, or when the port is 0.
 */
export function parsePasv(text: string): PasvAddress | string {
  const m = /(\d{1,3}),\s*(\d{1,3}),\s*(\d{1,3}),\s*(\d{1,3}),\s*(\d{1,3}),\s*(\d{1,3})/.exec(text);
  if (!m) return 'PASV reply carries no h1,h2,h3,h4,p1,p2 address';
  const n = m.slice(1, 7).map(Number);
  if (n.some((x) => x > 255)) return `PASV reply has a number above 255: ${m[0]}`;
  const port = n[4] * 256 + n[5];
  if (port === 0) return 'PASV reply advertises port 0';
  return { host: n.slice(0, 4).join('.'), port };
}

/**
 * Reads the port from a 229 reply text: "(<d><d><d>port<d>)" where <d> is one delimiter
 * character in the printable range 33-126 (usually "|"). The host part must be empty:
 * EPSV always means "the address you are already connected to".
 */
export function parseEpsv(text: string): number | string {
  const open = text.indexOf('(');
  if (open < 0) return 'EPSV reply carries no (|||port|) part';
  const close = text.indexOf(')', open);
  if (close < 0) return 'EPSV reply: missing ")"';
  const inner = text.slice(open + 1, close);
  if (inner.length < 5) return `EPSV reply: malformed "${inner}"`;
  const d = inner[0];
  const code = d.charCodeAt(0);
  if (code < 33 || code > 126 || /[0-9]/.test(d)) return `EPSV reply: bad delimiter "${d}"`;
  if (inner[1] !== d || inner[2] !== d || inner[inner.length - 1] !== d) {
    return `EPSV reply: malformed "${inner}"`;
  }
  const portText = inner.slice(3, inner.length - 1);
  if (!/^[0-9]{1,5}$/.test(portText)) return `EPSV reply: port "${portText}" is not a number`;
  const port = Number(portText);
  if (port < 1 || port > 65535) return `EPSV reply: port ${port} is out of range`;
  return port;
}

/** The argument of PORT for an IPv4 address: "h1,h2,h3,h4,p1,p2". */
export function formatPort(host: string, port: number): string {
  if (!net.isIPv4(host)) throw new Error(`PORT needs an IPv4 address, got ${host}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad port ${port}`);
  return `${host.split('.').join(',')},${port >> 8},${port & 255}`;
}

/** The argument of EPRT (RFC 2428): "|1|h|port|" or "|2|h|port|". */
export function formatEprt(host: string, port: number): string {
  const family = net.isIP(host);
  if (family === 0) throw new Error(`EPRT needs an IP address, got ${host}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad port ${port}`);
  return `|${family === 4 ? 1 : 2}|${host}|${port}|`;
}

/** Parses "N-M" (or "N") into an inclusive port range. Pure. */
export function parsePortRange(text: string): { from: number; to: number } | string {
  const m = /^\s*([0-9]{1,5})\s*(?:-\s*([0-9]{1,5})\s*)?$/.exec(text);
  if (!m) return `"${text}" is not a port range like 50000-50100`;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from < 1 || to > 65535) return `"${text}": ports must be within 1-65535`;
  if (from > to) return `"${text}": the first port is above the last`;
  return { from, to };
}

/**
 * Compares the address a PASV reply advertised with the control connection's peer. An
 * IPv4-mapped IPv6 peer ("::ffff:10.0.0.5") is the same host as "10.0.0.5".
 */
export function sameHost(advertised: string, controlPeer: string): boolean {
  const norm = (a: string): string =>
    a.toLowerCase().startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a.toLowerCase();
  return norm(advertised) === norm(controlPeer);
}

/**
 * What kind of IPv4 address a PASV reply named, for messages: a server behind NAT typically
 * advertises its private address. Pure.
 */
export function ipv4Kind(
  host: string,
): 'private' | 'loopback' | 'link-local' | 'unspecified' | 'shared (CGNAT)' | 'public' | 'invalid' {
  if (!net.isIPv4(host)) return 'invalid';
  const [a, b] = host.split('.').map(Number);
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'private';
  if (a === 127) return 'loopback';
  if (a === 169 && b === 254) return 'link-local';
  if (a === 0) return 'unspecified';
  if (a === 100 && b >= 64 && b <= 127) return 'shared (CGNAT)';
  return 'public';
}
