// vsftpd (Debian package) in standalone mode on 127.0.0.1 with a config written to a temp dir.
// Local-user logins use the system account made by test/ftp/install.sh and its PAM service.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  type Fixture,
  type FtpPeer,
  type PeerOptions,
  killStragglers,
  requireFile,
  startProcess,
  stopProcess,
  systemUser,
  withFreePort,
} from './common';

export const VSFTPD = '/usr/sbin/vsftpd';

export function vsftpdUser(): { name: string; password: string } {
  const u = systemUser();
  return { name: u.name, password: u.password };
}

export async function startVsftpd(fx: Fixture, opts: PeerOptions): Promise<FtpPeer> {
  requireFile(VSFTPD, 'vsftpd');
  return withFreePort(async (port) => {
    const tls = opts.tls !== 'off';
    const required = opts.tls === 'required';
    const conf = [
      'listen=YES',
      'listen_ipv6=NO',
      'listen_address=127.0.0.1',
      `listen_port=${port}`,
      'background=NO',
      'anonymous_enable=YES',
      `anon_root=${fx.anonRoot}`,
      'no_anon_password=YES',
      'local_enable=YES',
      `local_root=${fx.userRoot}`,
      `pam_service_name=${opts.hungLogin ? 'portprobe-ftp-hung' : 'portprobe-ftp'}`,
      'write_enable=NO',
      'seccomp_sandbox=NO',
      'isolate=NO',
      'isolate_network=NO',
      'secure_chroot_dir=/var/run/vsftpd/empty',
      'pasv_enable=YES',
      `port_enable=${opts.activeDisabled ? 'NO' : 'YES'}`,
      ...(opts.passivePorts
        ? [`pasv_min_port=${opts.passivePorts.split('-')[0]}`, `pasv_max_port=${opts.passivePorts.split('-')[1]}`]
        : []),
      'connect_from_port_20=NO',
      'xferlog_enable=NO',
      'syslog_enable=NO',
      `vsftpd_log_file=${path.join(fx.dir, 'vsftpd.log')}`,
      'max_per_ip=0',
      `max_clients=${opts.maxClients ?? 0}`,
      ...(opts.pasvAddress ? [`pasv_address=${opts.pasvAddress}`, 'pasv_addr_resolve=NO'] : []),
      `ssl_enable=${tls ? 'YES' : 'NO'}`,
      ...(tls
        ? [
            `rsa_cert_file=${fx.certFile}`,
            `rsa_private_key_file=${fx.keyFile}`,
            'allow_anon_ssl=YES',
            `force_local_logins_ssl=${required ? 'YES' : 'NO'}`,
            `force_local_data_ssl=${required ? 'YES' : 'NO'}`,
            `force_anon_logins_ssl=${required ? 'YES' : 'NO'}`,
            `force_anon_data_ssl=${required ? 'YES' : 'NO'}`,
            `implicit_ssl=${opts.tls === 'implicit' ? 'YES' : 'NO'}`,
            'ssl_tlsv1=YES',
            'ssl_sslv2=NO',
            'ssl_sslv3=NO',
          ]
        : []),
    ];
    const file = path.join(fx.dir, `vsftpd-${port}.conf`);
    writeFileSync(file, `${conf.join('\n')}\n`, { mode: 0o600 });
    const started = await startProcess('vsftpd', VSFTPD, [file], '127.0.0.1', port, {
      implicitTls: opts.tls === 'implicit',
    });
    const stop = async (): Promise<void> => {
      await stopProcess(started.child);
      killStragglers(file);
    };
    return { name: 'vsftpd', host: '127.0.0.1', port, stop };
  });
}
