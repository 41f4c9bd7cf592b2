// Shared pieces of the benchmarks: starting the built agent, reading a process's CPU and memory.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import type { ProbeLogger } from '../exporters/types';

/** The built agent; BENCH_MAIN points at another build (an older commit's, for before/after). */
export const MAIN = process.env.BENCH_MAIN ?? path.join(__dirname, '..', 'dist', 'agent', 'main.js');

/**
 * The node flags the agent's launcher gives (its `#!/usr/bin/env -S node …` line), so a benchmark
 * measures the agent as it is run; BENCH_NODE_FLAGS overrides them ("" for none).
 */
export function nodeFlags(main = MAIN): string[] {
  if (process.env.BENCH_NODE_FLAGS !== undefined) return process.env.BENCH_NODE_FLAGS.split(/\s+/).filter(Boolean);
  const first = readFileSync(main, 'utf8').split('\n', 1)[0];
  const m = /^#!\/usr\/bin\/env -S node(.*)$/.exec(first);
  return m ? m[1].trim().split(/\s+/).filter(Boolean) : [];
}
const CLK_TCK = 100;

/** Sum of the first capture of every match of `re` (global, multiline) in an exposition. */
export function sumSeries(text: string, re: RegExp): number {
  let n = 0;
  for (const m of text.matchAll(re)) n += Number(m[1]);
  return n;
}

/** Every portprobe_probes_total series (all modules and results). */
export const PROBES_TOTAL = /^portprobe_probes_total\{[^}]*\} (\S+)$/gm;

/**
 * python3 source of `until(t)`: returns at CLOCK_MONOTONIC nanosecond `t` (time.monotonic_ns),
 * sleeping to 2 ms before it and spinning the rest, so that a peer's delay is exact.
 */
export const PY_UNTIL = `
def until(t):
    while (now := time.monotonic_ns()) < t - 2000000:
        time.sleep((t - 2000000 - now) / 1e9)
    while time.monotonic_ns() < t:
        pass
`;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** utime + stime of a process, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

export function rssMB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

export interface RunningAgent {
  proc: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

/** Waits for the agent's "listening" log line (JSON logs) and returns its port. */
export function listeningPort(logs: () => string, timeoutMs = 20000): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => {
      clearInterval(iv);
      reject(new Error(`agent did not start: ${logs()}`));
    }, timeoutMs);
    const iv = setInterval(() => {
      const line = logs()
        .split('\n')
        .find((l) => l.includes('"msg":"listening"'));
      const m = line ? /"address":"[^"]*:(\d+)"/.exec(line) : null;
      if (m) {
        clearTimeout(t);
        clearInterval(iv);
        resolve(Number(m[1]));
      }
    }, 5);
  });
}

/**
 * Starts `node dist/agent/main.js` (optionally under taskset; optionally another build's main.js,
 * with its own launcher flags) and waits for its port.
 */
export async function startAgent(config: string, prefix: string[] = [], main = MAIN): Promise<RunningAgent> {
  const argv = [
    ...prefix,
    process.execPath,
    ...nodeFlags(main),
    main,
    `--config.file=${config}`,
    '--web.listen-address=127.0.0.1:0',
    '--log.format=json',
  ];
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  proc.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
  const port = await listeningPort(() => logs, 30000);
  return {
    proc,
    port,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

/** A numeric `--name=value` flag of the benchmark's command line, or its default. */
export function numericFlag(name: string, def: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : def;
}

/** A logger for collectors and probers run by a benchmark: prints nothing. */
export const quietLogger: ProbeLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/**
 * Starts Debian's blackbox_exporter pinned to CPU 1 with `<dir>/blackbox.yml` on a free loopback
 * port and waits (up to 10 s) until it answers /-/healthy.
 */
export async function startBlackbox(dir: string): Promise<{ proc: ChildProcess; listen: number }> {
  const listen = await new Promise<number>((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const proc = spawn(
    'taskset',
    [
      '-c',
      '1',
      'prometheus-blackbox-exporter',
      `--config.file=${path.join(dir, 'blackbox.yml')}`,
      `--web.listen-address=127.0.0.1:${listen}`,
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${listen}/-/healthy`)).ok) break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { proc, listen };
}
