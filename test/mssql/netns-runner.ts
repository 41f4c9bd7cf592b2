// Runs inside a network namespace for test/mssql/netns.test.ts: starts a TDS peer on 1433 and a
// Browser on UDP 1434 (the namespace has its own ports), then runs the probes it is asked for
// through the agent's runner, one after the other, and answers one JSON line per request.
// Requests on stdin, one JSON object a line: {"count": 20, "timeoutMs": 400, "address": "127.0.0.1", "settings": {...}}.
import readline from 'node:readline';
import { mssqlProber } from '../../exporters/mssql';
import { mergeDefaults } from '../../config/load';
import { Secret } from '../../exporters/secret';
import { runProbe } from '../../agent/runner';
import { adviceFor } from '../../exporters/advice';
import { silentLogger } from '../helpers/context';
import { startTdsPeer } from '../peers/tds/server';
import { startBrowserPeer } from '../peers/tds/browser';

interface Request {
  count: number;
  timeoutMs: number;
  address: string;
  settings?: Record<string, unknown>;
}

async function main(): Promise<void> {
  const tds = await startTdsPeer({ port: 1433, users: { monitor: 's3cr3t-pw' }, instanceName: 'SQLEXPRESS' });
  const browser = await startBrowserPeer({ port: 1434, instances: [{ name: 'SQLEXPRESS', tcpPort: tds.port }] });
  // The prober loads tedious at its first login; cold, under a loaded machine, that alone can
  // take longer than the 400 ms deadline of these probes. What is measured here is the network's
  // verdicts, not the agent's start-up, so tedious is loaded before the first request.
  await import('tedious');
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const req = JSON.parse(line) as Request;
    const settings: Record<string, unknown> = { ...(req.settings ?? {}) };
    if (typeof settings.password === 'string') settings.password = new Secret(settings.password);
    const results = [];
    for (let i = 0; i < req.count; i++) {
      const r = await runProbe({
        target: { name: 'netns-mssql', address: req.address, labels: {} },
        module: {
          name: 'netns',
          prober: 'mssql',
          timeoutSeconds: req.timeoutMs / 1000,
          settings: mergeDefaults(mssqlProber.defaults as unknown as Record<string, unknown>, settings),
        },
        logger: silentLogger,
      });
      results.push({
        success: r.success,
        phases: r.phases.map((p) => p.phase),
        failure: r.failure,
        advice: r.failure ? adviceFor('mssql', r.failure) : undefined,
      });
    }
    process.stdout.write(`${JSON.stringify({ results })}\n`);
  }
  await tds.close();
  await browser.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
