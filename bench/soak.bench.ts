// Soak: 2,000 targets (20 % of them hostile peers) probed every second for a long run. Samples
// the agent's RSS, heap, open file descriptors, skipped runs and probe latency over time and
// reports drift. The heap is read after each full collection (node's --trace-gc lines), which is
// what survives; the heap "used" between collections is mostly garbage waiting.
// Run: npx ts-node --transpile-only bench/soak.bench.ts [minutes=10] [targets=2000] [abuse]
// With "abuse" (issue 22) the agent also runs behind basic auth while, for the whole run, 600
// idle keep-alive connections are held (reopened as the agent evicts them), 20 clients send wrong
// passwords for the real user, and the unchanged config is reloaded every second; every sample
// is an authenticated scrape, and the summary says how many failed and the slowest.
// All traffic stays on 127.0.0.1; the agent and the peers stop at the end.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import bcrypt from 'bcryptjs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startHostilePeer, type HostilePeer } from '../test/peers/hostile';
import { MAIN, PROBES_TOTAL, nodeFlags, sumSeries, listeningPort } from './common';

const MINUTES = Number(process.argv[2] ?? 10);
const TARGETS = Number(process.argv[3] ?? 2000);
const ABUSE = process.argv[4] === 'abuse';
const SAMPLE_MS = 10_000;

interface Sample {
  t: number;
  rssMB: number;
  heapMB: number;
  fds: number;
  skipped: number;
  probes: number;
  okLatencyMs: number;
  scrapeMs: number;
}

function metric(text: string, re: RegExp): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (m) out.push(Number(m[1]));
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

/** The abuse of issue 22, for the whole run: idle connections, wrong passwords, reloads. */
function startAbuse(port: number): { stop(): void; reloads(): number; answers(): number; reopened(): number } {
  let stopped = false;
  let reloads = 0;
  let answers = 0;
  let reopened = 0;
  const idle = new Set<net.Socket>();
  const openIdle = (): void => {
    if (stopped) return;
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.once('connect', () => s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'));
    s.resume(); // read the 401, so a close by the agent is seen
    s.once('close', () => {
      idle.delete(s);
      reopened++;
      setTimeout(openIdle, 1000);
    });
    idle.add(s);
  };
  for (let i = 0; i < 600; i++) openIdle();
  const pool = new http.Agent({ keepAlive: true, maxSockets: 20 });
  const flood = async (i: number): Promise<void> => {
    for (let k = 0; !stopped; k++) {
      await new Promise<void>((resolve) => {
        const auth = `Basic ${Buffer.from(`prometheus:wrong-${i}-${k}`).toString('base64')}`;
        const req = http.get(
          `http://127.0.0.1:${port}/metrics`,
          { agent: pool, localAddress: '127.0.0.2', headers: { authorization: auth } },
          (res) => {
            res.resume();
            res.on('end', () => {
              answers++;
              resolve();
            });
          },
        );
        req.on('error', () => setTimeout(resolve, 100));
      });
    }
  };
  for (let i = 0; i < 20; i++) void flood(i);
  const reload = setInterval(() => {
    const req = http.request(`http://127.0.0.1:${port}/-/reload`, { method: 'POST' }, (res) => {
      res.resume();
      reloads++;
    });
    req.on('error', () => undefined);
    req.end();
  }, 1000);
  return {
    stop: () => {
      stopped = true;
      clearInterval(reload);
      for (const s of idle) s.destroy();
      pool.destroy();
    },
    reloads: () => reloads,
    answers: () => answers,
    reopened: () => reopened,
  };
}

async function main(): Promise<void> {
  // Healthy peers: plain listeners that accept and stay quiet (tcp connect probes).
  const healthy: net.Server[] = [];
  for (let i = 0; i < 4; i++) {
    const s = net.createServer((c) => c.on('error', () => undefined));
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    healthy.push(s);
  }
  const hostile: HostilePeer[] = await Promise.all(
    (['tarpit', 'reset', 'garbage', 'huge_line'] as const).map((k) => startHostilePeer(k)),
  );
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-soak-'));
  const cfg = path.join(dir, 'soak.yml');
  const lines = [
    'global: {interval: 1s, timeout: 800ms, concurrency: 2000}',
    'modules:',
    '  connect: {prober: tcp}',
    '  banner: {prober: tcp, tcp: {expect_banner: "^SSH-"}}',
    'targets:',
  ];
  for (let i = 0; i < TARGETS; i++) {
    if (i % 5 === 0) {
      const p = hostile[(i / 5) % hostile.length];
      lines.push(`  - {name: hostile-${i}, module: banner, address: "127.0.0.1:${p.port}"}`);
    } else {
      const s = healthy[i % healthy.length];
      lines.push(`  - {name: ok-${i}, module: connect, address: "127.0.0.1:${(s.address() as net.AddressInfo).port}"}`);
    }
  }
  writeFileSync(cfg, lines.join('\n'));
  const AUTH = `Basic ${Buffer.from('prometheus:soak-pw').toString('base64')}`;
  let webFlag = '';
  if (ABUSE) {
    const web = path.join(dir, 'web.yml');
    writeFileSync(web, `basic_auth_users:\n  prometheus: "${bcrypt.hashSync('soak-pw', 10)}"\n`);
    webFlag = `--web.config.file=${web}`;
  }
  const node = [process.execPath, ...nodeFlags(), '--trace-gc', MAIN].join(' ');
  const agent = spawn('bash', [
    '-c',
    `ulimit -n $(ulimit -Hn) && exec ${node} --config.file=${cfg} --web.listen-address=127.0.0.1:0 --log.format=json --log.level=info ${webFlag}`,
  ]);
  let logs = '';
  const t0 = Date.now();
  // "Mark-Compact 71.5 (101.9) -> 63.6 (102.4) MB": the heap after a full collection.
  const afterGc: { t: number; mb: number }[] = [];
  let partial = '';
  agent.stdout.on('data', (d: Buffer) => {
    const text = partial + d.toString();
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const m = /Mark-Compact [\d.]+ \([\d.]+\) -> ([\d.]+) \(/.exec(line);
      if (m) afterGc.push({ t: (Date.now() - t0) / 1000, mb: Number(m[1]) });
      else if (!line.includes('Scavenge')) logs += `${line}\n`;
    }
  });
  agent.stderr.on('data', (d: Buffer) => (logs += d.toString()));
  const port = await listeningPort(() => logs);
  const pid = agent.pid as number;
  const samples: Sample[] = [];
  const abuse = ABUSE ? startAbuse(port) : undefined;
  let scrapeFailures = 0;
  try {
    while (Date.now() - t0 < MINUTES * 60_000) {
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
      const s0 = performance.now();
      let text = '';
      try {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
          headers: ABUSE ? { authorization: AUTH } : {},
          signal: AbortSignal.timeout(10_000),
        });
        text = await res.text();
        if (res.status !== 200) scrapeFailures++;
      } catch {
        scrapeFailures++;
      }
      const scrapeMs = performance.now() - s0;
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
      samples.push({
        t: Math.round((Date.now() - t0) / 1000),
        rssMB: rss,
        heapMB: (metric(text, /^nodejs_heap_size_used_bytes (\S+)$/)[0] ?? NaN) / 2 ** 20,
        fds: readdirSync(`/proc/${pid}/fd`).length,
        skipped: metric(text, /^portprobe_scheduler_skipped_total (\S+)$/)[0] ?? NaN,
        probes: sumSeries(text, PROBES_TOTAL),
        okLatencyMs: median(metric(text, /^probe_duration_seconds\{target="ok-[^"]*",[^}]*\} (\S+)$/)) * 1000,
        scrapeMs,
      });
      const s = samples[samples.length - 1];
      console.log(
        `t=${s.t}s rss=${s.rssMB.toFixed(1)}MB heap=${s.heapMB.toFixed(1)}MB fds=${s.fds} skipped=${s.skipped} probes=${s.probes} ok-latency-p50=${s.okLatencyMs.toFixed(2)}ms scrape=${s.scrapeMs.toFixed(0)}ms`,
      );
    }
  } finally {
    abuse?.stop();
    agent.kill('SIGTERM');
    for (const s of healthy) s.close();
    await Promise.all(hostile.map((h) => h.close()));
  }
  // Drift: an early window after warm-up against the last window of the run. The heap compares
  // the median heap after full collections in each window; RSS and the rest compare averages.
  const span = Math.min(120, (MINUTES * 60) / 4);
  const window = (from: number, to: number) => samples.filter((s) => s.t > from && s.t <= to);
  const early = window(60, 60 + span);
  const late = window(MINUTES * 60 - span, MINUTES * 60 + SAMPLE_MS / 1000);
  const avg = (xs: Sample[], k: keyof Sample) => xs.reduce((a, s) => a + s[k], 0) / xs.length;
  const floor = (xs: Sample[], k: keyof Sample) => Math.min(...xs.map((s) => s[k]));
  const pct = (a: number, b: number) => (((b - a) / a) * 100).toFixed(1);
  const gcIn = (from: number, to: number) => afterGc.filter((g) => g.t > from && g.t <= to).map((g) => g.mb);
  const gcEarly = median(gcIn(60, 60 + span));
  const gcLate = median(gcIn(MINUTES * 60 - span, MINUTES * 60 + SAMPLE_MS / 1000));
  const first = samples[0];
  const last = samples[samples.length - 1];
  const rate = (last.probes - first.probes) / (last.t - first.t);
  console.log(
    `summary: minutes=${MINUTES} targets=${TARGETS} probes/s=${rate.toFixed(0)}` +
      ` heap-after-full-gc early=${gcEarly.toFixed(1)}MB late=${gcLate.toFixed(1)}MB drift=${pct(gcEarly, gcLate)}% (${afterGc.length} full collections)` +
      ` heap-used floor early=${floor(early, 'heapMB').toFixed(1)}MB late=${floor(late, 'heapMB').toFixed(1)}MB` +
      ` rss early=${avg(early, 'rssMB').toFixed(1)}MB late=${avg(late, 'rssMB').toFixed(1)}MB drift=${pct(avg(early, 'rssMB'), avg(late, 'rssMB'))}%` +
      ` fds early=${avg(early, 'fds').toFixed(0)} late=${avg(late, 'fds').toFixed(0)} max=${Math.max(...samples.map((s) => s.fds))}` +
      ` skipped=${last.skipped} ok-latency-p50 early=${avg(early, 'okLatencyMs').toFixed(2)}ms late=${avg(late, 'okLatencyMs').toFixed(2)}ms` +
      (abuse
        ? ` abuse: scrapes failed=${scrapeFailures}/${samples.length} slowest=${Math.max(...samples.map((x) => x.scrapeMs)).toFixed(0)}ms reloads=${abuse.reloads()} bad-password answers=${abuse.answers()} idle connections reopened=${abuse.reopened()}`
        : ''),
  );
}

void main();
