// Netlink socket scan benchmark, inside a network namespace of its own so that its sockets (and
// its 100,000 TIME_WAIT rows) disturb nothing else on the machine:
//
//   npx ts-node --transpile-only bench/sockets/netlink.bench.ts [--listeners=5000] [--connections=5000] [--time-wait=110000] [--rounds=15]
//
// As root (it creates and deletes the namespace). Two phases, each timing in rotating order,
// round after round on the same sockets: the portprobe scan through netlink, the same scan
// through /proc, `ss -tanH` and systeminformation's networkConnections(). Phase 1 holds L
// listeners and C loopback connections; phase 2 adds at least `--time-wait` TIME_WAIT sockets
// (refilled between rounds as the kernel expires them after 60 s). During every portprobe scan
// the longest event-loop stall is measured twice: monitorEventLoopDelay (1 ms resolution) and a
// 1 ms timer's longest gap; and the main thread's CPU time per scan (schedstat), which the
// machine's other load does not inflate. Then the netlink scan alone, round after round, with the
// same meters.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import readline from 'node:readline';
import { Worker } from 'node:worker_threads';
import { socketsCollector } from '../../exporters/sockets';
import { SOCKETS_DEFAULTS, type SocketsSettings } from '../../exporters/sockets/settings';
import type { Collector, CollectorResult } from '../../exporters/types';
import { startHolder } from './holder';
import { namespacedBench } from './namespace';
import { numericFlag, quietLogger } from '../common';

const LISTENERS = numericFlag('listeners', 5000);
const CONNECTIONS = numericFlag('connections', 5000);
const TIME_WAIT = numericFlag('time-wait', 110000);
const ROUNDS = numericFlag('rounds', 15);

/** Makes TIME_WAIT sockets on request ("N" on stdin -> "done"): clients that close first. */
const TW_MAKER = `
  const net = require('node:net'), readline = require('node:readline');
  const hosts = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];
  const servers = hosts.map((h) => { const s = net.createServer((c) => { c.on('error', () => {}); }); s.listen(0, h, 4096); return s; });
  function make(n) {
    return new Promise((resolve) => {
      let started = 0, finished = 0, inFlight = 0;
      const next = () => {
        while (inFlight < 256 && started < n) {
          const i = started++;
          const s = servers[i % servers.length];
          inFlight++;
          const c = net.connect(s.address().port, hosts[i % hosts.length]);
          c.on('connect', () => c.end());
          c.on('error', () => {});
          c.on('close', () => { inFlight--; finished++; if (finished === n) resolve(); else next(); });
        }
      };
      if (n <= 0) resolve(); else next();
    });
  }
  Promise.all(servers.map((s) => new Promise((r) => s.once('listening', r)))).then(() => {
    process.stdout.write('ready\\n');
    readline.createInterface({ input: process.stdin }).on('line', async (l) => { await make(Number(l)); process.stdout.write('done\\n'); });
  });
`;

class TimeWaitMaker {
  private constructor(
    private readonly child: ChildProcess,
    private readonly lines: AsyncIterator<string>,
  ) {}

  static async start(): Promise<TimeWaitMaker> {
    const child = spawn(
      'bash',
      [
        '-c',
        'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"',
        process.execPath,
        '-e',
        TW_MAKER,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    if ((await lines.next()).value !== 'ready') throw new Error('the TIME_WAIT maker failed');
    return new TimeWaitMaker(child, lines);
  }

  async make(n: number): Promise<void> {
    this.child.stdin!.write(`${n}\n`);
    if ((await this.lines.next()).value !== 'done') throw new Error('the TIME_WAIT maker failed');
  }

  stop(): void {
    this.child.kill('SIGTERM');
  }
}

function sockstat(): { tw: number; inuse: number } {
  const t = fs.readFileSync('/proc/net/sockstat', 'latin1');
  return { tw: Number(/\btw (\d+)/.exec(t)?.[1] ?? 0), inuse: Number(/TCP: inuse (\d+)/.exec(t)?.[1] ?? 0) };
}

/**
 * Tops TIME_WAIT up before a round: the kernel expires them 60 s after they were made, a
 * batch at a time, so a round starts with a fifth more than the floor it must not go under.
 */
async function topUp(maker: TimeWaitMaker, target: number): Promise<void> {
  const now = sockstat().tw;
  if (now < target * 1.2) await maker.make(Math.round(target * 1.25) - now);
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))];
}

/** CPU time of the main thread (the event loop's) per scan, ms, measured without meters. */
const busy = new Map<string, number[]>();

/** The main thread's CPU time so far, ms (schedstat: time on a CPU, in ns; excludes waiting for one). */
function mainThreadCpuMs(): number {
  return Number(fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'latin1').split(' ')[0]) / 1e6;
}
/** Longest garbage-collection pause of the main thread during each method's runs, ms. */
const gcMax = new Map<string, number>();
let gcCurrent: string | undefined;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (gcCurrent !== undefined) gcMax.set(gcCurrent, Math.max(gcMax.get(gcCurrent) ?? 0, e.duration));
  }
}).observe({ entryTypes: ['gc'] });

/** Runs f while both meters watch the event loop; returns the longest stall in ms (the larger of the two). */
async function withStall<T>(f: () => Promise<T>, name?: string): Promise<[T, number]> {
  gcCurrent = name;
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let last = process.hrtime.bigint();
  let worst = 0;
  const timer = setInterval(() => {
    const now = process.hrtime.bigint();
    worst = Math.max(worst, Number(now - last) / 1e6 - 1);
    last = now;
  }, 1);
  try {
    const v = await f();
    return [v, Math.max(worst, h.max / 1e6 - 1)];
  } finally {
    gcCurrent = undefined;
    clearInterval(timer);
    h.disable();
  }
}

interface Method {
  name: string;
  /** The longest stall seen, and the wall time when the method timed itself. */
  run: () => Promise<{ stall?: number; ms?: number } | undefined>;
}

function spawnTimed(cmd: string, args: string[]): () => Promise<undefined> {
  return async () => {
    const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`${cmd} exited ${r.status}`);
    return undefined;
  };
}

const spinner = new Worker(
  `const { parentPort } = require('node:worker_threads');
   parentPort.on('message', (ms) => { const end = Date.now() + ms; while (Date.now() < end); parentPort.postMessage(0); });`,
  { eval: true },
);
spinner.unref();

async function phase(title: string, maker: TimeWaitMaker | undefined): Promise<void> {
  const settings: SocketsSettings = { ...SOCKETS_DEFAULTS, max_unexpected_series: 100 };
  const netlink: Collector = socketsCollector.create({ ...settings, source: 'netlink' }, quietLogger);
  const procfs: Collector = socketsCollector.create({ ...settings, source: 'procfs' }, quietLogger);
  const signal = new AbortController().signal;
  const si = await import('systeminformation');
  const lastResults = new Map<Collector, CollectorResult>();
  const scan = (c: Collector, name: string) => async (): Promise<{ stall: number; ms: number }> => {
    // Timed without meters, which also gives the main thread's own CPU time for the scan.
    const cpu0 = mainThreadCpuMs();
    const t0 = process.hrtime.bigint();
    const quiet = await c.scan(signal);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    busy.get(name)?.push(mainThreadCpuMs() - cpu0);
    if (!quiet.success) throw new Error(quiet.error);
    // Then once more with the stall meters.
    const [r, stall] = await withStall(() => c.scan(signal), name);
    if (!r.success) throw new Error(r.error);
    lastResults.set(c, r);
    return { stall, ms };
  };
  const methods: Method[] = [
    { name: 'portprobe scan, netlink', run: scan(netlink, 'portprobe scan, netlink') },
    { name: 'portprobe scan, /proc', run: scan(procfs, 'portprobe scan, /proc') },
    { name: 'ss -tanH', run: spawnTimed('ss', ['-tanH']) },
    {
      // The same meters while the loop has nothing to do: what the machine's other load costs.
      name: 'idle 20 ms (stall noise floor)',
      run: async () => {
        const cpu0 = mainThreadCpuMs();
        await new Promise((r) => setTimeout(r, 20));
        busy.get('idle 20 ms (stall noise floor)')?.push(mainThreadCpuMs() - cpu0);
        const [, stall] = await withStall(() => new Promise((r) => setTimeout(r, 20)));
        return { stall };
      },
    },
    {
      // Another thread of ours busy for as long as a netlink scan while the loop waits: what
      // competing for the two cores alone costs the loop.
      name: 'idle while a worker spins 40 ms (contention control)',
      run: async () => {
        const [, stall] = await withStall(
          () =>
            new Promise((r) => {
              spinner.once('message', r);
              spinner.postMessage(40);
            }),
          'idle while a worker spins 40 ms (contention control)',
        );
        return { stall };
      },
    },
    {
      name: 'systeminformation networkConnections()',
      run: async () => {
        await si.networkConnections();
        return undefined;
      },
    },
  ];
  if (maker) await topUp(maker, TIME_WAIT);
  // Warm-up: the worker starts, the fd walk fills the inode cache.
  const [, coldStall] = await withStall(() => netlink.scan(signal));
  await methods[1].run();
  busy.clear();
  gcMax.clear();
  for (const m of methods) busy.set(m.name, []);
  const times = new Map<string, number[]>(methods.map((m) => [m.name, []]));
  const stalls = new Map<string, number[]>(methods.map((m) => [m.name, []]));
  const tw: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    if (maker) await topUp(maker, TIME_WAIT);
    tw.push(sockstat().tw);
    for (let k = 0; k < methods.length; k++) {
      const m = methods[(round + k) % methods.length];
      const t0 = process.hrtime.bigint();
      const r = await m.run();
      times.get(m.name)!.push(r?.ms ?? Number(process.hrtime.bigint() - t0) / 1e6);
      if (r?.stall !== undefined) stalls.get(m.name)!.push(r.stall);
    }
    tw.push(sockstat().tw);
  }
  // The netlink scan again, round after round with nothing else in between (20 ms apart): what
  // the scan itself costs the loop, without the garbage the /proc scan and systeminformation
  // leave on this thread for the collector to find during the next method's turn.
  const alone = { stalls: [] as number[], cpu: [] as number[], times: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    await new Promise((r) => setTimeout(r, 20));
    const cpu0 = mainThreadCpuMs();
    const t0 = process.hrtime.bigint();
    const quiet = await netlink.scan(signal);
    alone.times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    alone.cpu.push(mainThreadCpuMs() - cpu0);
    if (!quiet.success) throw new Error(quiet.error);
    await new Promise((r) => setTimeout(r, 20));
    const [r, stall] = await withStall(() => netlink.scan(signal), 'netlink alone');
    if (!r.success) throw new Error(r.error);
    alone.stalls.push(stall);
  }
  const nl = lastResults.get(netlink)!;
  const states = Object.fromEntries(
    nl.facts.filter((f) => f.metric === 'portprobe_tcp_connection_states').map((f) => [f.labels!.state, f.value]),
  );
  const listeners = (nl.details as { listeners: unknown[] }).listeners.length;
  console.log(`\n### ${title}`);
  console.log(
    `TCP sockets (netlink scan): ${states.listen} listen, ${states.established} established, ${states.time_wait} time_wait ` +
      `(sockstat tw per round: min ${Math.min(...tw)}, max ${Math.max(...tw)}); ${listeners} listeners in all; rounds: ${ROUNDS}, rotating`,
  );
  console.log(`first netlink scan (worker start, fd walk): longest stall ${coldStall.toFixed(1)} ms\n`);
  console.log(
    '| method | median ms | min ms | p90 ms | longest event-loop stall ms (max over rounds) | median stall ms | longest GC pause ms | main-thread CPU ms per scan (median, no meters) |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const m of methods) {
    const t = times.get(m.name)!;
    const s = stalls.get(m.name)!;
    const b = busy.get(m.name)!;
    console.log(
      `| ${m.name} | ${quantile(t, 0.5).toFixed(1)} | ${Math.min(...t).toFixed(1)} | ${quantile(t, 0.9).toFixed(1)} | ` +
        `${s.length ? Math.max(...s).toFixed(1) : ''} | ${s.length ? quantile(s, 0.5).toFixed(1) : ''} | ${gcMax.has(m.name) ? gcMax.get(m.name)!.toFixed(1) : s.length ? '0' : ''} | ` +
        `${b.length ? quantile(b, 0.5).toFixed(1) : ''} |`,
    );
  }
  const med = (n: string): number => quantile(times.get(n)!, 0.5);
  const nlMed = med(methods[0].name);
  console.log(
    `\nnetlink scan / ss -tanH = ${(nlMed / med('ss -tanH')).toFixed(2)} (goal <= 1.2); ` +
      `systeminformation / netlink scan = ${(med('systeminformation networkConnections()') / nlMed).toFixed(1)} (goal >= 10); ` +
      `longest stall in netlink scans = ${Math.max(...stalls.get(methods[0].name)!).toFixed(1)} ms (goal <= 5; ` +
      `median ${quantile(stalls.get(methods[0].name)!, 0.5).toFixed(1)} ms, main-thread CPU per scan ${quantile(busy.get(methods[0].name)!, 0.5).toFixed(2)} ms), ` +
      `in /proc scans = ${Math.max(...stalls.get(methods[1].name)!).toFixed(1)} ms, ` +
      `idle = ${Math.max(...stalls.get(methods[3].name)!).toFixed(1)} ms (main-thread CPU per 20 ms idle ${quantile(busy.get(methods[3].name)!, 0.5).toFixed(2)} ms), ` +
      `idle beside a spinning worker = ${Math.max(...stalls.get(methods[4].name)!).toFixed(1)} ms`,
  );
  console.log(
    `netlink scans alone (${ROUNDS} rounds, nothing else between them): median ${quantile(alone.times, 0.5).toFixed(1)} ms, ` +
      `longest stall ${Math.max(...alone.stalls).toFixed(1)} ms (median ${quantile(alone.stalls, 0.5).toFixed(1)} ms), ` +
      `longest GC pause ${(gcMax.get('netlink alone') ?? 0).toFixed(1)} ms, main-thread CPU per scan ${quantile(alone.cpu, 0.5).toFixed(2)} ms`,
  );
  netlink.close();
  procfs.close();
}

async function inner(): Promise<void> {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  let distro = '';
  try {
    distro = /PRETTY_NAME="([^"]*)"/.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
  } catch {
    /* not Linux */
  }
  console.log(
    `machine: ${os.cpus().length} cores (${cpu}), ${distro}, kernel ${os.release()}, Node ${process.version}`,
  );
  const holder = await startHolder(LISTENERS, CONNECTIONS);
  let maker: TimeWaitMaker | undefined;
  try {
    await phase(`${LISTENERS} listeners + ${CONNECTIONS} loopback connections`, undefined);
    maker = await TimeWaitMaker.start();
    await phase(`${LISTENERS} listeners + ${CONNECTIONS} loopback connections + >= ${TIME_WAIT} TIME_WAIT`, maker);
  } finally {
    maker?.stop();
    holder.stop();
  }
}

namespacedBench(__filename, inner, TIME_WAIT);
