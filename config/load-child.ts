// The process side of loadConfigFileOffThread (load-async.ts): started with fork, it is told which
// file to read, parses and checks it as loadConfigFile does, and hands the targets over in batches,
// one batch per request. Everything it allocated goes away when it exits.
import { readFileSync } from 'node:fs';
import { ConfigError, parseConfigParts } from './load';

interface Job {
  file: string;
  env: NodeJS.ProcessEnv;
  batch: number;
}

function send(m: unknown): void {
  (process.send as (m: unknown) => boolean)(m);
}

function run(job: Job): void {
  let text: string;
  let targets: unknown[];
  try {
    try {
      text = readFileSync(job.file, 'utf8');
    } catch (e) {
      throw new ConfigError([
        `${job.file}: cannot read config: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      ]);
    }
    const { config, raw } = parseConfigParts(text, job.file, job.env);
    const head = { ...(raw as Record<string, unknown>) };
    delete head.targets;
    targets = config.targets;
    send({ head });
  } catch (e) {
    const isConfig = e instanceof ConfigError;
    send({ errors: isConfig ? e.errors : [String((e as Error).message)], config: isConfig });
    return;
  }
  let next = 0;
  process.on('message', () => {
    if (next >= targets.length) return send({ done: true });
    send({ targets: targets.slice(next, next + job.batch) });
    next += job.batch;
  });
}

if (require.main === module && process.send) {
  process.once('message', (job: Job) => run(job));
  // The agent gone: nothing left to hand over.
  process.on('disconnect', () => process.exit(0));
}
