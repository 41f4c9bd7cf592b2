// The status page in a real headless Chromium: it renders, a failing target shows its rung and
// reason, and a banner carrying <script> is shown as text and never runs.
// The page.evaluate callbacks below run in Chromium, on its DOM.
/// <reference lib="dom" />
import { mkdirSync, mkdtempSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startAgent, type AgentProcess } from '../helpers/agent-process';
import { closedPort, listen } from '../helpers/net';
import { startTdsPeer, type TdsPeer } from '../peers/tds/server';

jest.setTimeout(60000);

const EVIL = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">';
const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts');

describe('status page in headless Chromium', () => {
  let agent: AgentProcess;
  let browser: Browser;
  let up: Awaited<ReturnType<typeof listen>>;
  let evil: Awaited<ReturnType<typeof listen>>;
  let sql: TdsPeer;

  beforeAll(async () => {
    up = await listen();
    sql = await startTdsPeer({ version: { major: 8, minor: 0, build: 760, subbuild: 0 } });
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
        '  pinged: {prober: tcp, timeout: 3s, ping: {required: false, packets: 2}}',
        '  sql_version: {prober: mssql, timeout: 900ms}',
        'targets:',
        `  - {name: healthy, module: tcp_connect, address: "127.0.0.1:${up.port}"}`,
        `  - {name: sql-refused, module: tcp_connect, address: "127.0.0.1:${down}"}`,
        `  - {name: hostile-banner, module: ssh, address: "127.0.0.1:${evil.port}"}`,
        `  - {name: pinged, module: pinged, interval: 5s, address: "127.0.0.1:${up.port}"}`,
        `  - {name: sql-2000, module: sql_version, address: "127.0.0.1:${sql.port}"}`,
        'sockets:',
        '  interval: 1s',
        `  expect: [{port: ${up.port}, protocol: tcp}, {port: ${down}, protocol: tcp}]`,
      ].join('\n'),
    );
    agent = await startAgent(f);
    for (let i = 0; i < 50; i++) {
      const text = await (await fetch(`${agent.base}/metrics`)).text();
      if ((text.match(/^probe_success\{/gm) ?? []).length === 5 && text.includes('portprobe_socket_scan_success 1'))
        break;
      await new Promise((r) => setTimeout(r, 100));
    }
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-quic',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await agent?.stop();
    await up?.close();
    await evil?.close();
    await sql?.close();
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
    expect(await rows.count()).toBe(5);
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

  it('reads right: failing first, every column headed, one colour per phase with a legend, one time scale, the ping round trip, findings', async () => {
    const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    await page.goto(`${agent.base}/`);
    // Failing targets first (by name), then the healthy ones.
    const order = await page
      .locator('tr[data-target]')
      .evaluateAll((trs) => trs.map((t) => t.getAttribute('data-target')));
    expect(order).toEqual(['hostile-banner', 'sql-refused', 'healthy', 'pinged', 'sql-2000']);
    // Every column of every table has a heading.
    const headings = await page.locator('th').allTextContents();
    expect(headings.length).toBeGreaterThan(9);
    expect(headings.filter((t) => t.trim() === '')).toEqual([]);

    // One colour per phase, whatever the row, and the legend shows the same colour.
    const spans = await page.locator('.bars span').evaluateAll((els) =>
      els.map((e) => ({
        phase: e.getAttribute('data-phase') ?? '',
        seconds: Number(e.getAttribute('data-seconds')),
        colour: getComputedStyle(e).backgroundColor,
        width: e.getBoundingClientRect().width,
        track: (e.parentElement as HTMLElement).getBoundingClientRect().width,
        title: e.getAttribute('title') ?? '',
      })),
    );
    const legend = new Map(
      await page
        .locator('.legend span[data-phase]')
        .evaluateAll((els) =>
          els.map(
            (e) =>
              [
                e.getAttribute('data-phase') ?? '',
                getComputedStyle(e.querySelector('.swatch') as Element).backgroundColor,
              ] as [string, string],
          ),
        ),
    );
    for (const s of spans)
      expect({ phase: s.phase, colour: legend.get(s.phase) }).toEqual({ phase: s.phase, colour: s.colour });
    const colours = new Map<string, string>();
    for (const s of spans) {
      const seen = colours.get(s.colour);
      expect(seen === undefined || seen === s.phase).toBe(true); // no two phases share a colour
      colours.set(s.colour, s.phase);
    }
    expect(legend.has('failed')).toBe(true);

    // One time scale: every segment is its seconds over the page's scale, on tracks of one width.
    const scale = Number(await page.locator('th.timing').getAttribute('data-scale-seconds'));
    expect(scale).toBeGreaterThan(0);
    expect(new Set(spans.map((s) => s.track)).size).toBe(1);
    for (const s of spans) {
      expect(Math.abs(s.width - Math.max(1, (s.seconds / scale) * s.track))).toBeLessThan(1.5);
    }

    // The ping rung is its round trip (loopback: well under a millisecond), not packets × interval.
    const icmp = spans.find((s) => s.phase === 'icmp');
    expect(icmp?.title).toMatch(/^icmp: round trip [0-9.]+ ms avg, 2 of 2 replies$/);
    expect(icmp?.seconds).toBeLessThan(0.05);

    // What the SQL Server told on the way.
    expect(await page.locator('tr[data-target="sql-2000"] ul.findings').textContent()).toContain(
      'mssql_version 8.0.760.0 SQL Server 2000 SP3',
    );
    const advisory = page.locator('tr[data-target="sql-2000"] li.finding[data-code="mssql_patch_advisory"]');
    expect(await advisory.getAttribute('class')).toBe('finding warning');
    expect(await advisory.textContent()).toMatch(/8\.00\.760 is below 8\.00\.2039.*Service Pack 4/);

    await page.screenshot({ path: path.join(tmpdir(), 'portprobe-status-live.png'), fullPage: true });
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
