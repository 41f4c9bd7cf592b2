// /probe?debug=true over HTTP, against the built agent probing real peers: the verdict with what
// to check next (the prober's advice, or the rung's default), what was found on the way, and the
// findings section; and the same findings rendering for any finding code.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { debugText } from '../../agent/http';
import { ftpProber } from '../../exporters/ftp/prober';
import { runProber } from '../helpers/context';
import { startHostile } from '../peers/ftp/hostile';
import type { ProbeResult } from '../../exporters/types';
import { startAgent, type AgentProcess } from '../helpers/agent-process';
import { closedPort } from '../helpers/net';
import { startTdsPeer, type TdsPeer } from '../peers/tds/server';

jest.setTimeout(30000);

describe('/probe?debug=true against real probes', () => {
  let agent: AgentProcess;
  let sql: TdsPeer;
  beforeAll(async () => {
    sql = await startTdsPeer({ version: { major: 8, minor: 0, build: 760, subbuild: 0 } });
    const down = await closedPort();
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-debug-'));
    const f = path.join(dir, 'c.yml');
    writeFileSync(
      f,
      [
        'global: {interval: 1m}',
        'modules:',
        '  tcp_connect: {prober: tcp, timeout: 2s}',
        '  sql_version: {prober: mssql, timeout: 2s}',
        'targets:',
        `  - {name: down, module: tcp_connect, address: "127.0.0.1:${down}"}`,
        `  - {name: sql, module: sql_version, address: "127.0.0.1:${sql.port}"}`,
        '',
      ].join('\n'),
    );
    agent = await startAgent(f);
  });
  afterAll(async () => {
    await agent?.stop();
    await sql?.close();
  });

  it('a refused connect: the rung, the reason and what to check next, then the findings section', async () => {
    const text = await (await fetch(`${agent.base}/probe?target=down&debug=true`)).text();
    expect(text).toContain('Result: failed at phase connect: refused');
    expect(text).toContain('What to check: Nothing accepts connections on this port');
    expect(text).toMatch(/\nFindings: none\n/);
    expect(text).toContain('probe_success 0');
  });

  it('a SQL Server: the version the PRELOGIN told, before the series', async () => {
    const text = await (await fetch(`${agent.base}/probe?target=sql&debug=true`)).text();
    expect(text).toContain('Result: probe succeeded');
    expect(text).toContain(
      'Found on the way:\n  mssql_version: 8.0.760.0 SQL Server 2000 SP3\n  mssql_encryption: off\n',
    );
    expect(text.indexOf('Findings')).toBeLessThan(text.indexOf('Metrics that would have been returned:'));
    // The prober's own advisory for 8.00.760 (SP3, below SP4), rendered from its finding.
    expect(text).toMatch(
      /\n {2}\[warning\] mssql_patch_advisory: SQL Server 2000 build 8\.00\.760 is below 8\.00\.2039[^\n]*\n {6}what to do: [^\n]*Service Pack 4/,
    );
  });
});

describe('debugText renders any finding', () => {
  it('most severe first, each with its advice', () => {
    const result: ProbeResult = {
      success: true,
      durationSeconds: 0.01,
      phases: [],
      facts: [],
      findings: [
        {
          code: 'tls_cert_expiry',
          severity: 'warning',
          message: 'the certificate expires in 9 days',
          advice: 'Renew it.',
        },
        {
          code: 'ftp_pasv_mismatch_followed',
          severity: 'info',
          message: 'PASV named 10.0.0.5; the control address was used',
        },
        { code: 'some_future_code', severity: 'critical', message: 'something bad' },
      ],
    };
    const text = debugText(result, 'probe_success 1\n', 'ftp');
    expect(text).toContain(
      'Findings (1 critical, 1 warning, 1 info):\n' +
        '  [critical] some_future_code: something bad\n' +
        '  [warning] tls_cert_expiry: the certificate expires in 9 days\n' +
        '      what to do: Renew it.\n' +
        '  [info] ftp_pasv_mismatch_followed: PASV named 10.0.0.5; the control address was used\n',
    );
  });
});

describe('/probe?debug=true for a probe with more than one failed rung', () => {
  it('names each later failed FTP mode with its own reason and what to check', async () => {
    const peer = await startHostile('closed_data_port');
    try {
      const result = await runProber(ftpProber, `127.0.0.1:${peer.port}`, { data_channel: ['epsv', 'pasv'] }, 4000);
      const text = debugText(result, 'probe_success 0\n', 'ftp');
      expect(text).toMatch(/\nResult: failed at phase data_epsv: pasv_unreachable: EPSV data port /);
      expect(text).toMatch(
        /\nAlso failed at phase data_pasv: pasv_unreachable: PASV data port [^\n]*\n {2}What to check: The server's passive data port is not reachable/,
      );
    } finally {
      await peer.stop();
    }
  });
});
