// tls_cert_expiry is found wherever a TLS rung sees the server's certificate: the tcp prober's
// tls module and the FTP TLS rung (the SQL Server prober's is tested in test/mssql/findings).
import tls from 'node:tls';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tcpProber } from '../../exporters/tcp/prober';
import { ftpProber } from '../../exporters/ftp/prober';
import type { ProbeResult } from '../../exporters/types';
import { runProber } from '../helpers/context';
import { selfSignedCertExpiringIn, type CertPair } from '../peers/tds/cert';
import { makeFixture } from '../peers/ftp/common';
import { pyftpdlibUser, startPyftpdlib } from '../peers/ftp/pyftpdlib';

const finding = (r: ProbeResult, code: string) => r.findings?.find((f) => f.code === code);

async function tlsServer(pair: CertPair): Promise<{ port: number; close: () => void }> {
  const srv = tls.createServer({ cert: pair.cert, key: pair.key }, (s) => s.end('hello\n'));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as AddressInfo).port, close: () => srv.close() };
}

describe('tcp prober, tls: true', () => {
  it.each([
    [5, 'warning', /the server certificate expires on .* in 5 day\(s\)/],
    [-1, 'critical', /the server certificate expired on /],
  ])('a certificate %i day(s) from expiry: %s finding, and the probe still passes', async (days, severity, message) => {
    const s = await tlsServer(selfSignedCertExpiringIn(days));
    try {
      const r = await runProber(tcpProber, `127.0.0.1:${s.port}`, {
        tls: true,
        tls_config: { insecure_skip_verify: true },
      });
      expect(r.success).toBe(true);
      expect(finding(r, 'tls_cert_expiry')).toMatchObject({ severity, message: expect.stringMatching(message) });
      expect(finding(r, 'tls_cert_expiry')?.advice).toMatch(/^Renew the server certificate/);
    } finally {
      s.close();
    }
  });

  it('a certificate with 30 days left: no finding', async () => {
    const s = await tlsServer(selfSignedCertExpiringIn(30));
    try {
      const r = await runProber(tcpProber, `127.0.0.1:${s.port}`, {
        tls: true,
        tls_config: { insecure_skip_verify: true },
      });
      expect(r.success).toBe(true);
      expect(r.findings ?? []).toEqual([]);
    } finally {
      s.close();
    }
  });
});

it('ftp, tls: explicit against pyftpdlib serving a certificate 5 days from expiry: warning finding', async () => {
  const fx = makeFixture('certexp');
  const pair = selfSignedCertExpiringIn(5);
  writeFileSync(fx.certFile, pair.cert);
  writeFileSync(fx.keyFile, pair.key, { mode: 0o600 });
  const user = pyftpdlibUser();
  const peer = await startPyftpdlib(fx, { tls: 'explicit' }, user);
  try {
    const r = await runProber(
      ftpProber,
      `127.0.0.1:${peer.port}`,
      { tls: 'explicit', tls_config: { insecure_skip_verify: true }, data_channel: ['pasv'] },
      5000,
    );
    expect(r.failure).toBeUndefined();
    expect(finding(r, 'tls_cert_expiry')).toMatchObject({
      severity: 'warning',
      message: expect.stringMatching(/the FTP server certificate expires on .* in 5 day\(s\)/),
    });
  } finally {
    await peer.stop();
    fx.cleanup();
  }
});
