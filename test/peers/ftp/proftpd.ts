// ProFTPD with mod_tls, unpacked by test/ftp/install.sh (its package conflicts with vsftpd),
// run in the foreground with a config in a temp dir. Users are virtual (AuthUserFile).
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

export const PROFTPD = path.join(PEERS_DIR, 'proftpd/usr/sbin/proftpd');
const MODULES = path.join(PEERS_DIR, 'proftpd/usr/lib/proftpd');

/** A virtual user in an AuthUserFile: crypt(3) SHA-512 hash made by openssl. */
function authUserFile(fx: Fixture, user: PeerUser): { passwd: string; group: string } {
  const sys = systemUser();
  const hash = execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: user.password, encoding: 'utf8' }).trim();
  const passwd = path.join(fx.dir, 'proftpd.passwd');
  const group = path.join(fx.dir, 'proftpd.group');
  writeFileSync(passwd, `${user.name}:${hash}:${sys.uid}:${sys.gid}::${fx.userRoot}:/bin/false\n`, { mode: 0o600 });
  writeFileSync(group, `probers:x:${sys.gid}:${user.name}\n`, { mode: 0o600 });
  return { passwd, group };
}

export function proftpdUser(): PeerUser {
  return { name: 'probe', password: randomPassword() };
}

export async function startProftpd(fx: Fixture, opts: PeerOptions, user: PeerUser): Promise<FtpPeer> {
  requireFile(PROFTPD, 'proftpd');
  requireFile(path.join(MODULES, 'mod_tls.so'), 'proftpd mod_tls');
  const files = authUserFile(fx, user);
  return withFreePort(async (port) => {
    const tls = opts.tls !== 'off';
    const conf = [
      'ServerType standalone',
      'ServerName "portprobe test"',
      'ServerIdent on "portprobe proftpd peer ready"',
      'DefaultServer on',
      `Port ${port}`,
      'DefaultAddress 127.0.0.1',
      'SocketBindTight on',
      'UseIPv6 off',
      'User nobody',
      'Group nogroup',
      `PidFile ${path.join(fx.dir, `proftpd-${port}.pid`)}`,
      `ScoreboardFile ${path.join(fx.dir, `proftpd-${port}.scoreboard`)}`,
      'DelayTable none',
      'WtmpLog off',
      'UseReverseDNS off',
      'UseLastlog off',
      `SystemLog ${path.join(fx.dir, 'proftpd.log')}`,
      'TransferLog none',
      `ModulePath ${MODULES}`,
      'ModuleControlsACLs insmod,rmmod allow user root',
      'LoadModule mod_tls.c',
      'AuthPAM off',
      'AuthOrder mod_auth_file.c mod_auth_unix.c',
      `AuthUserFile ${files.passwd}`,
      `AuthGroupFile ${files.group}`,
      'RequireValidShell off',
      'MaxInstances 30',
      ...(opts.maxClients ? [`MaxClients ${opts.maxClients}`] : []),
      ...(opts.pasvAddress ? [`MasqueradeAddress ${opts.pasvAddress}`] : []),
      ...(opts.passivePorts ? [`PassivePorts ${opts.passivePorts.replace('-', ' ')}`] : []),
      '<IfModule mod_tls.c>',
      `  TLSEngine ${tls ? 'on' : 'off'}`,
      ...(tls
        ? [
            `  TLSRSACertificateFile ${fx.certFile}`,
            `  TLSRSACertificateKeyFile ${fx.keyFile}`,
            `  TLSRequired ${opts.tls === 'required' ? 'on' : 'off'}`,
            '  TLSProtocol TLSv1.2 TLSv1.3',
            `  TLSLog ${path.join(fx.dir, 'proftpd-tls.log')}`,
            ...(opts.tls === 'implicit' ? ['  TLSOptions UseImplicitSSL'] : []),
          ]
        : []),
      '</IfModule>',
      '<Directory />',
      '  AllowOverwrite off',
      '</Directory>',
      ...(opts.activeDisabled ? ['<Limit PORT EPRT>', '  DenyAll', '</Limit>'] : []),
      `<Anonymous ${fx.anonRoot}>`,
      '  User ftp',
      '  Group nogroup',
      '  UserAlias anonymous ftp',
      '  RequireValidShell off',
      '  <Limit WRITE>',
      '    DenyAll',
      '  </Limit>',
      '</Anonymous>',
    ];
    const file = path.join(fx.dir, `proftpd-${port}.conf`);
    writeFileSync(file, `${conf.join('\n')}\n`, { mode: 0o600 });
    const started = await startProcess('proftpd', PROFTPD, ['--nodaemon', '-c', file], '127.0.0.1', port, {
      implicitTls: opts.tls === 'implicit',
    });
    return { name: 'proftpd', host: '127.0.0.1', port, stop: () => stopProcess(started.child) };
  });
}
