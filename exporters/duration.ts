// Prometheus-style durations: 500ms, 15s, 1m30s, 2h, 7d, 2w, 1y. The one parser and pattern for
// the config, the probers' own settings and the command line.

/** Milliseconds in each unit (Prometheus's: a day is 24h, a week 7d, a year 365d). */
const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  y: 31_536_000_000,
};

/** JSON Schema pattern of a duration: one or more number-unit pairs. */
export const DURATION_PATTERN = '^([0-9]+(ms|s|m|h|d|w|y))+$';

/** How a person is told what a duration looks like (config errors name it). */
export const DURATION_WORDS = 'a duration such as 500ms, 15s, 1m or 1h30m';

const WHOLE = new RegExp(DURATION_PATTERN);
const PART = /([0-9]+)(ms|s|m|h|d|w|y)/g;

/** Milliseconds in a duration string; throws on anything else. Pure. */
export function parseDuration(text: string): number {
  if (!WHOLE.test(text)) throw new Error(`"${text}" is not a duration such as 15s or 1m30s`);
  let total = 0;
  for (const m of text.matchAll(PART)) total += Number(m[1]) * UNIT_MS[m[2]];
  return total;
}
