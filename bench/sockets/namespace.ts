// Runs a socket benchmark inside a network namespace of its own (created and deleted here), so
// that its sockets, and the TIME_WAIT rows it may make, disturb nothing else on the machine and
// nothing else's sockets are counted. As root.
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';

/**
 * A socket benchmark's entry point: in the namespace (with --inner) runs `inner`, else makes the
 * namespace and runs `file` (the benchmark's __filename) again inside it.
 */
export function namespacedBench(file: string, inner: () => Promise<void>, timeWait = 0): void {
  if (!process.argv.includes('--inner')) return runInNamespace(file, timeWait);
  inner().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}

/**
 * Runs `file` (a benchmark's __filename) again, with this process's arguments and `--inner`,
 * inside a new namespace with loopback up, the whole port range for local ports, and room for
 * `timeWait` TIME_WAIT sockets. Sets the exit code from its exit.
 */
export function runInNamespace(file: string, timeWait = 0): void {
  const ns = `portprobe-bench-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const inNs = (...args: string[]): void => void execFileSync('ip', ['netns', 'exec', ns, ...args]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    // Room for 5,000 listeners, 10,000 connection ends and the TIME_WAIT clients' ports.
    inNs('sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535');
    inNs('sysctl', '-q', '-w', `net.ipv4.tcp_max_tw_buckets=${Math.max(262144, timeWait * 2)}`);
    const r = spawnSync(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--require', 'ts-node/register/transpile-only', file, '--inner'].concat(
        process.argv.slice(2),
      ),
      { stdio: 'inherit', cwd: path.resolve(__dirname, '..', '..') },
    );
    if (r.status !== 0) process.exitCode = r.status ?? 1;
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}
