// The agent alone at N targets: RSS after the schedule has run every target, and GET /metrics
// (gzip, as Prometheus asks) timed from outside the process. With a third argument (seconds,
// at least the 30 s interval) it also counts the probes run and skipped over that window, to show
// whether every target is probed every interval. The scrapes ask for gzip, as Prometheus does;
// one plain-text scrape at the end gives the uncompressed size (and RSS after it).
// Run: npx ts-node --transpile-only bench/agent-scale.bench.ts [targets=10000] [scrapes=20] [window=0]
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PROBES_TOTAL, median, rssMB, startAgent, sumSeries } from './common';

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
  const windowS = Number(process.argv[4] ?? 0);
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
    const counts = async (): Promise<{ probes: number; skipped: number; memory: string }> => {
      const text = await (await fetch(`http://127.0.0.1:${agent.port}/metrics`)).text();
      const mb = (re: RegExp): string => (sumSeries(text, re) / 1048576).toFixed(0);
      return {
        probes: sumSeries(text, PROBES_TOTAL),
        skipped: sumSeries(text, /^portprobe_scheduler_skipped_total (\S+)$/gm),
        memory: `heap used ${mb(/^nodejs_heap_size_used_bytes (\S+)$/gm)} of ${mb(/^nodejs_heap_size_total_bytes (\S+)$/gm)} MB, external ${mb(/^nodejs_external_memory_bytes (\S+)$/gm)} MB`,
      };
    };
    const c0 = await counts();
    const w0 = performance.now();
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < scrapes; i++) {
      const s = await scrape(agent.port);
      times.push(s.ms);
      bytes = s.bytes;
      await new Promise((r) => setTimeout(r, 200));
    }
    const rss = rssMB(agent.proc.pid as number);
    // Resident memory by mapping: the C heap (malloc: buffers, zlib) apart from the rest.
    let cHeapKB = 0;
    let inHeap = false;
    for (const line of readFileSync(`/proc/${agent.proc.pid}/smaps`, 'utf8').split('\n')) {
      if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inHeap = line.endsWith('[heap]');
      else if (inHeap && line.startsWith('Rss:')) cHeapKB += Number(line.split(/\s+/)[1]);
    }
    let window = '';
    if (windowS > 0) {
      const left = windowS * 1000 - (performance.now() - w0);
      if (left > 0) await new Promise((r) => setTimeout(r, left));
      const c1 = await counts();
      const secs = (performance.now() - w0) / 1000;
      window = ` (${c1.memory}) window=${secs.toFixed(0)}s probes=${c1.probes - c0.probes} (${((c1.probes - c0.probes) / ((n * secs) / 30)).toFixed(2)}× one per target per 30 s) skipped=${c1.skipped - c0.skipped}`;
    }
    // Plain text last: it makes the agent keep every target's rendered lines (for the next plain
    // scrape) instead of only the compressed blocks, so RSS is read before and after it.
    const plain = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: agent.port, path: '/metrics' }, (res) => {
          let b = 0;
          res.on('data', (c: Buffer) => (b += c.length));
          res.on('end', () => resolve(b));
        })
        .on('error', reject);
    });
    await new Promise((r) => setTimeout(r, 2000));
    const rssPlain = rssMB(agent.proc.pid as number);
    console.log(
      `agent targets=${n} GET /metrics gzip p50=${median(times).toFixed(1)}ms max=${Math.max(...times).toFixed(1)}ms bytes=${bytes} (${(bytes / n).toFixed(0)}/target) plain=${plain} (${(plain / n).toFixed(0)}/target) rss=${rss.toFixed(0)}MB (${((rss * 1048576) / n).toFixed(0)} B/target, C heap ${(cHeapKB / 1024).toFixed(0)} MB)${window} rss_after_plain=${rssPlain.toFixed(0)}MB`,
    );
  } finally {
    await agent.stop();
    for (const p of peers) p.close();
  }
}

void main();
