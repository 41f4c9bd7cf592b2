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
