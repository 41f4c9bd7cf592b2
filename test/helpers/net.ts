// Loopback servers and ports for tests.
import net from 'node:net';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

/** Listens on 127.0.0.1 (or host) port 0; returns the server and its port. */
export async function listen(
  onConnection: (s: net.Socket) => void = () => undefined,
  host = '127.0.0.1',
  backlog?: number,
): Promise<{ server: net.Server; port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    onConnection(s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host, backlog }, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export async function closedPort(): Promise<number> {
  const l = await listen();
  await l.close();
  return l.port;
}

export interface SelfSignedCert {
  dir: string;
  certFile: string;
  keyFile: string;
  /** notAfter as epoch seconds, read back with openssl. */
  notAfterSeconds: number;
}

/** A self-signed certificate for CN=localhost made with the openssl CLI. */
export function selfSignedCert(days = 30): SelfSignedCert {
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-cert-'));
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      String(days),
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  const end = execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-enddate'], { encoding: 'utf8' });
  const notAfterSeconds = Date.parse(end.trim().replace(/^notAfter=/, '')) / 1000;
  return { dir, certFile, keyFile, notAfterSeconds };
}

/**
 * A TCP listener held by a python3 process (so it keeps time and state while this process's event
 * loop is busy). `code` runs after `s` is bound to a free loopback port and its port printed.
 */
export async function pythonListener(backlog: number, code: string[]): Promise<{ port: number; stop: () => void }> {
  const py = spawn(
    'python3',
    [
      '-c',
      [
        'import socket, threading, time',
        's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
        `s.bind(("127.0.0.1", 0)); s.listen(${backlog})`,
        'print(s.getsockname()[1], flush=True)',
        ...code,
      ].join('\n'),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    py.once('error', reject);
    py.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
  });
  return { port, stop: () => py.kill('SIGKILL') };
}

/** Open file descriptors of this process. */
export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Holds this process's event loop for `ms` (what a loaded agent's loop goes through). */
export function holdEventLoop(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // held: sockets keep working in the kernel meanwhile, and nothing here sees them
  }
}
