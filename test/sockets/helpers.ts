// Helpers for the sockets tests: a fixture procfs tree, a child process holding real sockets,
// a listener that never accepts, and independent parsers for `ss` output.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

export const FIXTURES = path.join(__dirname, 'fixtures');

export interface FakeProcess {
  pid: number;
  comm: string;
  /** Socket inodes its fd directory links to; undefined: no readable fd directory. */
  inodes?: number[];
}

/** A throwaway procfs root: net/* copied from fixture files, <pid>/fd/N -> socket:[inode]. */
export class FixtureProc {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'portprobe-proc-'));

  constructor(tables: Partial<Record<'tcp' | 'tcp6' | 'udp' | 'udp6' | 'netstat', string>>, procs: FakeProcess[] = []) {
    fs.mkdirSync(path.join(this.root, 'net'));
    for (const [name, fixture] of Object.entries(tables))
      this.setTable(name, fs.readFileSync(path.join(FIXTURES, fixture), 'latin1'));
    for (const p of procs) this.addProcess(p);
    // Not processes: must be ignored by the walk.
    fs.mkdirSync(path.join(this.root, 'sys'));
    fs.writeFileSync(path.join(this.root, 'uptime'), '1.0 1.0\n');
  }

  setTable(name: string, text: string): void {
    fs.writeFileSync(path.join(this.root, 'net', name), text);
  }

  appendTable(name: string, line: string): void {
    fs.appendFileSync(path.join(this.root, 'net', name), line);
  }

  addProcess(p: FakeProcess): void {
    const dir = path.join(this.root, String(p.pid));
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'comm'), `${p.comm}\n`);
    if (p.inodes === undefined) return;
    fs.mkdirSync(path.join(dir, 'fd'));
    fs.symlinkSync('/dev/null', path.join(dir, 'fd', '0'));
    fs.symlinkSync('pipe:[99999]', path.join(dir, 'fd', '1'));
    p.inodes.forEach((inode, i) => fs.symlinkSync(`socket:[${inode}]`, path.join(dir, 'fd', String(i + 3))));
  }

  dispose(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

export interface HeldSocket {
  protocol: 'tcp' | 'udp';
  address: string;
  port: number;
}

/**
 * A node child process that binds sockets (port 0, so the kernel picks) and reports them.
 * Commands on stdin: "close N" closes the N-th socket.
 */
export class SocketHolder {
  private constructor(
    private readonly child: ChildProcess,
    private readonly lines: AsyncIterator<string>,
    readonly sockets: HeldSocket[],
  ) {}

  get pid(): number {
    return this.child.pid ?? -1;
  }

  static async start(specs: Array<{ protocol: 'tcp' | 'udp'; address: string }>): Promise<SocketHolder> {
    const code = `
      const net = require('node:net'), dgram = require('node:dgram'), readline = require('node:readline');
      const specs = ${JSON.stringify(specs)};
      const handles = [];
      (async () => {
        const out = [];
        for (const s of specs) {
          if (s.protocol === 'tcp') {
            const srv = net.createServer(() => {});
            await new Promise((ok, bad) => { srv.once('error', bad); srv.listen({ port: 0, host: s.address, ipv6Only: s.address.includes(':') }, ok); });
            handles.push(srv);
            out.push({ protocol: 'tcp', address: s.address, port: srv.address().port });
          } else {
            const sock = dgram.createSocket({ type: s.address.includes(':') ? 'udp6' : 'udp4', ipv6Only: s.address.includes(':') });
            await new Promise((ok, bad) => { sock.once('error', bad); sock.bind(0, s.address, ok); });
            handles.push(sock);
            out.push({ protocol: 'udp', address: s.address, port: sock.address().port });
          }
        }
        process.stdout.write(JSON.stringify(out) + '\\n');
        readline.createInterface({ input: process.stdin }).on('line', (l) => {
          const m = /^close (\\d+)$/.exec(l);
          if (m) handles[Number(m[1])].close(() => process.stdout.write('closed\\n'));
        });
      })().catch((e) => { process.stderr.write(String(e)); process.exit(1); });
    `;
    const child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) throw new Error('socket holder exited before reporting its sockets');
    return new SocketHolder(child, lines, JSON.parse(first.value) as HeldSocket[]);
  }

  async close(index: number): Promise<void> {
    this.child.stdin!.write(`close ${index}\n`);
    const r = await this.lines.next();
    if (r.value !== 'closed') throw new Error(`socket holder said ${String(r.value)}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** "tcp 0.0.0.0 22" keys from `ss -ltnuH`; "*" stays "*" (ss prints it for a dual-stack wildcard). */
export function parseSsListeners(out: string): string[] {
  const keys: string[] = [];
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    const [netid, , , , local] = f;
    const cut = local.lastIndexOf(':');
    let address = local
      .slice(0, cut)
      .replace(/^\[|\]$/g, '')
      .replace(/%.*$/, '');
    if (address.startsWith('::ffff:') || address.startsWith('::FFFF:')) address = address.toLowerCase();
    keys.push(`${netid} ${address} ${local.slice(cut + 1)}`);
  }
  return keys.sort();
}

export function ssListeners(): string[] {
  return parseSsListeners(execFileSync('ss', ['-ltnuH'], { encoding: 'utf8' }));
}

/**
 * A Python process with a TCP listener that never calls accept(): backlog `backlog`, and
 * `clients` connections it opens to itself, which wait in the accept queue. Python, not Node:
 * Node accepts every connection as soon as it can.
 */
export class Stuck {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(address: string, backlog: number, clients: number, prefix: string[] = []): Promise<Stuck> {
    const code = [
      'import socket, sys',
      `addr, backlog, n = ${JSON.stringify(address)}, ${backlog}, ${clients}`,
      "fam = socket.AF_INET6 if ':' in addr else socket.AF_INET",
      'srv = socket.socket(fam, socket.SOCK_STREAM)',
      'srv.bind((addr, 0))',
      'srv.listen(backlog)',
      'port = srv.getsockname()[1]',
      'held = []',
      'for _ in range(n):',
      '    c = socket.socket(fam, socket.SOCK_STREAM)',
      '    c.connect((addr, port))',
      '    held.append(c)',
      'print(port, flush=True)',
      'sys.stdin.read()',
    ].join('\n');
    const [cmd, ...args] = [...prefix, 'python3', '-c', code];
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    const first = await readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]().next();
    if (first.done) throw new Error('the stuck listener exited before reporting its port');
    return new Stuck(child, Number(first.value));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin!.end();
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** Recv-Q and Send-Q of a TCP listener as `ss -ltnH` prints them. */
export function ssQueue(port: number, netns?: string): { recvQ: number; sendQ: number } {
  const cmd = netns
    ? ['ip', 'netns', 'exec', netns, 'ss', '-ltnH', `sport = :${port}`]
    : ['ss', '-ltnH', `sport = :${port}`];
  const out = execFileSync(cmd[0], cmd.slice(1), { encoding: 'utf8' }).trim().split(/\s+/);
  return { recvQ: Number(out[1]), sendQ: Number(out[2]) };
}

/** Waits until `ss` shows the listener's Recv-Q at `queue` (the last ACKs may still be in flight). */
export async function untilSsQueue(
  port: number,
  queue: number,
  netns?: string,
): Promise<{ recvQ: number; sendQ: number }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const got = ssQueue(port, netns);
    if (got.recvQ === queue || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 20));
  }
}
