// The agent in server mode beside a hostile TDS server: while the hostile peer cycles through
// mutated and random token streams (test/peers/tds/hostile.ts) for LOGIN7 and for the version
// query, the agent keeps serving /metrics, keeps probing a healthy SQL Server target, reports
// the hostile probes with an honest reason (never internal_error), and no error reaches the
// last-resort guard (portprobe_last_resort_errors_total stays 0): containment is at the source.
// Needs dist/ (npx tsc -p tsconfig.json).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAgent, type AgentProcess } from '../helpers/agent-process';
import { hostileCase } from '../peers/tds/hostile';
import { startTdsPeer, type TdsPeer } from '../peers/tds/server';

jest.setTimeout(120_000);

const CASES_PER_TARGET = 300;

let dir: string;
let agent: AgentProcess;
let good: TdsPeer;
let badLogin: TdsPeer;
let badBatch: TdsPeer;
let loginCases = 0;
let batchCases = 0;

beforeAll(async () => {
  const users = { monitor: 's3cr3t-pw' };
  good = await startTdsPeer({ users });
  badLogin = await startTdsPeer({ users, loginReply: () => hostileCase(2 * loginCases++).payload });
  badBatch = await startTdsPeer({
    users,
    batchReply: (sql) => (sql === 'select @@version' ? hostileCase(2 * batchCases++ + 1).payload : undefined),
  });
  dir = mkdtempSync(path.join(tmpdir(), 'portprobe-mssql-hostile-'));
  writeFileSync(path.join(dir, 'pw'), 's3cr3t-pw\n');
  const cfg = path.join(dir, 'portprobe.yml');
  writeFileSync(
    cfg,
    [
      'global: {interval: 1s, timeout: 900ms}',
      'modules:',
      `  sql: {prober: mssql, timeout: 900ms, mssql: {username: monitor, password_file: "${path.join(dir, 'pw')}"}}`,
      'targets:',
      `  - {name: healthy, module: sql, address: "127.0.0.1:${good.port}"}`,
      `  - {name: hostile-login, module: sql, address: "127.0.0.1:${badLogin.port}"}`,
      `  - {name: hostile-batch, module: sql, address: "127.0.0.1:${badBatch.port}"}`,
    ].join('\n'),
  );
  agent = await startAgent(cfg);
});

afterAll(async () => {
  await agent?.stop();
  await Promise.all([good, badLogin, badBatch].map((p) => p?.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sample = (text: string, re: RegExp): string | undefined => re.exec(text)?.[1];

test(`${CASES_PER_TARGET} hostile answers to LOGIN7 and ${CASES_PER_TARGET} to the version query: the agent keeps serving and probing`, async () => {
  const reasons = new Map<string, number>();
  let scrapes = 0;
  const healthyRuns = new Set<string>();
  // The first scheduled run of the healthy target, before the hostile cases start.
  for (
    let t = 0;
    t < 100 &&
    !/probe_success\{[^}]*target="healthy"[^}]*\} 1/.test(await (await fetch(`${agent.base}/metrics`)).text());
    t++
  ) {
    await new Promise((r) => setTimeout(r, 100));
  }
  // /probe runs a probe in the agent now; the scheduler probes every target each second besides.
  for (let i = 0; i < CASES_PER_TARGET; i++) {
    for (const target of ['hostile-login', 'hostile-batch']) {
      const res = await fetch(`${agent.base}/probe?target=${target}`);
      expect(res.status).toBe(200);
      const text = await res.text();
      const reason = sample(text, /probe_failure_info\{[^}]*reason="([a-z_]+)"/) ?? 'success';
      reasons.set(`${target}:${reason}`, (reasons.get(`${target}:${reason}`) ?? 0) + 1);
      expect(reason).not.toBe('internal_error');
    }
    if (i % 25 === 0) {
      const res = await fetch(`${agent.base}/metrics`);
      expect(res.status).toBe(200);
      const text = await res.text();
      scrapes++;
      expect(text).toMatch(/probe_success\{[^}]*target="healthy"[^}]*\} 1/);
      // Fail at once, not at the end, when an error got past the source and reached the guard.
      expect(text).not.toMatch(/^portprobe_last_resort_errors_total\{[^}]*\} [1-9]/m);
      const stamp = sample(text, /probe_last_run_timestamp_seconds\{[^}]*target="healthy"[^}]*\} ([0-9.e+]+)/);
      if (stamp) healthyRuns.add(stamp);
    }
  }
  const metrics = await (await fetch(`${agent.base}/metrics`)).text();
  const lastResort = metrics.split('\n').filter((l) => l.startsWith('portprobe_last_resort_errors_total{'));
  console.log(
    `agent beside a hostile TDS peer: ${loginCases} LOGIN7 cases, ${batchCases} query cases, ${scrapes} scrapes; verdicts:\n` +
      [...reasons.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `  ${k} ${v}`)
        .join('\n') +
      `\n${lastResort.join('\n')}`,
  );
  expect(agent.proc.exitCode).toBeNull();
  expect(lastResort).toHaveLength(3);
  for (const l of lastResort) expect(l).toMatch(/ 0$/);
  expect(loginCases).toBeGreaterThanOrEqual(CASES_PER_TARGET);
  expect(batchCases).toBeGreaterThanOrEqual(CASES_PER_TARGET);
  expect(reasons.get('hostile-login:protocol_error') ?? 0).toBeGreaterThan(CASES_PER_TARGET / 2);
  expect(reasons.get('hostile-batch:protocol_error') ?? 0).toBeGreaterThan(CASES_PER_TARGET / 2);
  // The scheduler kept probing the healthy target the whole time (a new run stamp between scrapes).
  expect(healthyRuns.size).toBeGreaterThan(1);
  expect(metrics).toMatch(/probe_success\{[^}]*target="healthy"[^}]*\} 1/);
});
