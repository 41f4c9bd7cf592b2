// Start-up: process start to the first successful GET /metrics, with the built-in config.
// Run: npx ts-node --transpile-only bench/startup.bench.ts [runs=20]
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { MAIN, median, nodeFlags, percentile } from './common';

async function once(port: number): Promise<number> {
  const t0 = performance.now();
  const proc = spawn(
    process.execPath,
    [...nodeFlags(), MAIN, `--web.listen-address=127.0.0.1:${port}`, '--log.level=error'],
    { stdio: 'ignore' },
  );
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
      if (performance.now() - t0 > 10000) throw new Error('agent did not answer within 10 s');
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    await new Promise<void>((r) => {
      proc.once('exit', () => r());
      proc.kill('SIGTERM');
    });
  }
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 20);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await once(19821 + (i % 10)));
  console.log(
    `startup runs=${runs} median=${median(times).toFixed(0)}ms p90=${percentile(times, 90).toFixed(0)}ms min=${Math.min(...times).toFixed(0)}ms max=${Math.max(...times).toFixed(0)}ms`,
  );
}

void main();
