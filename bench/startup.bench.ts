// Start-up: process start to the first successful GET /metrics with the built-in config, side by
// side with a bare node HTTP server (the floor for any node program) in the same run, rounds
// interleaved so that the machine's noise falls on both alike. Also process start to exit for
// `--config.check`, `--once` (one TCP target on a closed port) and `diagnose tcp://…`.
// BENCH_BEFORE=path/to/dist/agent/main.js adds an older build as a third column; a build with a
// code cache of its bundle (dist/agent/bundle.cache) is also run with the cache off
// (PORTPROBE_CODE_CACHE=0), side by side.
// Run: npx ts-node --transpile-only bench/startup.bench.ts [runs=20]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { MAIN, median, nodeFlags, percentile } from './common';

const BARE = `require('node:http').createServer((q, s) => s.end('ok\\n')).listen(Number(process.argv[1]), '127.0.0.1');`;

/** Milliseconds from spawn to the first 200 answer on /metrics. */
async function firstAnswer(argv: string[], port: number, env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, argv, { stdio: 'ignore', env });
  try {
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`);
        if (res.status === 200) {
          await res.text();
          return performance.now() - t0;
        }
      } catch {
        // not listening yet
      }
      if (performance.now() - t0 > 10000) throw new Error(`${argv.join(' ')} did not answer within 10 s`);
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    await new Promise<void>((r) => {
      if (proc.exitCode !== null) return r();
      proc.once('exit', () => r());
      proc.kill('SIGTERM');
    });
  }
}

/** Milliseconds from spawn to exit (any exit code but a crash). */
function toExit(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, argv, { stdio: 'ignore', env });
  return new Promise((resolve, reject) =>
    proc.once('exit', (code) =>
      code !== null && code <= 2
        ? resolve(performance.now() - t0)
        : reject(new Error(`${argv.join(' ')} exited ${code}`)),
    ),
  );
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function line(name: string, xs: number[], ref?: number[]): string {
  const ratio = ref ? `  ${(median(xs) / median(ref)).toFixed(2)}× bare` : '';
  return `${name.padEnd(28)} median=${median(xs).toFixed(0)}ms p90=${percentile(xs, 90).toFixed(0)}ms min=${Math.min(...xs).toFixed(0)}ms${ratio}`;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 20);
  const on = { ...process.env };
  delete on.PORTPROBE_CODE_CACHE;
  const off = { ...on, PORTPROBE_CODE_CACHE: '0' };
  const builds: [string, string, NodeJS.ProcessEnv][] = [['agent', MAIN, on]];
  const cached = (main: string): boolean => existsSync(path.join(path.dirname(main), 'bundle.cache'));
  if (cached(MAIN)) builds.push(['agent, code cache off', MAIN, off]);
  if (process.env.BENCH_BEFORE) builds.push(['agent (BENCH_BEFORE)', process.env.BENCH_BEFORE, on]);
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-startup-'));
  const cfg = path.join(dir, 'once.yml');
  writeFileSync(
    cfg,
    `modules: {t: {prober: tcp, timeout: 1s}}\ntargets: [{name: closed, module: t, address: "127.0.0.1:${await closedPort()}"}]\n`,
  );
  const times = new Map<string, number[]>();
  const add = (k: string, v: number): void => void (times.get(k) ?? times.set(k, []).get(k))?.push(v);
  for (let i = 0; i < runs; i++) {
    const port = 19821 + (i % 10);
    add('bare node http server', await firstAnswer(['-e', BARE, String(port)], port, on));
    for (const [name, main, env] of builds) {
      const flags = [...nodeFlags(main), main];
      add(
        `${name}: first /metrics`,
        await firstAnswer([...flags, `--web.listen-address=127.0.0.1:${port}`, '--log.level=error'], port, env),
      );
      add(`${name}: --config.check`, await toExit([...flags, '--config.check', `--config.file=${cfg}`], env));
      add(`${name}: --once`, await toExit([...flags, '--once', `--config.file=${cfg}`, '--log.level=error'], env));
      add(
        `${name}: diagnose tcp://`,
        await toExit([...flags, 'diagnose', `tcp://127.0.0.1:${await closedPort()}`, '--timeout=1s'], env),
      );
    }
  }
  const bare = times.get('bare node http server') as number[];
  console.log(`startup runs=${runs} (side by side, interleaved)`);
  for (const [k, xs] of times) console.log(line(k, xs, k.endsWith('/metrics') ? bare : undefined));
}

void main();
