import { ConfigError } from '../../config/load';

/** The error lines of the ConfigError that `fn` throws; fails the test if it throws nothing. */
export function errorsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.errors;
    throw e;
  }
  throw new Error('expected a ConfigError');
}
