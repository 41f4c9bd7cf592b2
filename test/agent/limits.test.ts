import net from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAgent, type AgentProcess } from '../helpers/agent-process';
import { listen } from '../helpers/net';

jest.setTimeout(40000);

describe('/probe reach and HTTP request limits', () => {
  let agent: AgentProcess;
  let up: Awaited<ReturnType<typeof listen>>;
  let silent: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    up = await listen();
    silent = await listen();
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-limits-'));
    const f = path.join(dir, 'c.yml');
    writeFileSync(
      f,
      [
        'probe_api:',
        '  allowed_addresses: ["127\\\\.0\\\\.0\\\\.1:[0-9]+"]',
        '  max_concurrent: 2',
        'modules:',
        '  tcp_connect: {prober: tcp, timeout: 3s}',
        '  banner: {prober: tcp, timeout: 3s, tcp: {expect_banner: "."}}',
        'targets:',
        `  - {name: silent, module: banner, address: "127.0.0.1:${silent.port}"}`,
      ].join('\n'),
    );
    agent = await startAgent(f);
  });

  afterAll(async () => {
    await agent.stop();
    await up.close();
    await silent.close();
  });

  it('reaches an address outside the config only when allowed_addresses matches it', async () => {
    const ok = await fetch(`${agent.base}/probe?target=127.0.0.1:${up.port}&module=tcp_connect`);
    expect(await ok.text()).toContain('probe_success 1');
    const noModule = await fetch(`${agent.base}/probe?target=127.0.0.1:${up.port}`);
    expect(noModule.status).toBe(400);
    expect(await noModule.text()).toBe(
      'parameter "module" is required for an address that is not a configured target\n',
    );
    const other = await fetch(`${agent.base}/probe?target=127.0.0.2:${up.port}&module=tcp_connect`);
    expect(other.status).toBe(400);
    const sneaky = await fetch(`${agent.base}/probe?target=127.0.0.1:${up.port}.evil.example&module=tcp_connect`);
    expect(sneaky.status).toBe(400);
  });

  it('caps concurrent /probe requests: the third of three slow ones gets 503', async () => {
    const slow = [0, 1].map(() => fetch(`${agent.base}/probe?target=silent`));
    await new Promise((r) => setTimeout(r, 300));
    const third = await fetch(`${agent.base}/probe?target=silent`);
    expect(third.status).toBe(503);
    expect(await third.text()).toBe('too many /probe requests in flight (limit 2); try again\n');
    const done = await Promise.all(slow);
    expect(done.map((r) => r.status)).toEqual([200, 200]);
    // The scheduler and /metrics were never starved meanwhile.
    expect((await fetch(`${agent.base}/metrics`)).status).toBe(200);
  });

  it('answers oversized request headers with 431', async () => {
    const res = await fetch(`${agent.base}/metrics`, { headers: { 'x-big': 'a'.repeat(20000) } });
    expect(res.status).toBe(431);
  });

  it('drops a client that never finishes its request headers', async () => {
    const sock = net.connect(agent.port, '127.0.0.1');
    sock.on('error', () => undefined);
    let answer = '';
    sock.on('data', (d: Buffer) => (answer += d.toString()));
    sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
    const t0 = Date.now();
    const closedAfter = await new Promise<number>((resolve) => sock.on('close', () => resolve(Date.now() - t0)));
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(closedAfter).toBeGreaterThan(9000);
    expect(closedAfter).toBeLessThan(15000);
    expect((await fetch(`${agent.base}/-/healthy`)).status).toBe(200);
  });

  it('logged no unhandled rejection', () => {
    expect(agent.logs()).not.toContain('unhandled promise rejection');
  });
});
