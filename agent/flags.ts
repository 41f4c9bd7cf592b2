// Command-line flags in the Prometheus exporters' style: --name=value or --name value.
import path from 'node:path';
import { packageRoot } from '../exporters/package-root';
import { LOG_LEVELS, type LogFormat, type LogLevel } from './logger';

export interface Flags {
  configFile: string;
  listenAddress: string;
  webConfigFile?: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  configCheck: boolean;
  once: boolean;
  version: boolean;
  help: boolean;
  shardCount: number;
  shardIndex: number;
}

export const DEFAULT_PORT = 9821;
export function defaultConfigFile(): string {
  return path.join(packageRoot(), 'config', 'default.yml');
}

interface FlagSpec {
  name: string;
  help: string;
  bool?: boolean;
  default?: string;
}

export const FLAG_SPECS: readonly FlagSpec[] = [
  { name: 'config.file', help: 'Configuration file.', default: 'config/default.yml of the installation' },
  {
    name: 'config.check',
    help: 'Validate the configuration, print the result and exit (0 valid, 2 invalid).',
    bool: true,
  },
  { name: 'web.listen-address', help: 'Address to serve metrics and the status page on.', default: `:${DEFAULT_PORT}` },
  { name: 'web.config.file', help: 'Exporter-toolkit web config file (TLS, basic auth).' },
  { name: 'log.level', help: `Log level: ${LOG_LEVELS.join(', ')}.`, default: 'info' },
  { name: 'log.format', help: 'Log format: logfmt or json.', default: 'logfmt' },
  {
    name: 'once',
    help: 'Probe every target once, print the exposition to stdout and exit (textfile collector mode).',
    bool: true,
  },
  {
    name: 'shard.count',
    help: 'Number of agent replicas sharing the targets (env PORTPROBE_SHARD_COUNT).',
    default: '1',
  },
  {
    name: 'shard.index',
    help: "This replica's shard, 0-based (env PORTPROBE_SHARD_INDEX, or the ordinal at the end of POD_NAME).",
    default: '0',
  },
  {
    name: 'shard.replicas-per-shard',
    help: 'Replicas that probe the same shard, for availability, when the index comes from POD_NAME (env PORTPROBE_REPLICAS_PER_SHARD): ordinal o probes shard floor(o / this).',
    default: '1',
  },
  { name: 'version', help: 'Print the version and exit.', bool: true },
  { name: 'help', help: 'Show this help and exit.', bool: true },
];

export class FlagError extends Error {}

/** Parses argv (without node and script). Throws FlagError with a one-line reason. */
export function parseFlags(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Flags {
  const values = new Map<string, string>();
  const bools = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h') {
      bools.add('help');
      continue;
    }
    const m = /^--([a-z][a-z0-9.-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new FlagError(`unexpected argument "${arg}" (flags look like --name=value)`);
    let name = m[1];
    let negated = false;
    if (name.startsWith('no-')) {
      negated = true;
      name = name.slice(3);
    }
    const spec = FLAG_SPECS.find((s) => s.name === name);
    if (!spec) throw new FlagError(`unknown flag --${name} (see --help)`);
    if (spec.bool) {
      if (m[2] !== undefined && m[2] !== 'true' && m[2] !== 'false') {
        throw new FlagError(`--${name} takes no value (or =true/=false)`);
      }
      const on = negated ? false : m[2] !== 'false';
      if (on) bools.add(name);
      else bools.delete(name);
      continue;
    }
    if (negated) throw new FlagError(`--no-${name} is not a boolean flag`);
    let value = m[2];
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new FlagError(`--${name} needs a value`);
    }
    values.set(name, value);
  }

  const logLevel = values.get('log.level') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new FlagError(`--log.level must be one of ${LOG_LEVELS.join(', ')}, not "${logLevel}"`);
  }
  const logFormat = values.get('log.format') ?? 'logfmt';
  if (logFormat !== 'logfmt' && logFormat !== 'json') {
    throw new FlagError(`--log.format must be logfmt or json, not "${logFormat}"`);
  }
  const listenAddress = values.get('web.listen-address') ?? `:${DEFAULT_PORT}`;
  const listenProblem = parseListenAddress(listenAddress);
  if (typeof listenProblem === 'string') throw new FlagError(`--web.listen-address: ${listenProblem}`);

  const shardCount = intFlag('shard.count', values.get('shard.count') ?? env.PORTPROBE_SHARD_COUNT ?? '1', 1);
  const perShard = intFlag(
    'shard.replicas-per-shard',
    values.get('shard.replicas-per-shard') ?? env.PORTPROBE_REPLICAS_PER_SHARD ?? '1',
    1,
  );
  let indexText = values.get('shard.index') ?? env.PORTPROBE_SHARD_INDEX;
  if (indexText === undefined && env.POD_NAME && shardCountGiven(values, env)) {
    // A StatefulSet pod is NAME-<ordinal>: ordinals 0..k-1 probe shard 0, k..2k-1 shard 1, ...
    const ord = /-([0-9]+)$/.exec(env.POD_NAME);
    if (!ord) throw new FlagError(`POD_NAME "${env.POD_NAME}" does not end in -<ordinal>; set --shard.index`);
    indexText = String(Math.floor(Number(ord[1]) / perShard));
  }
  const shardIndex = intFlag('shard.index', indexText ?? '0', 0);
  if (shardIndex >= shardCount) {
    throw new FlagError(`--shard.index ${shardIndex} must be below --shard.count ${shardCount}`);
  }

  return {
    configFile: values.get('config.file') ?? defaultConfigFile(),
    listenAddress,
    webConfigFile: values.get('web.config.file'),
    logLevel: logLevel as LogLevel,
    logFormat,
    configCheck: bools.has('config.check'),
    once: bools.has('once'),
    version: bools.has('version'),
    help: bools.has('help'),
    shardCount,
    shardIndex,
  };
}

function shardCountGiven(values: Map<string, string>, env: NodeJS.ProcessEnv): boolean {
  return values.has('shard.count') || env.PORTPROBE_SHARD_COUNT !== undefined;
}

function intFlag(name: string, text: string, min: number): number {
  if (!/^[0-9]{1,6}$/.test(text) || Number(text) < min) {
    throw new FlagError(`--${name} must be a whole number >= ${min}, not "${text}"`);
  }
  return Number(text);
}

/** ":9821", "127.0.0.1:9821", "[::1]:9821" -> host (undefined = all) and port. */
export function parseListenAddress(addr: string): { host?: string; port: number } | string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(addr);
  if (!m) return `"${addr}" is not host:port (e.g. :${DEFAULT_PORT}, 127.0.0.1:${DEFAULT_PORT}, [::1]:${DEFAULT_PORT})`;
  const port = Number(m[3]);
  if (port > 65535) return `port ${port} is out of range`;
  const host = m[1] ?? (m[2] === '' ? undefined : m[2]);
  return { host, port };
}

export function helpText(): string {
  const lines = [
    'usage: portprobe [flags]',
    '       portprobe diagnose URL|TARGET [flags]   (portprobe diagnose --help lists its flags)',
    '',
    'Flags:',
  ];
  for (const s of FLAG_SPECS) {
    const def = s.default ? ` (default: ${s.default})` : '';
    lines.push(`  --${s.name}${s.bool ? '' : '=VALUE'}`.padEnd(30) + ` ${s.help}${def}`);
  }
  return `${lines.join('\n')}\n`;
}
