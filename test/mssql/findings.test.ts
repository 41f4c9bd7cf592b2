// What the SQL Server prober tells a person beyond pass or fail: findings with stable codes
// (mssql_patch_advisory, mssql_hidden_instance, mssql_browser_port, mssql_encryption,
// tls_cert_expiry, mssql_certificate_untrusted), checked against the TDS peer and the Browser peer.
// Also the decision for Force Encryption with a self-signed certificate: a credential-less
// module succeeds (the version is known from PRELOGIN) with a warning; a login module fails.
import dgram from 'node:dgram';
import { mssqlProber, type MssqlSettings } from '../../exporters/mssql';
import { Secret } from '../../exporters/secret';
import type { Finding, ProbeResult } from '../../exporters/types';
import { runProber } from '../helpers/context';
import { cleanupsAfterEach, tdsPeers } from '../helpers/mssql';
import { startBrowserPeer } from '../peers/tds/browser';
import { selfSignedCertExpiringIn } from '../peers/tds/cert';

const cleanups = cleanupsAfterEach();
const peer = tdsPeers(cleanups);

const probe = (address: string, s: Partial<MssqlSettings> = {}): Promise<ProbeResult> =>
  runProber(mssqlProber, address, s, 3000);
const finding = (r: ProbeResult, code: string): Finding | undefined => r.findings?.find((f) => f.code === code);
const creds = { username: 'monitor', password: new Secret('s3cr3t-pw') };
const sql2000 = (build: number) => ({ version: { major: 8, minor: 0, build, subbuild: 0 } });

describe('mssql_patch_advisory: the advisory text the prober computes, with a severity', () => {
  test.each([
    [
      194,
      'critical',
      /SQL Server 2000 build 8\.00\.194 is below 8\.00\.760: remote connections are refused until Service Pack 3/,
      /Service Pack 4/,
    ],
    [534, 'critical', /below 8\.00\.760/, /remote clients cannot log in/],
    [
      760,
      'warning',
      /SQL Server 2000 build 8\.00\.760 is below 8\.00\.2039: apply Service Pack 4/,
      /Service Pack 4 \(8\.00\.2039\)/,
    ],
  ])('SQL Server 2000 build 8.00.%d: %s', async (build, severity, message, advice) => {
    const p = await peer(sql2000(build));
    const r = await probe(`127.0.0.1:${p.port}`);
    expect(r.success).toBe(true);
    const f = finding(r, 'mssql_patch_advisory');
    expect(f).toMatchObject({ severity });
    expect(f?.message).toMatch(message);
    expect(f?.advice).toMatch(advice);
  });

  test('SP4 (8.00.2039) and a current build: no advisory', async () => {
    for (const o of [sql2000(2039), {}]) {
      const p = await peer(o);
      expect(finding(await probe(`127.0.0.1:${p.port}`), 'mssql_patch_advisory')).toBeUndefined();
    }
  });

  test('below the module min_build: warning naming the configured minimum', async () => {
    const p = await peer({ version: { major: 16, minor: 0, build: 4135, subbuild: 4 } });
    const r = await probe(`127.0.0.1:${p.port}`, { min_build: { '16': '16.0.4145' } });
    expect(finding(r, 'mssql_patch_advisory')).toMatchObject({ severity: 'warning' });
    expect(finding(r, 'mssql_patch_advisory')?.message).toMatch(/below the configured minimum 16\.0\.4145/);
  });

  test('the finding survives a failed login (a refused SQL Server 2000 before SP3)', async () => {
    const p = await peer({ ...sql2000(534), dropLogin: true });
    const r = await probe(`127.0.0.1:${p.port}`, creds);
    expect(r.failure).toMatchObject({ phase: 'login', reason: 'version_refuses_remote' });
    expect(finding(r, 'mssql_patch_advisory')).toMatchObject({ severity: 'critical' });
  });
});

describe('mssql_encryption', () => {
  test.each([
    ['off', 'off'],
    ['not_supported', 'not_supported'],
  ] as const)('server %s: info finding "encryption %s"', async (encryption, mode) => {
    const p = await peer({ encryption });
    const r = await probe(`127.0.0.1:${p.port}`);
    expect(finding(r, 'mssql_encryption')).toMatchObject({ severity: 'info' });
    expect(finding(r, 'mssql_encryption')?.message).toMatch(new RegExp(`^encryption ${mode}:`));
  });

  test('Force Encryption: "encryption required"', async () => {
    const p = await peer({ encryption: 'required' });
    const r = await probe(`127.0.0.1:${p.port}`, { trust_server_certificate: true });
    expect(finding(r, 'mssql_encryption')?.message).toMatch(/^encryption required: forced by the server/);
  });
});

describe('Browser findings', () => {
  test('mssql_browser_port: the Browser reported instance X on port N', async () => {
    const p = await peer({ instanceName: 'SQLEXPRESS' });
    const b = await startBrowserPeer({ instances: [{ name: 'SQLEXPRESS', tcpPort: p.port }] });
    cleanups.push(() => b.close());
    const r = await probe('127.0.0.1', { instance: 'SQLEXPRESS', browser_port: b.port });
    expect(r.success).toBe(true);
    expect(finding(r, 'mssql_browser_port')).toMatchObject({ severity: 'info' });
    expect(finding(r, 'mssql_browser_port')?.message).toMatch(new RegExp(`instance SQLEXPRESS on TCP port ${p.port}`));
    expect(finding(r, 'mssql_hidden_instance')).toBeUndefined();
  });

  test('mssql_hidden_instance (info): the Browser answers without the instance; the probe went to the port in the address', async () => {
    const p = await peer({ instanceName: 'HIDDEN' });
    const b = await startBrowserPeer({
      instances: [
        { name: 'OTHER', tcpPort: 1 },
        { name: 'HIDDEN', tcpPort: p.port, hidden: true },
      ],
    });
    cleanups.push(() => b.close());
    const r = await probe(`127.0.0.1:${p.port}`, { instance: 'HIDDEN', browser_port: b.port });
    expect(r.success).toBe(true);
    expect(finding(r, 'mssql_hidden_instance')).toMatchObject({ severity: 'info' });
    expect(finding(r, 'mssql_hidden_instance')?.message).toMatch(
      new RegExp(`does not list HIDDEN.*probed the port in the target address, ${p.port}`),
    );
  });

  test('mssql_hidden_instance (warning): no Browser answer at all, probed the fallback port', async () => {
    const p = await peer({ instanceName: 'HIDDEN' });
    const silent = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise((resolve) => silent.close(() => resolve())));
    const r = await probe(`127.0.0.1:${p.port}`, { instance: 'HIDDEN', browser_port: silent.address().port });
    expect(r.success).toBe(true);
    expect(finding(r, 'mssql_hidden_instance')).toMatchObject({ severity: 'warning' });
  });
});

describe('tls_cert_expiry where the certificate is seen', () => {
  test('a certificate expiring in 5 days: warning', async () => {
    const p = await peer({ encryption: 'required', certificate: selfSignedCertExpiringIn(5) });
    const r = await probe(`127.0.0.1:${p.port}`, { trust_server_certificate: true });
    expect(r.success).toBe(true);
    expect(finding(r, 'tls_cert_expiry')).toMatchObject({ severity: 'warning' });
    expect(finding(r, 'tls_cert_expiry')?.message).toMatch(/in 5 day\(s\)/);
  });

  test('an expired certificate: critical (seen without credentials, where it is not enforced)', async () => {
    const p = await peer({ encryption: 'required', certificate: selfSignedCertExpiringIn(-1) });
    const r = await probe(`127.0.0.1:${p.port}`);
    expect(r.success).toBe(true);
    expect(finding(r, 'tls_cert_expiry')).toMatchObject({ severity: 'critical' });
    expect(finding(r, 'mssql_certificate_untrusted')?.message).toMatch(/CERT_HAS_EXPIRED/);
  });

  test('a certificate valid for 30 days: no expiry finding', async () => {
    const p = await peer({ encryption: 'required' });
    const r = await probe(`127.0.0.1:${p.port}`, { trust_server_certificate: true });
    expect(finding(r, 'tls_cert_expiry')).toBeUndefined();
  });
});

describe('Force Encryption with a self-signed certificate', () => {
  test('without credentials: success, version exported, warning mssql_certificate_untrusted', async () => {
    const p = await peer({ encryption: 'required', version: { major: 15, minor: 0, build: 4355, subbuild: 3 } });
    const r = await probe(`127.0.0.1:${p.port}`);
    expect(r.failure).toBeUndefined();
    expect(r.success).toBe(true);
    expect(r.phases.map((x) => x.phase)).toEqual(['resolve', 'connect', 'prelogin', 'tls']);
    expect(r.facts).toContainEqual({
      metric: 'probe_mssql_version_info',
      value: 1,
      labels: { version: '15.0.4355.3', product: 'SQL Server 2019', level: 'CU25' },
    });
    expect(r.facts).toContainEqual({ metric: 'probe_mssql_encryption_info', value: 1, labels: { mode: 'required' } });
    const f = finding(r, 'mssql_certificate_untrusted');
    expect(f).toMatchObject({ severity: 'warning' });
    expect(f?.message).toMatch(/self-signed/i);
    expect(f?.advice).toMatch(/Modules that log in fail with tls_error/);
    expect(p.logins).toEqual([]);
  });

  test('with trust_server_certificate: no untrusted finding', async () => {
    const p = await peer({ encryption: 'required' });
    const r = await probe(`127.0.0.1:${p.port}`, { trust_server_certificate: true });
    expect(r.success).toBe(true);
    expect(finding(r, 'mssql_certificate_untrusted')).toBeUndefined();
  });

  test('a module that logs in still fails on the untrusted certificate, before sending LOGIN7', async () => {
    const p = await peer({ encryption: 'required' });
    const r = await probe(`127.0.0.1:${p.port}`, { ...creds, encrypt: true });
    expect(r.failure).toMatchObject({ phase: 'tls', reason: 'tls_error' });
    expect(r.failure?.advice).toMatch(/trust_server_certificate/);
    expect(p.logins).toEqual([]);
  });
});
