// Real services that keep quiet after a connect, each in its own process so that it keeps time
// while the test's event loop is busy: a python3 tarpit (accepts, reads, never writes), Python's
// http.server, and openssl s_server (an implicit-TLS port). Each listens on 127.0.0.1.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';

export interface SilencePeer {
  port: number;
  stop(): void;
}

function stopper(child: ChildProcess): () => void {
  return () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
}

/** Resolves once something accepts on the port (the child announced nothing usable). */
async function accepting(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`peer exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing accepts on ${port}`);
}

/** A python3 program's first stdout line as a port number. */
function portFromStdout(child: ChildProcess, pattern: RegExp): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let text = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`peer exited with ${code}: ${text}`)));
    child.stdout?.on('data', (d: Buffer) => {
      text += String(d);
      const m = pattern.exec(text);
      if (m) resolve(Number(m[1]));
    });
  });
}

/** The python3 source of a tarpit: accepts every connection, reads and drops, never writes. */
export const TARPIT_PY = [
  'import socket, threading, sys',
  's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
  'host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"',
  'port = int(sys.argv[2]) if len(sys.argv) > 2 else 0',
  's.bind((host, port)); s.listen(64)',
  'print(s.getsockname()[1], flush=True)',
  'def hold(c):',
  '    try:',
  '        while c.recv(4096): pass',
  '    except OSError: pass',
  '    c.close()',
  'while True:',
  '    c, _ = s.accept()',
  '    threading.Thread(target=hold, args=(c,), daemon=True).start()',
].join('\n');

export async function startTarpit(): Promise<SilencePeer> {
  const child = spawn('python3', ['-c', TARPIT_PY], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await portFromStdout(child, /^(\d+)\n/);
  return { port, stop: stopper(child) };
}

/** Python's own HTTP server (python3 -m http.server), serving an empty temporary directory. */
export async function startPythonHttp(dir: string): Promise<SilencePeer> {
  const child = spawn('python3', ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', dir], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const port = await portFromStdout(child, /port (\d+)/);
  await accepting(port, child);
  return { port, stop: stopper(child) };
}

/**
 * A TLS-only port (Node's TLS server, OpenSSL underneath) that serves connections concurrently,
 * as implicit-FTPS servers do. (openssl s_server serves one connection at a time: while the
 * probe's own connection waits in its handshake, a second connection is never read.)
 */
export async function startTlsServer(
  certFile: string,
  keyFile: string,
): Promise<SilencePeer & { close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (s) => {
    s.on('error', () => undefined);
    s.end('220 implicit TLS ready\r\n');
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const close = (): Promise<void> =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return { port: (server.address() as net.AddressInfo).port, stop: () => void close(), close };
}

/** Runs the tarpit inside a network namespace on a fixed port; resolves once it listens. */
export async function startTarpitIn(ns: string, port: number): Promise<SilencePeer> {
  const child = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', TARPIT_PY, '127.0.0.1', String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await portFromStdout(child, /^(\d+)\n/);
  return { port, stop: stopper(child) };
}

/**
 * A firewall inside the namespace on the SYN to `port`: `drop` (most firewalls) or `reject`
 * (a TCP reset back). Replaces any rule set earlier by this helper.
 */
export function firewallSyn(ns: string, port: number, action: 'drop' | 'reject' | 'none'): void {
  const flush = 'table inet pp_silence {}\ndelete table inet pp_silence\n';
  const rules =
    action === 'none'
      ? flush
      : [
          flush,
          'table inet pp_silence {',
          '  chain out {',
          '    type filter hook output priority 0; policy accept;',
          `    tcp dport ${port} tcp flags & (syn | ack) == syn ${action === 'drop' ? 'drop' : 'reject with tcp reset'}`,
          '  }',
          '}',
        ].join('\n');
  execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: rules, stdio: ['pipe', 'pipe', 'pipe'] });
}
