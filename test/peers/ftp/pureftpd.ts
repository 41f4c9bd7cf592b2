// Pure-FTPd, unpacked by test/ftp/install.sh (its package conflicts with vsftpd), with a
// virtual user in a PureDB made by pure-pw. Anonymous logins use the system "ftp" account.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  PEERS_DIR,
  type Fixture,
  type FtpPeer,
  type PeerOptions,
  type PeerUser,
  randomPassword,
  requireFile,
  startProcess,
  stopProcess,
  systemUser,
  withFreePort,
} from './common';

export const PURE_FTPD = path.join(PEERS_DIR, 'pure-ftpd/usr/sbin/pure-ftpd');
const PURE_PW = path.join(PEERS_DIR, 'pure-ftpd/usr/bin/pure-pw');

export function pureftpdUser(): PeerUser {
  return { name: 'probe', password: randomPassword() };
}

/**
 * The PureDB of one virtual user. pure-pw would hash with argon2id at a deliberate ~2 s per
 * hash (and per login); the tests write the passwd line themselves, in the format pure-pw
 * writes, with a SHA-512 crypt hash from openssl, and let pure-pw compile it.
 */
function makePuredb(fx: Fixture, user: PeerUser): string {
  const sys = systemUser();
  const passwd = path.join(fx.dir, 'pureftpd.passwd');
  const pdb = path.join(fx.dir, 'pureftpd.pdb');
  const hash = execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: user.password, encoding: 'utf8' }).trim();
  // name:hash:uid:gid:gecos:home/./ (chrooted at home):then quota, ratio and time fields, unset.
  writeFileSync(passwd, `${user.name}:${hash}:${sys.uid}:${sys.gid}::${fx.userRoot}/./::::::::::::\n`, { mode: 0o600 });
  execFileSync(PURE_PW, ['mkdb', pdb, '-f', passwd], { stdio: ['ignore', 'ignore', 'pipe'] });
  return pdb;
}

export async function startPureftpd(fx: Fixture, opts: PeerOptions, user: PeerUser): Promise<FtpPeer> {
  requireFile(PURE_FTPD, 'pure-ftpd');
  if (opts.tls === 'implicit') throw new Error('pure-ftpd has no implicit TLS');
  // -N (NAT mode) turns passive mode off; nothing turns active mode off for the client's own address.
  if (opts.activeDisabled) throw new Error('pure-ftpd has no setting that refuses PORT/EPRT');
  const pdb = makePuredb(fx, user);
  return withFreePort(async (port) => {
    // -Y 0: no TLS, 1: TLS offered, 2: clear-text sessions refused.
    const tlsLevel = opts.tls === 'off' ? '0' : opts.tls === 'required' ? '2' : '1';
    const args = [
      '-S',
      `127.0.0.1,${port}`,
      '-l',
      `puredb:${pdb}`,
      '-l',
      'unix',
      '-u',
      '1', // the test account is a system account (uid below 1000)
      '-H', // no reverse DNS
      '-A', // chroot everyone
      '-Y',
      tlsLevel,
      ...(opts.tls !== 'off' ? ['-2', fx.pemFile] : []),
      ...(opts.pasvAddress ? ['-P', opts.pasvAddress] : []),
      ...(opts.maxClients ? ['-c', String(opts.maxClients)] : []),
      ...(opts.passivePorts ? ['-p', opts.passivePorts.replace('-', ':')] : []),
    ];
    const started = await startProcess('pure-ftpd', PURE_FTPD, args, '127.0.0.1', port);
    return { name: 'pure-ftpd', host: '127.0.0.1', port, stop: () => stopProcess(started.child) };
  });
}
