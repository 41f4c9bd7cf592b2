// `portprobe diagnose`: climb the whole ladder once, live, with the same module the agent would
// run, and tell a person which rung failed and what to check next. Text, JSON and the exit code
// come from one verdict: 0 when every rung and every tested mode passed, 1 when one failed, 2 on
// usage or settings errors.
import { readFileSync } from 'node:fs';
import { stringify as yamlStringify, parse as yamlParse } from 'yaml';
import { DEFAULT_PING_PACKETS, PING_PHASE, PROBERS, pingText, pingsItself, unansweredPing } from '../../exporters';
import { adviceFor } from '../../exporters/advice';
import { Secret } from '../../exporters/secret';
import type { Fact, JsonSchema, ModuleSpec, ProberDef, ProbeResult, TargetSpec } from '../../exporters/types';
import {
  ConfigError,
  compileSchema,
  loadConfigFile,
  mergeDefaults,
  parseYamlAgainst,
  type AgentConfig,
} from '../../config/load';
import { parseDuration } from '../../exporters/duration';
import { runProbe } from '../runner';
import { createLogger } from '../logger';
import { findingLines, findingsSummary, infoFacts, sortedFindings } from '../status/findings';

export interface DiagnoseRequest {
  url: string;
  prober: string;
  address: string;
  settings: Record<string, unknown>;
}

export class UsageError extends Error {}

const DEFAULT_TIMEOUT_MS = 10_000;

/** The prober whose URLs have this scheme, from the registry. */
function proberOfScheme(scheme: string): ProberDef<unknown> | undefined {
  return Object.values(PROBERS).find((d) => d.urls?.schemes.includes(scheme));
}

/** "a, b or c". */
function oneOf(words: readonly string[]): string {
  return words.length <= 1 ? words.join('') : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`;
}

/**
 * Turns a diagnose URL into a prober, an address and module settings: the prober of the scheme
 * makes the target (its ProberDef's `urls`). Pure apart from the password, which comes in already
 * read. Throws UsageError with a one-line reason.
 */
export function parseDiagnoseUrl(raw: string, password?: string, insecure = false): DiagnoseRequest {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    const examples = Object.values(PROBERS).flatMap((d) => (d.urls ? [d.urls.usage.split(',')[0]] : []));
    throw new UsageError(`"${raw}" is not a URL such as ${oneOf(examples)}`);
  }
  const scheme = u.protocol.replace(/:$/, '');
  if (u.password !== '') {
    throw new UsageError('passwords do not belong on the command line: use --password-file=PATH or PORTPROBE_PASSWORD');
  }
  if (u.hostname === '') throw new UsageError(`"${raw}": no host`);
  const def = proberOfScheme(scheme);
  if (!def?.urls) {
    const all = Object.values(PROBERS).flatMap((d) => d.urls?.schemes ?? []);
    throw new UsageError(`unsupported scheme "${scheme}:" (use ${oneOf(all)})`);
  }
  let target: { address: string; settings: Record<string, unknown> };
  try {
    target = def.urls.fromUrl({
      raw,
      scheme,
      host: u.hostname,
      port: u.port === '' ? def.defaultPort : Number(u.port),
      portGiven: u.port !== '',
      user: decodeURIComponent(u.username),
      path: decodeURIComponent(u.pathname),
      secret: password !== undefined ? { password: new Secret(password) } : {},
      insecure,
    });
  } catch (e) {
    throw new UsageError(`"${raw}": ${(e as Error).message}`);
  }
  return { url: raw, prober: def.name, ...target };
}

export interface DiagnoseFlags {
  /** A URL (has "://") or, with --config.file, a configured target's name. */
  subject?: string;
  output: 'text' | 'json';
  /** Undefined: the module's timeout, or 10 s for a bare URL. */
  timeoutMs?: number;
  passwordFile?: string;
  /** Undefined: as the module says (none for a bare URL). */
  ping?: { required: boolean };
  insecure: boolean;
  configFile?: string;
  module?: string;
  /** --set KEY=VALUE, in order. */
  sets: string[];
  help: boolean;
}

/** The help text; the URL forms come from the probers' own `urls`. */
export function diagnoseUsage(): string {
  return [
    'usage: portprobe diagnose URL [flags]',
    '       portprobe diagnose URL --config.file=FILE --module=NAME [flags]',
    '       portprobe diagnose TARGET --config.file=FILE [flags]',
    '',
    'Runs one probe live, with the module the agent would run, and says which rung failed and what to',
    'check next. URLs:',
    ...Object.values(PROBERS).flatMap((d) => (d.urls ? [`  ${d.urls.usage}`] : [])),
    '',
    'Flags:',
    '  --config.file=FILE     Config file holding the target or the module.',
    '  --module=NAME          The module from --config.file to run against the URL (or the target).',
    "  --set KEY=VALUE        A module setting, checked against the prober's own schema; repeat it.",
    '                         Dotted keys reach nested settings; lists are comma separated:',
    '                         --set encrypt=true --set data_channel=epsv,active --set min_build.8=8.0.2039',
    '  --ping[=required]      Put the ICMP rung first; "required" fails the run when ping gets no answer',
    '                         (otherwise a failed ping is reported and the ladder goes on).',
    "  --timeout=DURATION     Bound for the whole run, ping included (default: the module's, else 10s).",
    "  --password-file=PATH   Password for the URL's user (or PORTPROBE_PASSWORD); never on the command line.",
    '  --insecure             Accept any server certificate.',
    '  --output=text|json     Output format (default text).',
    '  --help                 Show this help.',
    '',
    'Exit code: 0 every rung and every tested mode passed, 1 one failed (a required ping included),',
    '2 usage or settings error. Text, JSON and exit code always give the same verdict.',
  ].join('\n');
}

export function parseDiagnoseArgs(argv: readonly string[]): DiagnoseFlags {
  const f: DiagnoseFlags = { output: 'text', insecure: false, sets: [], help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h') {
      f.help = true;
      continue;
    }
    const m = /^--([a-z][a-z.-]*)(?:=(.*))?$/s.exec(a);
    if (!m) {
      if (f.subject !== undefined) throw new UsageError(`unexpected argument "${a}"`);
      f.subject = a;
      continue;
    }
    const value = (): string => {
      const v = m[2] ?? argv[++i];
      if (v === undefined) throw new UsageError(`--${m[1]} needs a value`);
      return v;
    };
    switch (m[1]) {
      case 'output': {
        const v = value();
        if (v !== 'text' && v !== 'json') throw new UsageError('--output must be text or json');
        f.output = v;
        break;
      }
      case 'timeout':
        try {
          f.timeoutMs = parseDuration(value());
        } catch (e) {
          throw new UsageError(`--timeout: ${(e as Error).message}`);
        }
        if (f.timeoutMs <= 0) throw new UsageError('--timeout must be greater than 0');
        break;
      case 'password-file':
        f.passwordFile = value();
        break;
      case 'ping':
        if (m[2] !== undefined && m[2] !== 'required') throw new UsageError('--ping takes no value, or =required');
        f.ping = { required: m[2] === 'required' };
        break;
      case 'insecure':
        f.insecure = true;
        break;
      case 'config.file':
        f.configFile = value();
        break;
      case 'module':
        f.module = value();
        break;
      case 'set':
        f.sets.push(value());
        break;
      case 'help':
        f.help = true;
        break;
      default:
        throw new UsageError(`unknown flag --${m[1]} (see portprobe diagnose --help)`);
    }
  }
  if (!f.help && f.subject === undefined)
    throw new UsageError('a URL or a target name is needed (see portprobe diagnose --help)');
  return f;
}

// ---------------------------------------------------------------------------------------------
// --set: KEY=VALUE pairs become a partial settings object, typed by the prober's schema.

/** The schema of a (possibly nested) setting, when the prober declares it. Pure. */
function schemaAt(schema: JsonSchema, parts: readonly string[]): JsonSchema | undefined {
  let cur: JsonSchema | undefined = schema;
  for (const p of parts) {
    if (!cur) return undefined;
    const props = cur.properties as Record<string, JsonSchema> | undefined;
    const patterns = cur.patternProperties as Record<string, JsonSchema> | undefined;
    cur = props?.[p] ?? Object.entries(patterns ?? {}).find(([re]) => new RegExp(re).test(p))?.[1];
  }
  return cur;
}

function scalar(raw: string, schema: JsonSchema | undefined, key: string): unknown {
  if (schema?.type === 'string') return raw;
  try {
    return yamlParse(raw) as unknown;
  } catch (e) {
    throw new UsageError(`--set ${key}: "${raw}" cannot be read: ${(e as Error).message.split('\n')[0]}`);
  }
}

const SECRET_KEY = /(^|_)(password|secret)(_file)?$/;

/**
 * Builds the settings overlay from --set pairs. Values are YAML scalars (true, 5, strict) read
 * with the type the schema gives the key: a string setting keeps its text as is, a list setting
 * takes "a,b,c" (or a YAML flow list). Pure.
 */
export function parseSets(sets: readonly string[], schema: JsonSchema): Record<string, unknown> {
  const overlay: Record<string, unknown> = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set "${s}": expected KEY=VALUE, e.g. --set encrypt=true`);
    const key = s.slice(0, eq);
    const raw = s.slice(eq + 1);
    const parts = key.split('.');
    if (parts.some((p) => p === '')) throw new UsageError(`--set "${s}": "${key}" is not a setting name`);
    if (parts.some((p) => SECRET_KEY.test(p))) {
      throw new UsageError(
        `--set ${key}: secrets do not belong on the command line: use --password-file=PATH or PORTPROBE_PASSWORD`,
      );
    }
    const at = schemaAt(schema, parts);
    let value: unknown;
    if (at?.type === 'array' && !raw.trim().startsWith('[')) {
      const items = at.items as JsonSchema | undefined;
      value = raw === '' ? [] : raw.split(',').map((x) => scalar(x.trim(), items, key));
    } else value = scalar(raw, at, key);
    let node = overlay;
    for (const p of parts.slice(0, -1)) {
      const next = node[p];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[p] = {};
      node = node[p] as Record<string, unknown>;
    }
    node[parts[parts.length - 1]] = value;
  }
  return overlay;
}

const compiledSchemas = new Map<string, ReturnType<typeof compileSchema>>();

/** Checks the overlay against the prober's schema; messages read like the config loader's. */
function checkOverlay(prober: string, overlay: Record<string, unknown>): string[] {
  if (Object.keys(overlay).length === 0) return [];
  let validate = compiledSchemas.get(prober);
  if (!validate) {
    validate = compileSchema(PROBERS[prober].schema);
    compiledSchemas.set(prober, validate);
  }
  try {
    parseYamlAgainst(yamlStringify(overlay), '--set', validate);
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.errors.map((x) => x.replace(/^--set:\d+: /, `--set (${prober} settings): `));
  }
}

// ---------------------------------------------------------------------------------------------
// What to run: a target or URL, its module, and the settings after --set.

export interface DiagnosePlan {
  /** What the text header shows: the URL or the target's name. */
  subject: string;
  target: TargetSpec;
  module: ModuleSpec<unknown>;
}

function readPassword(file: string | undefined, env: NodeJS.ProcessEnv, fromEnv: boolean): string | undefined {
  if (file !== undefined) {
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new UsageError(`--password-file: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  return fromEnv ? env.PORTPROBE_PASSWORD : undefined;
}

function loadConfig(file: string, env: NodeJS.ProcessEnv): AgentConfig {
  try {
    return loadConfigFile(file, env);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.errors.join('\n'));
    throw e;
  }
}

function moduleFrom(cfg: AgentConfig, name: string, file: string): ModuleSpec<unknown> {
  const m = cfg.modules.get(name);
  if (!m) {
    const known = [...cfg.modules.keys()];
    throw new UsageError(`${file}: no module "${name}"${known.length ? ` (modules: ${known.join(', ')})` : ''}`);
  }
  return m;
}

/**
 * Resolves what to run, exactly as the agent would: a configured target with its module, a URL
 * with a configured module, or a URL alone (the prober's defaults); then --set on top, checked
 * by the prober's schema and its semantic checks. Throws UsageError listing every problem.
 */
export function planDiagnose(f: DiagnoseFlags, env: NodeJS.ProcessEnv): DiagnosePlan {
  const subject = f.subject as string;
  const cfg = f.configFile !== undefined ? loadConfig(f.configFile, env) : undefined;
  let target: TargetSpec;
  let base: ModuleSpec<unknown> | undefined;
  let fromUrl: Record<string, unknown> = {};
  let prober: string;
  if (subject.includes('://')) {
    if (f.module !== undefined && !cfg) throw new UsageError('--module needs --config.file, the file the module is in');
    const req = parseDiagnoseUrl(subject, readPassword(f.passwordFile, env, true), f.insecure);
    base = cfg && f.module !== undefined ? moduleFrom(cfg, f.module, f.configFile as string) : undefined;
    if (base && base.prober !== req.prober) {
      throw new UsageError(
        `module "${base.name}" runs the ${base.prober} prober, but ${subject} is a ${req.prober} URL`,
      );
    }
    prober = req.prober;
    target = { name: 'diagnose', address: req.address, labels: {} };
    fromUrl = req.settings;
  } else {
    if (!cfg)
      throw new UsageError(
        `"${subject}" is not a URL; to diagnose a configured target, give its config: --config.file=FILE`,
      );
    if (f.insecure) {
      throw new UsageError(
        "--insecure goes with a URL; for a configured target set the prober's own setting with --set (e.g. tls_config.insecure_skip_verify=true, trust_server_certificate=true)",
      );
    }
    const t = cfg.targets.find((x) => x.name === subject);
    if (!t) {
      const names = cfg.targets.map((x) => x.name);
      const shown = names.slice(0, 20).join(', ') + (names.length > 20 ? ', …' : '');
      throw new UsageError(`${f.configFile}: no target "${subject}"${names.length ? ` (targets: ${shown})` : ''}`);
    }
    base = moduleFrom(cfg, f.module ?? t.module, f.configFile as string);
    prober = base.prober;
    target = { name: t.name, address: t.address, labels: t.labels };
    const pw = readPassword(f.passwordFile, env, false);
    if (pw !== undefined) fromUrl = { password: new Secret(pw) };
  }
  const def: ProberDef<unknown> = PROBERS[prober];
  const overlay = parseSets(f.sets, def.schema);
  const problems = checkOverlay(prober, overlay);
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
  const start = (base?.settings ?? def.defaults) as Record<string, unknown>;
  const settings = mergeDefaults(mergeDefaults(start, fromUrl), overlay);
  const semantic = (def.validate?.(settings) ?? []).map((p) => `settings (${prober}): ${p}`);
  const addr = def.validateAddress?.(target.address, settings);
  if (addr) semantic.push(`address: ${addr}`);
  if (semantic.length > 0) throw new UsageError(semantic.join('\n'));
  const module: ModuleSpec<unknown> = {
    name: base?.name ?? `diagnose_${prober}`,
    prober,
    timeoutSeconds: (f.timeoutMs ?? (base ? base.timeoutSeconds * 1000 : DEFAULT_TIMEOUT_MS)) / 1000,
    settings,
  };
  const ping = f.ping
    ? { required: f.ping.required, packets: base?.ping?.packets ?? DEFAULT_PING_PACKETS }
    : base?.ping;
  if (ping && !pingsItself(prober)) module.ping = ping;
  return { subject, target, module };
}

// ---------------------------------------------------------------------------------------------
// The verdict: one per run, from which text, JSON and the exit code are all written.

export type RungStatus = 'ok' | 'failed' | 'not_reached' | 'not_tested';

export interface RungLine {
  phase: string;
  seconds?: number;
  status: RungStatus;
  /** For a failed rung: the reason, when the result names it. */
  reason?: string;
  message?: string;
  /** A failed rung that does not fail the run (a ping the module does not require). */
  optional?: boolean;
}

/**
 * Phases reported per mode by a success sample: a phase `<group>_<value>` of a prober that
 * declares a one-label `*_success` family whose name holds `_<group>_` (for FTP, data_epsv and
 * probe_ftp_data_channel_success{mode="epsv"}). Returns the family and label, or undefined. Pure.
 */
function perModeFamily(
  def: Pick<ProberDef<unknown>, 'metrics'>,
  phase: string,
): { metric: string; label: string; value: string } | undefined {
  const cut = phase.lastIndexOf('_');
  if (cut <= 0) return undefined;
  const group = phase.slice(0, cut);
  const value = phase.slice(cut + 1);
  const fam = def.metrics.find(
    (m) => m.name.endsWith('_success') && m.labelNames.length === 1 && m.name.includes(`_${group}_`),
  );
  return fam ? { metric: fam.name, label: fam.labelNames[0], value } : undefined;
}

function sample(facts: readonly Fact[], metric: string, label: string, value: string): number | undefined {
  return facts.find((f) => f.metric === metric && f.labels?.[label] === value)?.value;
}

/**
 * One line per rung: those that ran (a per-mode rung passes only on its own success sample, and
 * one without a sample was not tested), the failed one, then the ladder's later rungs as not
 * reached. `ping` says whether the run had the ICMP rung and whether it was required. Pure.
 */
export function rungLines(
  def: Pick<ProberDef<unknown>, 'phases' | 'metrics'>,
  result: ProbeResult,
  ping?: { required: boolean },
): RungLine[] {
  const ladder = [...(ping ? [PING_PHASE] : []), ...def.phases];
  const timing = new Map(result.phases.map((p) => [p.phase, p.seconds]));
  const failedAt = result.failure?.phase;
  const failedIdx = failedAt === undefined ? -1 : ladder.indexOf(failedAt);
  const later = new Map((result.laterFailures ?? []).map((f) => [f.phase, f]));
  const lines: RungLine[] = [];
  for (const [i, phase] of ladder.entries()) {
    const seconds = timing.get(phase);
    const ran = seconds !== undefined;
    const base: RungLine = ran ? { phase, seconds, status: 'ok' } : { phase, status: 'ok' };
    if (phase === failedAt) {
      lines.push({ ...base, status: 'failed', reason: result.failure?.reason, message: result.failure?.message });
      continue;
    }
    if (phase === PING_PHASE && ping && !ping.required) {
      const said = unansweredPing(result);
      if (said) {
        lines.push({
          ...base,
          status: 'failed',
          optional: true,
          message: `${said.replace(/: $/, '')} (ping not required: the ladder went on)`,
        });
        continue;
      }
    }
    const mode = perModeFamily(def, phase);
    if (mode) {
      const v = sample(result.facts, mode.metric, mode.label, mode.value);
      if (v === 1) lines.push({ ...base, status: 'ok' });
      else if (v === 0 && ran) {
        const f = later.get(phase);
        lines.push(
          f ? { ...base, status: 'failed', reason: f.reason, message: f.message } : { ...base, status: 'failed' },
        );
      } else lines.push({ phase, status: 'not_tested' });
      continue;
    }
    if (ran) lines.push(base);
    else if (failedIdx >= 0 && i > failedIdx) lines.push({ phase, status: 'not_reached' });
  }
  // A failure outside the ladder's phase list (setup, an abandoned probe) still gets its line.
  if (failedAt !== undefined && failedIdx < 0) {
    lines.push({ phase: failedAt, status: 'failed', reason: result.failure?.reason, message: result.failure?.message });
  }
  return lines;
}

export interface Verdict {
  success: boolean;
  lines: RungLine[];
  /** The rungs that failed the run, in ladder order. */
  failed: RungLine[];
}

/** The run's one verdict: it fails when the probe failed or any non-optional rung or mode did. Pure. */
export function verdictOf(
  def: Pick<ProberDef<unknown>, 'phases' | 'metrics'>,
  result: ProbeResult,
  ping?: { required: boolean },
): Verdict {
  const lines = rungLines(def, result, ping);
  const failed = lines.filter((l) => l.status === 'failed' && !l.optional);
  return { success: result.success && failed.length === 0, lines, failed };
}

/** Human output; colour only when asked (a terminal without NO_COLOR). Pure. */
export function formatText(plan: DiagnosePlan, result: ProbeResult, colour: boolean): string {
  const def = PROBERS[plan.module.prober];
  const v = verdictOf(def, result, plan.module.ping);
  const c = (code: string, s: string): string => (colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  const out: string[] = [
    `portprobe diagnose ${plan.subject}`,
    `  module ${plan.module.name} (${plan.module.prober}), address ${plan.target.address}, timeout ${plan.module.timeoutSeconds}s`,
  ];
  for (const l of v.lines) {
    const mark =
      l.status === 'ok' ? c('32', '✓') : l.status === 'failed' ? c(l.optional ? '33' : '31', '✗') : c('2', '·');
    const time = l.seconds === undefined ? '' : `${(l.seconds * 1000).toFixed(1)} ms`;
    let line = `  ${mark} ${l.phase.padEnd(12)} ${time.padStart(10)}`;
    if (l.status === 'failed') {
      line += l.reason ? `  ${l.reason}: ${l.message ?? ''}` : l.message ? `  ${l.message}` : '  failed';
    } else if (l.status === 'not_reached') line += '  not reached';
    else if (l.status === 'not_tested') line += '  not tested';
    if (l.phase === PING_PHASE && l.status !== 'not_reached') {
      const rtt = pingText(result.facts);
      if (rtt) line += `  (${rtt})`;
    }
    out.push(line);
  }
  for (const i of infoFacts(result.facts)) out.push(`    ${i.name}: ${i.value}`);
  const findings = findingLines(result, '  ');
  if (findings.length > 0) out.push(`findings (${findingsSummary(result)}):`, ...findings);
  if (v.success) {
    const n = sortedFindings(result).length;
    out.push(c('32', `result: every rung passed${n ? `; findings above: ${findingsSummary(result)}` : ''}`));
  } else {
    const f = result.failure;
    const first = v.failed[0];
    const at = f?.phase ?? first?.phase ?? '?';
    const reason = f?.reason ?? first?.reason ?? 'failed';
    out.push(c('31', `result: FAILED at ${at} (${reason})`));
    const others = v.failed.filter((l) => l.phase !== at).map((l) => (l.reason ? `${l.phase} (${l.reason})` : l.phase));
    if (others.length > 0) out.push(`also failed: ${others.join(', ')}`);
    const advice = f ? adviceFor(plan.module.prober, f) : undefined;
    if (advice) out.push(`what to check: ${advice}`);
  }
  return `${out.join('\n')}\n`;
}

/** The JSON document; `success` is the same verdict as the exit code and the text. Pure. */
export function formatJson(plan: DiagnosePlan, result: ProbeResult): string {
  const def = PROBERS[plan.module.prober];
  const v = verdictOf(def, result, plan.module.ping);
  const doc = {
    subject: plan.subject,
    target: plan.target.name,
    address: plan.target.address,
    module: plan.module.name,
    prober: plan.module.prober,
    timeoutSeconds: plan.module.timeoutSeconds,
    success: v.success,
    durationSeconds: result.durationSeconds,
    phases: v.lines,
    failure: result.failure && { ...result.failure, advice: adviceFor(plan.module.prober, result.failure) },
    findings: sortedFindings(result),
    facts: result.facts,
    log: result.log ?? [],
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export async function runDiagnose(
  argv: readonly string[],
  io: { stdout: NodeJS.WritableStream & { isTTY?: boolean }; stderr: NodeJS.WritableStream; env: NodeJS.ProcessEnv } = {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
  },
): Promise<number> {
  let plan: DiagnosePlan;
  let flags: DiagnoseFlags;
  try {
    flags = parseDiagnoseArgs(argv);
    if (flags.help) {
      io.stdout.write(`${diagnoseUsage()}\n`);
      return 0;
    }
    plan = planDiagnose(flags, io.env);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(
        `${e.message
          .split('\n')
          .map((l) => `portprobe diagnose: ${l}`)
          .join('\n')}\n`,
      );
      return 2;
    }
    throw e;
  }
  const logger = createLogger('error', 'logfmt', io.stderr);
  // One runProbe for the whole run, ping included: one deadline, as the agent runs the module.
  const result = await runProbe({ target: plan.target, module: plan.module, logger });
  const v = verdictOf(PROBERS[plan.module.prober], result, plan.module.ping);
  if (flags.output === 'json') io.stdout.write(formatJson(plan, result));
  else io.stdout.write(formatText(plan, result, Boolean(io.stdout.isTTY) && io.env.NO_COLOR === undefined));
  return v.success ? 0 : 1;
}
