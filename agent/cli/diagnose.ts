// `portprobe diagnose URL`: climb the whole ladder once, live, and tell a person which rung
// failed and what to check next. Exit 0 when every rung passes, 1 when one fails, 2 on usage.
import { readFileSync } from 'node:fs';
import { PROBERS } from '../../exporters';
import { adviceFor } from '../../exporters/advice';
import { Secret } from '../../exporters/secret';
import type { ModuleSpec, ProbeResult } from '../../exporters/types';
import { mergeDefaults } from '../../config/load';
import { parseDuration } from '../../config/duration';
import { runProbe } from '../runner';
import { createLogger } from '../logger';

export interface DiagnoseRequest {
  url: string;
  prober: string;
  address: string;
  settings: Record<string, unknown>;
}

export class UsageError extends Error {}

const DEFAULT_PORTS: Record<string, number> = { ftp: 21, ftps: 21, mssql: 1433 };

/**
 * Turns a diagnose URL into a prober, an address and module settings. Pure apart from the
 * password, which comes in already read. Throws UsageError with a one-line reason.
 */
export function parseDiagnoseUrl(raw: string, password?: string, insecure = false): DiagnoseRequest {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`"${raw}" is not a URL such as tcp://host:port, ftp://user@host/path or mssql://host/instance`);
  }
  const scheme = u.protocol.replace(/:$/, '');
  if (u.password !== '') {
    throw new UsageError('passwords do not belong on the command line: use --password-file=PATH or PORTPROBE_PASSWORD');
  }
  if (u.hostname === '') throw new UsageError(`"${raw}": no host`);
  const host = u.hostname;
  const port = u.port === '' ? DEFAULT_PORTS[scheme] : Number(u.port);
  const hostPort = (p: number | undefined): string => (p === undefined ? host : `${host}:${p}`);
  const user = decodeURIComponent(u.username);
  const path = decodeURIComponent(u.pathname);
  const secret = password !== undefined ? { password: new Secret(password) } : {};
  switch (scheme) {
    case 'tcp':
      if (u.port === '') throw new UsageError(`"${raw}": tcp:// needs a port`);
      return { url: raw, prober: 'tcp', address: hostPort(port), settings: {} };
    case 'icmp':
      return { url: raw, prober: 'icmp', address: host, settings: {} };
    case 'ftp':
    case 'ftps': {
      const implicit = scheme === 'ftps' && port === 990;
      const settings: Record<string, unknown> = {
        tls: scheme === 'ftp' ? 'none' : implicit ? 'implicit' : 'explicit',
        ...(user ? { username: user, ...secret } : {}),
        ...(path && path !== '/' ? { path } : {}),
        ...(insecure ? { tls_config: { insecure_skip_verify: true } } : {}),
      };
      return { url: raw, prober: 'ftp', address: hostPort(port), settings };
    }
    case 'mssql': {
      const instance = path.replace(/^\/+|\/+$/g, '');
      if (instance.includes('/')) throw new UsageError(`"${raw}": the path is one instance name`);
      const settings: Record<string, unknown> = {
        ...(instance ? { instance } : {}),
        ...(user ? { username: user, ...secret } : {}),
        ...(insecure ? { trust_server_certificate: true } : {}),
      };
      // A named instance without a port is found through the Browser.
      return { url: raw, prober: 'mssql', address: instance && u.port === '' ? host : hostPort(port), settings };
    }
    default:
      throw new UsageError(`unsupported scheme "${scheme}:" (use tcp, icmp, ftp, ftps or mssql)`);
  }
}

interface DiagnoseFlags {
  url?: string;
  output: 'text' | 'json';
  timeoutMs: number;
  passwordFile?: string;
  ping: boolean;
  insecure: boolean;
}

function parseArgs(argv: readonly string[]): DiagnoseFlags {
  const f: DiagnoseFlags = { output: 'text', timeoutMs: 10_000, ping: false, insecure: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(a);
    if (!m) {
      if (f.url !== undefined) throw new UsageError(`unexpected argument "${a}"`);
      f.url = a;
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
        break;
      case 'password-file':
        f.passwordFile = value();
        break;
      case 'ping':
        f.ping = true;
        break;
      case 'insecure':
        f.insecure = true;
        break;
      default:
        throw new UsageError(`unknown flag --${m[1]}`);
    }
  }
  if (f.url === undefined) throw new UsageError('usage: portprobe diagnose URL [--output=json] [--timeout=10s] [--password-file=PATH] [--ping] [--insecure]');
  return f;
}

export interface RungLine {
  phase: string;
  seconds?: number;
  status: 'ok' | 'failed' | 'not_reached';
}

/** The rungs to print: those that ran, then, after a failure, the prober's later rungs. Pure. */
export function rungLines(phases: readonly string[], result: ProbeResult): RungLine[] {
  const lines: RungLine[] = result.phases.map((p) => ({
    phase: p.phase,
    seconds: p.seconds,
    status: result.failure?.phase === p.phase ? 'failed' : 'ok',
  }));
  if (result.failure && !lines.some((l) => l.status === 'failed')) {
    lines.push({ phase: result.failure.phase, status: 'failed' });
  }
  if (result.failure) {
    const at = phases.indexOf(result.failure.phase);
    for (const p of at >= 0 ? phases.slice(at + 1) : []) {
      if (!lines.some((l) => l.phase === p)) lines.push({ phase: p, status: 'not_reached' });
    }
  }
  return lines;
}

/** Human output; colour only when asked (a terminal without NO_COLOR). Pure. */
export function formatText(req: DiagnoseRequest, steps: { prober: string; result: ProbeResult }[], colour: boolean): string {
  const c = (code: string, s: string): string => (colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  const out: string[] = [`portprobe diagnose ${req.url}`];
  let firstFailure: { prober: string; result: ProbeResult } | undefined;
  for (const step of steps) {
    const phases = PROBERS[step.prober].phases;
    for (const l of rungLines(phases, step.result)) {
      const mark = l.status === 'ok' ? c('32', '✓') : l.status === 'failed' ? c('31', '✗') : c('2', '·');
      const time = l.seconds === undefined ? '' : `${(l.seconds * 1000).toFixed(1)} ms`;
      let line = `  ${mark} ${l.phase.padEnd(12)} ${time.padStart(10)}`;
      if (l.status === 'failed' && step.result.failure) {
        line += `  ${step.result.failure.reason}: ${step.result.failure.message}`;
      } else if (l.status === 'not_reached') line += '  not reached';
      out.push(line);
    }
    for (const f of step.result.facts) {
      if (f.metric.endsWith('_info') && f.labels) {
        out.push(`    ${f.metric.replace(/^probe_/, '').replace(/_info$/, '')}: ${Object.values(f.labels).join(' ')}`);
      }
    }
    if (!step.result.success && !firstFailure) firstFailure = step;
  }
  if (!firstFailure) {
    out.push(c('32', 'result: every rung passed'));
  } else {
    const f = firstFailure.result.failure;
    out.push(c('31', `result: FAILED at ${f?.phase ?? '?'} (${f?.reason ?? 'unknown'})`));
    const advice = f ? adviceFor(firstFailure.prober, f) : undefined;
    if (advice) out.push(`what to check: ${advice}`);
  }
  return `${out.join('\n')}\n`;
}

function readPassword(f: DiagnoseFlags, env: NodeJS.ProcessEnv): string | undefined {
  if (f.passwordFile !== undefined) {
    try {
      return readFileSync(f.passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new UsageError(`--password-file: cannot read ${f.passwordFile}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  return env.PORTPROBE_PASSWORD;
}

export async function runDiagnose(
  argv: readonly string[],
  io: { stdout: NodeJS.WritableStream & { isTTY?: boolean }; stderr: NodeJS.WritableStream; env: NodeJS.ProcessEnv } = {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
  },
): Promise<number> {
  let flags: DiagnoseFlags;
  let req: DiagnoseRequest;
  try {
    flags = parseArgs(argv);
    req = parseDiagnoseUrl(flags.url as string, readPassword(flags, io.env), flags.insecure);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`portprobe diagnose: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const logger = createLogger('error', 'logfmt', io.stderr);
  const moduleFor = (prober: string, settings: Record<string, unknown>): ModuleSpec<unknown> => ({
    name: `diagnose_${prober}`,
    prober,
    timeoutSeconds: flags.timeoutMs / 1000,
    settings: mergeDefaults(PROBERS[prober].defaults as Record<string, unknown>, settings),
  });
  const main = moduleFor(req.prober, req.settings);
  const def = PROBERS[req.prober];
  const problems = [...(def.validate?.(main.settings) ?? [])];
  const addr = def.validateAddress?.(req.address, main.settings);
  if (addr) problems.push(addr);
  if (problems.length > 0) {
    io.stderr.write(`portprobe diagnose: ${problems.join('; ')}\n`);
    return 2;
  }
  const steps: { prober: string; result: ProbeResult }[] = [];
  if (flags.ping && req.prober !== 'icmp') {
    const host = new URL(req.url).hostname.replace(/^\[|\]$/g, '');
    const result = await runProbe({
      target: { name: 'diagnose-ping', address: host, labels: {} },
      module: moduleFor('icmp', {}),
      logger,
    });
    steps.push({ prober: 'icmp', result });
  }
  const result = await runProbe({ target: { name: 'diagnose', address: req.address, labels: {} }, module: main, logger });
  steps.push({ prober: req.prober, result });
  // Ping is informational when the service itself answers: many hosts drop ICMP.
  const ok = result.success;
  if (flags.output === 'json') {
    io.stdout.write(
      `${JSON.stringify(
        {
          url: req.url,
          success: ok,
          rungs: steps.map((s) => ({
            prober: s.prober,
            success: s.result.success,
            phases: rungLines(PROBERS[s.prober].phases, s.result),
            failure: s.result.failure && { ...s.result.failure, advice: adviceFor(s.prober, s.result.failure) },
            facts: s.result.facts,
          })),
        },
        null,
        2,
      )}\n`,
    );
  } else {
    const colour = Boolean(io.stdout.isTTY) && io.env.NO_COLOR === undefined;
    io.stdout.write(formatText(req, steps, colour));
  }
  return ok ? 0 : 1;
}
