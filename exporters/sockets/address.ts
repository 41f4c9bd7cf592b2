// Address text in one canonical form, so a listener and an expectation compare as strings:
// dotted IPv4, RFC 5952 IPv6 (lower case, longest zero run as ::), IPv4-mapped as ::ffff:a.b.c.d.
import net from 'node:net';

/** "[::1]", "::1%lo", "*" -> canonical text, or undefined when not an address. Pure. */
export function normalizeAddress(text: string, family: 4 | 6): string | undefined {
  let a = text.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  if (a === '*' || a === '') a = family === 6 ? '::' : '0.0.0.0';
  const kind = net.isIP(a);
  if (kind === 0) return undefined;
  if (kind === 4) return a;
  // Let the URL parser canonicalise IPv6 text (compression, case), then keep v4-mapped dotted.
  const canon = new URL(`http://[${a}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canon);
  if (mapped) {
    const hi = parseInt(mapped[1], 16);
    const lo = parseInt(mapped[2], 16);
    return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return canon;
}
