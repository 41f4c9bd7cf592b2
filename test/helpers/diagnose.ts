// Runs `portprobe diagnose` in process, with its stdout (a TTY or not) and stderr collected.
import { PassThrough } from 'node:stream';
import { runDiagnose } from '../../agent/cli/diagnose';

export async function diagnose(args: string[], env: NodeJS.ProcessEnv = {}, tty = false) {
  const stdout = Object.assign(new PassThrough(), { isTTY: tty });
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await runDiagnose(args, { stdout, stderr, env });
  return { code, out, err };
}
