// Pure-FTPd, unpacked by test/ftp/install.sh (its package conflicts with vsftpd), with a
// virtual user in a PureDB made by pure-pw. Anonymous logins use the system "ftp" account.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import {
  PEERS_DIR, type Fixture, type FtpPeer, type PeerOptions, type PeerUser,
  randomPassword, requireFile, startProcess, stopProcess, systemUser, withFreePort,
} from './common';

export const PURE_FTPD = path.join(PEERS_DIR, 'pure-ftpd/usr/sbin/pure-ftpd');
const PURE_PW = path.join(PEERS_DIR, 'pure-ftpd/usr/bin/pure-pw');

export function pureftpdUser(): PeerUser {
  return { name: 'probe', password: randomPassword() };
}

function makePuredb(fx: Fixture, user: PeerUser): string {
  const sys = systemUser();
  const passwd = path.join(fx.dir, 'pureftpd.passwd');
  const pdb = path.join(fx.dir, 'pureftpd.pdb');
  execFileSync(
    PURE_PW,
    ['useradd', user.name, '-u', String(sys.uid), '-g', String(sys.gid), '-d', fx.userRoot, '-f', passwd, '-F', pdb, '-m'],
    { input: `${user.password}\n${user.password}\n`, stdio: ['pipe', 'ignore', 'pipe'] },
  );
  return pdb;
}

export async function startPureftpd(fx: Fixture, opts: PeerOptions, user: PeerUser): Promise<FtpPeer> {
  requireFile(PURE_FTPD, 'pure-ftpd');
  if (opts.tls === 'implicit') throw new Error('pure-ftpd has no implicit TLS');
  const pdb = makePuredb(fx, user);
  return withFreePort(async (port) => {
    const tlsLevel = { off: '0', explicit: '1', required: '2' }[opts.tls];
    const args = [
      '-S', `127.0.0.1,${port}`,
      '-l', `puredb:${pdb}`,
      '-l', 'unix',
      '-u', '1', // the test account is a system account (uid below 1000)
      '-H', // no reverse DNS
      '-A', // chroot everyone
      '-Y', tlsLevel,
      ...(opts.tls !== 'off' ? ['-2', fx.pemFile] : []),
      ...(opts.pasvAddress ? ['-P', opts.pasvAddress] : []),
    ];
    const started = await startProcess('pure-ftpd', PURE_FTPD, args, '127.0.0.1', port);
    return { name: 'pure-ftpd', host: '127.0.0.1', port, stop: () => stopProcess(started.child) };
  });
}
