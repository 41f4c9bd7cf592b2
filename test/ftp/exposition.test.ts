// The FTP prober's series as the agent renders them: every declared family, real results from
// vsftpd (success, explicit FTPS) and a failure, accepted by `promtool check metrics` without
// lint findings.
import { spawnSync } from 'node:child_process';
import { COMMON_METRICS, FamilyRegistry, renderResult, type Rendered } from '../../agent/exposition';
import { ftpProber } from '../../exporters/ftp';
import type { ProbeResult } from '../../exporters/types';
import { CANARY_NAME, makeFixture, type Fixture, type FtpPeer } from '../peers/ftp/common';
import { startVsftpd, vsftpdUser } from '../peers/ftp/vsftpd';
import { probeFtp } from './probe';
import { assertExposition } from '../helpers/exposition-check';

let fx: Fixture;
let peer: FtpPeer;
beforeAll(async () => {
  fx = makeFixture('expo');
  peer = await startVsftpd(fx, { tls: 'explicit', pasvAddress: '127.0.0.2' });
});
afterAll(async () => {
  await peer?.stop();
  fx?.cleanup();
});

/** Joins rendered results family by family, with HELP and TYPE once per family. */
function exposition(families: FamilyRegistry, rendered: Rendered[]): string {
  let text = '';
  for (let i = 0; i < families.size; i++) {
    let body = '';
    for (const r of rendered) {
      for (let k = 0; k < r.count; k++) {
        if (r.fams[k] === i) body += r.buf.subarray(r.bounds[k], r.bounds[k + 1]).toString('utf8');
      }
    }
    if (body !== '') text += families.header(i) + body;
  }
  return text;
}

test('promtool accepts the series of successful and failed FTP probes', async () => {
  const user = vsftpdUser();
  const address = `${peer.host}:${peer.port}`;
  const results: [string, ProbeResult][] = [
    [
      'tls',
      await probeFtp(address, {
        // Verified against its own self-signed certificate, so the verified-chain family is there too.
        username: user.name,
        password: user.password,
        tls: 'explicit',
        tls_config: { ca_file: fx.certFile },
        retrieve: CANARY_NAME,
        data_channel: ['epsv', 'pasv', 'active'],
        pasv_mismatch: 'follow_control_address',
      }),
    ],
    ['mismatch', await probeFtp(address, { data_channel: ['epsv', 'pasv'] })],
    ['badpass', await probeFtp(address, { username: user.name, password: 'wrong' })],
  ];
  expect(results.map(([, r]) => r.success)).toEqual([true, false, false]);

  const families = new FamilyRegistry([...COMMON_METRICS, ...ftpProber.metrics]);
  const rendered = results.map(([name, r]) =>
    renderResult(families, `target="${name}",module="ftp"`, ftpProber.phases, r, Date.now()),
  );
  const text = exposition(families, rendered);
  assertExposition(text);
  for (const family of ftpProber.metrics) expect(text).toContain(`# TYPE ${family.name} gauge`);
  expect(text).toContain('probe_ftp_pasv_address_mismatch{target="mismatch",module="ftp"} 1');
  expect(text).toContain('probe_failure_info{target="badpass",module="ftp",phase="login",reason="auth_failed"} 1');
  // The login failed: no mode was tested and no PASV reply parsed, so none of them is a series
  // (a 0 would fire PortprobeFtpDataChannelBroken for modes nobody tried).
  expect(text).not.toMatch(
    /^probe_ftp_(data_channel_success|data_duration_seconds|transfer_bytes|pasv_address_mismatch)\{target="badpass"/m,
  );
  expect(text).toContain(`probe_tls_cert_not_after_timestamp_seconds{target="tls",module="ftp"} ${fx.notAfter}`);
  expect(text).toContain(`probe_ssl_earliest_cert_expiry{target="tls",module="ftp"} ${fx.notAfter}`);
  expect(text).toContain(`probe_ssl_last_chain_expiry_timestamp_seconds{target="tls",module="ftp"} ${fx.notAfter}`);
  expect(text).not.toContain(user.password);

  if (process.env.SHOW_EXPOSITION) process.stdout.write(text);
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  expect(check.stdout + check.stderr).toBe('');
  expect(check.status).toBe(0);
});
