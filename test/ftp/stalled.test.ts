// A real server that greets and then hangs: vsftpd whose PAM authentication never finishes (as
// when PAM waits on a directory server that is down). The probe must say the service stalled
// after the greeting, not blame the network; anonymous logins, which skip PAM, still pass.
import { makeFixture, type Fixture, type FtpPeer } from '../peers/ftp/common';
import { startVsftpd, vsftpdUser } from '../peers/ftp/vsftpd';
import { fact, probeFtp } from './probe';

let fx: Fixture;
let peer: FtpPeer;

beforeAll(async () => {
  fx = makeFixture('stalled');
  peer = await startVsftpd(fx, { tls: 'off', hungLogin: true });
});
afterAll(async () => {
  await peer?.stop();
  fx?.cleanup();
});

test('PASS never answered → stalled at login, with advice about the service, not the network', async () => {
  const user = vsftpdUser();
  const r = await probeFtp(`${peer.host}:${peer.port}`, { username: user.name, password: user.password }, 2);
  expect(r.failure).toMatchObject({ phase: 'login', reason: 'stalled' });
  expect(r.failure?.message).toMatch(/^PASS: no reply before the deadline/);
  expect(r.failure?.advice).toMatch(
    /^The FTP server answered the greeting and earlier commands, then stopped answering/,
  );
  expect(r.failure?.advice).not.toMatch(/firewall|ping|traceroute/i);
  expect(fact(r, 'probe_ftp_status_code', { phase: 'login' })).toBe(331);
  expect(fact(r, 'probe_ftp_data_channel_success', { mode: 'epsv' })).toBeUndefined();
});

test('the same server serves anonymous logins (no PAM): only the hung rung is blamed', async () => {
  const r = await probeFtp(`${peer.host}:${peer.port}`, {}, 5);
  expect(r.success).toBe(true);
});
