// Loading a config off the event loop, for reloads: YAML parsing and validation take seconds at
// 100,000 targets and would stop every probe and every scrape meanwhile. A child process
// (load-child.ts) reads, parses and checks the file exactly as loadConfigFile does (same
// messages), then sends the targets in batches, so the agent's thread takes them a few thousand at
// a time between its timers; modules and secrets are rebuilt here from the small rest of the
// document. A process rather than a worker thread: the YAML document of a large file takes
// several hundred MB, and a worker's heap and allocations stayed in the agent's RSS after it
// ended, while a process gives everything back when it exits.
import { statSync } from 'node:fs';
import { setPriority } from 'node:os';
import { ConfigError, assembleConfig, loadConfigFile, type AgentConfig, type TargetConfig } from './load';
import { ownModule } from '../exporters/package-root';

/** Niceness of the loader process. */
export const LOADER_NICE = 15;

/** Targets per message from the loader process. */
export const TARGET_BATCH = 2000;

/**
 * Files smaller than this are read on the agent's thread: a few hundred targets parse in a few
 * milliseconds, less than starting a node process takes.
 */
export const INLINE_BELOW_BYTES = 64 * 1024;

type Message = { head: unknown } | { targets: TargetConfig[] } | { done: true } | { errors: string[]; config: boolean };

/**
 * loadConfigFile in a child process. Rejects with ConfigError as loadConfigFile throws it. Where
 * the loader is not compiled JavaScript (the TypeScript tests), or the file is smaller than
 * `inlineBelow` bytes (or cannot be read: loadConfigFile says why), it runs on this thread instead.
 */
export function loadConfigFileOffThread(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  inlineBelow = INLINE_BELOW_BYTES,
): Promise<AgentConfig> {
  const child = ownModule('config/load-child');
  if (!child.endsWith('.js') || inlineSize(file, inlineBelow)) {
    return Promise.resolve().then(() => loadConfigFile(file, env));
  }
  return new Promise<AgentConfig>((resolve, reject) => {
    // No inherited flags (--inspect, the agent's heap settings); its output is not the agent's.
    // node:child_process on first use (and node:dgram, which it loads): a start never needs it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- see above
    const { fork } = require('node:child_process') as typeof import('node:child_process');
    const proc = fork(child, [], {
      execArgv: [],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    // Background work: on a busy machine the agent's own thread (probes, scrapes) goes first.
    try {
      if (proc.pid !== undefined) setPriority(proc.pid, LOADER_NICE);
    } catch {
      // not permitted here: it runs at the agent's priority
    }
    let head: unknown;
    const targets: TargetConfig[] = [];
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      if (proc.connected) proc.disconnect();
      proc.kill();
      fn();
    };
    const ask = (): void => {
      if (!settled && proc.connected) proc.send('next');
    };
    proc.on('message', (m: Message) => {
      if ('head' in m) {
        head = m.head;
        ask();
      } else if ('targets' in m) {
        for (const t of m.targets) targets.push(t);
        // Timers and I/O due meanwhile run before the next batch is asked for.
        setTimeout(ask, 0);
      } else if ('done' in m) {
        finish(() => {
          try {
            resolve(assembleConfig(head, targets, file, env));
          } catch (e) {
            reject(e);
          }
        });
      } else finish(() => reject(m.config ? new ConfigError(m.errors) : new Error(m.errors.join('\n'))));
    });
    proc.on('error', (e) => finish(() => reject(e)));
    proc.on('exit', (code, signal) =>
      finish(() => reject(new Error(`config loader process exited (${signal ?? code})`))),
    );
    proc.send({ file, env: { ...env }, batch: TARGET_BATCH });
  });
}

function inlineSize(file: string, below: number): boolean {
  if (below <= 0) return false;
  try {
    return statSync(file).size < below;
  } catch {
    return true;
  }
}
