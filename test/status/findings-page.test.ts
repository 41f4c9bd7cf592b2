// The status page with findings, in headless Chromium. The results are built here (the probers
// that make these findings live on other branches of this work): what is checked is that any
// finding a result carries is shown with its severity and advice, most severe first, beside the
// version facts, and that a later FTP mode's failure and the ping's round trip read right.
// The page.evaluate callbacks below run in Chromium, on its DOM.
/// <reference lib="dom" />
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { chromium, type Browser } from 'playwright-core';
import { Agent } from '../../agent/agent';
import { createLogger } from '../../agent/logger';
import { renderStatusPage } from '../../agent/status/page';
import { PROBERS } from '../../exporters';
import type { ProbeResult } from '../../exporters/types';

jest.setTimeout(60000);

const SQL2000: ProbeResult = {
  success: true,
  durationSeconds: 0.004,
  phases: [
    { phase: 'resolve', seconds: 0.0001 },
    { phase: 'browser', seconds: 0.0012 },
    { phase: 'connect', seconds: 0.0004 },
    { phase: 'prelogin', seconds: 0.0021 },
  ],
  facts: [
    {
      metric: 'probe_mssql_version_info',
      value: 1,
      labels: { version: '8.0.194.0', product: 'SQL Server 2000', level: 'RTM' },
    },
    { metric: 'probe_mssql_encryption_info', value: 1, labels: { mode: 'off' } },
  ],
  findings: [
    { code: 'mssql_encryption', severity: 'info', message: 'encryption is available but not forced' },
    { code: 'mssql_browser_port', severity: 'info', message: 'the Browser reported TCP port 49712 for SQLEXPRESS' },
    {
      code: 'mssql_patch_advisory',
      severity: 'critical',
      message: 'SQL Server 2000 build 8.00.194 is below 8.00.760: remote connections are refused',
      advice: 'Install Service Pack 3 or later (SP4, 8.00.2039).',
    },
    {
      code: 'mssql_hidden_instance',
      severity: 'warning',
      message: 'SQLEXPRESS is hidden: the Browser does not list it',
    },
  ],
};

const FTP_PASV_BROKEN: ProbeResult = {
  success: false,
  durationSeconds: 0.35,
  phases: [
    { phase: 'icmp', seconds: 0.21 },
    { phase: 'resolve', seconds: 0.0001 },
    { phase: 'connect', seconds: 0.0003 },
    { phase: 'banner', seconds: 0.002 },
    { phase: 'login', seconds: 0.004 },
    { phase: 'data_epsv', seconds: 0.006 },
    { phase: 'data_pasv', seconds: 0.12 },
  ],
  failure: { phase: 'data_pasv', reason: 'pasv_unreachable', message: 'pasv: connect ECONNREFUSED 10.0.0.5:40001' },
  facts: [
    { metric: 'probe_icmp_packets_sent', value: 2 },
    { metric: 'probe_icmp_packets_received', value: 2 },
    { metric: 'probe_icmp_rtt_seconds', value: 0.00031, labels: { stat: 'avg' } },
    { metric: 'probe_ftp_data_channel_success', value: 1, labels: { mode: 'epsv' } },
    { metric: 'probe_ftp_data_channel_success', value: 0, labels: { mode: 'pasv' } },
  ],
  details: { ping: 'answered' },
  findings: [
    {
      code: 'tls_cert_expiry',
      severity: 'warning',
      message: 'the certificate expires in 9 days',
      advice: 'Renew the certificate.',
    },
    {
      code: 'ftp_pasv_mismatch_followed',
      severity: 'info',
      message: 'PASV named 10.0.0.5; the control address was used instead',
    },
  ],
};

describe('findings on the status page, in headless Chromium', () => {
  let browser: Browser;
  let html: string;
  beforeAll(async () => {
    const agent = new Agent({
      configFile: '/nonexistent.yml',
      logger: createLogger('error', 'logfmt', new PassThrough()),
      build: { version: 'test', revision: 'test' },
    });
    agent.store.sync([
      { name: 'sql-2000', module: 'sql_version', prober: 'mssql', address: 'db.example.org\\SQLEXPRESS', labels: {} },
      { name: 'ftp-files', module: 'ftp_modes', prober: 'ftp', address: 'files.example.org:21', labels: {} },
    ]);
    agent.store.record('sql-2000', PROBERS.mssql.phases, SQL2000);
    agent.store.record('ftp-files', ['icmp', ...PROBERS.ftp.phases], FTP_PASV_BROKEN);
    html = renderStatusPage(agent, 'test');
    await agent.stop();
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('shows every finding with its severity and advice, most severe first, and the facts beside them', async () => {
    const page = await browser.newPage({ viewport: { width: 1500, height: 700 } });
    await page.setContent(html);
    expect(
      await page.locator('tr[data-target]').evaluateAll((t) => t.map((x) => x.getAttribute('data-target'))),
    ).toEqual(['ftp-files', 'sql-2000']);
    const sql = page.locator('tr[data-target="sql-2000"] li.finding');
    expect(await sql.evaluateAll((li) => li.map((x) => `${x.className}|${x.getAttribute('data-code')}`))).toEqual([
      'finding critical|mssql_patch_advisory',
      'finding warning|mssql_hidden_instance',
      'finding info|mssql_encryption',
      'finding info|mssql_browser_port',
    ]);
    expect(await sql.first().textContent()).toBe(
      'critical SQL Server 2000 build 8.00.194 is below 8.00.760: remote connections are refused' +
        'What to do: Install Service Pack 3 or later (SP4, 8.00.2039).',
    );
    const facts = await page.locator('tr[data-target="sql-2000"] li.fact').allTextContents();
    expect(facts).toEqual(['mssql_version 8.0.194.0 SQL Server 2000 RTM', 'mssql_encryption off']);
    const ftp = page.locator('tr[data-target="ftp-files"]');
    expect(await ftp.locator('li.finding').count()).toBe(2);
    expect(await ftp.locator('.bars span[data-phase="data_pasv"].failed').count()).toBe(1);
    expect(await ftp.locator('.bars span[data-phase="icmp"]').getAttribute('title')).toBe(
      'icmp: round trip 0.310 ms avg, 2 of 2 replies',
    );
    // The critical finding is red, the warning amber: severity reads at a glance.
    const colour = (sel: string): Promise<string> =>
      page
        .locator(sel)
        .first()
        .evaluate((e) => getComputedStyle(e).color);
    expect(await colour('li.finding.critical .sev')).toBe('rgb(179, 38, 30)');
    expect(await colour('li.finding.warning .sev')).not.toBe(await colour('li.finding.critical .sev'));
    await page.screenshot({ path: path.join(tmpdir(), 'portprobe-status-findings.png'), fullPage: true });
  });
});
