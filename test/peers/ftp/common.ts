// Shared plumbing for the real FTP servers the tests start: where test/ftp/install.sh put
// them, free ports, a fixture tree with canary files, a self-signed certificate, and a
// child-process wrapper that waits for the server's 220 and stops its whole process group.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
  mkdirSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Fixed location used by test/ftp/install.sh. */
export const PEERS_DIR = '/opt/portprobe-peers';
export const FTP_SYSTEM_USER = 'portprobe-ftp';

export const CANARY_NAME = 'canary.txt';
/** 3,850 bytes (50 lines of 77), so that transfer sizes are easy to check. */
export const CANARY_BODY = 'portprobe canary line 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOP\n'.repeat(50);

export interface PeerUser {
  name: string;
  password: string;
}

export interface FtpPeer {
  name: string;
  host: string;
  port: number;
  stop(): Promise<void>;
}

export interface PeerOptions {
  /** off: plain only; explicit: AUTH TLS offered; required: clear-text logins refused; implicit: TLS from the first byte. */
  tls: 'off' | 'explicit' | 'required' | 'implicit';
  /** Address advertised in PASV replies instead of the real one. */
  pasvAddress?: string;
  /** Most simultaneous sessions the server accepts (servers that support a limit). */
  maxClients?: number;
  /** Refuse active mode (PORT/EPRT), where the server has a setting for it. */
  activeDisabled?: boolean;
  /** Passive data ports "N-M" (inclusive), where the server has a setting for it. */
  passivePorts?: string;
  /** vsftpd: authenticate local users through the PAM service that never answers (install.sh). */
  hungLogin?: boolean;
}

export function requireFile(p: string, what: string): string {
  if (!existsSync(p)) {
    throw new Error(`${what} not found at ${p}: run test/ftp/install.sh as root first`);
  }
  return p;
}

/** A port that was free a moment ago on 127.0.0.1 (servers that cannot bind port 0 need one). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, host, () => resolve());
  });
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** A random password for users the tests create. */
export function randomPassword(): string {
  return `pp-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
}

export interface Fixture {
  dir: string;
  anonRoot: string;
  userRoot: string;
  certFile: string;
  keyFile: string;
  /** Both in one file (pure-ftpd). */
  pemFile: string;
  /** The certificate's notAfter, seconds since the epoch, as openssl reports it. */
  notAfter: number;
  cleanup(): void;
}

/**
 * A world-readable temp tree: anon/ and user/ each hold the canary file; a self-signed
 * certificate for 127.0.0.1 made by openssl.
 */
export function makeFixture(prefix: string): Fixture {
  const dir = mkdtempSync(path.join(os.tmpdir(), `portprobe-${prefix}-`));
  chmodSync(dir, 0o755);
  const anonRoot = path.join(dir, 'anon');
  const userRoot = path.join(dir, 'user');
  for (const d of [anonRoot, userRoot]) {
    mkdirSync(d, { mode: 0o755 });
    chmodSync(d, 0o755);
    writeFileSync(path.join(d, CANARY_NAME), CANARY_BODY, { mode: 0o644 });
  }
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
      '-days',
      '45',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  chmodSync(keyFile, 0o600);
  const pemFile = path.join(dir, 'certkey.pem');
  writeFileSync(pemFile, readFileSync(certFile, 'utf8') + readFileSync(keyFile, 'utf8'), { mode: 0o600 });
  const endDate = execFileSync('openssl', ['x509', '-enddate', '-noout', '-in', certFile], { encoding: 'utf8' });
  const notAfter = Date.parse(endDate.trim().replace(/^notAfter=/, '')) / 1000;
  return {
    dir,
    anonRoot,
    userRoot,
    certFile,
    keyFile,
    pemFile,
    notAfter,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Reads the first reply line from host:port; resolves true on a 220. */
function greets(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let buf = '';
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.on('data', (b: Buffer) => {
      buf += b.toString('latin1');
      if (buf.includes('\n')) done(/^220/.test(buf));
    });
    s.on('error', () => done(false));
  });
}

/** Waits until something completes a TCP (optionally TLS-less) connect to host:port. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface Started {
  child: ChildProcess;
  log: () => string;
}

/**
 * Starts a server as its own process group and waits until it greets with 220 (or, for
 * implicit TLS, accepts connections). Fails with the server's output if it exits first.
 */
export async function startProcess(
  name: string,
  cmd: string,
  args: string[],
  host: string,
  port: number,
  opts: { env?: NodeJS.ProcessEnv; implicitTls?: boolean; cwd?: string } = {},
): Promise<Started> {
  const child = spawn(cmd, args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
  let out = '';
  const keep = (b: Buffer): void => {
    out = (out + b.toString('utf8')).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  const until = Date.now() + 15000;
  for (;;) {
    if (exited !== undefined) throw new Error(`${name} exited (${exited}) before listening:\n${out}`);
    const ok = opts.implicitTls ? await accepts(host, port) : await greets(host, port);
    if (ok) break;
    if (Date.now() > until) {
      await stopProcess(child);
      throw new Error(`${name} did not greet on ${host}:${port} within 15 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, log: () => out };
}

/** Stops the process group this test started (the server and its session children). */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }, 3000);
  await gone;
  clearTimeout(timer);
}

/** The system account install.sh created, with its password. */
export function systemUser(): PeerUser & { uid: number; gid: number } {
  const line = execFileSync('getent', ['passwd', FTP_SYSTEM_USER], { encoding: 'utf8' }).trim();
  const f = line.split(':');
  const password = readFileSync(
    requireFile(path.join(PEERS_DIR, 'ftp-user.password'), 'the FTP test user password'),
    'utf8',
  ).trim();
  return { name: FTP_SYSTEM_USER, password, uid: Number(f[2]), gid: Number(f[3]) };
}

/** Starts a server on a fresh free port, retrying when another process took the port first. */
export async function withFreePort<T>(start: (port: number) => Promise<T>, attempts = 3): Promise<T> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await start(await freePort());
    } catch (e) {
      last = e;
      if (!/in use|EADDRINUSE|bind/i.test(String(e))) throw e;
    }
  }
  throw last;
}

/**
 * Kills what a stopped server left behind in other sessions: processes whose command line
 * names `marker` (the server's own config file, unique to one test), and their descendants.
 * vsftpd puts every client session in a session of its own, so a session blocked in PAM
 * outlives the process group that stopProcess signals.
 */
export function killStragglers(marker: string): void {
  const procs: { pid: number; ppid: number; cmd: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      procs.push({ pid: Number(name), ppid, cmd });
    } catch {
      // gone meanwhile
    }
  }
  const doomed = new Set(procs.filter((p) => p.cmd.includes(marker) && p.pid !== process.pid).map((p) => p.pid));
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) {
      if (doomed.has(p.ppid) && !doomed.has(p.pid)) {
        doomed.add(p.pid);
        grew = true;
      }
    }
  }
  for (const pid of doomed) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
