// `portprobe --once` on a config with one FTP target per real server prints the FTP series for
// each (the agent as built, in its own process; passwords from a file and the environment).
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { MAIN } from '../helpers/agent-process';
import { CANARY_BODY, CANARY_NAME, makeFixture, type Fixture, type FtpPeer, type PeerUser } from '../peers/ftp/common';
import { startVsftpd, vsftpdUser } from '../peers/ftp/vsftpd';
import { proftpdUser, startProftpd } from '../peers/ftp/proftpd';
import { pureftpdUser, startPureftpd } from '../peers/ftp/pureftpd';
import { pyftpdlibUser, startPyftpdlib } from '../peers/ftp/pyftpdlib';
import { ftpsrvUser, startFtpSrv } from '../peers/ftp/ftpsrv';

interface Running {
  name: string;
  peer: FtpPeer;
  user: PeerUser;
}

let fx: Fixture;
const running: Running[] = [];

beforeAll(async () => {
  fx = makeFixture('once');
  const starts: [string, PeerUser, (u: PeerUser) => Promise<FtpPeer>][] = [
    ['vsftpd', vsftpdUser(), () => startVsftpd(fx, { tls: 'explicit' })],
    ['proftpd', proftpdUser(), (u) => startProftpd(fx, { tls: 'explicit' }, u)],
    ['pure-ftpd', pureftpdUser(), (u) => startPureftpd(fx, { tls: 'explicit' }, u)],
    ['pyftpdlib', pyftpdlibUser(), (u) => startPyftpdlib(fx, { tls: 'explicit' }, u)],
  ];
  for (const [name, user, start] of starts) running.push({ name, user, peer: await start(user) });
});

afterAll(async () => {
  for (const r of running) await r.peer.stop();
  fx?.cleanup();
});

function once(configFile: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, `--config.file=${configFile}`, '--once', '--log.level=error'],
      { timeout: 30000, env },
      (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

test('--once prints the FTP series of one target per server', async () => {
  // ftp-srv runs in this process; the agent is another process, so it reaches it over loopback too.
  const srvUser = ftpsrvUser();
  const ftpSrv = await startFtpSrv(fx, { tls: 'explicit' }, srvUser);
  try {
    const all = [...running, { name: 'ftp-srv', peer: ftpSrv, user: srvUser }];
    const env: NodeJS.ProcessEnv = { ...process.env };
    const lines = ['modules:'];
    const targets = ['targets:'];
    all.forEach(({ name, peer, user }, i) => {
      // Half the modules read the password from a file, half from the environment.
      let secret: string;
      if (i % 2 === 0) {
        const file = path.join(fx.dir, `pw-${i}`);
        writeFileSync(file, `${user.password}\n`, { mode: 0o600 });
        secret = `password_file: ${file}`;
      } else {
        env[`FTP_PW_${i}`] = user.password;
        secret = `password: \${FTP_PW_${i}}`;
      }
      lines.push(
        `  m${i}:`,
        '    prober: ftp',
        '    timeout: 10s',
        '    ftp:',
        `      username: ${user.name}`,
        `      ${secret}`,
        '      tls: explicit',
        `      tls_config: {ca_file: ${fx.certFile}}`,
        `      retrieve: ${CANARY_NAME}`,
        '      data_channel: [epsv, pasv, active]',
      );
      targets.push(`  - {name: ${name}, module: m${i}, address: "127.0.0.1:${peer.port}"}`);
    });
    const file = path.join(fx.dir, 'once.yml');
    writeFileSync(file, `${[...lines, ...targets].join('\n')}\n`);

    const r = await once(file, env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const { name, user } of all) {
      const pre = `target="${name}",module="m${all.findIndex((a) => a.name === name)}"`;
      expect(r.stdout).toContain(`probe_success{${pre}} 1\n`);
      expect(r.stdout).toContain(`probe_ftp_status_code{${pre},phase="login"} 230\n`);
      for (const mode of ['epsv', 'pasv', 'active']) {
        expect(r.stdout).toContain(`probe_ftp_data_channel_success{${pre},mode="${mode}"} 1\n`);
        expect(r.stdout).toContain(`probe_ftp_transfer_bytes{${pre},mode="${mode}"} ${CANARY_BODY.length}\n`);
      }
      expect(r.stdout).toContain(`probe_ftp_pasv_address_mismatch{${pre}} 0\n`);
      expect(r.stdout).toContain(`probe_tls_cert_not_after_timestamp_seconds{${pre}} ${fx.notAfter}\n`);
      expect(r.stdout).toMatch(new RegExp(`probe_ftp_server_info\\{${pre},banner="[^"]+"\\} 1\\n`));
      expect(r.stdout).not.toContain(user.password);
    }
  } finally {
    await ftpSrv.stop();
  }
});
