// Reads, validates and normalises a config file. Every error names the file, the line, the
// field path and what was expected. Secrets are read here and wrapped in Secret.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Document, type Node } from 'yaml';
import { COLLECTORS, DEFAULT_PING_PACKETS, PROBERS, pingsItself } from '../exporters';
import { Secret } from '../exporters/secret';
import type { ModuleSpec, TargetSpec } from '../exporters/types';
import { PATTERN_WORDS } from './schema';
import { compileSchema, configValidator } from './validator';
import { parseDuration } from '../exporters/duration';

export interface TargetConfig extends TargetSpec {
  module: string;
  intervalMs: number;
  /** Cron expression when the target runs on a schedule instead of an interval. */
  schedule?: string;
}

export interface CollectorConfig {
  name: string;
  enabled: boolean;
  intervalMs: number;
  settings: unknown;
}

export interface ProbeApiConfig {
  /** Anchored patterns of ad-hoc addresses /probe may reach; empty: configured targets only. */
  allowedAddresses: RegExp[];
  maxConcurrent: number;
}

export interface AgentConfig {
  file: string;
  probeApi: ProbeApiConfig;
  global: { intervalMs: number; timeoutMs: number; concurrency: number };
  modules: Map<string, ModuleSpec<unknown>>;
  targets: TargetConfig[];
  collectors: CollectorConfig[];
}

export class ConfigError extends Error {
  constructor(readonly errors: string[]) {
    super(errors.join('\n'));
    this.name = 'ConfigError';
  }
}

export const DEFAULT_GLOBAL = { interval: '30s', timeout: '10s', concurrency: 256 };
/** Labels a target may not set: the agent's own and every label some family already uses. */
function reservedLabels(): Set<string> {
  const out = new Set(['target', 'module', 'job', 'instance', 'phase', 'reason']);
  for (const def of [...Object.values(PROBERS), ...Object.values(COLLECTORS)]) {
    for (const m of def.metrics) for (const l of m.labelNames) out.add(l);
  }
  return out;
}
const SECRET_REF = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

export { compileSchema };

/** Whether a cron expression is valid; node-cron is loaded only for a config that has one. */
function cronValid(expr: string): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use: start-up cost
  return (require('node-cron') as typeof import('node-cron')).default.validate(expr);
}

export type PathPart = string | number;

/** "targets[3].labels.env" from ["targets", 3, "labels", "env"]. */
export function formatPath(parts: readonly PathPart[]): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? p : `.${p}`;
  }
  return out === '' ? '(top level)' : out;
}

function pointerToParts(pointer: string): PathPart[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^[0-9]+$/.test(s) ? Number(s) : s));
}

class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly file: string,
  ) {}

  /** "file:line" of the node at path, or of its nearest existing ancestor; `key` points at a map key. */
  at(parts: readonly PathPart[], key?: string): string {
    let node: unknown = this.doc.contents;
    let offset = (node as Node | null)?.range?.[0] ?? 0;
    const walk = key === undefined ? parts : [...parts, key];
    for (let i = 0; i < walk.length; i++) {
      const p = walk[i];
      if (isMap(node)) {
        const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === String(p));
        if (!pair) break;
        const isLastKey = key !== undefined && i === walk.length - 1;
        const target = isLastKey ? pair.key : (pair.value ?? pair.key);
        offset = (target as Node | null)?.range?.[0] ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof p === 'number') {
        const item = node.items[p];
        if (!item) break;
        offset = (item as Node).range?.[0] ?? offset;
        node = item;
      } else break;
    }
    const pos = this.lines.linePos(offset);
    return `${this.file}:${pos.line}`;
  }
}

function describeAjvError(e: ErrorObject): { parts: PathPart[]; key?: string; text: string } {
  const parts = pointerToParts(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { parts, text: `${formatPath(parts)}: missing required field "${String(p.missingProperty)}"` };
    case 'additionalProperties': {
      const extra = String(p.additionalProperty);
      const allowed = allowedKeys(e);
      return {
        parts,
        key: extra,
        text: `${formatPath([...parts, extra])}: unknown field${allowed ? ` (expected one of: ${allowed})` : ''}`,
      };
    }
    case 'type':
      return { parts, text: `${formatPath(parts)}: must be ${article(String(p.type))}` };
    case 'enum':
      return {
        parts,
        text: `${formatPath(parts)}: must be one of: ${(p.allowedValues as unknown[]).map(String).join(', ')}`,
      };
    case 'pattern': {
      const words = PATTERN_WORDS[String(p.pattern)];
      return { parts, text: `${formatPath(parts)}: must be ${words ?? `a string matching ${String(p.pattern)}`}` };
    }
    case 'propertyNames': {
      const name = String(p.propertyName);
      const pattern = (e.parentSchema as { propertyNames?: { pattern?: string } } | undefined)?.propertyNames?.pattern;
      const words = pattern ? PATTERN_WORDS[pattern] : undefined;
      return {
        parts,
        key: name,
        text: `${formatPath([...parts, name])}: invalid key${words ? `: must be ${words}` : ''}`,
      };
    }
    default:
      return { parts, text: `${formatPath(parts)}: ${e.message ?? e.keyword}` };
  }
}

function allowedKeys(e: ErrorObject): string | undefined {
  const props = (e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return props ? Object.keys(props).join(', ') : undefined;
}

function article(type: string): string {
  const a = /^[aeiou]/.test(type) ? 'an' : 'a';
  return `${a} ${type}`;
}

/** Loads and validates a config file; throws ConfigError listing every problem. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([
      `${file}: cannot read config: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    ]);
  }
  return parseConfig(text, file, env);
}

/** Parses config text. `file` names it in messages and anchors relative *_file paths. */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return parseConfigParts(text, file, env).config;
}

/**
 * The checked config and the raw document it came from (for a config parsed in the loader process:
 * the targets travel as data, everything else is rebuilt in the agent by `assembleConfig`).
 */
export function parseConfigParts(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): { config: AgentConfig; raw: unknown } {
  // When the schema rejects only optional values, the checks that need a well-formed file still
  // run without them, so one --config.check reports a bad duration and an unknown module at once.
  const salvage = (pruned: unknown, locate: Locate): string[] => {
    try {
      normalise(pruned as RawConfig, file, locate, env);
      return [];
    } catch (e) {
      if (e instanceof ConfigError) return e.errors;
      throw e;
    }
  };
  const { raw, locate } = parseYamlAgainst(text, file, configValidator(), salvage);
  return { config: normalise(raw as RawConfig, file, locate, env), raw };
}

/**
 * A config from a raw document checked already (`parseConfigParts` in the loader process) without
 * its targets, and those targets as `parseConfigParts` normalised them. Modules, secrets and the
 * collectors' settings are built here, in the process that uses them. Throws ConfigError when a
 * secret file or variable went away meanwhile.
 */
export function assembleConfig(
  head: unknown,
  targets: TargetConfig[],
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): AgentConfig {
  const cfg = normalise({ ...(head as RawConfig), targets: [] }, file, () => file, env);
  cfg.targets = targets;
  return cfg;
}

/**
 * A copy of `raw` without the values the schema rejected, or undefined when that copy is not
 * valid either (a rejected value was required, or sat in a list whose indices would shift).
 */
function pruneRejected(raw: unknown, errors: readonly ErrorObject[], validate: ValidateFunction): unknown {
  const copy = structuredClone(raw) as Record<string, unknown>;
  for (const e of errors) {
    // An if/then failure names the object holding the condition; its then-branch error names the value.
    if (e.keyword === 'if') continue;
    const parts = e.instancePath
      .split('/')
      .slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (e.keyword === 'additionalProperties')
      parts.push(String((e.params as { additionalProperty: string }).additionalProperty));
    if (parts.length === 0) return undefined;
    const key = parts.pop() as string;
    let node: unknown = copy;
    for (const p of parts) node = (node as Record<string, unknown> | undefined)?.[p];
    if (!node || typeof node !== 'object' || Array.isArray(node)) return undefined;
    delete (node as Record<string, unknown>)[key];
  }
  return validate(copy) ? copy : undefined;
}

export type Locate = (parts: readonly PathPart[], key?: string) => string;

/**
 * Parses YAML and validates it against a compiled schema; every problem becomes a
 * "file:line: path: what was expected" line in a ConfigError. Shared by the agent config and
 * the web config.
 */
export function parseYamlAgainst(
  text: string,
  file: string,
  validate: ValidateFunction,
  salvage?: (pruned: unknown, locate: Locate) => string[],
): { raw: unknown; locate: Locate } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        // The YAML library's message may quote the offending source line: keep only its first line
        // so a secret on a neighbouring line never reaches the output.
        const msg = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
        return `${file}:${pos ? pos.line : 1}: YAML syntax error: ${msg}`;
      }),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (e) {
    // Unresolved aliases and alias bombs surface only when the document is turned into values.
    throw new ConfigError([`${file}:1: YAML error: ${(e as Error).message.split('\n')[0]}`]);
  }
  const loc = new Locator(doc, lines, file);
  if (!validate(raw)) {
    const seen = new Set<string>();
    const errors: string[] = [];
    for (const e of validate.errors ?? []) {
      // propertyNames reports the inner pattern failure too; the propertyNames error says it better.
      if (e.keyword === 'if' || e.schemaPath.includes('/propertyNames/')) continue;
      const d = describeAjvError(e);
      const line = `${loc.at(d.parts, d.key)}: ${d.text}`;
      if (!seen.has(line)) {
        seen.add(line);
        errors.push(line);
      }
    }
    const rejected = [...(validate.errors ?? [])];
    const pruned = salvage && pruneRejected(raw, rejected, validate);
    if (pruned !== undefined && salvage) {
      for (const line of salvage(pruned, (parts, key) => loc.at(parts, key))) {
        if (!seen.has(line)) {
          seen.add(line);
          errors.push(line);
        }
      }
    }
    throw new ConfigError(sortByLine(errors));
  }
  return { raw, locate: (parts, key) => loc.at(parts, key) };
}

interface RawModule {
  prober: string;
  timeout?: string;
  ping?: { required?: boolean; packets?: number };
  [prober: string]: unknown;
}
interface RawTarget {
  name: string;
  module: string;
  address: string;
  interval?: string;
  schedule?: string;
  labels?: Record<string, string>;
}
interface RawConfig {
  probe_api?: { allowed_addresses?: string[]; max_concurrent?: number };
  global?: { interval?: string; timeout?: string; concurrency?: number };
  modules?: Record<string, RawModule>;
  targets?: RawTarget[];
  [collector: string]: unknown;
}

function normalise(raw: RawConfig, file: string, locate: Locate, env: NodeJS.ProcessEnv): AgentConfig {
  const errors: string[] = [];
  const err = (parts: PathPart[], text: string, key?: string): void => {
    errors.push(`${locate(parts, key)}: ${formatPath(key ? [...parts, key] : parts)}: ${text}`);
  };
  const baseDir = path.dirname(path.resolve(file));

  const g = { ...DEFAULT_GLOBAL, ...(raw.global ?? {}) };
  const intervalMs = parseDuration(g.interval);
  const global = {
    intervalMs,
    // Without an explicit timeout, a short global interval shortens the default deadline too.
    timeoutMs: raw.global?.timeout
      ? parseDuration(raw.global.timeout)
      : Math.min(parseDuration(DEFAULT_GLOBAL.timeout), intervalMs),
    concurrency: g.concurrency,
  };
  if (global.intervalMs < 1000) err(['global', 'interval'], 'must be at least 1s');
  if (global.timeoutMs < 1) err(['global', 'timeout'], 'must be greater than 0');

  const modules = new Map<string, ModuleSpec<unknown>>();
  for (const [name, m] of Object.entries(raw.modules ?? {})) {
    const def = PROBERS[m.prober];
    const here: PathPart[] = ['modules', name];
    for (const key of Object.keys(m)) {
      if (key !== 'prober' && key !== 'timeout' && key !== 'ping' && key !== m.prober) {
        err(here, `settings for prober "${key}" in a module whose prober is "${m.prober}"`, key);
      }
    }
    const user = (m[m.prober] ?? {}) as Record<string, unknown>;
    const settings = mergeDefaults(def.defaults as Record<string, unknown>, user);
    resolveSecrets(settings, [...here, m.prober], baseDir, env, err);
    for (const problem of def.validate?.(settings) ?? []) {
      const [fieldParts, text] = splitFieldProblem(problem);
      err([...here, m.prober, ...fieldParts], text);
    }
    const timeoutMs = m.timeout ? parseDuration(m.timeout) : global.timeoutMs;
    if (timeoutMs < 1) err([...here, 'timeout'], 'must be greater than 0');
    const spec: ModuleSpec<unknown> = { name, prober: m.prober, timeoutSeconds: timeoutMs / 1000, settings };
    if (m.ping) {
      if (pingsItself(m.prober)) err([...here, 'ping'], `an ${m.prober} module pings already`);
      spec.ping = { required: m.ping.required ?? false, packets: m.ping.packets ?? DEFAULT_PING_PACKETS };
    }
    modules.set(name, spec);
  }

  const targets: TargetConfig[] = [];
  const reserved = reservedLabels();
  const names = new Map<string, number>();
  (raw.targets ?? []).forEach((t, i) => {
    const here: PathPart[] = ['targets', i];
    const prev = names.get(t.name);
    if (prev !== undefined) err([...here, 'name'], `duplicate target name "${t.name}" (also targets[${prev}])`);
    names.set(t.name, i);
    const mod = modules.get(t.module);
    if (!mod) {
      const known = [...modules.keys()];
      err(
        [...here, 'module'],
        `unknown module "${t.module}"${known.length ? ` (known: ${known.join(', ')})` : ' (no modules defined)'}`,
      );
      return;
    }
    const addrProblem = PROBERS[mod.prober].validateAddress?.(t.address, mod.settings);
    if (addrProblem) err([...here, 'address'], addrProblem);
    for (const label of Object.keys(t.labels ?? {})) {
      if (reserved.has(label) || label.startsWith('__')) {
        err([...here, 'labels'], `label "${label}" is reserved`, label);
      }
    }
    const intervalMs = t.interval ? parseDuration(t.interval) : global.intervalMs;
    if (intervalMs < 1000) err([...here, 'interval'], 'must be at least 1s');
    if (t.schedule !== undefined && !cronValid(t.schedule)) {
      err([...here, 'schedule'], `"${t.schedule}" is not a valid cron expression`);
    }
    if (t.schedule !== undefined && t.interval !== undefined) {
      err([...here, 'schedule'], 'set either interval or schedule, not both');
    }
    if (t.schedule === undefined && mod.timeoutSeconds * 1000 > intervalMs) {
      err(
        [...here, 'module'],
        `module "${t.module}" has timeout ${mod.timeoutSeconds}s, longer than the interval ${intervalMs / 1000}s`,
      );
    }
    targets.push({
      name: t.name,
      module: t.module,
      address: t.address,
      labels: { ...(t.labels ?? {}) },
      intervalMs,
      schedule: t.schedule,
    });
  });

  const collectors: CollectorConfig[] = [];
  for (const [name, def] of Object.entries(COLLECTORS)) {
    const user = (raw[name] ?? undefined) as Record<string, unknown> | undefined;
    const settings = mergeDefaults(def.defaults as Record<string, unknown>, user ?? {});
    for (const problem of def.validate?.(settings) ?? []) {
      const [fieldParts, text] = splitFieldProblem(problem);
      err([name, ...fieldParts], text);
    }
    const enabled = user !== undefined && settings.enabled !== false;
    const interval = typeof settings.interval === 'string' ? parseDuration(settings.interval) : global.intervalMs;
    collectors.push({ name, enabled, intervalMs: interval, settings });
  }

  const allowedAddresses: RegExp[] = [];
  (raw.probe_api?.allowed_addresses ?? []).forEach((p, i) => {
    try {
      allowedAddresses.push(new RegExp(`^(?:${p})$`));
    } catch (e) {
      err(['probe_api', 'allowed_addresses', i], `not a valid regular expression: ${(e as Error).message}`);
    }
  });
  const probeApi = { allowedAddresses, maxConcurrent: raw.probe_api?.max_concurrent ?? 16 };

  if (errors.length > 0) throw new ConfigError(sortByLine(errors));
  return { file, probeApi, global, modules, targets, collectors };
}

/** "data_channel[1].mode: bad" -> (["data_channel", 1, "mode"], "bad"). Pure. */
export function splitFieldProblem(problem: string): [PathPart[], string] {
  const m = /^([A-Za-z_][A-Za-z0-9_]*(?:\[[0-9]+\]|\.[A-Za-z_][A-Za-z0-9_]*)*): (.*)$/s.exec(problem);
  if (!m) return [[], problem];
  const parts: PathPart[] = [];
  for (const t of m[1].matchAll(/([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]/g)) parts.push(t[1] ?? Number(t[2]));
  return [parts, m[2]];
}

function sortByLine(errors: string[]): string[] {
  const line = (s: string): number => Number(/^[^\n]*?:(\d+):/.exec(s)?.[1] ?? 0);
  return errors
    .map((e, i) => ({ e, i }))
    .sort((a, b) => line(a.e) - line(b.e) || a.i - b.i)
    .map((x) => x.e);
}

/** Deep merge of plain objects; arrays and scalars from `user` replace the defaults. */
export function mergeDefaults(
  defaults: Record<string, unknown>,
  user: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(user)) {
    const d = out[k];
    out[k] = isPlainObject(d) && isPlainObject(v) ? mergeDefaults(d, v) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Secret);
}

/**
 * Turns every `password` (a ${ENV} reference) and `password_file` into a Secret under `password`.
 * Messages name the variable or the file, never the value.
 */
function resolveSecrets(
  obj: Record<string, unknown>,
  parts: PathPart[],
  baseDir: string,
  env: NodeJS.ProcessEnv,
  err: (parts: PathPart[], text: string, key?: string) => void,
): void {
  for (const [key, value] of Object.entries(obj)) {
    if (isPlainObject(value)) resolveSecrets(value, [...parts, key], baseDir, env, err);
  }
  for (const [key, value] of Object.entries(obj)) {
    if (!key.endsWith('_file') || typeof value !== 'string') continue;
    const field = key.slice(0, -'_file'.length);
    if (!isSecretField(field)) continue;
    if (obj[field] !== undefined) {
      err(parts, `set either ${field} or ${key}, not both`, key);
      continue;
    }
    const p = path.resolve(baseDir, value);
    try {
      obj[field] = new Secret(readFileSync(p, 'utf8').replace(/\r?\n$/, ''));
    } catch (e) {
      err(parts, `cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, key);
    }
    delete obj[key];
  }
  for (const [key, value] of Object.entries(obj)) {
    if (!isSecretField(key) || typeof value !== 'string') continue;
    const m = SECRET_REF.exec(value);
    if (!m) {
      err(parts, 'inline secrets are not accepted: use an environment reference such as ${VAR} or a *_file', key);
      continue;
    }
    const v = env[m[1]];
    if (v === undefined) err(parts, `environment variable ${m[1]} is not set`, key);
    else obj[key] = new Secret(v);
  }
}

function isSecretField(name: string): boolean {
  return name === 'password' || name.endsWith('_password') || name === 'secret' || name.endsWith('_secret');
}
