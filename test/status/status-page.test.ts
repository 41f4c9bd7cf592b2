// The status page in a real headless Chromium: it renders, a failing target shows its rung and
// reason, and a banner carrying <script> is shown as text and never runs.
import { mkdirSync, mkdtempSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startAgent, type AgentProcess } from '../helpers/agent-process';
import { closedPort, listen } from '../helpers/net';

jest.setTimeout(60000);

const EVIL = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">';
const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts');

describe('status page in headless Chromium', () => {
  let agent: AgentProcess;
  let browser: Browser;
  let up: Awaited<ReturnType<typeof listen>>;
  let evil: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    up = await listen();
    evil = await listen((s) => s.write(`${EVIL}\r\n`));
    const down = await closedPort();
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-status-'));
    const f = path.join(dir, 'c.yml');
    writeFileSync(
      f,
      [
        'global: {interval: 1s}',
        'modules:',
        '  tcp_connect: {prober: tcp, timeout: 900ms}',
        '  ssh: {prober: tcp, timeout: 900ms, tcp: {expect_banner: "^SSH-"}}',
        'targets:',
        `  - {name: healthy, module: tcp_connect, address: "127.0.0.1:${up.port}"}`,
        `  - {name: sql-refused, module: tcp_connect, address: "127.0.0.1:${down}"}`,
        `  - {name: hostile-banner, module: ssh, address: "127.0.0.1:${evil.port}"}`,
        'sockets:',
        '  interval: 1s',
        `  expect: [{port: ${up.port}, protocol: tcp}, {port: ${down}, protocol: tcp}]`,
      ].join('\n'),
    );
    agent = await startAgent(f);
    for (let i = 0; i < 50; i++) {
      const text = await (await fetch(`${agent.base}/metrics`)).text();
      if ((text.match(/^probe_success\{/gm) ?? []).length === 3 && text.includes('portprobe_socket_scan_success 1')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await agent?.stop();
    await up?.close();
    await evil?.close();
  });

  it('renders every target, the failing rung, the listeners, and escapes the hostile banner', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const res = await page.goto(`${agent.base}/`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toBe("default-src 'none'; style-src 'unsafe-inline'");
    expect(await page.title()).toBe('portprobe');

    const rows = page.locator('tr[data-target]');
    expect(await rows.count()).toBe(3);
    const refused = page.locator('tr[data-target="sql-refused"]');
    expect(await refused.locator('.down').textContent()).toBe('down');
    expect(await refused.locator('.reason').textContent()).toBe('connect: refused');
    expect(await refused.textContent()).toContain('What to check: Nothing accepts connections on this port');
    expect(await page.locator('tr[data-target="healthy"] .up').textContent()).toBe('up');

    const hostile = page.locator('tr[data-target="hostile-banner"]');
    expect(await hostile.locator('.reason').textContent()).toBe('banner: banner_unexpected');
    expect(await hostile.locator('.banner').textContent()).toBe(EVIL);
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    expect(await page.locator('script').count()).toBe(0);
    expect(await page.locator('img').count()).toBe(0);

    // Phase timing bars: one span per phase that ran.
    expect(await page.locator('tr[data-target="healthy"] .bars span').count()).toBe(2);
    // Listeners: the expected one is up, the other missing; the table lists the real listener.
    expect(await page.locator('li.up').first().textContent()).toContain(`tcp/${up.port}`);
    expect(await page.locator('li.down').first().textContent()).toContain('is missing');
    expect(await page.locator('td', { hasText: String(up.port) }).count()).toBeGreaterThan(0);
    expect(await page.locator('a[href="/metrics"]').count()).toBe(1);
    expect(await page.locator('a[href^="/probe?target=sql-refused&debug=true"]').count()).toBe(1);

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = path.join(ARTIFACTS, 'status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10000);
    expect(errors).toEqual([]);
  });

  it('the debug link explains the failing probe', async () => {
    const page = await browser.newPage();
    await page.goto(`${agent.base}/`);
    await page.click('a[href^="/probe?target=sql-refused"]');
    const body = await page.locator('body').textContent();
    expect(body).toContain('failed at phase connect: refused');
    expect(body).toContain('probe_success 0');
  });
});
