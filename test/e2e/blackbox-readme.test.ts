// The README's "Coming from blackbox_exporter" example, run as written: its portprobe.yml and its
// prometheus.yml (scrape_configs with the blackbox relabelling) are taken from README.md byte for
// byte, and a real Prometheus scrapes a real agent with them. Both run in a network namespace
// where the example's host names resolve (/etc/hosts of the namespace) and where port 9821 is
// free: files.example.org and sql.example.org accept connections, mail.example.org refuses.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MAIN } from '../helpers/agent-process';
import { createNetns, type Netns } from '../helpers/netns';
import { markedBlocks } from '../helpers/readme';

jest.setTimeout(120_000);

const README = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
const fileBlock = (name: string): string => {
  const found = markedBlocks(README).filter((b) => b.kind === 'file' && b.name === name);
  if (found.length !== 1)
    throw new Error(`README.md: expected one "readme-test: file ${name}" block, found ${found.length}`);
  return `${found[0].body}\n`;
};

const HOSTS: Record<string, { ip: string; listen?: number }> = {
  'files.example.org': { ip: '192.0.2.21', listen: 21 },
  'sql.example.org': { ip: '192.0.2.22', listen: 1433 },
  'mail.example.org': { ip: '192.0.2.23' },
};

type Sample = { metric: Record<string, string>; value: [number, string] };

describe("the README's blackbox-style scrape_configs, with a real Prometheus and agent", () => {
  let ns: Netns;
  let dir: string;
  const children: ChildProcess[] = [];
  let promPort = 0;
  let logs = '';

  const start = (argv: string[], cwd: string): ChildProcess => {
    const c = spawn('ip', ['netns', 'exec', ns.name, ...argv], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout?.on('data', (b: Buffer) => (logs += b.toString()));
    c.stderr?.on('data', (b: Buffer) => (logs += b.toString()));
    children.push(c);
    return c;
  };

  /** An instant query, run from inside the namespace (Prometheus listens there). */
  const query = async (q: string): Promise<Sample[]> => {
    const r = await ns.exec(
      ['curl', '-sS', '--get', '--data-urlencode', `query=${q}`, `http://127.0.0.1:${promPort}/api/v1/query`],
      10_000,
    );
    if (r.code !== 0) return [];
    const body = JSON.parse(r.stdout) as { status: string; data?: { result: Sample[] } };
    return body.status === 'success' ? (body.data?.result ?? []) : [];
  };

  const waitFor = async (q: string, pred: (r: Sample[]) => boolean, ms = 60_000): Promise<Sample[]> => {
    const until = Date.now() + ms;
    let last: Sample[] = [];
    while (Date.now() < until) {
      last = await query(q);
      if (pred(last)) return last;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`timed out waiting for ${q}; last ${JSON.stringify(last)}\n${logs.slice(-4000)}`);
  };

  beforeAll(async () => {
    ns = createNetns('bbreadme');
    dir = mkdtempSync(path.join(tmpdir(), 'portprobe-bbreadme-'));
    const etc = path.join('/etc/netns', ns.name);
    mkdirSync(etc, { recursive: true });
    writeFileSync(
      path.join(etc, 'hosts'),
      ['127.0.0.1 localhost', ...Object.entries(HOSTS).map(([h, { ip }]) => `${ip} ${h}`), ''].join('\n'),
    );
    for (const { ip, listen } of Object.values(HOSTS)) {
      execFileSync('ip', ['-n', ns.name, 'addr', 'add', `${ip}/32`, 'dev', 'lo']);
      if (listen)
        start([process.execPath, '-e', `require('net').createServer((s)=>s.destroy()).listen(${listen},'${ip}')`], dir);
    }
    writeFileSync(path.join(dir, 'portprobe.yml'), fileBlock('portprobe.yml'));
    writeFileSync(path.join(dir, 'prometheus.yml'), fileBlock('prometheus.yml'));
    start([process.execPath, MAIN, `--config.file=${path.join(dir, 'portprobe.yml')}`], dir);
    promPort = 9090;
    start(
      [
        'prometheus',
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      dir,
    );
    await waitFor('vector(1)', (r) => r.length === 1, 30_000);
  });

  afterAll(async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
          }),
      ),
    );
    ns?.remove();
    if (ns) rmSync(path.join('/etc/netns', ns.name), { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('every address of the target list becomes an instance with its own probe_success', async () => {
    const r = await waitFor('probe_success{job="portprobe_tcp"}', (x) => x.length === 3);
    const byInstance = Object.fromEntries(r.map((s) => [s.metric.instance, s]));
    expect(Object.keys(byInstance).sort()).toEqual([
      'files.example.org:21',
      'mail.example.org:25',
      'sql.example.org:1433',
    ]);
    expect(byInstance['files.example.org:21'].value[1]).toBe('1');
    expect(byInstance['sql.example.org:1433'].value[1]).toBe('1');
    expect(byInstance['mail.example.org:25'].value[1]).toBe('0');
    // Blackbox-style: the labels are Prometheus' (job, instance), none from the agent.
    for (const s of r) expect(Object.keys(s.metric).sort()).toEqual(['__name__', 'instance', 'job']);
  });

  it('the scrape reached the agent (up 1) and the failed rung is a series too', async () => {
    const up = await waitFor('up{job="portprobe_tcp"}', (x) => x.length === 3);
    for (const s of up) expect(s.value[1]).toBe('1');
    const failed = await waitFor('probe_failure_info{job="portprobe_tcp"}', (x) => x.length === 1);
    expect(failed[0].metric).toMatchObject({ instance: 'mail.example.org:25', phase: 'connect', reason: 'refused' });
    const connect = await waitFor(
      'probe_phase_duration_seconds{job="portprobe_tcp",phase="connect"}',
      (x) => x.length === 3,
    );
    expect(connect.map((s) => s.metric.instance).sort()).toEqual([
      'files.example.org:21',
      'mail.example.org:25',
      'sql.example.org:1433',
    ]);
  });
});
