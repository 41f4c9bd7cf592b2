// A reload's own work, in process: the built Agent (no HTTP, probes not run) reloads 100 -> N -> N
// (the same file again) -> 100 targets through reloadAsync, as SIGHUP does, while a 2 ms interval
// timer watches the event loop. For each reload: its time, the longest gap between two ticks
// (wall clock: includes the moments the OS gave the CPU to other processes) and the most CPU the
// process used within one gap (the part that is this process's own work), plus the steps of the
// switch that took over 5 ms. Then heap and RSS after the shrink.
// Run (after npm run build): npx ts-node --transpile-only bench/reload-inproc.bench.ts [targets=100000]
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const DIST = path.join(__dirname, '..', 'dist');
/* eslint-disable @typescript-eslint/no-require-imports -- the built agent, as it runs */
const { Agent } = require(path.join(DIST, 'agent', 'agent.js')) as typeof import('../agent/agent');
const { createLogger } = require(path.join(DIST, 'agent', 'logger.js')) as typeof import('../agent/logger');
/* eslint-enable @typescript-eslint/no-require-imports */

function config(n: number): string {
  const lines = ['global: {interval: 30s, timeout: 5s, concurrency: 512}', 'modules: {t: {prober: tcp}}', 'targets:'];
  for (let i = 0; i < n; i++)
    lines.push(`  - {name: target-${i}, module: t, address: "127.0.0.1:9", labels: {env: prod}}`);
  return `${lines.join('\n')}\n`;
}

/** Wraps obj[name] so each call over 5 ms is printed with its duration. */
function timed(obj: object, name: string): void {
  const o = obj as Record<string, (...args: unknown[]) => unknown>;
  const f = o[name];
  o[name] = function (this: unknown, ...args: unknown[]): unknown {
    const t = performance.now();
    const r = f.apply(this, args);
    const d = performance.now() - t;
    if (d > 5) console.log(`  ${name}: ${d.toFixed(1)} ms`);
    return r;
  };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 100000);
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'portprobe-reload-inproc-')), 'c.yml');
  writeFileSync(file, config(100));
  const agent = new Agent({
    configFile: file,
    logger: createLogger('error', 'json', { write: () => true }),
    build: { version: 'bench', revision: 'bench' },
  });
  agent.reload();
  timed(agent.store, 'sync');
  timed(agent.scheduler, 'commit');
  // The probes are not the reload's work: none is run.
  (agent.scheduler as unknown as { fire: () => void }).fire = () => undefined;
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  let worst = 0;
  let worstCpu = 0;
  const iv = setInterval(() => {
    const now = performance.now();
    const cpu = process.cpuUsage();
    worstCpu = Math.max(worstCpu, (cpu.user + cpu.system - lastCpu.user - lastCpu.system) / 1000);
    worst = Math.max(worst, now - last);
    last = now;
    lastCpu = cpu;
  }, 2);
  const mb = (x: number): string => `${(x / 1048576).toFixed(0)}MB`;
  console.log(`start: heap ${mb(process.memoryUsage().heapUsed)}, rss ${mb(process.memoryUsage().rss)}`);
  for (const k of [n, n, 100]) {
    writeFileSync(file, config(k));
    worst = 0;
    worstCpu = 0;
    last = performance.now();
    lastCpu = process.cpuUsage();
    const t = performance.now();
    const out = await agent.reloadAsync();
    console.log(
      `reload to ${k}: ok=${out.ok} ${(performance.now() - t).toFixed(0)} ms; longest gap ${worst.toFixed(0)} ms wall, most CPU in one gap ${worstCpu.toFixed(0)} ms`,
    );
  }
  await new Promise((r) => setTimeout(r, 3000));
  console.log(`3 s after the shrink: heap ${mb(process.memoryUsage().heapUsed)}, rss ${mb(process.memoryUsage().rss)}`);
  clearInterval(iv);
  await agent.stop();
}

void main();
