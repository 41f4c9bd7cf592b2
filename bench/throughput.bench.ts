// Probe throughput and CPU per probe: portprobe probing loopback listeners on its own schedule
// against prometheus-blackbox-exporter driven through /probe as Prometheus would drive it. Both
// are pinned to the same core (taskset -c 1); the rounds alternate; medians are reported.
// portprobe runs twice per round: with its defaults, and with `precise_connect_timing: true`
// (each connect dated by the arrival addon's thread), to show what that option costs.
// Run: npx ts-node --transpile-only bench/throughput.bench.ts [targets=5000] [seconds=10] [rounds=3]
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PROBES_TOTAL, cpuSeconds, median, startAgent, startBlackbox, sumSeries } from './common';

const TARGETS = Number(process.argv[2] ?? 5000);
const SECONDS = Number(process.argv[3] ?? 10);
const ROUNDS = Number(process.argv[4] ?? 3);

async function counter(port: number): Promise<number> {
  return sumSeries(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), PROBES_TOTAL);
}

async function portprobeRound(cfg: string): Promise<{ rate: number; cpuPer1000: number }> {
  const agent = await startAgent(cfg, ['taskset', '-c', '1']);
  try {
    await new Promise((r) => setTimeout(r, 3000)); // warm-up: one full interval and more
    const pid = agent.proc.pid as number;
    const c0 = cpuSeconds(pid);
    const n0 = await counter(agent.port);
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const n1 = await counter(agent.port);
    const c1 = cpuSeconds(pid);
    return { rate: (n1 - n0) / SECONDS, cpuPer1000: ((c1 - c0) / (n1 - n0)) * 1000 };
  } finally {
    await agent.stop();
  }
}

async function blackboxRound(dir: string, ports: number[]): Promise<{ rate: number; cpuPer1000: number }> {
  const { proc, listen } = await startBlackbox(dir);
  const agentHttp = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let done = 0;
  let running = true;
  try {
    const probe = (port: number): Promise<void> =>
      new Promise((resolve) => {
        http
          .get(
            {
              host: '127.0.0.1',
              port: listen,
              agent: agentHttp,
              path: `/probe?module=tcp_connect&target=127.0.0.1:${port}`,
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve());
            },
          )
          .on('error', () => resolve());
      });
    // Drive it at most at the rate portprobe is scheduled for, with up to 64 requests in flight.
    const interval = 1000 / TARGETS;
    const workers = Array.from({ length: 64 }, async (_, w) => {
      let k = w;
      while (running) {
        const t = Date.now();
        await probe(ports[k % ports.length]);
        if (running) done++;
        k += 64;
        const wait = interval * 64 - (Date.now() - t);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    });
    await new Promise((r) => setTimeout(r, 2000));
    const pid = proc.pid as number;
    const c0 = cpuSeconds(pid);
    const n0 = done;
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const n1 = done;
    const c1 = cpuSeconds(pid);
    running = false;
    await Promise.all(workers);
    return { rate: (n1 - n0) / SECONDS, cpuPer1000: ((c1 - c0) / (n1 - n0)) * 1000 };
  } finally {
    running = false;
    agentHttp.destroy();
    proc.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  const peers: net.Server[] = [];
  for (let i = 0; i < 200; i++) {
    const s = net.createServer((c) => c.on('error', () => undefined));
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    peers.push(s);
  }
  const ports = peers.map((s) => (s.address() as net.AddressInfo).port);
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-tput-'));
  writeFileSync(path.join(dir, 'blackbox.yml'), 'modules:\n  tcp_connect:\n    prober: tcp\n    timeout: 5s\n');
  const config = (file: string, module: string): string => {
    const lines = ['global: {interval: 1s, timeout: 900ms, concurrency: 1000}', `modules: {t: ${module}}`, 'targets:'];
    for (let i = 0; i < TARGETS; i++)
      lines.push(`  - {name: t${i}, module: t, address: "127.0.0.1:${ports[i % ports.length]}"}`);
    writeFileSync(path.join(dir, file), lines.join('\n'));
    return path.join(dir, file);
  };
  const cfg = config('portprobe.yml', '{prober: tcp}');
  const preciseCfg = config('precise.yml', '{prober: tcp, tcp: {precise_connect_timing: true}}');
  const pp: { rate: number; cpuPer1000: number }[] = [];
  const precise: { rate: number; cpuPer1000: number }[] = [];
  const bb: { rate: number; cpuPer1000: number }[] = [];
  const fmt = (x: { rate: number; cpuPer1000: number }): string =>
    `${x.rate.toFixed(0)}/s ${x.cpuPer1000.toFixed(3)} cpu-s/1000`;
  try {
    for (let r = 0; r < ROUNDS; r++) {
      pp.push(await portprobeRound(cfg));
      bb.push(await blackboxRound(dir, ports));
      precise.push(await portprobeRound(preciseCfg));
      console.log(
        `round ${r + 1}: portprobe ${fmt(pp[r])} | blackbox ${fmt(bb[r])} | portprobe precise_connect_timing ${fmt(precise[r])}`,
      );
    }
  } finally {
    for (const s of peers) s.close();
  }
  const ppCpu = median(pp.map((x) => x.cpuPer1000));
  const bbCpu = median(bb.map((x) => x.cpuPer1000));
  const preciseCpu = median(precise.map((x) => x.cpuPer1000));
  console.log(
    `summary targets=${TARGETS} (scheduled ${TARGETS}/s) portprobe median ${median(pp.map((x) => x.rate)).toFixed(0)} probes/s, ${ppCpu.toFixed(3)} cpu-s per 1000 | ` +
      `blackbox median ${median(bb.map((x) => x.rate)).toFixed(0)} probes/s, ${bbCpu.toFixed(3)} cpu-s per 1000 | portprobe/blackbox cpu per probe = ${(ppCpu / bbCpu).toFixed(2)} | ` +
      `precise_connect_timing ${preciseCpu.toFixed(3)} cpu-s per 1000 (${(preciseCpu / ppCpu).toFixed(2)}x the default, ${(preciseCpu / bbCpu).toFixed(2)}x blackbox)`,
  );
}

void main();
