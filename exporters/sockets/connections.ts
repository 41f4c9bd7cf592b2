// Each TCP listener's established connections, from the established sockets counted by their
// local end. Pure.
import type { Listener } from './procnet';

/**
 * Sets `connections` on every TCP listener: the established sockets on its port whose local
 * address is its own, or, for a wildcard listener (0.0.0.0, ::), those on its port and family
 * that no listener on that exact address claims. (A dual-stack :: listener's IPv4 clients are
 * IPv6 sockets with ::ffff: addresses, so they count for it.) Listeners sharing a port and
 * address (SO_REUSEPORT) share one count, given to the first of them. Sockets still waiting
 * in an accept queue are established too, so they count.
 */
export function attributeConnections(
  listeners: Listener[],
  established: ReadonlyArray<ReadonlyMap<string, number>>,
): void {
  const exact = new Map<string, Listener>();
  const wildcard = new Map<string, Listener>();
  for (const l of listeners) {
    if (l.protocol !== 'tcp') continue;
    l.connections = 0;
    const key = `${l.family} ${l.address} ${l.port}`;
    if (!exact.has(key)) exact.set(key, l);
    if ((l.address === '0.0.0.0' || l.address === '::') && !wildcard.has(`${l.family} ${l.port}`))
      wildcard.set(`${l.family} ${l.port}`, l);
  }
  if (exact.size === 0) return;
  for (const m of established) {
    for (const [key, n] of m) {
      let l = exact.get(key);
      if (l === undefined) {
        const sp1 = key.indexOf(' ');
        const sp2 = key.lastIndexOf(' ');
        l = wildcard.get(`${key.slice(0, sp1)} ${key.slice(sp2 + 1)}`);
      }
      if (l !== undefined) l.connections = (l.connections ?? 0) + n;
    }
  }
}
