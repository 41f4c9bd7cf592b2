// The SQL Server prober against a hostile TDS server, through real sockets: the server answers
// PRELOGIN correctly, then answers LOGIN7 or the version query with mutated and random token
// streams (test/peers/tds/hostile.ts). Whatever it sends, the probe returns a verdict within its
// deadline, never internal_error, and nothing escapes as an uncaught exception or an unhandled
// rejection. FUZZ_RUNS sets the number of cases (10,000 by default; npm run fuzz:long: a million).
import { mssqlProber } from '../../exporters/mssql';
import { Secret } from '../../exporters/secret';
import type { ProbeResult } from '../../exporters/types';
import { runProber } from '../helpers/context';
import { hostileCase, type HostileCase } from '../peers/tds/hostile';
import { startTdsPeer, type TdsPeer } from '../peers/tds/server';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
const WORKERS = 4;
const PROBE_MS = 2000;
const creds = { username: 'monitor', password: new Secret('s3cr3t-pw') };

interface Worker {
  peer: TdsPeer;
  current?: HostileCase;
}

async function startWorker(): Promise<Worker> {
  const w: Worker = { peer: undefined as unknown as TdsPeer };
  w.peer = await startTdsPeer({
    users: { monitor: 's3cr3t-pw' },
    loginReply: () => (w.current?.target === 'login' ? w.current.payload : undefined),
    batchReply: (sql) => (w.current?.target === 'batch' && sql === 'select @@version' ? w.current.payload : undefined),
  });
  return w;
}

test(
  `${RUNS} hostile token streams after a valid PRELOGIN: a verdict every time, never internal_error, no crash`,
  async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => {
      uncaught.push(err);
    };
    process.on('uncaughtException', onUncaught);
    // tedious prints "Unsupported ENVCHANGE type N" with console.error for such tokens: counted, not shown.
    const consoleError = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const workers = await Promise.all(Array.from({ length: WORKERS }, () => startWorker()));
    const reasons = new Map<string, number>();
    const wrong: string[] = [];
    let next = 0;
    let tediousLines: number;
    const t0 = Date.now();
    try {
      await Promise.all(
        workers.map(async (w) => {
          for (let n = next++; n < RUNS; n = next++) {
            w.current = hostileCase(n);
            const r: ProbeResult = await runProber(mssqlProber, `127.0.0.1:${w.peer.port}`, creds, PROBE_MS);
            const key = `${w.current.target}:${r.success ? 'success' : `${r.failure?.phase}/${r.failure?.reason}`}`;
            reasons.set(key, (reasons.get(key) ?? 0) + 1);
            const badReason = r.failure?.reason === 'internal_error';
            const lateVerdict = r.durationSeconds > PROBE_MS / 1000 + 1;
            if ((badReason || lateVerdict) && wrong.length < 20) {
              wrong.push(
                `case ${n} (${w.current.kind}, ${w.current.payload.toString('hex').slice(0, 120)}): ${JSON.stringify(r.failure)} in ${r.durationSeconds}s`,
              );
            }
          }
        }),
      );
    } finally {
      process.off('uncaughtException', onUncaught);
      tediousLines = consoleError.mock.calls.length;
      consoleError.mockRestore();
      await Promise.all(workers.map((w) => w.peer.close()));
    }
    const seconds = (Date.now() - t0) / 1000;
    // The figures, for the record (npm test prints them).
    console.log(
      `mssql token fuzz: ${RUNS} cases in ${seconds.toFixed(1)} s, ${uncaught.length} uncaught, ` +
        `${tediousLines} console.error lines from tedious; verdicts:\n` +
        [...reasons.entries()]
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `  ${k} ${v}`)
          .join('\n'),
    );
    expect(uncaught.map(String)).toEqual([]);
    expect(wrong).toEqual([]);
    expect([...reasons.values()].reduce((a, b) => a + b, 0)).toBe(RUNS);
  },
  Math.max(300_000, RUNS * 30),
);
