// End to end with the chart's pieces: the built agent probes real peers on loopback (two ftp-srv
// FTP servers, the TDS test peer), a real Prometheus scrapes it the way the chart's ServiceMonitor
// does (/metrics, honor_labels) and evaluates the chart's rules file. Stopping one FTP server must
// raise PortprobeTargetDown for it and for nothing else. The rules' `for:` durations are shortened
// to seconds in the copy Prometheus loads; the expressions are the chart's, unchanged.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { startAgent, type AgentProcess } from '../helpers/agent-process';
import { startPrometheus, type PrometheusProcess } from '../helpers/prometheus';
import { ftpsrvUser, startFtpSrv } from '../peers/ftp/ftpsrv';
import { makeFixture, type Fixture, type FtpPeer } from '../peers/ftp/common';
import { startTdsPeer, type TdsPeer } from '../peers/tds/server';
import { Renderer } from '../helm/harness';
import { listen } from '../helpers/net';

jest.setTimeout(90_000);

const FILES = path.resolve(__dirname, '..', '..', 'helm', 'portprobe', 'files');
const RULES = path.join(FILES, 'portprobe-rules.yml');

interface RuleFile {
  groups: { name: string; rules: { alert: string; for?: string }[] }[];
}

/**
 * The scrape jobs the Prometheus Operator would generate from the chart's ServiceMonitors
 * (the /metrics one and a per-target /probe one for files-up), pointed at the agent on
 * loopback, relabelings included (the Kubernetes-only node name comes out empty, so no label).
 * Intervals are cut to 1s.
 */
function chartScrapeConfigs(agentAddress: string): Record<string, unknown>[] {
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-e2e-values-'));
  const renderer = Renderer.build();
  try {
    const values = path.join(dir, 'values.yaml');
    writeFileSync(
      values,
      stringify({
        config: {
          modules: { ftp_passive: { prober: 'ftp' } },
          targets: [{ name: 'files-up', module: 'ftp_passive', address: 'x:21' }],
        },
        serviceMonitor: { enabled: true },
        probeServiceMonitors: { enabled: true, targets: [{ name: 'files-up' }] },
      }),
    );
    const monitors = renderer.render([values]).objects.filter((o) => o.kind === 'ServiceMonitor');
    expect(monitors).toHaveLength(2);
    return monitors.flatMap((sm) =>
      (sm.spec as { endpoints: Record<string, unknown>[] }).endpoints.map((ep) => ({
        job_name: sm.metadata.name,
        metrics_path: ep.path,
        scheme: ep.scheme,
        honor_labels: ep.honorLabels,
        ...(ep.params ? { params: ep.params } : {}),
        relabel_configs: ((ep.relabelings ?? []) as Record<string, unknown>[]).map(relabelConfig),
        scrape_interval: '1s',
        scrape_timeout: '900ms',
        static_configs: [{ targets: [agentAddress] }],
      })),
    );
  } finally {
    renderer.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A ServiceMonitor relabeling in Prometheus' own spelling, as the Operator writes it. */
function relabelConfig(r: Record<string, unknown>): Record<string, unknown> {
  const names: Record<string, string> = {
    sourceLabels: 'source_labels',
    targetLabel: 'target_label',
    separator: 'separator',
    regex: 'regex',
    modulus: 'modulus',
    replacement: 'replacement',
    action: 'action',
  };
  return Object.fromEntries(
    Object.entries(r).map(([k, v]) => {
      if (!names[k]) throw new Error(`relabeling field ${k} has no Prometheus spelling here`);
      return [names[k], k === 'action' ? String(v).toLowerCase() : v];
    }),
  );
}

/** The chart's rules with every `for:` set to `for` (seconds instead of minutes). */
function fastRules(forDuration: string): { text: string; alerts: string[] } {
  const file = parseYaml(readFileSync(RULES, 'utf8')) as RuleFile;
  for (const g of file.groups) for (const r of g.rules) r.for = forDuration;
  return { text: stringify(file), alerts: file.groups.flatMap((g) => g.rules.map((r) => r.alert)) };
}

describe('the chart rules on a real Prometheus scraping the agent', () => {
  let fx: Fixture;
  let ftpUp: FtpPeer;
  let ftpDown: FtpPeer;
  let tds: TdsPeer;
  let listener: Awaited<ReturnType<typeof listen>>;
  let agent: AgentProcess;
  let prom: PrometheusProcess;
  let dir: string;
  let alertNames: string[];

  beforeAll(async () => {
    fx = makeFixture('e2e-alerts');
    const user = ftpsrvUser();
    ftpUp = await startFtpSrv(fx, { tls: 'off' }, user);
    ftpDown = await startFtpSrv(fx, { tls: 'off' }, user);
    // SQL Server 2000 SP3: below the advised 8.00.2039, so the patch advisory is 1.
    tds = await startTdsPeer({ version: { major: 8, minor: 0, build: 760, subbuild: 0 }, encryption: 'not_supported' });

    // This host's sockets: one expected listener that exists (127.0.0.1:P) and one that does not
    // (127.0.0.2:P: only this test's listener could have taken P, and it is on 127.0.0.1).
    listener = await listen();

    dir = mkdtempSync(path.join(tmpdir(), 'portprobe-e2e-alerts-'));
    writeFileSync(path.join(dir, 'ftp-password'), `${user.password}\n`, { mode: 0o600 });
    const cfg = path.join(dir, 'portprobe.yml');
    writeFileSync(
      cfg,
      [
        'global: {interval: 1s, timeout: 900ms}',
        'modules:',
        '  ftp_passive:',
        '    prober: ftp',
        '    timeout: 900ms',
        `    ftp: {username: ${user.name}, password_file: ftp-password, data_channel: [epsv, pasv]}`,
        '  mssql_prelogin:',
        '    prober: mssql',
        '    timeout: 900ms',
        'targets:',
        `  - {name: files-up, module: ftp_passive, address: "127.0.0.1:${ftpUp.port}"}`,
        `  - {name: files-down, module: ftp_passive, address: "127.0.0.1:${ftpDown.port}"}`,
        `  - {name: sql-legacy, module: mssql_prelogin, address: "127.0.0.1:${tds.port}"}`,
        'sockets:',
        '  enabled: true',
        '  interval: 1s',
        `  expect: [{port: ${listener.port}, protocol: tcp, address: 127.0.0.1}, {port: ${listener.port}, protocol: tcp, address: 127.0.0.2}]`,
      ].join('\n'),
    );
    agent = await startAgent(cfg);

    const rules = fastRules('2s');
    alertNames = rules.alerts;
    prom = await startPrometheus(
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: ['portprobe-rules.yml'],
        scrape_configs: chartScrapeConfigs(`127.0.0.1:${agent.port}`),
      }),
      { 'portprobe-rules.yml': rules.text },
    );
  }, 120_000);

  afterAll(async () => {
    await prom?.stop();
    await agent?.stop();
    await ftpUp?.stop();
    await ftpDown?.stop();
    await tds?.close();
    await listener?.close();
    fx?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('loads every alert of the chart', async () => {
    const res = await fetch(`${prom.base}/api/v1/rules?type=alert`);
    const body = (await res.json()) as { data: { groups: { rules: { name: string; health: string }[] }[] } };
    const loaded = body.data.groups.flatMap((g) => g.rules);
    expect(loaded.map((r) => r.name).sort()).toEqual([...alertNames].sort());
    expect(loaded.every((r) => r.health !== 'err')).toBe(true);
  });

  it('stores the FTP, SQL Server and agent series the rules and dashboard use', async () => {
    await prom.waitFor('probe_success{job="portprobe"}', (r) => r.length === 3 && r.every((s) => s.value[1] === '1'));
    // The per-target /probe ServiceMonitor: one fresh probe of files-up per scrape, its own labels kept.
    const probed = await prom.waitFor('probe_success{job="portprobe-probe-files-up"}', (r) => r.length === 1);
    expect(probed[0].metric).toMatchObject({ target: 'files-up', module: 'ftp_passive' });
    expect(probed[0].value[1]).toBe('1');
    const data = await prom.waitFor(
      'probe_ftp_data_channel_success{job="portprobe", target="files-up"}',
      (r) => r.length === 2,
    );
    expect(data.map((s) => [s.metric.mode, s.value[1]]).sort()).toEqual([
      ['epsv', '1'],
      ['pasv', '1'],
    ]);
    const version = await prom.waitFor(
      'probe_mssql_version_info{job="portprobe", target="sql-legacy"}',
      (r) => r.length === 1,
    );
    expect(version[0].metric.version).toMatch(/^8\.0+\.760/);
    const reload = await prom.waitFor('portprobe_config_last_reload_successful', (r) => r.length === 1);
    expect(reload[0].value[1]).toBe('1');
  });

  it('fires PortprobeTargetDown for a stopped FTP server, and no alert for the one still up', async () => {
    await prom.waitFor('probe_success{target="files-down"}', (r) => r.length === 1 && r[0].value[1] === '1');
    await ftpDown.stop();
    const firing = await prom.waitFor(
      'ALERTS{alertname="PortprobeTargetDown", alertstate="firing"}',
      (r) => r.some((s) => s.metric.target === 'files-down'),
      30_000,
    );
    expect(firing.map((s) => s.metric.target)).toEqual(['files-down']);
    expect(firing[0].metric).toMatchObject({ module: 'ftp_passive', severity: 'critical' });
    const reason = await prom.query('probe_failure_info{target="files-down"}');
    expect(reason.map((s) => [s.metric.phase, s.metric.reason])).toEqual([['connect', 'refused']]);
    // The data-channel alert needs a working login; a refused connection must not raise it.
    expect(await prom.query('ALERTS{target="files-down", alertname!="PortprobeTargetDown"}')).toEqual([]);
    expect(await prom.query('ALERTS{target="files-up"}')).toEqual([]);
  });

  it('fires PortprobeMssqlPatchAdvisory with the version labels, and no login alert without credentials', async () => {
    const firing = await prom.waitFor(
      'ALERTS{alertname="PortprobeMssqlPatchAdvisory", alertstate="firing"}',
      (r) => r.length === 1,
      30_000,
    );
    expect(firing[0].metric).toMatchObject({ target: 'sql-legacy', product: expect.stringContaining('2000') });
    expect(await prom.query('ALERTS{target="sql-legacy", alertname!="PortprobeMssqlPatchAdvisory"}')).toEqual([]);
  });

  it("answers the dashboard's queries with the recorded series", async () => {
    type Panel = { title: string; targets: { refId: string; expr: string }[] };
    const dashboard = JSON.parse(readFileSync(path.join(FILES, 'portprobe-dashboard.json'), 'utf8')) as {
      panels: Panel[];
    };
    const panel = (title: string): Panel => dashboard.panels.find((p) => p.title === title) as Panel;
    const run = (title: string, refId = 'A'): ReturnType<PrometheusProcess['query']> => {
      const expr = panel(title).targets.find((t) => t.refId === refId)?.expr ?? '';
      return prom.query(expr.replace(/\$__rate_interval/g, '1m').replace(/\$(job|target)\b/g, '.+'));
    };
    const overview = await run('Target overview', 'A');
    expect(overview.map((s) => s.metric.target).sort()).toEqual(['files-down', 'files-up', 'sql-legacy']);
    expect((await run('Target overview', 'C')).map((s) => [s.metric.target, s.metric.phase, s.metric.reason])).toEqual([
      ['files-down', 'connect', 'refused'],
    ]);
    const modes = await run('FTP data channel by mode');
    expect(
      modes
        .filter((s) => s.metric.target === 'files-up')
        .map((s) => s.metric.mode)
        .sort(),
    ).toEqual(['epsv', 'pasv']);
    const versions = await run('SQL Server versions', 'A');
    expect(versions.map((s) => s.metric.target)).toEqual(['sql-legacy']);
    expect(versions[0].metric.product).toContain('2000');
    expect((await run('Patch advisories'))[0].value[1]).toBe('1');
    expect((await run('Targets down'))[0].value[1]).toBe('1');
    expect((await run('Agents', 'A'))[0].metric.version).toBeDefined();
  });

  it('fires PortprobeExpectedListenerMissing for the absent listener only', async () => {
    const up = await prom.waitFor(`portprobe_listener_up{port="${listener.port}"}`, (r) => r.length === 2);
    expect(Object.fromEntries(up.map((s) => [s.metric.address, s.value[1]]))).toEqual({
      '127.0.0.1': '1',
      '127.0.0.2': '0',
    });
    const firing = await prom.waitFor(
      'ALERTS{alertname="PortprobeExpectedListenerMissing", alertstate="firing"}',
      (r) => r.length > 0,
      30_000,
    );
    expect(firing.map((s) => [s.metric.address, s.metric.port])).toEqual([['127.0.0.2', String(listener.port)]]);
    expect(firing[0].metric).toMatchObject({ protocol: 'tcp', severity: 'critical' });
  });
});
