// FTP: one session for all data-channel modes against a session per mode. For each real server
// of the tests (vsftpd, proftpd, pure-ftpd, pyftpdlib on 127.0.0.1, started by test/peers/ftp
// with their users), every round runs (a) one probe with data_channel [epsv, pasv, active] and
// (b) three single-mode probes one after the other; the order of (a) and (b) alternates from
// round to round so that both see the same machine load. A user login and RETR of the canary
// file in every mode, clear text.
//
// Wall time: the probe's (for (b) the three probes' together), as the prober is called by the
// tests (test/ftp/probe.ts). Server CPU: the listener's own run time (the first field of
// /proc/<pid>/task/*/schedstat, in ns) plus its cutime+cstime from /proc/<pid>/stat, the CPU of the
// session processes it forked and reaped. Before and after each measured part the benchmark
// waits until the server has closed every control connection and the listener has no child left,
// so every session of that part has ended and been counted (pyftpdlib serves all sessions in its
// one process). One process of each vsftpd session outlives its parent and is reaped by init, so
// it is missed; followed through /proc while they ran, 30 of them had used 0 ticks. cutime and
// cstime count in ticks of 10 ms, so CPU is given as the total over all rounds divided by the
// number of rounds.
// Run: npx ts-node --transpile-only bench/ftp-modes.bench.ts [rounds=30]
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import {
  CANARY_BODY,
  CANARY_NAME,
  makeFixture,
  type Fixture,
  type FtpPeer,
  type PeerUser,
} from '../test/peers/ftp/common';
import { startVsftpd, vsftpdUser } from '../test/peers/ftp/vsftpd';
import { proftpdUser, startProftpd } from '../test/peers/ftp/proftpd';
import { pureftpdUser, startPureftpd } from '../test/peers/ftp/pureftpd';
import { pyftpdlibUser, startPyftpdlib } from '../test/peers/ftp/pyftpdlib';
import { fact, probeFtp } from '../test/ftp/probe';
import type { DataMode } from '../exporters/ftp/settings';
import { median, percentile } from './common';

const ROUNDS = Number(process.argv[2] ?? 30);
const MODES: DataMode[] = ['epsv', 'pasv', 'active'];
const PROBE_TIMEOUT_S = 10;
const REAP_WAIT_MS = 5000;
const CLK_TCK = 100;

interface Server {
  name: string;
  user: () => PeerUser;
  start: (fx: Fixture, user: PeerUser) => Promise<FtpPeer>;
}

const SERVERS: Server[] = [
  { name: 'vsftpd', user: vsftpdUser, start: (fx) => startVsftpd(fx, { tls: 'off' }) },
  { name: 'proftpd', user: proftpdUser, start: (fx, u) => startProftpd(fx, { tls: 'off' }, u) },
  { name: 'pure-ftpd', user: pureftpdUser, start: (fx, u) => startPureftpd(fx, { tls: 'off' }, u) },
  { name: 'pyftpdlib', user: pyftpdlibUser, start: (fx, u) => startPyftpdlib(fx, { tls: 'off' }, u) },
];

/** Fields after the command name of /proc/<pid>/stat (field 3, state, is index 0). */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU ms of a process's live threads (schedstat, ns) and of the children it reaped (ticks). */
function cpuMsWithReaped(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // thread gone meanwhile
    }
  }
  const f = statFields(pid);
  return ns / 1e6 + ((Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK;
}

/** Pids whose parent is `pid` (this kernel may lack /proc/<pid>/task/<tid>/children). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      if (Number(statFields(Number(name))[1]) === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Sockets of local port `port` on 127.0.0.1 other than the listener and TIME_WAIT (no owner left). */
function openControlSockets(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let n = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 3 && f[1] === local && f[3] !== '0A' && f[3] !== '06') n++;
  }
  return n;
}

/** Waits until the server has closed every control connection and reaped every session process. */
async function untilIdle(pid: number, port: number): Promise<void> {
  const until = Date.now() + REAP_WAIT_MS;
  while (openControlSockets(port) > 0 || childrenOf(pid).length > 0) {
    if (Date.now() > until) throw new Error(`pid ${pid} still has sessions or children after ${REAP_WAIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The process holding the listening socket of 127.0.0.1:port (the peers do not expose their pid). */
function listenerPid(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 9 && f[1] === `0100007F:${hexPort}` && f[3] === '0A') inodes.add(f[9]);
  }
  if (inodes.size === 0) throw new Error(`nothing listens on 127.0.0.1:${port}`);
  const holders: { pid: number; ppid: number }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      for (const fd of readdirSync(`/proc/${name}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${name}/fd/${fd}`));
        if (m && inodes.has(m[1])) {
          holders.push({ pid: Number(name), ppid: Number(statFields(Number(name))[1]) });
          break;
        }
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  const top = holders.filter((h) => !holders.some((o) => o.pid === h.ppid));
  if (top.length !== 1) throw new Error(`expected one listener on port ${port}, found ${JSON.stringify(holders)}`);
  return top[0].pid;
}

interface Running {
  server: Server;
  peer: FtpPeer;
  user: PeerUser;
  pid: number;
  /** Wall ms per (a) probe and per (b) set of three probes. */
  sharedMs: number[];
  perModeMs: number[];
  /** Server CPU ms over all rounds. */
  sharedCpuMs: number;
  perModeCpuMs: number;
}

async function probeOnce(r: Running, modes: DataMode[]): Promise<number> {
  const address = `${r.peer.host}:${r.peer.port}`;
  const t0 = performance.now();
  const res = await probeFtp(
    address,
    {
      username: r.user.name,
      password: r.user.password,
      retrieve: CANARY_NAME,
      data_channel: modes,
    },
    PROBE_TIMEOUT_S,
  );
  const ms = performance.now() - t0;
  const failed = modes.filter((mode) => fact(res, 'probe_ftp_transfer_bytes', { mode }) !== CANARY_BODY.length);
  if (!res.success || failed.length > 0) {
    throw new Error(`${r.server.name} ${modes.join(',')}: probe failed (${JSON.stringify(res.failure ?? failed)})`);
  }
  return ms;
}

/** Runs `part`, then waits for its sessions to end; returns its wall ms and the server's CPU ms. */
async function measured(r: Running, part: () => Promise<number>): Promise<{ ms: number; cpuMs: number }> {
  await untilIdle(r.pid, r.peer.port);
  const c0 = cpuMsWithReaped(r.pid);
  const ms = await part();
  await untilIdle(r.pid, r.peer.port);
  return { ms, cpuMs: cpuMsWithReaped(r.pid) - c0 };
}

async function shared(r: Running): Promise<void> {
  const m = await measured(r, () => probeOnce(r, MODES));
  r.sharedMs.push(m.ms);
  r.sharedCpuMs += m.cpuMs;
}

async function perMode(r: Running): Promise<void> {
  const m = await measured(r, async () => {
    let total = 0;
    for (const mode of MODES) total += await probeOnce(r, [mode]);
    return total;
  });
  r.perModeMs.push(m.ms);
  r.perModeCpuMs += m.cpuMs;
}

const f1 = (x: number): string => x.toFixed(1);
const f2 = (x: number): string => x.toFixed(2);

async function main(): Promise<void> {
  if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 1000) throw new Error('rounds: an integer from 1 to 1000');
  const fx = makeFixture('bench-ftp-modes');
  const running: Running[] = [];
  const started = Date.now();
  let stopped: Promise<void> | undefined;
  const stopAll = (): Promise<void> =>
    (stopped ??= (async () => {
      for (const r of running) {
        try {
          await r.peer.stop();
        } catch (e) {
          console.error(`stopping ${r.server.name}: ${String(e)}`);
        }
      }
      fx.cleanup();
    })());
  // The servers run in process groups of their own: Ctrl-C must stop them too.
  const onSignal = (): void => {
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (const server of SERVERS) {
      const user = server.user();
      const peer = await server.start(fx, user);
      // Registered before anything else can fail, so that `finally` stops it.
      const r: Running = { server, peer, user, pid: 0, sharedMs: [], perModeMs: [], sharedCpuMs: 0, perModeCpuMs: 0 };
      running.push(r);
      r.pid = listenerPid(peer.port);
    }
    // One warm-up round of each kind, not counted (first logins load PAM modules, fill caches).
    for (const r of running) {
      await probeOnce(r, MODES);
      for (const mode of MODES) await probeOnce(r, [mode]);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const r of running) {
        if (round % 2 === 0) {
          await shared(r);
          await perMode(r);
        } else {
          await perMode(r);
          await shared(r);
        }
      }
    }
  } finally {
    await stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  console.log(
    `FTP data-channel modes: ${ROUNDS} rounds, user login + RETR of a ${CANARY_BODY.length}-byte canary, 127.0.0.1, ` +
      `${((Date.now() - started) / 1000).toFixed(0)} s in all`,
  );
  console.log(
    '(a) one probe, data_channel [epsv, pasv, active], one session; (b) three probes of one mode each, a session each, one after the other',
  );
  console.log('');
  console.log(
    '| server | (a) p50 / p90 ms | (b) p50 / p90 ms | time (b)/(a), p50 | server CPU ms per (a) | per (b) | CPU (b)/(a) |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const r of running) {
    const a50 = median(r.sharedMs);
    const b50 = median(r.perModeMs);
    const aCpu = r.sharedCpuMs / ROUNDS;
    const bCpu = r.perModeCpuMs / ROUNDS;
    console.log(
      `| ${r.server.name} | ${f1(a50)} / ${f1(percentile(r.sharedMs, 90))} | ${f1(b50)} / ${f1(percentile(r.perModeMs, 90))} | ` +
        `${f2(b50 / a50)}× | ${f1(aCpu)} | ${f1(bCpu)} | ${aCpu > 0 ? `${f2(bCpu / aCpu)}×` : 'n/a'} |`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
