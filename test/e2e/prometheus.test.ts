import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAgent, type AgentProcess } from '../helpers/agent-process';
import { startPrometheus, type PrometheusProcess } from '../helpers/prometheus';
import { closedPort, listen } from '../helpers/net';

jest.setTimeout(60000);

describe('a real Prometheus scrapes the agent', () => {
  let agent: AgentProcess;
  let prom: PrometheusProcess;
  let up: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    up = await listen();
    const down = await closedPort();
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-e2e-'));
    const cfg = path.join(dir, 'portprobe.yml');
    writeFileSync(
      cfg,
      [
        'global: {interval: 1s}',
        'modules: {tcp_connect: {prober: tcp, timeout: 900ms}}',
        'targets:',
        `  - {name: reachable, module: tcp_connect, address: "127.0.0.1:${up.port}", labels: {env: e2e}}`,
        `  - {name: unreachable, module: tcp_connect, address: "127.0.0.1:${down}"}`,
      ].join('\n'),
    );
    agent = await startAgent(cfg);
    prom = await startPrometheus(
      [
        'global: {scrape_interval: 1s, evaluation_interval: 1s}',
        'scrape_configs:',
        '  - job_name: portprobe',
        `    static_configs: [{targets: ["127.0.0.1:${agent.port}"]}]`,
        '  - job_name: portprobe-probe',
        '    metrics_path: /probe',
        '    params: {target: [reachable]}',
        `    static_configs: [{targets: ["127.0.0.1:${agent.port}"]}]`,
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await prom?.stop();
    await agent?.stop();
    await up?.close();
  });

  it('stores probe_success for both targets with their labels', async () => {
    const r = await prom.waitFor('probe_success{job="portprobe"}', (x) => x.length === 2);
    const byTarget = Object.fromEntries(r.map((s) => [s.metric.target, s]));
    expect(byTarget.reachable.value[1]).toBe('1');
    expect(byTarget.reachable.metric.env).toBe('e2e');
    expect(byTarget.unreachable.value[1]).toBe('0');
  });

  it('stores the failed rung of the unreachable target', async () => {
    const r = await prom.waitFor('probe_failure_info{target="unreachable"}', (x) => x.length === 1);
    expect(r[0].metric).toMatchObject({ phase: 'connect', reason: 'refused' });
  });

  it('scrapes /probe blackbox-style and the scrape itself is healthy', async () => {
    const r = await prom.waitFor('probe_success{job="portprobe-probe"}', (x) => x.length === 1);
    expect(r[0].value[1]).toBe('1');
    const upSeries = await prom.waitFor('up', (x) => x.length === 2 && x.every((s) => s.value[1] === '1'));
    expect(upSeries).toHaveLength(2);
  });

  it("sees the agent's own metrics", async () => {
    const r = await prom.waitFor('portprobe_config_last_reload_successful', (x) => x.length === 1);
    expect(r[0].value[1]).toBe('1');
  });
});
