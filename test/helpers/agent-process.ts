// Starts the built agent (dist/) as a child process on a free loopback port.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const MAIN = path.join(__dirname, '..', '..', 'dist', 'agent', 'main.js');

/** The node flags of the agent's launcher line (`#!/usr/bin/env -S node …` atop agent/main.ts). */
export function launcherFlags(): string[] {
  const first = readFileSync(path.join(__dirname, '..', '..', 'agent', 'main.ts'), 'utf8').split('\n', 1)[0];
  const m = /^#!\/usr\/bin\/env -S node((?: --[a-z-]+=\S+)*)$/.exec(first);
  if (!m) throw new Error(`agent/main.ts does not start with a node launcher line: ${first}`);
  return m[1].trim().split(' ').filter(Boolean);
}

export interface AgentProcess {
  proc: ChildProcessWithoutNullStreams;
  base: string;
  port: number;
  logs: () => string;
  /** Sends SIGTERM and resolves with the exit code and how long it took. */
  stop: () => Promise<{ code: number | null; ms: number }>;
}

/** `command` is what starts the agent (default: this Node on dist/); the flags follow it. */
export async function startAgent(
  configFile: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
  command: string[] = [process.execPath, MAIN],
): Promise<AgentProcess> {
  const proc = spawn(
    command[0],
    [
      ...command.slice(1),
      `--config.file=${configFile}`,
      '--web.listen-address=127.0.0.1:0',
      '--log.format=json',
      ...args,
    ],
    { env: { ...process.env, ...env } },
  );
  let logs = '';
  proc.stderr.on('data', (d: Buffer) => (logs += d.toString()));
  proc.stdout.on('data', (d: Buffer) => (logs += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent did not start:\n${logs}`)), 15000);
    const check = (): void => {
      const line = logs.split('\n').find((l) => l.includes('"msg":"listening"'));
      const m = line ? /"address":"[^"]*:(\d+)"/.exec(line) : null;
      if (m) {
        clearTimeout(timer);
        proc.stderr.off('data', check);
        resolve(Number(m[1]));
      }
    };
    proc.stderr.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${code}:\n${logs}`));
    });
  });
  return {
    proc,
    port,
    base: `http://127.0.0.1:${port}`,
    logs: () => logs,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) {
          resolve({ code: proc.exitCode, ms: 0 });
          return;
        }
        const t0 = Date.now();
        proc.removeAllListeners('exit');
        proc.once('exit', (code) => resolve({ code, ms: Date.now() - t0 }));
        proc.kill('SIGTERM');
      }),
  };
}
