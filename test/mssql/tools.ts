// Runs the independent clients (FreeTDS tsql, nmap) that vouch for the TDS test peer.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program with a hard time limit; a missing program rejects (the test then fails). */
export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} could not be started (${err.message}); see test/mssql/install.sh`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * A copy of nmap's data directory with Debian nmap 7.93's ms-sql-info fixed: in
 * GetTargetInstances the one value GetDiscoveredInstances returns was read as (status,
 * instances), so instances was always nil ("attempt to index a nil value"); and InitScript
 * tested `#output > 0` on a table keyed by instance name, which is always 0, so nothing was
 * printed. Returns the directory and a cleanup function.
 */
export function patchedNmapDatadir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'nmap-data-'));
  cpSync('/usr/share/nmap', dir, { recursive: true });
  const lib = path.join(dir, 'nselib', 'mssql.lua');
  let src = readFileSync(lib, 'utf8');
  const fixes: [string, string][] = [
    [
      'local status, instances = Helper.GetDiscoveredInstances(host, port)\n      if status then',
      'local instances = Helper.GetDiscoveredInstances(host, port)\n      if instances then',
    ],
    [
      'if #output > 0 then\n        return outlib.sorted_by_key(output)',
      'if next(output) then\n        return outlib.sorted_by_key(output)',
    ],
  ];
  for (const [from, to] of fixes) {
    if (!src.includes(from))
      throw new Error(`nselib/mssql.lua does not contain the expected code: ${from.split('\n')[0]}`);
    src = src.replace(from, to);
  }
  writeFileSync(lib, src);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
