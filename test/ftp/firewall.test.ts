// FTP verdicts under the firewalls that really break FTP, on vsftpd, proftpd, pure-ftpd and
// pyftpdlib. The servers and the probing agent run inside one network namespace this test
// creates (loopback only); nftables rules in that namespace drop or reject, in turn:
//   - the control port (server side, inbound),
//   - the servers' passive data ports (server side, inbound),
//   - the servers' active connect-back to the agent's listener, inbound on the agent's side
//     (input hook) and outbound on the server's side (output hook).
// Each fault is probed several times in a row (the active connect-back 20 times) and must give
// the same rung and reason every time; the modes the fault does not touch must still pass.
// The matrix (fault × server → reason, first words of the advice) is printed at the end.
import path from 'node:path';
import readline from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { createNetns, setNetnsSysctl, setNftTable, spawnInNetns, tsNodeArgv, type Netns } from '../helpers/netns';
import { ACTIVE_PORTS, PASSIVE_PORTS } from './netns-worker';
import type { ProbeResult } from '../../exporters/types';

const SERVERS = ['vsftpd', 'proftpd', 'pure-ftpd', 'pyftpdlib'] as const;
type Server = (typeof SERVERS)[number];
type Verdict = 'drop' | 'reject';

interface Answer {
  result: ProbeResult;
  advice?: string;
}

let ns: Netns;
let worker: ChildProcess;
let ready: Record<Server, { address: string }>;
const waiting = new Map<number, (a: Answer) => void>();
let nextId = 1;
const matrix: string[] = [];

function probe(server: Server, timeoutMs: number, settings: Record<string, unknown>): Promise<Answer> {
  const id = nextId++;
  return new Promise<Answer>((resolve) => {
    waiting.set(id, resolve);
    worker.stdin?.write(`${JSON.stringify({ id, server, timeoutMs, settings })}\n`);
  });
}

beforeAll(async () => {
  ns = createNetns('ftpfw');
  // Connect-backs the firewall drops give up after ~7 s instead of ~2 min: stuck server
  // sessions do not pile up across the 20-probe runs. The namespace has its own TCP stack.
  setNetnsSysctl(ns, 'net.ipv4.tcp_syn_retries', 2);
  // Ephemeral ports (the servers' control ports, the agent's source ports) stay below the port
  // ranges the rules block (40000-40399 for active mode, 50000-50399 passive).
  setNetnsSysctl(ns, 'net.ipv4.ip_local_port_range', '20000 39999');
  worker = spawnInNetns(ns, tsNodeArgv(path.join(__dirname, 'netns-worker.ts')));
  let stderr = '';
  worker.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  const lines = readline.createInterface({ input: worker.stdout as NodeJS.ReadableStream });
  ready = await new Promise((resolve, reject) => {
    worker.once('exit', (code) => reject(new Error(`netns worker exited (${code}): ${stderr}`)));
    lines.on('line', (line) => {
      const msg = JSON.parse(line) as { ready?: typeof ready; error?: string; id?: number } & Answer;
      if (msg.error) reject(new Error(msg.error));
      else if (msg.ready) resolve(msg.ready);
      else if (msg.id !== undefined) {
        waiting.get(msg.id)?.({ result: msg.result, advice: msg.advice });
        waiting.delete(msg.id);
      }
    });
  });
}, 60_000);

afterAll(async () => {
  if (worker && worker.exitCode === null) {
    const gone = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.stdin?.end();
    const timer = setTimeout(() => worker.kill('SIGKILL'), 15_000);
    await gone;
    clearTimeout(timer);
  }
  ns?.remove();
  if (matrix.length > 0) {
    process.stdout.write(
      [
        '',
        '| fault | server | rung | reason | message (last run) | advice (first words) |',
        '|---|---|---|---|---|---|',
        ...matrix,
        '',
      ].join('\n'),
    );
  }
}, 30_000);

/** The first clause of the advice, for the matrix. */
function adviceHead(a?: string): string {
  if (!a) return '';
  const cut = a.search(/[:;]|\. /);
  return cut > 0 ? a.slice(0, cut) : a;
}

function successOf(r: ProbeResult, mode: string): number | undefined {
  return r.facts.find((f) => f.metric === 'probe_ftp_data_channel_success' && f.labels?.mode === mode)?.value;
}

interface Fault {
  name: string;
  /** The chains of the fault table, for drop or reject. */
  rules(verdict: Verdict): string;
  runs: number;
  timeoutMs: number;
  settings(server: Server): Record<string, unknown>;
  phase: string;
  reason: string;
  /** Expected probe_ftp_data_channel_success per mode (absent: undefined). */
  modes?: Record<string, number | undefined>;
  advice: RegExp;
}

const ALL = ['epsv', 'pasv', 'active'];
const activeListen = (s: Server): Record<string, unknown> => ({
  active_listen: { address: '127.0.0.1', ports: ACTIVE_PORTS[s] },
});
const range = (r: Record<string, string>): string => {
  const all = Object.values(r).flatMap((x) => x.split('-').map(Number));
  return `${Math.min(...all)}-${Math.max(...all)}`;
};
// Stateful, as firewalls are: only new connections to the ports are blocked, so the replies
// of the agent's own connections (whose ephemeral ports may fall in these ranges) pass.
const chain = (hook: 'input' | 'output', match: string, verdict: Verdict): string =>
  `  chain ${hook} {\n    type filter hook ${hook} priority 0; policy accept;\n    ct state new ${match} ${verdict}\n  }`;

const FAULTS: Fault[] = [
  {
    name: 'control port, server side inbound',
    rules: (v) => chain('input', `tcp dport { ${SERVERS.map((s) => ready[s].address.split(':')[1]).join(', ')} }`, v),
    runs: 5,
    timeoutMs: 1500,
    settings: () => ({ data_channel: ['epsv'] }),
    phase: 'connect',
    reason: '', // drop: timeout, reject: refused (set per verdict below)
    advice: /./,
  },
  {
    name: 'passive data ports, server side inbound',
    rules: (v) => chain('input', `tcp dport ${range(PASSIVE_PORTS)}`, v),
    runs: 5,
    timeoutMs: 3000,
    settings: (s) => ({ data_channel: ALL, ...activeListen(s) }),
    phase: 'data_epsv',
    reason: 'pasv_unreachable',
    modes: { epsv: 0, pasv: 0, active: 1 },
    advice: /^The server's passive data port is not reachable from the agent/,
  },
  {
    name: 'active connect-back, agent side inbound',
    rules: (v) => chain('input', `tcp dport ${range(ACTIVE_PORTS)}`, v),
    runs: 20,
    timeoutMs: 2000,
    settings: (s) => ({ data_channel: ALL, ...activeListen(s) }),
    phase: 'data_active',
    reason: 'active_refused',
    modes: { epsv: 1, pasv: 1, active: 0 },
    advice: /^The server did not connect back to the agent/,
  },
  {
    name: 'active connect-back, server side outbound',
    rules: (v) => chain('output', `tcp dport ${range(ACTIVE_PORTS)}`, v),
    runs: 20,
    timeoutMs: 2000,
    settings: (s) => ({ data_channel: ALL, ...activeListen(s) }),
    phase: 'data_active',
    reason: 'active_refused',
    modes: { epsv: 1, pasv: 1, active: 0 },
    advice: /^The server did not connect back to the agent/,
  },
];

test('with no rule every server passes every mode (the baseline the faults are measured against)', async () => {
  setNftTable(ns, 'pp_fault', '');
  await Promise.all(
    SERVERS.map(async (s) => {
      const { result } = await probe(s, 3000, { data_channel: ALL, ...activeListen(s) });
      expect({ server: s, failure: result.failure }).toEqual({ server: s, failure: undefined });
      for (const m of ALL) expect(successOf(result, m)).toBe(1);
    }),
  );
}, 30_000);

describe.each(FAULTS)('$name', (fault) => {
  test.each(['drop', 'reject'] as const)(
    '%s: the same rung, reason and advice on every run, on all four servers',
    async (verdict) => {
      setNftTable(ns, 'pp_fault', fault.rules(verdict));
      try {
        const reason = fault.reason || (verdict === 'drop' ? 'timeout' : 'refused');
        // allSettled: a server that fails early must not leave its probes running into the next case.
        const settled = await Promise.allSettled(
          SERVERS.map(async (s) => {
            const seen: string[] = [];
            let last: Answer | undefined;
            for (let i = 0; i < fault.runs; i++) {
              last = await probe(s, fault.timeoutMs, fault.settings(s));
              const r = last.result;
              seen.push(`${r.failure?.phase}/${r.failure?.reason}`);
              const modes = Object.fromEntries(Object.keys(fault.modes ?? {}).map((m) => [m, successOf(r, m)]));
              const got = {
                server: s,
                run: i,
                modes,
                failure: `${r.failure?.phase}/${r.failure?.reason}`,
                message: r.failure?.message,
              };
              expect(got).toEqual({ ...got, modes: fault.modes ?? {}, failure: `${fault.phase}/${reason}` });
            }
            const f = last?.result.failure;
            matrix.push(
              `| ${fault.name}, ${verdict} | ${s} | ${f?.phase} | ${f?.reason} | ${f?.message} | ${adviceHead(last?.advice)} |`,
            );
            expect({ server: s, seen }).toEqual({
              server: s,
              seen: Array(fault.runs).fill(`${fault.phase}/${reason}`),
            });
            expect(last?.advice).toMatch(fault.advice);
          }),
        );
        for (const r of settled) if (r.status === 'rejected') throw r.reason;
      } finally {
        setNftTable(ns, 'pp_fault', '');
      }
    },
    120_000,
  );
});
