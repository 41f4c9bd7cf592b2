// A real Prometheus (Debian's package) on a free loopback port with a temp TSDB.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { closedPort } from './net';

export interface PrometheusProcess {
  base: string;
  dir: string;
  logs: () => string;
  query: (q: string) => Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** Polls `q` until `pred` holds for its result, or fails after timeoutMs. */
  waitFor: (
    q: string,
    pred: (r: { metric: Record<string, string>; value: [number, string] }[]) => boolean,
    timeoutMs?: number,
  ) => Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  stop: () => Promise<void>;
}

/** `config` is the prometheus.yml text; rule files can be written into `dir` first via `files`. */
export async function startPrometheus(config: string, files: Record<string, string> = {}): Promise<PrometheusProcess> {
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-prom-'));
  writeFileSync(path.join(dir, 'prometheus.yml'), config);
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  const port = await closedPort();
  const proc: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let logs = '';
  proc.stdout?.on('data', (d: Buffer) => (logs += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`prometheus exited ${proc.exitCode}:\n${logs}`);
    try {
      if ((await fetch(`${base}/-/ready`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`prometheus not ready:\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const query: PrometheusProcess['query'] = async (q) => {
    const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { result: [] } };
    if (body.status !== 'success') throw new Error(`query ${q}: ${body.error}`);
    return body.data?.result ?? [];
  };
  return {
    base,
    dir,
    logs: () => logs,
    query,
    waitFor: async (q, pred, timeoutMs = 20000) => {
      const end = Date.now() + timeoutMs;
      let last: Awaited<ReturnType<typeof query>> = [];
      while (Date.now() < end) {
        last = await query(q);
        if (pred(last)) return last;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`timed out waiting for ${q}; last result ${JSON.stringify(last)}`);
    },
    stop: async () => {
      proc.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
