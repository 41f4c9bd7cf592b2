// End to end for "listening but not accepting": the built agent scans this host's sockets through
// netlink, a real Prometheus scrapes it and evaluates the chart's rules file (every `for:` cut
// to seconds in the copy it loads; the expressions are the chart's). A listener that never
// accepts, with clients waiting in its full queue, must raise PortprobeListenerNotAccepting; a
// healthy listener beside it, holding connections, must not.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { startAgent, type AgentProcess } from '../helpers/agent-process';
import { startPrometheus, type PrometheusProcess } from '../helpers/prometheus';
import { Stuck, untilSsQueue } from './helpers';

jest.setTimeout(90_000);

const RULES = path.resolve(__dirname, '..', '..', 'helm', 'portprobe', 'files', 'portprobe-rules.yml');

function fastRules(): string {
  const file = parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: { for?: string }[] }[] };
  for (const g of file.groups) for (const r of g.rules) r.for = '2s';
  return stringify(file);
}

describe('PortprobeListenerNotAccepting on a real Prometheus scraping the agent', () => {
  let stuck: Stuck;
  const healthy = net.createServer((c) => held.push(c));
  const held: net.Socket[] = [];
  const clients: net.Socket[] = [];
  let healthyPort = 0;
  let agent: AgentProcess;
  let prom: PrometheusProcess;
  let dir: string;

  beforeAll(async () => {
    // Backlog 4 and 4 clients: the queue is at its limit and stays there.
    stuck = await Stuck.start('127.0.0.1', 4, 4);
    expect(await untilSsQueue(stuck.port, 4)).toEqual({ recvQ: 4, sendQ: 4 });
    await new Promise<void>((ok) => healthy.listen(0, '127.0.0.1', 8, ok));
    healthyPort = (healthy.address() as net.AddressInfo).port;
    for (let i = 0; i < 3; i++) {
      const c = net.connect(healthyPort, '127.0.0.1');
      await new Promise((ok) => c.once('connect', ok));
      clients.push(c);
    }
    dir = mkdtempSync(path.join(tmpdir(), 'portprobe-not-accepting-'));
    const cfg = path.join(dir, 'portprobe.yml');
    writeFileSync(
      cfg,
      [
        'global: {interval: 30s}',
        'sockets:',
        '  enabled: true',
        '  interval: 1s',
        `  expect: [{port: ${stuck.port}, address: 127.0.0.1}, {port: ${healthyPort}, address: 127.0.0.1}]`,
        '  max_unexpected_series: 0',
      ].join('\n'),
    );
    agent = await startAgent(cfg);
    prom = await startPrometheus(
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: ['portprobe-rules.yml'],
        scrape_configs: [
          { job_name: 'portprobe', scrape_interval: '1s', static_configs: [{ targets: [`127.0.0.1:${agent.port}`] }] },
        ],
      }),
      { 'portprobe-rules.yml': fastRules() },
    );
  }, 120_000);

  afterAll(async () => {
    await prom?.stop();
    await agent?.stop();
    for (const c of [...clients, ...held]) c.destroy();
    healthy.close();
    await stuck?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("scrapes both listeners' queues, backlogs and connections from the netlink source", async () => {
    const q = await prom.waitFor('portprobe_listener_accept_queue_limit', (r) => r.length === 2);
    const by = (rows: typeof q) => Object.fromEntries(rows.map((s) => [s.metric.port, s.value[1]]));
    expect(by(q)).toEqual({ [String(stuck.port)]: '4', [String(healthyPort)]: '8' });
    expect(by(await prom.query('portprobe_listener_accept_queue'))).toEqual({
      [String(stuck.port)]: '4',
      [String(healthyPort)]: '0',
    });
    expect(by(await prom.query('portprobe_listener_connections'))).toEqual({
      [String(stuck.port)]: '4',
      [String(healthyPort)]: '3',
    });
    const source = await prom.query('portprobe_socket_scan_source_info');
    expect(source.map((s) => s.metric.source)).toEqual(['netlink']);
  });

  it('fires for the listener that does not accept, and only for it', async () => {
    const firing = await prom.waitFor(
      'ALERTS{alertname="PortprobeListenerNotAccepting", alertstate="firing"}',
      (r) => r.length > 0,
      30_000,
    );
    expect(firing.map((s) => [s.metric.address, s.metric.port, s.metric.severity])).toEqual([
      ['127.0.0.1', String(stuck.port), 'critical'],
    ]);
  });
});
