// Network namespaces for tests that need a blackhole: all traffic stays inside a namespace the
// test creates on loopback, and nftables drops what the test tells it to.
import { execFileSync, execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export interface Netns {
  name: string;
  /** Runs a command in the namespace (argv, no shell). */
  exec(argv: string[], timeoutMs?: number): Promise<{ stdout: string; stderr: string; code: number }>;
  remove(): void;
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

export function createNetns(tag: string): Netns {
  const name = `pp-${tag}-${process.pid}`;
  try {
    ip(['netns', 'del', name]);
  } catch {
    // not there: fine
  }
  ip(['netns', 'add', name]);
  ip(['-n', name, 'link', 'set', 'lo', 'up']);
  return {
    name,
    exec: (argv, timeoutMs = 20000) =>
      new Promise((resolve) => {
        execFile(
          'ip',
          ['netns', 'exec', name, ...argv],
          { timeout: timeoutMs, encoding: 'utf8' },
          (err, stdout, stderr) => {
            const code = err ? ((err as { code?: number }).code ?? 1) : 0;
            resolve({ stdout, stderr, code: typeof code === 'number' ? code : 1 });
          },
        );
      }),
    remove: () => {
      try {
        ip(['netns', 'del', name]);
      } catch {
        // already gone
      }
    },
  };
}

/** Drops every TCP SYN to port `port` inside the namespace (a blackholed service). */
export function dropTcpPort(ns: Netns, port: number): void {
  const rules = [
    'table inet pp_blackhole {',
    '  chain out {',
    '    type filter hook output priority 0; policy accept;',
    `    tcp dport ${port} drop`,
    '  }',
    '}',
  ].join('\n');
  execFileSync('ip', ['netns', 'exec', ns.name, 'nft', '-f', '-'], { input: rules, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** argv that runs a TypeScript file under node with ts-node (transpile only). */
export function tsNodeArgv(file: string, args: string[] = []): string[] {
  const root = path.join(__dirname, '..', '..');
  return [
    process.execPath,
    '-r',
    path.join(root, 'node_modules', 'ts-node', 'register', 'transpile-only'),
    file,
    ...args,
  ];
}

/** Sets a sysctl of the namespace (its own TCP stack: e.g. net.ipv4.tcp_syn_retries). */
export function setNetnsSysctl(ns: Netns, key: string, value: string | number): void {
  execFileSync('ip', ['netns', 'exec', ns.name, 'sysctl', '-q', '-w', `${key}=${value}`], { stdio: 'pipe' });
}

/**
 * Replaces the nftables table `name` of the namespace with `body` (the chains and rules inside
 * `table inet <name> { ... }`); an empty body removes the table.
 */
export function setNftTable(ns: Netns, name: string, body: string): void {
  const script = [
    `table inet ${name}`, // created if missing, so the delete below always succeeds
    `delete table inet ${name}`,
    ...(body.trim() === '' ? [] : [`table inet ${name} {`, body, '}']),
  ].join('\n');
  execFileSync('ip', ['netns', 'exec', ns.name, 'nft', '-f', '-'], { input: script, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Starts a long-running process inside the namespace, stdin/stdout piped. */
export function spawnInNetns(ns: Netns, argv: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns.name, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
}
