// Real servers at their connection limit answer 421; the probe says too_many_connections.
import net from 'node:net';
import { makeFixture, type Fixture, type FtpPeer, type PeerOptions, type PeerUser } from '../peers/ftp/common';
import { startVsftpd, vsftpdUser } from '../peers/ftp/vsftpd';
import { proftpdUser, startProftpd } from '../peers/ftp/proftpd';
import { pureftpdUser, startPureftpd } from '../peers/ftp/pureftpd';
import { probeFtp } from './probe';

interface Limited {
  name: string;
  user(): PeerUser;
  start(fx: Fixture, opts: PeerOptions, user: PeerUser): Promise<FtpPeer>;
}

const SERVERS: Limited[] = [
  { name: 'vsftpd', user: vsftpdUser, start: (fx, o) => startVsftpd(fx, o) },
  { name: 'proftpd', user: proftpdUser, start: startProftpd },
  { name: 'pure-ftpd', user: pureftpdUser, start: startPureftpd },
];

/**
 * Opens a session and logs in anonymously, so it counts against the limit whether the server
 * counts connections (vsftpd, pure-ftpd) or logged-in users (proftpd).
 */
async function holdSession(host: string, port: number): Promise<net.Socket> {
  // The server's own start-up check (one session) may still be winding down: retry on 421.
  for (let attempt = 0; ; attempt++) {
    try {
      return await tryHoldSession(host, port);
    } catch (e) {
      if (attempt >= 30 || !/421/.test(String(e))) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function tryHoldSession(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let seen = '';
    let step = 0;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`could not hold a session: ${JSON.stringify(seen)}`));
    }, 5000);
    s.on('data', (b: Buffer) => {
      seen += b.toString('latin1');
      if (/^421/m.test(seen)) {
        clearTimeout(timer);
        s.destroy();
        reject(new Error(`421 while holding a session: ${JSON.stringify(seen)}`));
        return;
      }
      if (step === 0 && /^220 /m.test(seen)) {
        step = 1;
        s.write('USER anonymous\r\n');
      } else if (step === 1 && /^331 /m.test(seen)) {
        step = 2;
        s.write('PASS probe@\r\n');
      } else if (step > 0 && /^230 /m.test(seen)) {
        clearTimeout(timer);
        s.removeAllListeners('data');
        resolve(s);
      }
    });
    s.once('error', reject);
  });
}

describe.each(SERVERS)('$name with one client allowed', (server) => {
  let fx: Fixture;
  let peer: FtpPeer;
  beforeAll(async () => {
    fx = makeFixture(`${server.name}-limit`);
    peer = await server.start(fx, { tls: 'off', maxClients: 1 }, server.user());
  });
  afterAll(async () => {
    await peer?.stop();
    fx?.cleanup();
  });

  test("a second session → too_many_connections, with the server's words", async () => {
    const held = await holdSession(peer.host, peer.port);
    try {
      const r = await probeFtp(`${peer.host}:${peer.port}`);
      expect(r.success).toBe(false);
      expect(r.failure).toMatchObject({ reason: 'too_many_connections' });
      expect(['banner', 'login']).toContain(r.failure?.phase);
      // vsftpd and pure-ftpd greet with 421; proftpd's MaxClients answers the login with 530.
      expect(r.failure?.message).toMatch(/^(greeting: 421|PASS: 530) /);
      expect(r.failure?.advice).toContain('connection limit');
    } finally {
      held.destroy();
    }
  });
});
