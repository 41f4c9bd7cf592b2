// Abuse: what the agent absorbs while Prometheus still gets its scrapes (issue 22).
//   conns   idle keep-alive (after one 401), slowloris and silent connections, plain and TLS: for
//           each count, the agent's open descriptors and the latency of 10 authenticated scrapes
//   flood   clients sending wrong passwords for the real user from 127.0.0.2: answers per second,
//           and the latency of authenticated scrapes (credentials seen before, and never seen)
//   timing  a wrong password for a real user vs an unknown user, alternating, one at a time
//   reload  results per minute of 200 targets whose probes take 1.5 s, with no reload, a reload of
//           the same file every second, and a reload every second that changes their module
// Run: npx ts-node --transpile-only bench/abuse.bench.ts [parts=conns,flood,timing,reload] [reload-seconds=60]
// Everything stays on loopback; every connection, client and agent is closed at the end of its part.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import bcrypt from 'bcryptjs';
import { selfSignedCert } from '../test/helpers/net';
import { MAIN, PROBES_TOTAL, median, nodeFlags, percentile, sumSeries, listeningPort } from './common';

const PARTS = (process.argv[2] ?? 'conns,flood,timing,reload').split(',');
const RELOAD_SECONDS = Number(process.argv[3] ?? 60);
const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-abuse-'));
const write = (name: string, text: string): string => {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
};
const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const USERS = ['prometheus', 'u1', 'u2', 'u3', 'u4', 'u5'];
const webUsers = `basic_auth_users:\n${USERS.map((u) => `  ${u}: "${bcrypt.hashSync(`pw-${u}`, 10)}"`).join('\n')}\n`;

interface Agent {
  proc: ChildProcess;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

async function startAgent(config: string, args: string[]): Promise<Agent> {
  const node = [process.execPath, ...nodeFlags(), MAIN].join(' ');
  const proc = spawn('bash', [
    '-c',
    `ulimit -n $(ulimit -Hn) && exec ${node} --config.file=${config} --web.listen-address=127.0.0.1:0 --log.format=json --log.level=info ${args.join(' ')}`,
  ]);
  let logs = '';
  proc.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
  const port = await listeningPort(() => logs);
  return {
    proc,
    port,
    pid: proc.pid as number,
    stop: () =>
      new Promise((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

/** One GET; resolves with status and milliseconds (status 0 for a failed connection). */
function get(
  url: string,
  opts: { auth?: string; localAddress?: string; agent?: http.Agent | false; ca?: Buffer; timeoutMs?: number } = {},
): Promise<{ status: number; ms: number; body: string }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(
      url,
      {
        headers: opts.auth ? { authorization: opts.auth } : {},
        localAddress: opts.localAddress,
        agent: opts.agent ?? false,
        ca: opts.ca,
        timeout: opts.timeoutMs ?? 10000,
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, ms: performance.now() - t0, body: '' }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

type Kind = 'idle' | 'slowloris' | 'silent';

/**
 * Opens n connections of a kind, 100 at a time; returns them (the agent may close some). With
 * `ca`, idle and slowloris connections finish a TLS handshake first; silent ones never start it.
 */
async function open(port: number, n: number, kind: Kind, ca?: Buffer): Promise<net.Socket[]> {
  const socks: net.Socket[] = [];
  for (let i = 0; i < n; i += 100) {
    await Promise.all(
      Array.from(
        { length: Math.min(100, n - i) },
        () =>
          new Promise<void>((resolve) => {
            const s =
              ca && kind !== 'silent'
                ? tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca })
                : net.connect(port, '127.0.0.1');
            socks.push(s);
            s.on('error', () => resolve());
            s.on('close', () => resolve());
            s.once(ca && kind !== 'silent' ? 'secureConnect' : 'connect', () => {
              if (kind === 'silent') return resolve();
              if (kind === 'slowloris') {
                s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
                return resolve();
              }
              s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
              s.once('data', () => resolve());
            });
          }),
      ),
    );
  }
  return socks;
}

async function conns(): Promise<void> {
  const target = net.createServer((c) => c.on('error', () => undefined));
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', () => r()));
  const cfg = write(
    'conns.yml',
    `modules: {t: {prober: tcp}}\ntargets: [{name: a, module: t, address: "127.0.0.1:${(target.address() as net.AddressInfo).port}"}]\n`,
  );
  const cert = selfSignedCert();
  const ca = readFileSync(cert.certFile);
  for (const useTls of [false, true]) {
    const web = write(
      `web-${useTls}.yml`,
      (useTls ? `tls_server_config:\n  cert_file: ${cert.certFile}\n  key_file: ${cert.keyFile}\n` : '') + webUsers,
    );
    const agent = await startAgent(cfg, [`--web.config.file=${web}`]);
    const url = `${useTls ? 'https://localhost' : 'http://127.0.0.1'}:${agent.port}/metrics`;
    const auth = basic('prometheus', 'pw-prometheus');
    await get(url, { auth, ca });
    const base = fds(agent.pid);
    for (const kind of ['idle', 'slowloris', 'silent'] as Kind[]) {
      for (const n of [600, 2000, 5000]) {
        const socks = await open(agent.port, n, kind, useTls ? ca : undefined);
        const drip =
          kind === 'slowloris'
            ? setInterval(() => socks.forEach((s) => s.writable && s.write('X-a: b\r\n')), 2000)
            : undefined;
        await sleep(300);
        const held = fds(agent.pid) - base;
        const lat: number[] = [];
        let ok = 0;
        for (let i = 0; i < 10; i++) {
          const r = await get(url, { auth, ca });
          lat.push(r.ms);
          if (r.status === 200) ok++;
        }
        if (drip) clearInterval(drip);
        const stillOpen = socks.filter((s) => !s.destroyed).length;
        console.log(
          `conns ${useTls ? 'tls  ' : 'plain'} ${kind.padEnd(9)} opened=${n} agent-held=${held} client-still-open=${stillOpen} scrapes-ok=${ok}/10 p50=${median(lat).toFixed(1)}ms max=${Math.max(...lat).toFixed(1)}ms`,
        );
        for (const s of socks) s.destroy();
        await sleep(1000);
      }
    }
    await agent.stop();
  }
  target.close();
}

/** argv: url, clients. Each client sends wrong passwords for the real user from 127.0.0.2 until SIGTERM. */
const FLOODER = `
const http = require('node:http');
const [url, n] = process.argv.slice(1);
const pool = new http.Agent({ keepAlive: true, maxSockets: Number(n) });
const answers = {};
let stop = false;
process.on('SIGTERM', () => { stop = true; });
const one = (i, k) => new Promise((resolve) => {
  const auth = 'Basic ' + Buffer.from('prometheus:wrong-' + i + '-' + k).toString('base64');
  const req = http.get(url, { agent: pool, localAddress: '127.0.0.2', headers: { authorization: auth }, timeout: 10000 }, (res) => {
    res.resume();
    res.on('end', () => { answers[res.statusCode] = (answers[res.statusCode] || 0) + 1; resolve(); });
  });
  req.on('timeout', () => req.destroy());
  req.on('error', () => { answers[0] = (answers[0] || 0) + 1; resolve(); });
});
Promise.all(Array.from({ length: Number(n) }, async (_, i) => { for (let k = 0; !stop; k++) await one(i, k); }))
  .then(() => { process.stdout.write(JSON.stringify(answers)); pool.destroy(); });
`;

async function flood(): Promise<void> {
  const cfg = write('flood.yml', 'modules: {t: {prober: tcp}}\ntargets: []\n');
  const web = write('web-flood.yml', webUsers);
  for (const clients of [50, 150, 400]) {
    // A fresh agent per round: the new users' credentials are not remembered yet.
    const agent = await startAgent(cfg, [`--web.config.file=${web}`]);
    const url = `http://127.0.0.1:${agent.port}/metrics`;
    await get(url, { auth: basic('prometheus', 'pw-prometheus') }); // Prometheus has been scraping
    // The flood runs in its own process, so its clients do not delay the scrapes measured here.
    const flooder = spawn(process.execPath, ['-e', FLOODER, url, String(clients)]);
    let out = '';
    flooder.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const t0 = performance.now();
    const known: number[] = [];
    const fresh: number[] = [];
    let failed = 0;
    for (let s = 0; s < 20; s++) {
      await sleep(500);
      const r = await get(url, { auth: basic('prometheus', 'pw-prometheus') });
      known.push(r.ms);
      if (r.status !== 200) failed++;
      if (s % 4 === 3) {
        const u = USERS[1 + (s - 3) / 4];
        const f = await get(url, { auth: basic(u, `pw-${u}`) });
        fresh.push(f.ms);
        if (f.status !== 200) failed++;
      }
    }
    await new Promise<void>((resolve) => {
      flooder.once('exit', () => resolve());
      flooder.kill('SIGTERM');
    });
    const secs = (performance.now() - t0) / 1000;
    const answers = JSON.parse(out) as Record<string, number>;
    const total = Object.values(answers).reduce((x, y) => x + y, 0);
    console.log(
      `flood clients=${clients} bad-password answers/s=${(total / secs).toFixed(0)} (401: ${answers['401'] ?? 0}, 503: ${answers['503'] ?? 0}, no answer: ${answers['0'] ?? 0})` +
        ` scrapes failed=${failed}/25 known-credentials p50=${median(known).toFixed(1)}ms max=${Math.max(...known).toFixed(1)}ms` +
        ` new-credentials ${fresh.map((x) => x.toFixed(0)).join(', ')} ms`,
    );
    await agent.stop();
  }
}

async function timing(): Promise<void> {
  const cfg = write('timing.yml', 'modules: {t: {prober: tcp}}\ntargets: []\n');
  const agent = await startAgent(cfg, [`--web.config.file=${write('web-timing.yml', webUsers)}`]);
  const url = `http://127.0.0.1:${agent.port}/metrics`;
  const known: number[] = [];
  const unknown: number[] = [];
  for (let i = 0; i < 60; i++) {
    // Distinct passwords, so no answer comes from the remembered pairs.
    const a = await get(url, { auth: basic('prometheus', `nope-${i}`) });
    const b = await get(url, { auth: basic(`ghost${i}`, `nope-${i}`) });
    if (i >= 5) {
      known.push(a.ms);
      unknown.push(b.ms);
    }
  }
  const d = median(known) - median(unknown);
  console.log(
    `timing known-user p50=${median(known).toFixed(1)}ms p90=${percentile(known, 90).toFixed(1)}ms unknown-user p50=${median(unknown).toFixed(1)}ms p90=${percentile(unknown, 90).toFixed(1)}ms difference of medians=${d.toFixed(1)}ms (${((d / median(known)) * 100).toFixed(1)} %)`,
  );
  await agent.stop();
}

async function reload(): Promise<void> {
  const silent = net.createServer((c) => c.on('error', () => undefined));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  const port = (silent.address() as net.AddressInfo).port;
  const yaml = (timeout: string): string =>
    [
      'global: {interval: 3s, concurrency: 256}',
      'modules:',
      `  slow: {prober: tcp, timeout: ${timeout}, tcp: {expect_banner: "."}}`,
      'targets:',
      ...Array.from({ length: 200 }, (_, i) => `  - {name: t${i}, module: slow, address: "127.0.0.1:${port}"}`),
    ].join('\n');
  for (const mode of ['none', 'same', 'changed'] as const) {
    const cfg = write(`reload-${mode}.yml`, yaml('1500ms'));
    const agent = await startAgent(cfg, []);
    const url = `http://127.0.0.1:${agent.port}`;
    await sleep(4000); // one full round first
    const read = async () => {
      const text = (await get(`${url}/metrics`)).body;
      return {
        probes: sumSeries(text, PROBES_TOTAL),
        skipped: sumSeries(text, /^portprobe_scheduler_skipped_total (\S+)$/gm),
      };
    };
    const before = await read();
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < RELOAD_SECONDS * 1000) {
      await sleep(1000);
      if (mode === 'none') continue;
      if (mode === 'changed') writeFileSync(cfg, yaml(n % 2 === 0 ? '1400ms' : '1500ms'));
      await new Promise<void>((resolve) => {
        const req = http.request(`${url}/-/reload`, { method: 'POST' }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        });
        req.on('error', () => resolve());
        req.end();
      });
      n++;
    }
    const after = await read();
    const minutes = (performance.now() - t0) / 60000;
    console.log(
      `reload ${mode.padEnd(7)} reloads=${n} results/min=${((after.probes - before.probes) / minutes).toFixed(0)} skipped/min=${((after.skipped - before.skipped) / minutes).toFixed(0)} (200 targets, 3 s interval: 4,000/min when nothing is lost)`,
    );
    await agent.stop();
  }
  silent.close();
}

async function main(): Promise<void> {
  if (PARTS.includes('conns')) await conns();
  if (PARTS.includes('flood')) await flood();
  if (PARTS.includes('timing')) await timing();
  if (PARTS.includes('reload')) await reload();
}

void main();
