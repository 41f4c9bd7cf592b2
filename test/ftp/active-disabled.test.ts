// Servers configured to refuse active mode: the verdict is active_disabled with the server-side
// remedy, never a firewall on the agent's side; passive modes of the same probe still pass.
// pure-ftpd is absent: it has no setting that refuses PORT/EPRT from the client's own address.
import { makeFixture, type Fixture, type FtpPeer, type PeerOptions, type PeerUser } from '../peers/ftp/common';
import { startVsftpd, vsftpdUser } from '../peers/ftp/vsftpd';
import { startProftpd, proftpdUser } from '../peers/ftp/proftpd';
import { startPyftpdlib, pyftpdlibUser } from '../peers/ftp/pyftpdlib';
import { fact, probeFtp } from './probe';

interface ServerDef {
  name: string;
  user(): PeerUser;
  start(fx: Fixture, opts: PeerOptions, user: PeerUser): Promise<FtpPeer>;
  /** The reply the server gives to PORT when active mode is off. */
  refusal: RegExp;
}

const SERVERS: ServerDef[] = [
  {
    name: 'vsftpd (port_enable=NO)',
    user: vsftpdUser,
    start: (fx, o) => startVsftpd(fx, o),
    refusal: /^PORT: 550 Permission denied\./,
  },
  {
    name: 'proftpd (<Limit PORT EPRT> DenyAll)',
    user: proftpdUser,
    start: startProftpd,
    refusal: /^PORT: 501 PORT: Operation not permitted/,
  },
  {
    name: 'pyftpdlib (PORT and EPRT left out of proto_cmds)',
    user: pyftpdlibUser,
    start: startPyftpdlib,
    refusal: /^PORT: 500 Command "PORT" not understood/,
  },
];

describe.each(SERVERS)('$name', (server) => {
  let fx: Fixture;
  let peer: FtpPeer;
  let user: PeerUser;
  beforeAll(async () => {
    fx = makeFixture('active-off');
    user = server.user();
    peer = await server.start(fx, { tls: 'off', activeDisabled: true }, user);
  });
  afterAll(async () => {
    await peer?.stop();
    fx?.cleanup();
  });

  test('PORT refused → active_disabled with the server-side remedy; EPSV still passes', async () => {
    const r = await probeFtp(`${peer.host}:${peer.port}`, {
      username: user.name,
      password: user.password,
      data_channel: ['active', 'epsv'],
    });
    expect(r.failure).toMatchObject({ phase: 'data_active', reason: 'active_disabled' });
    expect(r.failure?.message).toMatch(server.refusal);
    expect(r.failure?.advice).toMatch(/^The server refuses active mode \(PORT\/EPRT\): enable it on the server/);
    expect(r.failure?.advice).not.toMatch(/firewall/i);
    expect(fact(r, 'probe_ftp_data_channel_success', { mode: 'active' })).toBe(0);
    expect(fact(r, 'probe_ftp_data_channel_success', { mode: 'epsv' })).toBe(1);
  });
});
