// Scrape cost at 1k and 10k targets: GET /metrics (gzip, as Prometheus asks) against
// prom-client's registry.metrics() over the same series in the same process.
// Run: npx ts-node --transpile-only bench/scrape.bench.ts [targets...]
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Gauge, Registry } from 'prom-client';
import { Agent } from '../agent/agent';
import { createApp } from '../agent/http';
import { createLogger } from '../agent/logger';
import type { ProbeResult } from '../exporters/types';
import { PROBERS } from '../exporters';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const ROUNDS = 15;

function result(i: number): ProbeResult {
  const ok = i % 10 !== 0;
  return {
    success: ok,
    durationSeconds: 0.01 + (i % 97) / 1000,
    phases: [
      { phase: 'resolve', seconds: 0.0001 * (i % 7) },
      { phase: 'connect', seconds: 0.001 * (i % 13) },
      { phase: 'tls', seconds: 0.002 * (i % 5) },
      { phase: 'banner', seconds: 0.003 },
    ],
    failure: ok ? undefined : { phase: 'connect', reason: 'refused', message: 'refused' },
    ipProtocol: 4,
    facts: [
      { metric: 'probe_tls_cert_not_after_timestamp_seconds', value: 1.8e9 + i },
      { metric: 'probe_tls_version_info', value: 1, labels: { version: 'TLSv1.3' } },
    ],
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function fetchGzip(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', headers: { 'accept-encoding': 'gzip' } }, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(n));
      })
      .on('error', reject);
  });
}

async function scenario(n: number): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-bench-'));
  const file = path.join(dir, 'c.yml');
  const lines = ['global: {interval: 1h}', 'modules: {t: {prober: tcp}}', 'targets:'];
  for (let i = 0; i < n; i++)
    lines.push(
      `  - {name: target-${i}, module: t, address: "192.0.2.${i % 250}:${1000 + (i % 5000)}", labels: {env: prod}}`,
    );
  writeFileSync(file, lines.join('\n'));
  const logger = createLogger('error', 'json', { write: () => true });
  const agent = new Agent({ configFile: file, logger, build: { version: 'bench', revision: 'bench' } });
  if (!agent.reload().ok) throw new Error('config');
  await agent.scheduler.stop(); // results are fed directly: no probing during the benchmark
  const phases = PROBERS.tcp.phases;
  for (let i = 0; i < n; i++) agent.store.record(`target-${i}`, phases, result(i));

  // The same series in prom-client objects: the naive path the store replaces.
  const reg = new Registry();
  const g = (name: string, labelNames: string[]) => new Gauge({ name, help: name, labelNames, registers: [reg] });
  const base = ['target', 'module', 'env'];
  const success = g('probe_success', base);
  const dur = g('probe_duration_seconds', base);
  const phase = g('probe_phase_duration_seconds', [...base, 'phase']);
  const fail = g('probe_failure_info', [...base, 'phase', 'reason']);
  const last = g('probe_last_run_timestamp_seconds', base);
  const ip = g('probe_ip_protocol', base);
  const notAfter = g('probe_tls_cert_not_after_timestamp_seconds', base);
  const ver = g('probe_tls_version_info', [...base, 'version']);
  for (let i = 0; i < n; i++) {
    const r = result(i);
    const l = { target: `target-${i}`, module: 't', env: 'prod' };
    success.set(l, r.success ? 1 : 0);
    dur.set(l, r.durationSeconds);
    for (const p of r.phases) phase.set({ ...l, phase: p.phase }, p.seconds);
    if (r.failure) fail.set({ ...l, phase: r.failure.phase, reason: r.failure.reason }, 1);
    last.set(l, Date.now() / 1000);
    ip.set(l, 4);
    notAfter.set(l, 1.8e9 + i);
    ver.set({ ...l, version: 'TLSv1.3' }, 1);
  }

  const server = http.createServer(createApp({ agent, logger, reload: () => ({ ok: true, errors: [] }) }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;

  const ours: number[] = [];
  const naive: number[] = [];
  let bytes = 0;
  let naiveBytes = 0;
  for (let round = 0; round < ROUNDS; round++) {
    // A fresh result between scrapes, as on a live agent, so no scrape is served from cache.
    agent.store.record(`target-${round}`, phases, result(round + 1));
    let t0 = performance.now();
    bytes = await fetchGzip(port);
    ours.push(performance.now() - t0);
    t0 = performance.now();
    naiveBytes = (await reg.metrics()).length;
    naive.push(performance.now() - t0);
  }
  const series = (
    agent.store
      .exposition()
      .toString()
      .match(/\n[a-z]/g) ?? []
  ).length;
  if (global.gc) global.gc();
  const rss = process.memoryUsage().rss / 2 ** 20;
  console.log(
    `targets=${n} series=${series} GET/metrics(gzip) p50=${median(ours).toFixed(1)}ms bytes=${bytes}` +
      ` | prom-client registry.metrics() p50=${median(naive).toFixed(1)}ms bytes=${naiveBytes}` +
      ` | ratio=${(median(naive) / median(ours)).toFixed(1)}x | rss(both in process)=${rss.toFixed(0)}MB`,
  );
  server.close();
}

async function main(): Promise<void> {
  const sizes = process.argv.slice(2).map(Number);
  for (const n of sizes.length ? sizes : [1000, 10000]) await scenario(n);
}

void main();
