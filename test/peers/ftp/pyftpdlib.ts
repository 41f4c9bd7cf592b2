// pyftpdlib (Debian python3-pyftpdlib) started from test/peers/ftp/pyftpd.py on port 0; the
// script prints the port it bound. Users are in-process (DummyAuthorizer).
import { spawn } from 'node:child_process';
import path from 'node:path';
import {
  type Fixture,
  type FtpPeer,
  type PeerOptions,
  type PeerUser,
  randomPassword,
  requireFile,
  stopProcess,
} from './common';

/** The Debian interpreter: python3-pyftpdlib is installed for it, not for any other python3 on PATH. */
export const SYSTEM_PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(__dirname, 'pyftpd.py');

export function pyftpdlibUser(): PeerUser {
  return { name: 'probe', password: randomPassword() };
}

export async function startPyftpdlib(fx: Fixture, opts: PeerOptions, user: PeerUser): Promise<FtpPeer> {
  requireFile(SYSTEM_PYTHON, 'python3');
  if (opts.tls === 'implicit') throw new Error('pyftpdlib has no implicit TLS');
  const cfg = {
    anon_root: fx.anonRoot,
    user: user.name,
    password: user.password,
    user_root: fx.userRoot,
    tls: opts.tls,
    cert: fx.certFile,
    key: fx.keyFile,
    masquerade_address: opts.pasvAddress ?? null,
    active_disabled: opts.activeDisabled ?? false,
    passive_ports: opts.passivePorts ?? null,
  };
  const child = spawn(SYSTEM_PYTHON, [SCRIPT, JSON.stringify(cfg)], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pyftpdlib did not start within 15 s:\n${out}`)), 15000);
    const onData = (b: Buffer): void => {
      out = (out + b.toString('utf8')).slice(-8000);
      const m = /LISTENING (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (b: Buffer) => {
      out = (out + b.toString('utf8')).slice(-8000);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`pyftpdlib exited (${code}):\n${out}`));
    });
  });
  return { name: 'pyftpdlib', host: '127.0.0.1', port, stop: () => stopProcess(child) };
}
