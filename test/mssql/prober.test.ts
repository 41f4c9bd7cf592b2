// The SQL Server ladder against the TDS test peer: every rung succeeds and fails as it should.
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import http from 'node:http';
import net from 'node:net';
import { mssqlProber, type MssqlSettings } from '../../exporters/mssql';
import { Secret } from '../../exporters/secret';
import type { ProbeResult } from '../../exporters/types';
import { runProber } from '../helpers/context';
import { cleanupsAfterEach, tdsPeers } from '../helpers/mssql';
import { closedPort } from '../helpers/net';
import { startBrowserPeer, type BrowserPeer } from '../peers/tds/browser';
import { selfSignedCert } from '../peers/tds/cert';

const cleanups = cleanupsAfterEach();
const peer = tdsPeers(cleanups);

async function browser(instances: Parameters<typeof startBrowserPeer>[0]['instances']): Promise<BrowserPeer> {
  const b = await startBrowserPeer({ instances });
  cleanups.push(() => b.close());
  return b;
}

const probe = (address: string, s: Partial<MssqlSettings> = {}, timeoutMs = 3000): Promise<ProbeResult> =>
  runProber(mssqlProber, address, s, timeoutMs);

const fact = (r: ProbeResult, metric: string, labels?: Record<string, string>): number | undefined =>
  r.facts.find(
    (f) => f.metric === metric && (labels === undefined || JSON.stringify(f.labels ?? {}) === JSON.stringify(labels)),
  )?.value;

const phases = (r: ProbeResult): string[] => r.phases.map((p) => p.phase);

const creds = { username: 'monitor', password: new Secret('s3cr3t-pw') };

describe('prelogin without credentials (the default mode)', () => {
  test('SQL Server 2022 CU14: version, encryption, no advisory, ladder ends after prelogin', async () => {
    const p = await peer({ version: { major: 16, minor: 0, build: 4135, subbuild: 4 } });
    const r = await probe(`127.0.0.1:${p.port}`);
    expect(r.failure).toBeUndefined();
    expect(r.success).toBe(true);
    expect(phases(r)).toEqual(['resolve', 'connect', 'prelogin']);
    expect(
      fact(r, 'probe_mssql_version_info', { version: '16.0.4135.4', product: 'SQL Server 2022', level: 'CU14' }),
    ).toBe(1);
    expect(fact(r, 'probe_mssql_encryption_info', { mode: 'off' })).toBe(1);
    expect(fact(r, 'probe_mssql_patch_advisory')).toBe(0);
    expect(r.details).toMatchObject({ versionName: 'SQL Server 2022 CU14', build: '16.00.4135', encryption: 'off' });
    expect(p.logins).toEqual([]);
  });

  test.each([
    [534, 'SP2', 1, /below 8\.00\.760: remote connections are refused until Service Pack 3/],
    [760, 'SP3', 1, /below 8\.00\.2039: apply Service Pack 4/],
    [2039, 'SP4', 0, undefined],
    [2305, 'SP4+', 0, undefined],
  ])('SQL Server 2000 build 8.0.%d: level %s, advisory %d', async (build, level, advisory, message) => {
    const p = await peer({ version: { major: 8, minor: 0, build, subbuild: 0 } });
    const r = await probe(`127.0.0.1:${p.port}`);
    expect(r.success).toBe(true);
    expect(fact(r, 'probe_mssql_version_info', { version: `8.0.${build}.0`, product: 'SQL Server 2000', level })).toBe(
      1,
    );
    expect(fact(r, 'probe_mssql_patch_advisory')).toBe(advisory);
    if (message) expect(r.details?.advisory).toMatch(message);
    else expect(r.details?.advisory).toBeUndefined();
  });

  test('configured min_build per major version', async () => {
    const p = await peer({ version: { major: 16, minor: 0, build: 4135, subbuild: 4 } });
    const below = await probe(`127.0.0.1:${p.port}`, { min_build: { '16': '16.0.4145' } });
    expect(fact(below, 'probe_mssql_patch_advisory')).toBe(1);
    expect(below.details?.advisory).toMatch(/below the configured minimum 16\.0\.4145 for SQL Server 2022/);
    const ok = await probe(`127.0.0.1:${p.port}`, { min_build: { '16': '16.0.4135', '15': '15.0.9999' } });
    expect(fact(ok, 'probe_mssql_patch_advisory')).toBe(0);
  });

  test('encryption required: TLS inside TDS is run and reported; without credentials an untrusted certificate is a finding', async () => {
    const p = await peer({ encryption: 'required' });
    const untrusted = await probe(`127.0.0.1:${p.port}`);
    expect(fact(untrusted, 'probe_mssql_encryption_info', { mode: 'required' })).toBe(1);
    expect(untrusted.failure).toBeUndefined();
    expect(untrusted.findings?.map((f) => f.code)).toContain('mssql_certificate_untrusted');
    const trusted = await probe(`127.0.0.1:${p.port}`, { trust_server_certificate: true });
    expect(trusted.failure).toBeUndefined();
    expect(phases(trusted)).toEqual(['resolve', 'connect', 'prelogin', 'tls']);
    expect(fact(trusted, 'probe_tls_version_info', { version: 'TLSv1.2' })).toBe(1);
    expect(fact(trusted, 'probe_tls_cert_not_after_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000);
  });

  test('encrypt asked of a server without encryption: encryption_mismatch', async () => {
    const p = await peer({ encryption: 'not_supported' });
    const plain = await probe(`127.0.0.1:${p.port}`);
    expect(plain.success).toBe(true);
    expect(fact(plain, 'probe_mssql_encryption_info', { mode: 'not_supported' })).toBe(1);
    const r = await probe(`127.0.0.1:${p.port}`, { encrypt: true });
    expect(r.failure).toMatchObject({ phase: 'prelogin', reason: 'encryption_mismatch' });
    expect(r.failure?.advice).toMatch(/certificate/);
  });
});

describe('login and queries', () => {
  test('good login: @@VERSION timed and reported', async () => {
    const p = await peer({ version: { major: 15, minor: 0, build: 4355, subbuild: 3 } });
    const r = await probe(`127.0.0.1:${p.port}`, creds);
    expect(r.failure).toBeUndefined();
    expect(phases(r)).toEqual(['resolve', 'connect', 'prelogin', 'login', 'query']);
    expect(fact(r, 'probe_mssql_query_success', { query: 'version' })).toBe(1);
    expect(fact(r, 'probe_mssql_query_duration_seconds', { query: 'version' })).toBeGreaterThan(0);
    expect(r.details?.versionString).toBe('Microsoft SQL Server 2019 - 15.0.4355.3 (X64)');
    expect(p.logins).toEqual(['monitor']);
    expect(p.batches).toContain('select @@version');
  });

  test('encryption required and encrypt: true: tls rung, then an encrypted login', async () => {
    const p = await peer({ encryption: 'required' });
    const r = await probe(`127.0.0.1:${p.port}`, { ...creds, encrypt: true, trust_server_certificate: true });
    expect(r.failure).toBeUndefined();
    expect(phases(r)).toEqual(['resolve', 'connect', 'prelogin', 'tls', 'login', 'query']);
  });

  test('encryption required but encrypt: false: encryption_mismatch before any login', async () => {
    const p = await peer({ encryption: 'required' });
    const r = await probe(`127.0.0.1:${p.port}`, creds);
    expect(r.failure).toMatchObject({ phase: 'prelogin', reason: 'encryption_mismatch' });
    expect(r.failure?.advice).toMatch(/encrypt: true/);
    expect(p.logins).toEqual([]);
  });

  test('an untrusted self-signed certificate fails the login rung with tls_error', async () => {
    const p = await peer({ encryption: 'off' });
    const r = await probe(`127.0.0.1:${p.port}`, { ...creds, encrypt: true });
    expect(r.failure).toMatchObject({ phase: 'tls', reason: 'tls_error' });
  });

  test('wrong password: auth_failed with the server error number in details, never the password', async () => {
    const p = await peer();
    const r = await probe(`127.0.0.1:${p.port}`, { username: 'monitor', password: new Secret('wrong-one') });
    expect(r.failure).toMatchObject({ phase: 'login', reason: 'auth_failed' });
    expect(r.failure?.message).toMatch(/Login failed for user 'monitor'.*18456/);
    expect(r.failure?.advice).toMatch(/user name and password/);
    expect(r.details?.serverError).toMatchObject({ number: 18456, state: 1, class: 14 });
    expect(JSON.stringify(r)).not.toContain('wrong-one');
  });

  test('NTLM (domain) login refused by a SQL-auth-only server: auth_failed 18452', async () => {
    const p = await peer();
    const r = await probe(`127.0.0.1:${p.port}`, { ...creds, domain: 'CORP' });
    expect(r.failure).toMatchObject({ phase: 'login', reason: 'auth_failed' });
    expect(r.details?.serverError).toMatchObject({ number: 18452 });
    expect(p.logins).toEqual(['(integrated)']);
  });

  test('custom queries become gauges; a failing or slow query is query_error and the others still run', async () => {
    const p = await peer({
      queries: {
        'select db, size_bytes from sizes': {
          columns: [
            { name: 'db', type: 'nvarchar' },
            { name: 'size_bytes', type: 'int' },
          ],
          rows: [
            ['master', 6291456],
            ['tempdb', 16777216],
          ],
        },
        'select count(*) as n from sys.sessions': { columns: [{ name: 'n', type: 'int' }], rows: [[7]] },
        'select 1/0': { error: { number: 8134, message: 'Divide by zero error encountered.' } },
        'waitfor delay': { delayMs: 1500, result: { columns: [{ name: 'n', type: 'int' }], rows: [[1]] } },
      },
    });
    const r = await probe(
      `127.0.0.1:${p.port}`,
      {
        ...creds,
        queries: [
          {
            name: 'mssql_db_size_bytes',
            help: 'Size of each database.',
            type: 'gauge',
            key_labels: ['db'],
            value_column: 'size_bytes',
            query: 'SELECT db, size_bytes FROM sizes',
            timeout: '2s',
          },
          {
            name: 'mssql_bad',
            help: 'Fails.',
            type: 'gauge',
            key_labels: [],
            value_column: 'x',
            query: 'select 1/0',
            timeout: '2s',
          },
          {
            name: 'mssql_slow',
            help: 'Too slow.',
            type: 'gauge',
            key_labels: [],
            value_column: 'n',
            query: 'waitfor delay',
            timeout: '200ms',
          },
          {
            name: 'mssql_sessions',
            help: 'Sessions.',
            type: 'gauge',
            key_labels: [],
            value_column: 'n',
            query: 'select count(*) as n from sys.sessions',
            timeout: '2s',
          },
        ],
      },
      5000,
    );
    expect(r.success).toBe(false);
    expect(r.failure).toMatchObject({ phase: 'query', reason: 'query_error' });
    expect(r.failure?.message).toMatch(/mssql_bad: Divide by zero/);
    expect(fact(r, 'mssql_db_size_bytes', { db: 'master' })).toBe(6291456);
    expect(fact(r, 'mssql_db_size_bytes', { db: 'tempdb' })).toBe(16777216);
    expect(fact(r, 'mssql_sessions')).toBe(7);
    expect(fact(r, 'probe_mssql_query_success', { query: 'mssql_db_size_bytes' })).toBe(1);
    expect(fact(r, 'probe_mssql_query_success', { query: 'mssql_bad' })).toBe(0);
    expect(fact(r, 'probe_mssql_query_success', { query: 'mssql_slow' })).toBe(0);
    expect(fact(r, 'probe_mssql_query_success', { query: 'mssql_sessions' })).toBe(1);
    expect(r.details?.customMetrics).toEqual([
      { name: 'mssql_db_size_bytes', help: 'Size of each database.', type: 'gauge' },
      { name: 'mssql_bad', help: 'Fails.', type: 'gauge' },
      { name: 'mssql_slow', help: 'Too slow.', type: 'gauge' },
      { name: 'mssql_sessions', help: 'Sessions.', type: 'gauge' },
    ]);
  });
});

describe('named instances through the Browser', () => {
  test('the Browser resolves the instance port', async () => {
    const p = await peer({ instanceName: 'SQLEXPRESS' });
    const b = await browser([{ name: 'SQLEXPRESS', tcpPort: p.port }]);
    const r = await probe('127.0.0.1', { instance: 'sqlexpress', browser_port: b.port });
    expect(r.failure).toBeUndefined();
    expect(phases(r)).toEqual(['resolve', 'browser', 'connect', 'prelogin']);
    expect(fact(r, 'probe_mssql_browser_port', { sql_instance: 'sqlexpress' })).toBe(p.port);
    expect(fact(r, 'probe_mssql_instance_hidden', { sql_instance: 'sqlexpress' })).toBe(0);
    expect(b.requests).toEqual(['ucast_inst sqlexpress']);
  });

  test('a hidden instance: no Browser answer, but the configured port speaks TDS', async () => {
    const p = await peer({ instanceName: 'SECRET' });
    const b = await browser([
      { name: 'SECRET', tcpPort: p.port, hidden: true },
      { name: 'OTHER', tcpPort: 1 },
    ]);
    const r = await probe(`127.0.0.1:${p.port}`, { instance: 'SECRET', browser_port: b.port });
    expect(r.failure).toBeUndefined();
    expect(fact(r, 'probe_mssql_instance_hidden', { sql_instance: 'SECRET' })).toBe(1);
    expect(fact(r, 'probe_mssql_browser_port', { sql_instance: 'SECRET' })).toBeUndefined();
    expect(b.requests).toEqual(['ucast_inst SECRET', 'ucast_ex']);
  });

  test('an unknown instance without a port: instance_not_found naming what the Browser lists', async () => {
    const b = await browser([
      { name: 'SALES', tcpPort: 1 },
      { name: 'HR', tcpPort: 2 },
    ]);
    const r = await probe('127.0.0.1', { instance: 'MISSING', browser_port: b.port });
    expect(r.failure).toMatchObject({ phase: 'browser', reason: 'instance_not_found' });
    expect(r.failure?.message).toMatch(/lists SALES, HR/);
  });

  test('no Browser at all: browser_no_answer', async () => {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
    const port = s.address().port;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    const r = await probe('127.0.0.1', { instance: 'SQLEXPRESS', browser_port: port });
    expect(r.failure).toMatchObject({ phase: 'browser', reason: 'browser_no_answer' });
    expect(r.failure?.advice).toMatch(/SQL Server Browser service running/);
  });

  test('the Browser points at a port owned by another instance: INSTOPT says so', async () => {
    const p = await peer({ instanceName: 'SALES' });
    const b = await browser([{ name: 'HR', tcpPort: p.port }]);
    const r = await probe('127.0.0.1', { instance: 'HR', browser_port: b.port });
    expect(r.failure).toMatchObject({ phase: 'prelogin', reason: 'instance_not_found' });
  });
});

describe('wrong service or no service', () => {
  const bannerServer = async (banner: string): Promise<number> => {
    const server = net.createServer((s) => {
      s.on('error', () => undefined);
      s.resume(); // read (and drop) what the prober sends, as a real service would
      s.end(banner);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
    return (server.address() as net.AddressInfo).port;
  };

  test('an SSH banner on the port: not_tds', async () => {
    const port = await bannerServer('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n');
    const r = await probe(`127.0.0.1:${port}`);
    expect(r.failure).toMatchObject({ phase: 'prelogin', reason: 'not_tds' });
    expect(r.failure?.message).toContain('SSH-2.0-OpenSSH_9.2p1');
    expect(r.failure?.advice).toMatch(/Another service answers on this port/);
  });

  test('an HTTP server on the port: not_tds', async () => {
    const server = http.createServer((_req, res) => res.end('hello'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
    const r = await probe(`127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    expect(r.failure).toMatchObject({ phase: 'prelogin', reason: 'not_tds' });
    expect(r.failure?.message).toContain('HTTP/1.1 400');
  });

  test('a closed port: refused, with the operator checklist', async () => {
    const port = await closedPort();
    const r = await probe(`127.0.0.1:${port}`);
    expect(r.failure).toMatchObject({ phase: 'connect', reason: 'refused' });
    expect(r.failure?.advice).toMatch(/SQL Server service running.*TCP\/IP enabled.*2433.*Windows firewall/);
  });
});

describe('servers that stop answering', () => {
  test('SQL Server 2000 before SP3 dropping the login: version_refuses_remote with the SP advice', async () => {
    const p = await peer({ version: { major: 8, minor: 0, build: 534, subbuild: 0 }, dropLogin: true });
    const r = await probe(`127.0.0.1:${p.port}`, creds);
    expect(r.failure).toMatchObject({ phase: 'login', reason: 'version_refuses_remote' });
    expect(r.failure?.advice).toMatch(/remote connections are refused until Service Pack 3/);
  });

  test('a current server dropping the login: reset', async () => {
    const p = await peer({ dropLogin: true });
    const r = await probe(`127.0.0.1:${p.port}`, creds);
    expect(r.failure).toMatchObject({ phase: 'login', reason: 'reset' });
  });

  test('a listener that never answers the PRELOGIN: no_response at prelogin, not the firewall advice', async () => {
    const held: net.Socket[] = [];
    const server = net.createServer((s) => {
      held.push(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(
      () =>
        new Promise((resolve) => {
          for (const s of held) s.destroy();
          server.close(() => resolve());
        }),
    );
    const r = await probe(`127.0.0.1:${(server.address() as net.AddressInfo).port}`, {}, 500);
    expect(r.failure).toMatchObject({ phase: 'prelogin', reason: 'no_response' });
    expect(r.failure?.advice).toMatch(/network path is fine/);
    expect(r.failure?.advice).not.toMatch(/firewall/);
  });

  test('a listener that closes at once: reset at prelogin', async () => {
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
    const r = await probe(`127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    expect(r.failure).toMatchObject({ phase: 'prelogin', reason: 'reset' });
    expect(r.failure?.advice).toMatch(/accepts connections but drops them/);
  });
});

describe('deadlines and local trouble', () => {
  test('an unreadable ca_file fails the rung that needs it, not the probe', async () => {
    const p = await peer();
    const r = await probe(`127.0.0.1:${p.port}`, { ...creds, ca_file: '/nonexistent/ca.pem' });
    expect(r.failure).toMatchObject({ phase: 'login', reason: 'internal_error' });
    expect(r.failure?.message).toMatch(/ENOENT/);
  });

  test('a server that never answers LOGIN7: stalled at login, within the probe', async () => {
    const p = await peer({ stallLogin: true });
    const r = await probe(`127.0.0.1:${p.port}`, creds, 800);
    expect(r.failure).toMatchObject({
      phase: 'login',
      reason: 'stalled',
      message: 'LOGIN7 got no answer before the deadline',
    });
    expect(phases(r)).toEqual(['resolve', 'connect', 'prelogin', 'login']);
  });
});

describe('TDS 8 strict encryption', () => {
  const caFile = (): string => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mssql-ca-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'ca.pem');
    writeFileSync(file, selfSignedCert().cert);
    return file;
  };

  test('encrypt: strict: TLS first (ALPN tds/8.0), PRELOGIN inside it, verified certificate, login', async () => {
    const p = await peer({ encryption: 'strict', version: { major: 16, minor: 0, build: 4135, subbuild: 4 } });
    const r = await probe(`127.0.0.1:${p.port}`, { ...creds, encrypt: 'strict', ca_file: caFile() });
    expect(r.failure).toBeUndefined();
    expect(phases(r)).toEqual(['resolve', 'connect', 'tls', 'prelogin', 'login', 'query']);
    expect(fact(r, 'probe_mssql_encryption_info', { mode: 'strict' })).toBe(1);
    expect(fact(r, 'probe_tls_version_info', { version: 'TLSv1.3' })).toBe(1);
    expect(
      fact(r, 'probe_mssql_version_info', { version: '16.0.4135.4', product: 'SQL Server 2022', level: 'CU14' }),
    ).toBe(1);
  });

  test('a strict server probed the TDS 7 way: reset at prelogin, advice names encrypt: strict', async () => {
    const p = await peer({ encryption: 'strict' });
    const r = await probe(`127.0.0.1:${p.port}`);
    expect(r.failure).toMatchObject({ phase: 'prelogin', reason: 'reset' });
    expect(r.failure?.advice).toMatch(/encrypt: strict/);
  });

  test('encrypt: strict against a TDS 7 server: tls_error with the advice to use encrypt: true', async () => {
    const p = await peer({ encryption: 'required' });
    const r = await probe(`127.0.0.1:${p.port}`, { encrypt: 'strict', ca_file: caFile() });
    expect(r.failure).toMatchObject({ phase: 'tls', reason: 'tls_error' });
    expect(r.failure?.advice).toMatch(/encrypt: true/);
  });
});
