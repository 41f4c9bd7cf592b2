// Structured logs on stderr, logfmt (the exporters' default) or JSON, through pino.
import pino, { type Logger } from 'pino';
import type { ProbeLogger } from '../exporters/types';

export type LogFormat = 'logfmt' | 'json';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

function logfmtValue(v: unknown): string {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  return s === '' || /[\s"=\\]/.test(s) || /[\x00-\x1f]/.test(s) ? JSON.stringify(s) : s;
}

/** One logfmt line from one pino JSON record. Pure. */
export function toLogfmt(record: Record<string, unknown>): string {
  const { time, level, msg, ...rest } = record;
  let out = `ts=${logfmtValue(time)} level=${logfmtValue(level)}`;
  if (msg !== undefined) out += ` msg=${logfmtValue(msg)}`;
  for (const [k, v] of Object.entries(rest)) {
    if (v === undefined) continue;
    out += ` ${k.replace(/[\s="]/g, '_')}=${logfmtValue(v)}`;
  }
  return `${out}\n`;
}

/** Keys the record itself owns: a field of the same name would make a second one. */
const RESERVED = new Set(['msg', 'level', 'time']);

/**
 * The fields with any key the record owns renamed to `field_<key>`, so a caller's `msg` can
 * neither make a JSON record with two `msg` keys nor vanish from a logfmt line. Pure.
 */
export function safeFields(fields: Record<string, unknown>): Record<string, unknown> {
  if (!Object.keys(fields).some((k) => RESERVED.has(k))) return fields;
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [RESERVED.has(k) ? `field_${k}` : k, v]));
}

export interface AgentLogger extends ProbeLogger {
  pino: Logger;
}

export function createLogger(
  level: LogLevel,
  format: LogFormat,
  sink: { write(s: string): unknown } = process.stderr,
): AgentLogger {
  const stream =
    format === 'json'
      ? { write: (s: string) => sink.write(s) }
      : { write: (s: string) => sink.write(toLogfmt(JSON.parse(s) as Record<string, unknown>)) };
  const p = pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
  const wrap =
    (fn: 'debug' | 'info' | 'warn' | 'error') =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (fields) p[fn](safeFields(fields), msg);
      else p[fn](msg);
    };
  return { pino: p, debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error') };
}
