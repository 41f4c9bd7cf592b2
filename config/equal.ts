// Whether two loaded config values mean the same thing, so a reload can tell an unchanged
// target or module from a changed one even though every reload builds new objects.
import { Secret } from '../exporters/secret';

/**
 * Structural equality of config values: plain objects and arrays by their entries, Secrets by
 * their value, regular expressions by source and flags, Maps, Sets, Buffers and Dates by
 * content; functions only by identity. Pure.
 */
export function sameConfig(a: unknown, b: unknown, depth = 0): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (depth > 32) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (a instanceof Secret) return a.reveal() === (b as Secret).reveal();
  if (a instanceof RegExp) return a.source === (b as RegExp).source && a.flags === (b as RegExp).flags;
  if (a instanceof Date) return a.getTime() === (b as Date).getTime();
  if (ArrayBuffer.isView(a))
    return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
      Buffer.from((b as ArrayBufferView).buffer, (b as ArrayBufferView).byteOffset, (b as ArrayBufferView).byteLength),
    );
  if (a instanceof Map) {
    const m = b as Map<unknown, unknown>;
    if (a.size !== m.size) return false;
    for (const [k, v] of a) if (!m.has(k) || !sameConfig(v, m.get(k), depth + 1)) return false;
    return true;
  }
  if (a instanceof Set) {
    const s = b as Set<unknown>;
    return a.size === s.size && [...a].every((x) => s.has(x));
  }
  if (Array.isArray(a)) {
    const l = b as unknown[];
    return a.length === l.length && a.every((x, i) => sameConfig(x, l[i], depth + 1));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every(
    (k) =>
      Object.prototype.hasOwnProperty.call(b, k) &&
      sameConfig((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], depth + 1),
  );
}
