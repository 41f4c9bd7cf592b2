// The agent alone at N targets: RSS after the schedule has run every target, and GET /metrics
// (gzip, as Prometheus asks) timed from outside the process.
// Run: npx ts-node --transpile-only bench/agent-scale.bench.ts [targets=10000] [scrapes=20]
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { median, rssMB, startAgent } from './common';

function scrape(port: number): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', headers: { 'accept-encoding': 'gzip' } }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve({ ms: performance.now() - t0, bytes }));
      })
      .on('error', reject);
  });
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 10000);
  const scrapes = Number(process.argv[3] ?? 20);
  const peers: net.Server[] = [];
  for (let i = 0; i < 8; i++) {
    const s = net.createServer((c) => c.on('error', () => undefined));
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    peers.push(s);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-scale-'));
  const cfg = path.join(dir, 'c.yml');
  const lines = ['global: {interval: 30s, timeout: 5s, concurrency: 512}', 'modules: {t: {prober: tcp}}', 'targets:'];
  for (let i = 0; i < n; i++) {
    const port = (peers[i % peers.length].address() as net.AddressInfo).port;
    lines.push(`  - {name: target-${i}, module: t, address: "127.0.0.1:${port}", labels: {env: prod}}`);
  }
  writeFileSync(cfg, lines.join('\n'));
  const agent = await startAgent(cfg);
  try {
    // Wait for one full round: every target has a result.
    for (;;) {
      const text = await (await fetch(`http://127.0.0.1:${agent.port}/metrics`)).text();
      const done = (text.match(/^probe_success\{/gm) ?? []).length;
      if (done >= n) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < scrapes; i++) {
      const s = await scrape(agent.port);
      times.push(s.ms);
      bytes = s.bytes;
      await new Promise((r) => setTimeout(r, 200));
    }
    console.log(
      `agent targets=${n} GET /metrics gzip p50=${median(times).toFixed(1)}ms max=${Math.max(...times).toFixed(1)}ms bytes=${bytes} rss=${rssMB(agent.proc.pid as number).toFixed(0)}MB`,
    );
  } finally {
    await agent.stop();
    for (const p of peers) p.close();
  }
}

void main();
