// The FTP prober against five real servers on 127.0.0.1: anonymous and user logins, every
// data-channel mode, explicit (and where supported implicit) FTPS with a certificate made by
// openssl, wrong passwords, a PASV address pointing elsewhere (127.0.0.2), TLS-required
// servers probed in clear text, and a port with nothing listening.
import net from 'node:net';
import {
  CANARY_BODY,
  CANARY_NAME,
  freePort,
  makeFixture,
  type Fixture,
  type FtpPeer,
  type PeerOptions,
  type PeerUser,
} from '../peers/ftp/common';
import { startVsftpd, vsftpdUser } from '../peers/ftp/vsftpd';
import { startProftpd, proftpdUser } from '../peers/ftp/proftpd';
import { startPureftpd, pureftpdUser } from '../peers/ftp/pureftpd';
import { startPyftpdlib, pyftpdlibUser } from '../peers/ftp/pyftpdlib';
import { startFtpSrv, ftpsrvUser } from '../peers/ftp/ftpsrv';
import { fact, phaseNames, probeFtp } from './probe';

interface ServerDef {
  name: string;
  user(): PeerUser;
  start(fx: Fixture, opts: PeerOptions, user: PeerUser): Promise<FtpPeer>;
  implicitTls: boolean;
}

const SERVERS: ServerDef[] = [
  { name: 'vsftpd', user: vsftpdUser, start: (fx, o) => startVsftpd(fx, o), implicitTls: true },
  { name: 'proftpd', user: proftpdUser, start: startProftpd, implicitTls: true },
  { name: 'pure-ftpd', user: pureftpdUser, start: startPureftpd, implicitTls: false },
  { name: 'pyftpdlib', user: pyftpdlibUser, start: startPyftpdlib, implicitTls: false },
  { name: 'ftp-srv', user: ftpsrvUser, start: startFtpSrv, implicitTls: true },
];

const ALL_MODES = ['epsv', 'pasv', 'active'] as const;
const INSECURE = { insecure_skip_verify: true };

/** Records the host of every outgoing TCP connection made while `fn` runs. */
async function connectionsDuring<T>(fn: () => Promise<T>): Promise<{ value: T; hosts: string[] }> {
  const hosts: string[] = [];
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called below on the socket the spy receives
  const original = net.Socket.prototype.connect;
  const spy = jest.spyOn(net.Socket.prototype, 'connect').mockImplementation(function (
    this: net.Socket,
    ...args: unknown[]
  ) {
    const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
    if (first && typeof first === 'object' && 'host' in first) hosts.push(String(first.host));
    else if (typeof args[1] === 'string') hosts.push(args[1]);
    return (original as (...a: unknown[]) => net.Socket).apply(this, args);
  });
  try {
    return { value: await fn(), hosts };
  } finally {
    spy.mockRestore();
  }
}

describe.each(SERVERS)('$name', (server) => {
  let fx: Fixture;
  let user: PeerUser;
  let peer: FtpPeer;
  let address: string;

  beforeAll(async () => {
    fx = makeFixture(server.name);
    user = server.user();
    peer = await server.start(fx, { tls: 'explicit' }, user);
    address = `${peer.host}:${peer.port}`;
  });
  afterAll(async () => {
    await peer?.stop();
    fx?.cleanup();
  });

  test('anonymous login and LIST over EPSV, PASV and active', async () => {
    const r = await probeFtp(address, { data_channel: [...ALL_MODES] });
    expect(r.success).toBe(true);
    expect(phaseNames(r)).toEqual([
      'resolve',
      'connect',
      'banner',
      'login',
      'data_epsv',
      'data_pasv',
      'data_active',
      'quit',
    ]);
    expect(fact(r, 'probe_ftp_status_code', { phase: 'banner' })).toBe(220);
    expect(fact(r, 'probe_ftp_status_code', { phase: 'login' })).toBe(230);
    expect(fact(r, 'probe_ftp_status_code', { phase: 'quit' })).toBe(221);
    for (const mode of ALL_MODES) {
      expect(fact(r, 'probe_ftp_data_channel_success', { mode })).toBe(1);
      expect([226, 250]).toContain(fact(r, 'probe_ftp_status_code', { phase: `data_${mode}` }));
    }
    expect(fact(r, 'probe_ftp_pasv_address_mismatch')).toBe(0);
    const info = r.facts.find((f) => f.metric === 'probe_ftp_server_info');
    expect(info?.value).toBe(1);
    expect(info?.labels?.banner.length).toBeGreaterThan(0);
    expect(info?.labels?.banner.length).toBeLessThanOrEqual(128);
    expect(r.ipProtocol).toBe(4);
  });

  test('user login and RETR of the canary in every mode, clear text', async () => {
    const r = await probeFtp(address, {
      username: user.name,
      password: user.password,
      retrieve: CANARY_NAME,
      data_channel: [...ALL_MODES],
    });
    expect(r.success).toBe(true);
    for (const mode of ALL_MODES) {
      expect(fact(r, 'probe_ftp_transfer_bytes', { mode })).toBe(CANARY_BODY.length);
      expect(fact(r, 'probe_ftp_data_duration_seconds', { mode })).toBeGreaterThan(0);
    }
    // The password never reaches the debug log.
    expect(JSON.stringify(r)).not.toContain(user.password);
  });

  test('explicit FTPS: AUTH TLS, protected data in every mode, certificate facts', async () => {
    const r = await probeFtp(address, {
      username: user.name,
      password: user.password,
      retrieve: CANARY_NAME,
      tls: 'explicit',
      tls_config: INSECURE,
      data_channel: [...ALL_MODES],
    });
    expect(r.success).toBe(true);
    expect(phaseNames(r)).toContain('tls');
    expect(fact(r, 'probe_tls_cert_not_after_timestamp_seconds')).toBe(fx.notAfter);
    expect(r.facts.find((f) => f.metric === 'probe_tls_version_info')?.labels?.version).toMatch(/^TLSv1\.[23]$/);
    for (const mode of ALL_MODES) expect(fact(r, 'probe_ftp_transfer_bytes', { mode })).toBe(CANARY_BODY.length);
  });

  test('explicit FTPS with certificate verification against the test CA', async () => {
    const r = await probeFtp(address, {
      tls: 'explicit',
      tls_config: { ca_file: fx.certFile },
      data_channel: ['epsv'],
    });
    expect(r.success).toBe(true);
  });

  test('self-signed certificate without trust → tls_error at tls', async () => {
    const r = await probeFtp(address, { tls: 'explicit', data_channel: ['epsv'] });
    expect(r.failure).toMatchObject({ phase: 'tls', reason: 'tls_error' });
  });

  test('wrong password → auth_failed at login', async () => {
    // pure-ftpd answers a wrong password only after a deliberate delay of several seconds.
    const r = await probeFtp(address, { username: user.name, password: `${user.password}-wrong` }, 20);
    expect(r.success).toBe(false);
    expect(r.failure).toMatchObject({ phase: 'login', reason: 'auth_failed' });
    expect(r.failure?.advice).toBeTruthy();
    expect(fact(r, 'probe_ftp_status_code', { phase: 'login' })).toBe(530);
    // No mode was tested: none is exported as failed, and no PASV reply means no mismatch gauge.
    expect(fact(r, 'probe_ftp_data_channel_success', { mode: 'epsv' })).toBeUndefined();
    expect(fact(r, 'probe_ftp_data_channel_success', { mode: 'pasv' })).toBeUndefined();
    expect(fact(r, 'probe_ftp_pasv_address_mismatch')).toBeUndefined();
  }, 30000);

  describe('advertising 127.0.0.2 in PASV replies', () => {
    let masq: FtpPeer;
    let masqAddress: string;
    beforeAll(async () => {
      masq = await server.start(fx, { tls: 'off', pasvAddress: '127.0.0.2' }, user);
      masqAddress = `${masq.host}:${masq.port}`;
    });
    afterAll(async () => {
      await masq?.stop();
    });

    test('fail: mismatch reported, nothing connects to the advertised address, EPSV still works', async () => {
      const { value: r, hosts } = await connectionsDuring(() =>
        probeFtp(masqAddress, { data_channel: ['epsv', 'pasv'] }),
      );
      expect(r.success).toBe(false);
      expect(r.failure).toMatchObject({ phase: 'data_pasv', reason: 'pasv_address_mismatch' });
      expect(r.failure?.message).toContain('advertises 127.0.0.2:');
      expect(r.failure?.message).toContain('(a loopback address)');
      expect(fact(r, 'probe_ftp_pasv_address_mismatch')).toBe(1);
      expect(fact(r, 'probe_ftp_data_channel_success', { mode: 'epsv' })).toBe(1);
      expect(fact(r, 'probe_ftp_data_channel_success', { mode: 'pasv' })).toBe(0);
      expect(phaseNames(r)).toContain('quit');
      expect(r.findings ?? []).toEqual([]);
      expect(hosts).not.toContain('127.0.0.2');
      expect(hosts).toContain('127.0.0.1');
    });

    test('follow_control_address: transfer through the control address, mismatch still reported', async () => {
      const { value: r, hosts } = await connectionsDuring(() =>
        probeFtp(masqAddress, { data_channel: ['pasv'], pasv_mismatch: 'follow_control_address' }),
      );
      expect(r.success).toBe(true);
      expect(fact(r, 'probe_ftp_pasv_address_mismatch')).toBe(1);
      expect(fact(r, 'probe_ftp_data_channel_success', { mode: 'pasv' })).toBe(1);
      expect(hosts).not.toContain('127.0.0.2');
      expect(r.findings).toEqual([
        expect.objectContaining({ code: 'ftp_pasv_mismatch_followed', severity: 'warning' }),
      ]);
      expect(r.findings?.[0].message).toContain('PASV advertised 127.0.0.2, not the control address 127.0.0.1');
      expect(r.findings?.[0].advice).toMatch(/MasqueradeAddress/);
    });
  });

  describe('requiring TLS', () => {
    let strict: FtpPeer;
    beforeAll(async () => {
      strict = await server.start(fx, { tls: 'required' }, user);
    });
    afterAll(async () => {
      await strict?.stop();
    });

    test('probed in clear text → tls_required at login', async () => {
      const r = await probeFtp(`${strict.host}:${strict.port}`, { username: user.name, password: user.password });
      expect(r.success).toBe(false);
      expect(r.failure).toMatchObject({ phase: 'login', reason: 'tls_required' });
      expect(r.failure?.advice).toContain('tls: explicit');
    });

    test('probed with explicit TLS → success', async () => {
      const r = await probeFtp(`${strict.host}:${strict.port}`, {
        username: user.name,
        password: user.password,
        tls: 'explicit',
        tls_config: INSECURE,
        retrieve: CANARY_NAME,
        data_channel: ['epsv', 'pasv'],
      });
      expect(r.success).toBe(true);
      expect(fact(r, 'probe_ftp_transfer_bytes', { mode: 'pasv' })).toBe(CANARY_BODY.length);
    });
  });

  // Only servers that speak implicit TLS get this block (pure-ftpd and pyftpdlib do not).
  if (server.implicitTls)
    describe('implicit TLS', () => {
      let implicit: FtpPeer;
      beforeAll(async () => {
        implicit = await server.start(fx, { tls: 'implicit' }, user);
      });
      afterAll(async () => {
        await implicit?.stop();
      });

      test('TLS before the banner, then login and protected transfers', async () => {
        const r = await probeFtp(`${implicit.host}:${implicit.port}`, {
          username: user.name,
          password: user.password,
          tls: 'implicit',
          tls_config: INSECURE,
          retrieve: CANARY_NAME,
          data_channel: [...ALL_MODES],
        });
        expect(r.success).toBe(true);
        expect(phaseNames(r).slice(0, 4)).toEqual(['resolve', 'connect', 'tls', 'banner']);
        expect(fact(r, 'probe_tls_cert_not_after_timestamp_seconds')).toBe(fx.notAfter);
        for (const mode of ALL_MODES) expect(fact(r, 'probe_ftp_transfer_bytes', { mode })).toBe(CANARY_BODY.length);
      });
    });
});

test('a port with no server → refused at connect', async () => {
  const port = await freePort();
  const r = await probeFtp(`127.0.0.1:${port}`);
  expect(r.success).toBe(false);
  expect(r.failure).toMatchObject({ phase: 'connect', reason: 'refused' });
  expect(phaseNames(r)).toEqual(['resolve', 'connect']);
  // Nothing past connect ran: no data-channel mode is exported as failed.
  expect(
    r.facts.filter((f) => f.metric.startsWith('probe_ftp_data_') || f.metric === 'probe_ftp_pasv_address_mismatch'),
  ).toEqual([]);
}, 10000);
