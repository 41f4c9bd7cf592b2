// SQL Server: what the health pack adds to a login probe, on the agent's side. Against the TDS
// test peer on 127.0.0.1 (it answers every pack query with the result shapes of the tests), every
// round runs (a) a login probe (LOGIN7, SELECT @@VERSION) and (b) the same with
// query_packs: [health] (nine more batches on the same connection), in alternating order so that
// both see the same machine load. Wall time is the probe's; CPU is this process's user+system time
// across the probe (prober, tedious and, in the same process, the peer: an upper bound for the
// agent's share). The peer is no SQL Server: the figures say what the agent spends, not what the
// queries cost a real server.
// Run: npx ts-node --transpile-only bench/mssql-pack.bench.ts [rounds=200]
import { performance } from 'node:perf_hooks';
import { mssqlProber, type MssqlSettings } from '../exporters/mssql';
import { Secret } from '../exporters/secret';
import { runProber } from '../test/helpers/context';
import { healthQueries } from '../test/peers/tds/health';
import { startTdsPeer } from '../test/peers/tds/server';
import { median, percentile } from './common';

const ROUNDS = Number(process.argv[2] ?? 200);

async function main(): Promise<void> {
  const peer = await startTdsPeer({ users: { monitor: 's3cr3t-pw' }, queries: healthQueries() });
  const login: Partial<MssqlSettings> = { username: 'monitor', password: new Secret('s3cr3t-pw') };
  const arms: Record<'login' | 'pack', Partial<MssqlSettings>> = { login, pack: { ...login, query_packs: ['health'] } };
  const wall: Record<string, number[]> = { login: [], pack: [] };
  const cpu: Record<string, number[]> = { login: [], pack: [] };
  try {
    // Warm-up: tedious loaded, JIT settled.
    for (let i = 0; i < 10; i++) await runProber(mssqlProber, `127.0.0.1:${peer.port}`, arms.pack, 5000);
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? (['login', 'pack'] as const) : (['pack', 'login'] as const);
      for (const arm of order) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const res = await runProber(mssqlProber, `127.0.0.1:${peer.port}`, arms[arm], 5000);
        const t1 = performance.now();
        const c = process.cpuUsage(c0);
        if (!res.success) throw new Error(`${arm} probe failed: ${JSON.stringify(res.failure)}`);
        wall[arm].push(t1 - t0);
        cpu[arm].push((c.user + c.system) / 1000);
      }
    }
  } finally {
    await peer.close();
  }
  const row = (arm: string): string =>
    `| ${arm} | ${median(wall[arm]).toFixed(2)} / ${percentile(wall[arm], 90).toFixed(2)} | ${median(cpu[arm]).toFixed(2)} / ${percentile(cpu[arm], 90).toFixed(2)} |`;
  console.log(`${ROUNDS} rounds, node ${process.version}`);
  console.log('| probe | wall p50 / p90 ms | CPU p50 / p90 ms |');
  console.log('|---|---|---|');
  console.log(row('login'));
  console.log(row('pack'));
  console.log(
    `ratio pack/login: wall p50 ${(median(wall.pack) / median(wall.login)).toFixed(2)}x, CPU p50 ${(median(cpu.pack) / median(cpu.login)).toFixed(2)}x`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
