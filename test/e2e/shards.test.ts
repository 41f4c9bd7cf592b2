import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAgent, type AgentProcess } from '../helpers/agent-process';
import { startPrometheus, type PrometheusProcess } from '../helpers/prometheus';
import { listen } from '../helpers/net';
import { shardOf } from '../../agent/shard';

jest.setTimeout(60000);

describe('three agents as shards 0-2, one Prometheus', () => {
  const N = 30;
  let agents: AgentProcess[] = [];
  let prom: PrometheusProcess;
  let peer: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    peer = await listen();
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-shards-'));
    const cfg = path.join(dir, 'portprobe.yml');
    const lines = ['global: {interval: 1s}', 'modules: {t: {prober: tcp, timeout: 900ms}}', 'targets:'];
    for (let i = 0; i < N; i++) lines.push(`  - {name: t${i}, module: t, address: "127.0.0.1:${peer.port}"}`);
    writeFileSync(cfg, lines.join('\n'));
    agents = await Promise.all(
      [0, 1, 2].map((i) => startAgent(cfg, [], { PORTPROBE_SHARD_COUNT: '3', POD_NAME: `portprobe-${i}` })),
    );
    prom = await startPrometheus(
      [
        'global: {scrape_interval: 1s}',
        'scrape_configs:',
        '  - job_name: portprobe',
        `    static_configs: [{targets: [${agents.map((a) => `"127.0.0.1:${a.port}"`).join(', ')}]}]`,
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await prom?.stop();
    await Promise.all(agents.map((a) => a.stop()));
    await peer?.close();
  });

  it('every target has exactly one probe_success series', async () => {
    const r = await prom.waitFor('count by (target) (probe_success)', (x) => x.length === N, 30000);
    expect(r.every((s) => s.value[1] === '1')).toBe(true);
    const total = await prom.query('count(probe_success)');
    expect(total[0].value[1]).toBe(String(N));
  });

  it('each replica probes exactly its own shard and says so', async () => {
    const r = await prom.waitFor('count by (instance) (probe_success)', (x) => x.length === 3, 30000);
    const perShard = [0, 1, 2].map(
      (i) => Array.from({ length: N }, (_, k) => `t${k}`).filter((n) => shardOf(n, 3) === i).length,
    );
    const byInstance = Object.fromEntries(r.map((s) => [s.metric.instance, Number(s.value[1])]));
    agents.forEach((a, i) => expect(byInstance[`127.0.0.1:${a.port}`]).toBe(perShard[i]));
    const info = await prom.waitFor('portprobe_shard_info', (x) => x.length === 3);
    expect(info.map((s) => `${s.metric.index}/${s.metric.count}`).sort()).toEqual(['0/3', '1/3', '2/3']);
    const assigned = await prom.query('sum(portprobe_targets{state="assigned"})');
    expect(assigned[0].value[1]).toBe(String(N));
  });

  it('/probe on any replica answers for any configured target', async () => {
    const foreign = Array.from({ length: N }, (_, k) => `t${k}`).find((n) => shardOf(n, 3) !== 0) as string;
    const res = await fetch(`${agents[0].base}/probe?target=${foreign}`);
    expect(await res.text()).toContain('probe_success 1');
  });
});
