// Reload of a large config on a running agent: a small config grows to N targets, then shrinks
// back. Reports how long each reload took, the longest event-loop stall seen meanwhile (from
// outside: the slowest GET /-/healthy, polled every 10 ms; from inside: the agent's
// nodejs_eventloop_lag_max_seconds, from monitorEventLoopDelay, over the growing reload), whether
// probes kept their schedule (the longest gap between the probes of four 1 s canary targets, 250 ms
// apart when on time), and RSS before, after growing and after shrinking.
// BENCH_BEFORE=path/to/dist/agent/main.js runs an older build through the same sequence in the same
// run, after this one, for a side-by-side line.
// Run: npx ts-node --transpile-only bench/reload.bench.ts [targets=100000]
import { writeFileSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { MAIN, listeningPort, nodeFlags, rssMB } from './common';

const CANARIES = 4;

function config(n: number, peers: number[], canaryPort: number): string {
  const lines = [
    'global: {interval: 30s, timeout: 5s, concurrency: 512}',
    'modules: {t: {prober: tcp}, c: {prober: tcp, timeout: 500ms}}',
    'targets:',
  ];
  for (let i = 0; i < CANARIES; i++)
    lines.push(`  - {name: canary-${i}, module: c, address: "127.0.0.1:${canaryPort}", interval: 1s}`);
  for (let i = 0; i < n; i++)
    lines.push(
      `  - {name: target-${i}, module: t, address: "127.0.0.1:${peers[i % peers.length]}", labels: {env: prod}}`,
    );
  return `${lines.join('\n')}\n`;
}

interface Agent {
  proc: ReturnType<typeof spawn>;
  port: number;
  logs: () => string;
  stop: () => Promise<void>;
}

/** Starts one build's main.js with the node flags its launcher gives; its logs stay readable. */
async function startBuild(main: string, file: string): Promise<Agent> {
  const argv = [
    ...nodeFlags(main),
    // Extra node flags for the agent only, e.g. BENCH_AGENT_FLAGS='--cpu-prof --cpu-prof-dir=prof'.
    ...(process.env.BENCH_AGENT_FLAGS ?? '').split(' ').filter(Boolean),
    main,
    `--config.file=${file}`,
    '--web.listen-address=127.0.0.1:0',
    '--log.format=json',
  ];
  const proc = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  proc.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
  proc.stdout?.resume();
  const port = await listeningPort(() => logs, 30000);
  return {
    proc,
    port,
    logs: () => logs,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 100000);
  const builds: [string, string][] = [['agent', MAIN]];
  if (process.env.BENCH_BEFORE) builds.push(['before (BENCH_BEFORE)', process.env.BENCH_BEFORE]);
  for (const [name, main] of builds) await measure(name, main, n);
}

async function measure(name: string, main: string, n: number): Promise<void> {
  const peers: net.Server[] = [];
  for (let i = 0; i < 8; i++) {
    const s = net.createServer((c) => c.on('error', () => undefined).end());
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', 1024, () => r()));
    peers.push(s);
  }
  const ports = peers.map((p) => (p.address() as net.AddressInfo).port);
  const arrivals: number[] = [];
  const canary = net.createServer((c) => {
    arrivals.push(performance.now());
    c.on('error', () => undefined).end();
  });
  await new Promise<void>((r) => canary.listen(0, '127.0.0.1', () => r()));
  const canaryPort = (canary.address() as net.AddressInfo).port;
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-reload-'));
  const file = path.join(dir, 'c.yml');
  writeFileSync(file, config(100, ports, canaryPort));
  const agent = await startBuild(main, file);
  const pid = agent.proc.pid as number;
  const loaded = (): number => (agent.logs().match(/"msg":"config loaded"/g) ?? []).length;
  const lagMax = async (): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${agent.port}/metrics`)).text();
    return Number(/^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1]) * 1000;
  };

  /** Sends SIGHUP and polls /-/healthy until the reload is logged; returns timings. */
  const reload = async (text: string): Promise<{ ms: number; stall: number; gap: number }> => {
    writeFileSync(file, text);
    const before = loaded();
    const t0 = performance.now();
    const from = arrivals.length;
    agent.proc.kill('SIGHUP');
    let stall = 0;
    while (loaded() === before) {
      const s = performance.now();
      await (await fetch(`http://127.0.0.1:${agent.port}/-/healthy`)).text();
      stall = Math.max(stall, performance.now() - s);
      await new Promise((r) => setTimeout(r, 10));
      if (performance.now() - t0 > 600_000) throw new Error('reload did not finish in 10 minutes');
    }
    const ms = performance.now() - t0;
    // Canary probes from the SIGHUP to 2 s after the reload: the longest gap between two.
    await new Promise((r) => setTimeout(r, 2000));
    const seen = arrivals.slice(Math.max(0, from - 1));
    let gap = 0;
    for (let i = 1; i < seen.length; i++) gap = Math.max(gap, seen[i] - seen[i - 1]);
    return { ms, stall, gap };
  };

  try {
    await new Promise((r) => setTimeout(r, 3000));
    const rss0 = rssMB(pid);
    await lagMax(); // resets the agent's histogram
    const grow = await reload(config(n, ports, canaryPort));
    const lagGrow = await lagMax();
    // The first probes of the newcomers (10 s window from the SIGHUP), then 8 s of the agent at N
    // targets with no reload going on: the baseline the reloads' figures compare with.
    await new Promise((r) => setTimeout(r, 4000));
    await lagMax();
    let steady = 0;
    for (const until = performance.now() + 8000; performance.now() < until;) {
      const s = performance.now();
      await (await fetch(`http://127.0.0.1:${agent.port}/-/healthy`)).text();
      steady = Math.max(steady, performance.now() - s);
      await new Promise((r) => setTimeout(r, 10));
    }
    const lagSteady = await lagMax();
    const rssBig = rssMB(pid);
    const shrink = await reload(config(100, ports, canaryPort));
    await new Promise((r) => setTimeout(r, 10000));
    const rss1 = rssMB(pid);
    console.log(`${name} (${main}):`);
    console.log(
      `reload 100 -> ${n} targets: ${grow.ms.toFixed(0)}ms; slowest /-/healthy ${grow.stall.toFixed(0)}ms; agent event-loop lag max ${lagGrow.toFixed(0)}ms; longest canary gap ${grow.gap.toFixed(0)}ms (250 on time)`,
    );
    console.log(
      `at ${n} targets, no reload going on (8 s): slowest /-/healthy ${steady.toFixed(0)}ms; agent event-loop lag max ${lagSteady.toFixed(0)}ms`,
    );
    console.log(
      `reload ${n} -> 100 targets: ${shrink.ms.toFixed(0)}ms; slowest /-/healthy ${shrink.stall.toFixed(0)}ms; longest canary gap ${shrink.gap.toFixed(0)}ms`,
    );
    console.log(
      `rss: ${rss0.toFixed(0)}MB at 100 targets, ${rssBig.toFixed(0)}MB at ${n}, ${rss1.toFixed(0)}MB 10 s after shrinking back to 100`,
    );
  } finally {
    await agent.stop();
    for (const p of [...peers, canary]) p.close();
  }
}

void main();
