// CPU per probe for two short dialogues: portprobe against prometheus-blackbox-exporter's tcp
// prober with a query_response doing the same exchange. Every process under test is pinned to one
// core (taskset -c 1); the rounds alternate; medians are reported. The peers are scripted servers
// in a process of their own (their CPU is not counted):
// - ftp: banner 220, USER/331, PASS/230, TYPE I answered 502, QUIT/221 (portprobe's control
//   ladder up to its data rung, which the 502 refuses, so that neither side opens a data
//   connection: five round trips on each side).
// - prelogin: a PRELOGIN request answered with VERSION and ENCRYPTION=not supported, then close
//   (portprobe's mssql probe without credentials stops there).
// Each round measures, CPU by /proc/<pid>/stat (utime + stime) over the same window:
// - "portprobe /probe": GET /probe?module=…&target=127.0.0.1:port (the address allowed by
//   probe_api), from the same clients on the same grid as blackbox gets;
// - "portprobe scheduled": the targets in the config at a 1 s interval (how portprobe is meant to
//   run), with one gzip GET /metrics a second, as a Prometheus scraping every interval would;
// - "blackbox /probe": the requests come evenly spread over each second, as Prometheus spreads
//   its scrapes and as portprobe's scheduler spreads its probes;
// - "bare node": the same dialogue on net.Socket and nothing else, in a node process of its own
//   on the same grid: what node itself costs for the connects, writes, reads and closes;
// - with BENCH_BEFORE=<tree>/dist/agent/main.js, an older build scheduled as well.
// Run: npx ts-node --transpile-only bench/dialogue-cpu.bench.ts [targets=1000] [seconds=10] [rounds=3]
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PROBES_TOTAL, median, startAgent, startBlackbox, sumSeries } from './common';

const TARGETS = Number(process.argv[2] ?? 1000);
const SECONDS = Number(process.argv[3] ?? 10);
const ROUNDS = Number(process.argv[4] ?? 3);
const PEERS = 20;
/** An older build's dist/agent/main.js, run scheduled beside this one (before/after). */
const BEFORE = process.env.BENCH_BEFORE;
const CLIENTS = 128;

// The scripted peers, run in a child process: prints the FTP and TDS ports.
const PEER_SOURCE = `
const net = require('node:net');
const reply = Buffer.from([0x04, 0x01, 0x00, 0x1a, 0x00, 0x00, 0x01, 0x00,
  0x00, 0x00, 0x0b, 0x00, 0x06, 0x01, 0x00, 0x11, 0x00, 0x01, 0xff,
  0x0f, 0x00, 0x07, 0xd0, 0x00, 0x00, 0x02]);
const ftp = [], tds = [];
let pending = ${PEERS} * 2;
function done() { if (--pending === 0) process.stdout.write(JSON.stringify({ ftp, tds }) + '\\n'); }
for (let i = 0; i < ${PEERS}; i++) {
  const f = net.createServer((c) => {
    c.on('error', () => {});
    c.write('220 ready\\r\\n');
    let buf = '';
    c.on('data', (d) => {
      buf += d.toString('latin1');
      let k;
      while ((k = buf.indexOf('\\n')) >= 0) {
        const line = buf.slice(0, k).trim().toUpperCase();
        buf = buf.slice(k + 1);
        if (line.startsWith('USER')) c.write('331 password please\\r\\n');
        else if (line.startsWith('PASS')) c.write('230 logged in\\r\\n');
        else if (line.startsWith('QUIT')) { c.end('221 bye\\r\\n'); return; }
        else c.write('502 not implemented\\r\\n');
      }
    });
  });
  f.listen(0, '127.0.0.1', 1024, () => { ftp.push(f.address().port); done(); });
  const t = net.createServer((c) => {
    c.on('error', () => {});
    c.once('data', () => c.end(reply));
  });
  t.listen(0, '127.0.0.1', 1024, () => { tds.push(t.address().port); done(); });
}
`;

// A PRELOGIN request with every byte below 0x80, so YAML's "\\x.." escapes send it unchanged:
// VERSION, ENCRYPTION (off), INSTOPT (""), THREADID, MARS, TERMINATOR.
const PRELOGIN_REQUEST = [
  0x12, 0x01, 0x00, 0x2f, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x06, 0x01, 0x00, 0x20, 0x00, 0x01, 0x02,
  0x00, 0x21, 0x00, 0x01, 0x03, 0x00, 0x22, 0x00, 0x04, 0x04, 0x00, 0x26, 0x00, 0x01, 0xff, 0x0f, 0x00, 0x07, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/** utime and stime of a process, in seconds (clock ticks of 10 ms). */
function cpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

/** CPU seconds per 1,000 probes between two readings. */
function per1000(
  c0: { user: number; system: number },
  c1: { user: number; system: number },
  probes: number,
): { cpuPer1000: number; userPer1000: number } {
  const user = ((c1.user - c0.user) / probes) * 1000;
  return { cpuPer1000: user + ((c1.system - c0.system) / probes) * 1000, userPer1000: user };
}

interface Round {
  rate: number;
  cpuPer1000: number;
  /** The part of cpuPer1000 spent in user space (the rest is the kernel's). */
  userPer1000: number;
  /** Answers that were not the expected outcome. */
  wrong: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * CLIENTS clients GET `/probe` on `port` at TARGETS per second in all, round-robin over the peers;
 * `ok` tells an expected answer. Returns probes done and wrong answers in the measured window,
 * and the CPU `pid` used over it.
 */
async function driveProbe(
  port: number,
  pid: number,
  module: string,
  peers: number[],
  ok: (body: string) => boolean,
): Promise<Round> {
  const agentHttp = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  let done = 0;
  let wrong = 0;
  let running = true;
  const probe = (peer: number): Promise<void> =>
    new Promise((resolve) => {
      http
        .get(
          { host: '127.0.0.1', port, agent: agentHttp, path: `/probe?module=${module}&target=127.0.0.1:${peer}` },
          (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => {
              if (!ok(body)) wrong++;
              resolve();
            });
          },
        )
        .on('error', () => {
          wrong++;
          resolve();
        });
    });
  // Client w owns the slots w, w + CLIENTS, w + 2 CLIENTS ... of a 1/TARGETS s grid, so that the
  // requests come evenly spread, as Prometheus spreads its scrapes over the interval (and as
  // portprobe's scheduler spreads its probes), not in bursts.
  const interval = 1000 / TARGETS;
  const t0 = performance.now();
  const workers = Array.from({ length: CLIENTS }, async (_, w) => {
    let k = w;
    for (;;) {
      const wait = t0 + k * interval - performance.now();
      if (wait > 0) await sleep(wait);
      if (!running) break;
      await probe(peers[k % peers.length]);
      if (running) done++;
      k += CLIENTS;
    }
  });
  try {
    await sleep(3000);
    const c0 = cpuTimes(pid);
    const n0 = done;
    const w0 = wrong;
    await sleep(SECONDS * 1000);
    const n1 = done;
    const c1 = cpuTimes(pid);
    return { rate: (n1 - n0) / SECONDS, ...per1000(c0, c1, n1 - n0), wrong: wrong - w0 };
  } finally {
    running = false;
    await Promise.all(workers);
    agentHttp.destroy();
  }
}

async function portprobeProbeRound(cfg: string, peers: number[], ok: (body: string) => boolean): Promise<Round> {
  const agent = await startAgent(cfg, ['taskset', '-c', '1']);
  try {
    return await driveProbe(agent.port, agent.proc.pid as number, 't', peers, ok);
  } finally {
    await agent.stop();
  }
}

/** The agent on its own schedule, scraped (gzip) once a second. */
async function portprobeScheduledRound(cfg: string, before?: string): Promise<Round> {
  // An older build (BENCH_BEFORE=<tree>/dist/agent/main.js) is started the same way.
  const agent = await startAgent(cfg, ['taskset', '-c', '1'], before);
  const scrape = async (): Promise<string> =>
    (await fetch(`http://127.0.0.1:${agent.port}/metrics`, { headers: { 'accept-encoding': 'gzip' } })).text();
  let running = true;
  const scraper = (async () => {
    while (running) {
      const t = Date.now();
      await scrape();
      await sleep(Math.max(0, 1000 - (Date.now() - t)));
    }
  })();
  try {
    await sleep(3000);
    const pid = agent.proc.pid as number;
    const c0 = cpuTimes(pid);
    const n0 = sumSeries(await scrape(), PROBES_TOTAL);
    await sleep(SECONDS * 1000);
    const n1 = sumSeries(await scrape(), PROBES_TOTAL);
    const c1 = cpuTimes(pid);
    return { rate: (n1 - n0) / SECONDS, ...per1000(c0, c1, n1 - n0), wrong: 0 };
  } finally {
    running = false;
    await scraper;
    await agent.stop();
  }
}

// The floor: the same dialogue written directly on net.Socket (no ladder, no result, no HTTP),
// in a node process of its own, paced on the same evenly spread grid. What node itself costs for
// the connects, writes, reads and closes of one probe. Answers "n" (dialogues done) to each line
// read on stdin.
const FLOOR_SOURCE = `
const net = require('node:net');
const { performance } = require('node:perf_hooks');
const [kind, rate, portList] = process.argv.slice(1);
const ports = portList.split(',').map(Number);
const PRELOGIN = Buffer.from([${PRELOGIN_REQUEST.join(',')}]);
const COMMANDS = ['USER anonymous', 'PASS portprobe@', 'TYPE I', 'QUIT'];
let done = 0;
function ftp(port, end) {
  const s = net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  let buf = '';
  let i = 0;
  s.on('data', (d) => {
    buf += d.toString('latin1');
    let k;
    while ((k = buf.indexOf('\\n')) >= 0) {
      buf = buf.slice(k + 1);
      if (i < COMMANDS.length) s.write(COMMANDS[i++] + '\\r\\n');
      else { s.destroy(); end(); return; }
    }
  });
  s.on('error', end);
}
function tds(port, end) {
  const s = net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  s.on('connect', () => s.write(PRELOGIN));
  s.once('data', () => { s.destroy(); end(); });
  s.on('error', end);
}
const interval = 1000 / Number(rate);
const t0 = performance.now();
let k = 0;
function next() {
  const run = kind === 'ftp' ? ftp : tds;
  while (t0 + k * interval <= performance.now()) {
    let ended = false;
    run(ports[k++ % ports.length], () => { if (!ended) { ended = true; done++; } });
  }
  setTimeout(next, Math.max(0, t0 + k * interval - performance.now()));
}
next();
process.stdin.on('data', () => process.stdout.write(done + '\\n'));
`;

async function floorRound(kind: 'ftp' | 'tds', peers: number[]): Promise<Round> {
  const proc = spawn(
    'taskset',
    ['-c', '1', process.execPath, '-e', FLOOR_SOURCE, kind, String(TARGETS), peers.join(',')],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines: string[] = [];
  let waiting: (() => void) | undefined;
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    let k;
    while ((k = out.indexOf('\n')) >= 0) {
      lines.push(out.slice(0, k));
      out = out.slice(k + 1);
      waiting?.();
    }
  });
  const count = (): Promise<number> =>
    new Promise((resolve) => {
      waiting = () => {
        waiting = undefined;
        resolve(Number(lines.shift()));
      };
      proc.stdin?.write('n\n');
    });
  try {
    await sleep(3000);
    const pid = proc.pid as number;
    const c0 = cpuTimes(pid);
    const n0 = await count();
    await sleep(SECONDS * 1000);
    const n1 = await count();
    const c1 = cpuTimes(pid);
    return { rate: (n1 - n0) / SECONDS, ...per1000(c0, c1, n1 - n0), wrong: 0 };
  } finally {
    proc.kill('SIGTERM');
  }
}

async function blackboxRound(dir: string, module: string, peers: number[]): Promise<Round> {
  const { proc, listen } = await startBlackbox(dir);
  try {
    return await driveProbe(listen, proc.pid as number, module, peers, (b) => /^probe_success 1$/m.test(b));
  } finally {
    proc.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  const peer = spawn(process.execPath, ['-e', PEER_SOURCE], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ports = await new Promise<{ ftp: number[]; tds: number[] }>((resolve) => {
    let out = '';
    peer.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out) as { ftp: number[]; tds: number[] });
    });
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-dialogue-'));
  const hex = PRELOGIN_REQUEST.map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
  writeFileSync(
    path.join(dir, 'blackbox.yml'),
    [
      'modules:',
      '  ftp_control:',
      '    prober: tcp',
      '    timeout: 5s',
      '    tcp:',
      '      query_response:',
      '        - expect: "^220"',
      '        - send: "USER anonymous"',
      '        - expect: "^331"',
      '        - send: "PASS portprobe@"',
      '        - expect: "^230"',
      '        - send: "TYPE I"',
      '        - expect: "^502"',
      '        - send: "QUIT"',
      '        - expect: "^221"',
      '  mssql_prelogin:',
      '    prober: tcp',
      '    timeout: 5s',
      '    tcp:',
      '      query_response:',
      `        - send: "${hex}"`,
      '        - expect: "^\\x04\\x01"',
      '',
    ].join('\n'),
  );
  // One config per prober: TARGETS scheduled targets at 1 s, and /probe open to the peers' address.
  const config = (file: string, module: string, peers: number[], scheduled: boolean): string => {
    const lines = [
      'global: {interval: 1s, timeout: 900ms, concurrency: 1000}',
      `probe_api: {allowed_addresses: ['^127\\.0\\.0\\.1:[0-9]+$'], max_concurrent: ${CLIENTS * 2}}`,
      `modules: {t: ${module}}`,
      'targets:',
    ];
    // The /probe configuration keeps one target, on a long interval, so that nothing else runs.
    const n = scheduled ? TARGETS : 1;
    for (let i = 0; i < n; i++) {
      const every = scheduled ? '' : ', interval: 1h';
      lines.push(`  - {name: t${i}, module: t, address: "127.0.0.1:${peers[i % peers.length]}"${every}}`);
    }
    writeFileSync(path.join(dir, file), lines.join('\n'));
    return path.join(dir, file);
  };
  const ftpModule = '{prober: ftp, ftp: {data_channel: [epsv]}}';
  const cases = [
    {
      name: 'ftp control ladder',
      scheduled: config('ftp.yml', ftpModule, ports.ftp, true),
      api: config('ftp-api.yml', ftpModule, ports.ftp, false),
      bb: 'ftp_control',
      floor: 'ftp' as const,
      ports: ports.ftp,
      // The ladder up to the data rung: login answered 230, and the data rung refused (TYPE I 502).
      ok: (b: string) =>
        /^probe_ftp_status_code\{phase="login"\} 230$/m.test(b) &&
        /^probe_ftp_status_code\{phase="quit"\} 221$/m.test(b) &&
        /^probe_ftp_status_code\{phase="data_epsv"\} 502$/m.test(b),
    },
    {
      name: 'mssql PRELOGIN only',
      scheduled: config('mssql.yml', '{prober: mssql}', ports.tds, true),
      api: config('mssql-api.yml', '{prober: mssql}', ports.tds, false),
      bb: 'mssql_prelogin',
      floor: 'tds' as const,
      ports: ports.tds,
      ok: (b: string) => /^probe_success 1$/m.test(b),
    },
  ];
  const fmt = (x: Round): string =>
    `${x.rate.toFixed(0)}/s ${x.cpuPer1000.toFixed(3)} (user ${x.userPer1000.toFixed(3)})${x.wrong > 0 ? ` (${x.wrong} unexpected)` : ''}`;
  try {
    for (const c of cases) {
      const api: Round[] = [];
      const sched: Round[] = [];
      const bb: Round[] = [];
      const floor: Round[] = [];
      const before: Round[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const load = loadavg()[0].toFixed(2);
        api.push(await portprobeProbeRound(c.api, c.ports, c.ok));
        sched.push(await portprobeScheduledRound(c.scheduled));
        bb.push(await blackboxRound(dir, c.bb, c.ports));
        floor.push(await floorRound(c.floor, c.ports));
        if (BEFORE) before.push(await portprobeScheduledRound(c.scheduled, BEFORE));
        console.log(
          `${c.name} round ${r + 1} (load ${load}), cpu-s per 1000 probes: portprobe /probe ${fmt(api[r])} | portprobe scheduled ${fmt(sched[r])} | blackbox /probe ${fmt(bb[r])} | bare node ${fmt(floor[r])}${BEFORE ? ` | before, scheduled ${fmt(before[r])}` : ''}`,
        );
      }
      const a = median(api.map((x) => x.cpuPer1000));
      const s = median(sched.map((x) => x.cpuPer1000));
      const b = median(bb.map((x) => x.cpuPer1000));
      const f = median(floor.map((x) => x.cpuPer1000));
      const o = BEFORE ? median(before.map((x) => x.cpuPer1000)) : NaN;
      console.log(
        `summary ${c.name} targets=${TARGETS} rounds=${ROUNDS}: cpu-s per 1000 probes, medians: portprobe /probe ${a.toFixed(3)} (${(a / b).toFixed(2)}x) | portprobe scheduled ${s.toFixed(3)} (${(s / b).toFixed(2)}x) | blackbox /probe ${b.toFixed(3)} | bare node ${f.toFixed(3)} (${(f / b).toFixed(2)}x)${BEFORE ? ` | before, scheduled ${o.toFixed(3)} (${(o / b).toFixed(2)}x)` : ''}`,
      );
    }
  } finally {
    peer.kill('SIGTERM');
  }
}

void main();
