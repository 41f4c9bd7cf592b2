// Socket scan benchmark: a child process holds L listeners and C loopback connections (2C
// established sockets), then we time, in alternating order round after round, the portprobe
// scan against `cat /proc/net/tcp*`, `ss -ltnH` and systeminformation's networkConnections().
//
//   npx ts-node --transpile-only bench/sockets/scan.bench.ts [--listeners=5000] [--connections=5000] [--rounds=15]
//
// The holder needs about L + 2C file descriptors; it raises its own limit (ulimit -n 65536, or
// the hard limit when that is lower), so the calling shell's soft limit does not matter.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { socketsCollector } from '../../exporters/sockets';
import { startHolder } from './holder';
import { numericFlag, quietLogger } from '../common';
import { SOCKETS_DEFAULTS, type SocketsSettings } from '../../exporters/sockets/settings';
import type { Collector } from '../../exporters/types';

const LISTENERS = numericFlag('listeners', 5000);
const CONNECTIONS = numericFlag('connections', 5000);
const ROUNDS = numericFlag('rounds', 15);

type Method = { name: string; run: () => Promise<void> };

function timeSpawn(cmd: string, args: string[]): () => Promise<void> {
  return async () => {
    const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`${cmd} exited ${r.status}`);
  };
}

/** Runs f while a 1 ms timer measures the longest gap between its ticks (the loop was held). */
async function withStallMeter<T>(f: () => Promise<T>): Promise<[T, number]> {
  let last = process.hrtime.bigint();
  let worst = 0;
  const timer = setInterval(() => {
    const now = process.hrtime.bigint();
    worst = Math.max(worst, Number(now - last) / 1e6);
    last = now;
  }, 1);
  try {
    const v = await f();
    worst = Math.max(worst, Number(process.hrtime.bigint() - last) / 1e6);
    return [v, worst];
  } finally {
    clearInterval(timer);
  }
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))];
}

async function main(): Promise<void> {
  const holder = await startHolder(LISTENERS, CONNECTIONS);
  try {
    const count = (f: string): number => fs.readFileSync(f, 'latin1').split('\n').length - 2;
    const tcpLines = count('/proc/net/tcp') + count('/proc/net/tcp6');
    const settings: SocketsSettings = { ...SOCKETS_DEFAULTS, source: 'procfs', max_unexpected_series: 100 };
    const warm: Collector = socketsCollector.create(settings, quietLogger);
    const signal = new AbortController().signal;
    const si = await import('systeminformation');

    // The longest the event loop was held during a scan: what a concurrent /metrics scrape waits.
    const coldStart = process.hrtime.bigint();
    const [cold, coldStallMs] = await withStallMeter(() => warm.scan(signal)); // the first scan walks /proc/<pid>/fd once
    const coldMs = Number(process.hrtime.bigint() - coldStart) / 1e6;
    if (!cold.success) throw new Error(cold.error);
    const [, warmStallMs] = await withStallMeter(() => warm.scan(signal));
    const listeners = (cold.details as { listeners: unknown[] }).listeners.length;
    const walksOf = (r: { details?: Record<string, unknown> }): number => Number(r.details?.processWalks ?? 0);
    let lastWarm = cold;

    const extra: net.Server[] = [];
    let deferredSeen = 0;
    const methods: Method[] = [
      {
        name: 'portprobe scan (warm inode cache)',
        run: async () => {
          const r = await warm.scan(signal);
          if (!r.success) throw new Error(r.error);
          lastWarm = r;
        },
      },
      {
        // A listener opened just before each scan: the quick fd walk's cost (it reads only
        // descriptors it has not seen, so the holder's 15,000 are listed, not read).
        name: 'portprobe scan, one new listener each time',
        run: async () => {
          const srv = net.createServer();
          await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
          extra.push(srv);
          const r = await warm.scan(signal);
          if (!r.success) throw new Error(r.error);
          lastWarm = r;
          if ((r.details as { ownersDeferred?: number }).ownersDeferred) deferredSeen++;
        },
      },
      {
        name: 'portprobe scan, include_process: false',
        run: async () => {
          const r = await socketsCollector.create({ ...settings, include_process: false }, quietLogger).scan(signal);
          if (!r.success) throw new Error(r.error);
        },
      },
      { name: 'cat /proc/net/tcp /proc/net/tcp6', run: timeSpawn('cat', ['/proc/net/tcp', '/proc/net/tcp6']) },
      { name: 'ss -ltnH', run: timeSpawn('ss', ['-ltnH']) },
      {
        name: 'systeminformation networkConnections()',
        run: async () => {
          await si.networkConnections();
        },
      },
    ];
    const times = new Map<string, number[]>(methods.map((m) => [m.name, []]));
    for (const m of methods) await m.run(); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      // rotate the order each round so no method always runs first or after the slow one
      for (let k = 0; k < methods.length; k++) {
        const m = methods[(round + k) % methods.length];
        const t0 = process.hrtime.bigint();
        await m.run();
        times.get(m.name)!.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }

    const med = (n: string): number => quantile(times.get(n)!, 0.5);
    const scanMed = med(methods[0].name);
    const catMed = med(methods[3].name);
    const siMed = med(methods[5].name);
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
    console.log(
      `sockets: ${LISTENERS} listeners + ${CONNECTIONS} loopback connections held by pid ${holder.pid}; ` +
        `${tcpLines} rows in /proc/net/tcp*; ${listeners} listeners found; rounds: ${ROUNDS}, alternating`,
    );
    console.log(`first (cold) scan with the /proc/<pid>/fd walk: ${coldMs.toFixed(1)} ms`);
    console.log(
      `longest event-loop stall: ${coldStallMs.toFixed(1)} ms during the cold scan, ${warmStallMs.toFixed(1)} ms during a warm one\n`,
    );
    console.log('| method | median ms | min ms | p90 ms |');
    console.log('|---|---:|---:|---:|');
    for (const m of methods) {
      const t = times.get(m.name)!;
      console.log(
        `| ${m.name} | ${med(m.name).toFixed(1)} | ${Math.min(...t).toFixed(1)} | ${quantile(t, 0.9).toFixed(1)} |`,
      );
    }
    console.log(
      `\nfd walks during the warm scans (new listeners: the bench's own and other processes'): ${walksOf(lastWarm) - walksOf(cold)}, ` +
        `of which full: ${Number(lastWarm.details?.processFullWalks ?? 0)}; scans that deferred an owner: ${deferredSeen}`,
    );
    console.log(
      `scan / cat = ${(scanMed / catMed).toFixed(2)} (goal <= 1.5); systeminformation / scan = ${(siMed / scanMed).toFixed(1)} (goal >= 5)`,
    );
    warm.close();
    for (const srv of extra) srv.close();
  } finally {
    holder.stop();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
