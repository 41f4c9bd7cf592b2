// Query rows to samples: pure functions, no I/O.
import { ProbeError } from '../ladder';
import type { Fact } from '../types';
import type { MssqlQuery } from './settings';

const MAX_LABEL_VALUE = 200;

export interface QueryRows {
  columns: string[];
  rows: unknown[][];
}

/** What rowsToFacts needs of a query: a user query (value_column or values) or a pack metric. */
export type RowSpec = Pick<MssqlQuery, 'name' | 'key_labels' | 'value_column' | 'values' | 'value_label'>;

/**
 * Turns rows into samples: key_labels become labels, each value column a sample (with several,
 * `value_label` holds the column's name as written in the config). Pure.
 * The NULL rule: a value that is NULL has no sample (SQL's "no value", e.g. a database that
 * is offline) and is counted in `skipped`; a value that is not a number fails the whole query,
 * naming the column and the row (1-based), since its samples would be wrong rather than missing.
 */
/**
 * A cell as text, for a label or a message: what String() gives for the values tedious returns
 * (strings, numbers, booleans, bigints, Dates, Buffers); JSON for anything else.
 */
export function cellText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v instanceof Date || Buffer.isBuffer(v)) return v.toString();
  return v === null || v === undefined ? '' : (JSON.stringify(v) ?? '');
}

export function rowsToFacts(q: RowSpec, r: QueryRows): { facts: Fact[]; skipped: number } {
  const lower = r.columns.map((c) => c.toLowerCase());
  const idx = (c: string): number => lower.indexOf(c.toLowerCase());
  const valueColumns = q.values ?? (q.value_column !== undefined ? [q.value_column] : []);
  const values = valueColumns.map((v) => {
    const i = idx(v);
    if (i < 0)
      throw new ProbeError(
        'query_error',
        `the result has no column ${v} (columns: ${r.columns.join(', ').slice(0, 200)})`,
      );
    return [v, i] as const;
  });
  const keys = (q.key_labels ?? []).map((k) => {
    const i = idx(k);
    if (i < 0) throw new ProbeError('query_error', `the result has no column ${k} for key_labels`);
    return [k, i] as const;
  });
  const facts: Fact[] = [];
  const seen = new Set<string>();
  let skipped = 0;
  r.rows.forEach((row, n) => {
    const keyLabels: Record<string, string> = {};
    for (const [k, i] of keys) keyLabels[k] = cellText(row[i]).slice(0, MAX_LABEL_VALUE);
    let sampled = false;
    for (const [column, vi] of values) {
      const raw = row[vi];
      if (raw === null || raw === undefined) {
        skipped++;
        continue;
      }
      const value = toNumber(raw);
      if (value === undefined) {
        throw new ProbeError(
          'query_error',
          `column ${column} of row ${n + 1} holds ${JSON.stringify(cellText(raw).slice(0, 40))}, not a number`,
          'Make the value columns numeric in the query (CAST or CONVERT), or filter the rows that are not.',
        );
      }
      if (!sampled) {
        // Rows without any sample (all NULL) do not count as duplicates.
        const id = JSON.stringify(keyLabels);
        if (seen.has(id)) throw new ProbeError('query_error', `two rows have the same key_labels ${id.slice(0, 200)}`);
        seen.add(id);
        sampled = true;
      }
      const labels = q.value_label !== undefined ? { ...keyLabels, [q.value_label]: column } : keyLabels;
      facts.push(
        keys.length || q.value_label !== undefined ? { metric: q.name, labels, value } : { metric: q.name, value },
      );
    }
  });
  return { facts, skipped };
}

/** A sample value from a column value: numbers, bigint, bit, and numeric text; undefined otherwise. */
function toNumber(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isNaN(raw) ? undefined : raw;
  if (typeof raw === 'bigint') return Number(raw);
  if (typeof raw === 'boolean') return raw ? 1 : 0;
  if (typeof raw === 'string') {
    const t = raw.trim();
    if (t === '') return undefined;
    const v = Number(t);
    return Number.isNaN(v) ? undefined : v;
  }
  return undefined;
}
