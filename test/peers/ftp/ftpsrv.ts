// ftp-srv (npm) in this process, on 127.0.0.1 port 0, serving the fixture tree.
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { type Fixture, type FtpPeer, type PeerOptions, type PeerUser, randomPassword } from './common';

// ftp-srv ships no type declarations.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const FtpSrv = require('ftp-srv') as new (opts: Record<string, unknown>) => {
  server: net.Server;
  on(
    event: 'login',
    fn: (
      data: { username: string; password: string; connection: { secure?: boolean } },
      resolve: (r: { root: string }) => void,
      reject: (e: Error) => void,
    ) => void,
  ): void;
  on(event: string, fn: (...a: unknown[]) => void): void;
  listen(): Promise<unknown>;
  close(): Promise<unknown>;
};

export function ftpsrvUser(): PeerUser {
  return { name: 'probe', password: randomPassword() };
}

/** A logger that drops everything: ftp-srv logs with bunyan to stdout by default. */
const quietLog = {
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child() {
    return quietLog;
  },
};

export async function startFtpSrv(fx: Fixture, opts: PeerOptions, user: PeerUser): Promise<FtpPeer> {
  const tls = opts.tls === 'off' ? false : { cert: readFileSync(fx.certFile), key: readFileSync(fx.keyFile) };
  const signals = ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const;
  const before = new Map(signals.map((sig) => [sig, new Set(process.listeners(sig))]));
  const srv = new FtpSrv({
    url: `${opts.tls === 'implicit' ? 'ftps' : 'ftp'}://127.0.0.1:0`,
    // A function, because ftp-srv replaces a plain pasv_url with the client's address for
    // clients on loopback.
    pasv_url: opts.pasvAddress ? () => opts.pasvAddress : '127.0.0.1',
    pasv_min: 1024,
    anonymous: true,
    greeting: ['portprobe ftp-srv peer'],
    tls,
    log: quietLog,
  });
  srv.on('login', ({ username, password, connection }, resolve, reject) => {
    // ftp-srv has no "TLS required" switch; its login hook is where a deployment enforces it.
    if (opts.tls === 'required' && !connection.secure) {
      return reject(new Error('SSL/TLS required on the control channel'));
    }
    if (username === 'anonymous') return resolve({ root: fx.anonRoot });
    if (username === user.name && password === user.password) return resolve({ root: fx.userRoot });
    return reject(new Error('Login incorrect'));
  });
  srv.on('client-error', () => undefined);
  await srv.listen();
  // ftp-srv hooks process signals to exit the process; that is not its call inside a test run.
  for (const sig of signals) {
    for (const l of process.listeners(sig)) if (!before.get(sig)?.has(l)) process.off(sig, l);
  }
  const port = (srv.server.address() as net.AddressInfo).port;
  return { name: 'ftp-srv', host: '127.0.0.1', port, stop: async () => void (await srv.close()) };
}
