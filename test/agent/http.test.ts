import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { probeTimeoutMs } from '../../agent/http';
import { createLogger } from '../../agent/logger';
import { startAgentHttp, type AgentHttp } from '../helpers/agent-http';
import { closedPort, listen } from '../helpers/net';

const logger = createLogger('error', 'json', { write: () => true });

async function get(base: string, p: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await fetch(base + p, { headers, method });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

describe('HTTP endpoints', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-http-'));
  const file = path.join(dir, 'portprobe.yml');
  let h: AgentHttp;
  let base: string;
  let up: Awaited<ReturnType<typeof listen>>;
  let silent: Awaited<ReturnType<typeof listen>>;
  let downPort: number;

  const writeConfig = (targets: string[]): void => {
    writeFileSync(
      file,
      [
        'global: {interval: 1s, timeout: 900ms}',
        'modules:',
        '  tcp_connect: {prober: tcp}',
        '  banner: {prober: tcp, timeout: 5s, tcp: {expect_banner: "."}}',
        'targets:',
        ...targets,
        '',
      ].join('\n'),
    );
  };

  beforeAll(async () => {
    up = await listen();
    silent = await listen();
    downPort = await closedPort();
    writeConfig([
      `  - {name: up, module: tcp_connect, address: "127.0.0.1:${up.port}", labels: {env: test}}`,
      `  - {name: down, module: tcp_connect, address: "127.0.0.1:${downPort}"}`,
      `  - {name: silent, module: tcp_connect, address: "127.0.0.1:${silent.port}"}`,
    ]);
    h = await startAgentHttp(
      { configFile: file, logger, build: { version: '9.9.9', revision: 'abc' } },
      { maxConcurrentProbes: 2 },
    );
    base = h.base;
  });

  afterAll(async () => {
    await h.stop();
    await up.close();
    await silent.close();
  });

  it('/metrics serves scheduled results and self metrics without probing inline', async () => {
    // Wait for the schedule to have run both targets once (interval 1s).
    const allThree = (t: string): boolean =>
      ['up', 'down', 'silent'].every((n) => t.includes(`probe_success{target="${n}"`));
    for (let i = 0; i < 40 && !allThree((await get(base, '/metrics')).text); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const m = await get(base, '/metrics');
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(m.text).toContain('probe_success{target="up",module="tcp_connect",env="test"} 1');
    expect(m.text).toContain('probe_success{target="down",module="tcp_connect"} 0');
    expect(m.text).toContain(
      'probe_failure_info{target="down",module="tcp_connect",phase="connect",reason="refused"} 1',
    );
    expect(m.text).toContain('portprobe_build_info{version="9.9.9",revision="abc",nodejs="' + process.version + '"} 1');
    expect(m.text).toContain('portprobe_config_last_reload_successful 1');
    expect(m.text).toContain('portprobe_arrival_stamps_enabled 1'); // npm install built the addon
    expect(m.text).toMatch(/portprobe_probes_total\{module="tcp_connect",result="success"\} [1-9]/);
    expect(m.text).toContain('nodejs_eventloop_lag_seconds');
    expect(m.text).toContain('process_resident_memory_bytes');
  });

  it('the whole /metrics output passes promtool check metrics with no findings', async () => {
    const text = (await get(base, '/metrics')).text;
    const out = execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(out).toBe('');
  });

  it('/metrics is gzip-compressed when the scraper asks for it', async () => {
    const res = await new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      http
        .get(`${base}/metrics`, { headers: { 'accept-encoding': 'gzip' } }, (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => resolve({ headers: r.headers, body: Buffer.concat(chunks) }));
        })
        .on('error', reject);
    });
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(res.body).toString()).toContain('portprobe_build_info');
  });

  it('/probe runs a configured target now, without target labels', async () => {
    const r = await get(base, '/probe?target=up');
    expect(r.status).toBe(200);
    expect(r.text).toContain('probe_success 1\n');
    expect(r.text).toMatch(/probe_phase_duration_seconds\{phase="connect"\} [0-9.e-]+\n/);
    const d = await get(base, '/probe?target=down');
    expect(d.text).toContain('probe_success 0\n');
    expect(d.text).toContain('probe_failure_info{phase="connect",reason="refused"} 1\n');
  });

  it('/probe can use another configured module', async () => {
    const r = await get(base, '/probe?target=silent&module=banner', { 'X-Prometheus-Scrape-Timeout-Seconds': '1' });
    expect(r.text).toContain('probe_failure_info{phase="banner",reason="no_greeting"} 1');
    // scrape timeout 1 s minus the 0.5 s offset, not the module's 5 s
    const seconds = Number(/^probe_duration_seconds (\S+)$/m.exec(r.text)?.[1]);
    expect(seconds).toBeGreaterThan(0.45);
    expect(seconds).toBeLessThan(0.7);
  });

  it('/probe?debug=true explains the result', async () => {
    const r = await get(base, '/probe?target=down&debug=true');
    expect(r.status).toBe(200);
    expect(r.text).toContain('failed at phase connect: refused');
    expect(r.text).toContain('Metrics that would have been returned:');
  });

  it.each([
    ['/probe', 400, 'parameter "target" is required\n'],
    ['/probe?target=', 400, 'parameter "target" is required\n'],
    [
      '/probe?target=evil.example.org:22',
      400,
      'unknown target "evil.example.org:22": /probe only runs targets from the config\n',
    ],
    ['/probe?target=up&target=down', 400, 'parameter "target" must be given once\n'],
    ['/probe?target=up&module=nope', 400, 'unknown module "nope"\n'],
    ['/probe?target=up&debug=yes', 400, 'parameter "debug" must be true or false\n'],
    ['/nope', 404, 'not found\n'],
  ])('GET %s -> %d', async (p, status, body) => {
    const r = await get(base, p);
    expect(r.status).toBe(status);
    expect(r.text).toBe(body);
  });

  it('rejects a malformed scrape timeout header', async () => {
    const r = await get(base, '/probe?target=up', { 'X-Prometheus-Scrape-Timeout-Seconds': 'soon' });
    expect(r.status).toBe(400);
    expect(r.text).toBe('X-Prometheus-Scrape-Timeout-Seconds: "soon" is not a positive number\n');
  });

  it('answers wrong methods with 405', async () => {
    expect((await get(base, '/metrics', {}, 'POST')).status).toBe(405);
    expect((await get(base, '/-/reload', {}, 'GET')).status).toBe(405);
  });

  it('health and readiness', async () => {
    expect((await get(base, '/-/healthy')).status).toBe(200);
    expect((await get(base, '/-/ready')).status).toBe(200);
  });

  it("reload: a bad config keeps the old one; a good one drops removed targets' series", async () => {
    writeFileSync(file, 'global: {interval: nope}\n');
    const bad = await get(base, '/-/reload', {}, 'POST');
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('global.interval: must be a duration');
    let m = await get(base, '/metrics');
    expect(m.text).toContain('portprobe_config_last_reload_successful 0');
    expect(m.text).toContain('target="down"');
    expect((await get(base, '/probe?target=up')).status).toBe(200);

    writeConfig([`  - {name: up, module: tcp_connect, address: "127.0.0.1:${up.port}", labels: {env: test}}`]);
    const good = await get(base, '/-/reload', {}, 'POST');
    expect(good.status).toBe(200);
    m = await get(base, '/metrics');
    expect(m.text).toContain('portprobe_config_last_reload_successful 1');
    expect(m.text).not.toContain('target="down"');
    expect(m.text).toContain('target="up"');
    expect((await get(base, '/probe?target=down')).status).toBe(400);
  });
});

describe('probeTimeoutMs', () => {
  it('subtracts the offset when it leaves time, else uses the header as is', () => {
    expect(probeTimeoutMs(undefined, 0.5)).toBeUndefined();
    expect(probeTimeoutMs('10', 0.5)).toBe(9500);
    expect(probeTimeoutMs('0.4', 0.5)).toBe(400);
    expect(probeTimeoutMs('-1', 0.5)).toBe('X-Prometheus-Scrape-Timeout-Seconds: "-1" is not a positive number');
  });
});
