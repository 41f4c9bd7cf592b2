import { inspect } from 'node:util';

/** A config value that names an environment variable: exactly ${NAME}. */
export const SECRET_REF_PATTERN = '^\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}$';

/**
 * A credential read from a file or the environment. It prints as "<secret>" through every
 * path that turns values into text (String(), template literals, JSON.stringify, util.inspect,
 * pino's serialisers), so it cannot leak into logs, metrics or error bodies by accident.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The only way to read the value. Call it at the point of use (a login), nowhere else. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '<secret>';
  }

  toJSON(): string {
    return '<secret>';
  }

  [inspect.custom](): string {
    return '<secret>';
  }
}

/** The shortest run of a secret's characters hidden wherever it appears. */
export const SECRET_FRAGMENT_MIN = 4;
const MASK = '<secret>';

const secretCache = new WeakMap<object, string[]>();

/** Every Secret value inside a settings object; remembered per (immutable) settings object. */
export function secretValues(settings: unknown): string[] {
  if (typeof settings !== 'object' || settings === null) return [];
  let found = secretCache.get(settings);
  if (!found) {
    found = collectSecrets(settings, [], 0);
    secretCache.set(settings, found);
  }
  return found;
}

function collectSecrets(settings: unknown, out: string[], depth: number): string[] {
  if (depth > 8 || typeof settings !== 'object' || settings === null) return out;
  if (settings instanceof Secret) {
    const v = settings.reveal();
    if (v.length >= 3) out.push(v);
    return out;
  }
  for (const v of Object.values(settings)) collectSecrets(v, out, depth + 1);
  return out;
}

interface Scrubber {
  /** Every run of SECRET_FRAGMENT_MIN characters of a secret, lower-cased. */
  grams: Set<string>;
  /** Secrets too short to have such runs: replaced where they appear whole. */
  short: string[];
}

const scrubbers = new WeakMap<readonly string[], Scrubber>();

function scrubberFor(secrets: readonly string[]): Scrubber {
  let s = scrubbers.get(secrets);
  if (!s) {
    s = { grams: new Set(), short: [] };
    for (const v of secrets) {
      if (v.length < SECRET_FRAGMENT_MIN) s.short.push(v);
      const lower = v.toLowerCase();
      for (let i = 0; i + SECRET_FRAGMENT_MIN <= lower.length; i++)
        s.grams.add(lower.slice(i, i + SECRET_FRAGMENT_MIN));
    }
    scrubbers.set(secrets, s);
  }
  return s;
}

/**
 * The text with every fragment of a secret hidden: any run of 4 or more characters that also
 * occurs in one of the secrets (case aside) becomes "<secret>". So a secret is hidden whole, and
 * also its first characters before a cut, its halves on two lines, the parts on either side of
 * a character the peer changed. Call it before the text is cut: a cut can leave fewer than 4
 * characters, which no scrubber can tell from chance. Secrets of 3 characters are hidden only
 * whole. Pure.
 */
export function scrubText(text: string, secrets: readonly string[]): string {
  if (secrets.length === 0 || text.length < 3) return text;
  const { grams, short } = scrubberFor(secrets);
  let out = text;
  if (grams.size > 0 && text.length >= SECRET_FRAGMENT_MIN) {
    const lower = text.toLowerCase();
    // Lower-casing a few characters changes the length; then compare as sent.
    const hay = lower.length === text.length ? lower : text;
    let hidden: Uint8Array | undefined;
    for (let i = 0; i + SECRET_FRAGMENT_MIN <= hay.length; i++) {
      if (grams.has(hay.slice(i, i + SECRET_FRAGMENT_MIN))) {
        hidden ??= new Uint8Array(text.length);
        hidden.fill(1, i, i + SECRET_FRAGMENT_MIN);
      }
    }
    if (hidden) {
      let acc = '';
      for (let i = 0; i < text.length;) {
        if (hidden[i]) {
          while (i < text.length && hidden[i]) i++;
          acc += MASK;
        } else acc += text[i++];
      }
      out = acc;
    }
  }
  for (const v of short) out = out.split(v).join(MASK);
  return out;
}

/** scrubText over every string inside a value (objects, arrays), to a bounded depth. */
export function scrubDeep(v: unknown, secrets: readonly string[], depth = 0): unknown {
  if (typeof v === 'string') return scrubText(v, secrets);
  if (depth > 6 || typeof v !== 'object' || v === null || v instanceof Secret) return v;
  if (Array.isArray(v)) return v.map((x) => scrubDeep(x, secrets, depth + 1));
  if (v instanceof Error) return scrubText(v.message, secrets);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, scrubDeep(x, secrets, depth + 1)]));
}
