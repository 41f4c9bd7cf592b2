// The built entry (npm run build, scripts/bundle.js): dist/agent/main.js starts one bundled file,
// bundle.js, with V8's code cache of it. What the agent loads by itself up to its first answered
// scrape is that file (the generated config validator inside), no module of dist/ one by one, and none
// of the dependencies the bundle leaves for later (body-parser, mime-types, qs, tedious, …); the
// routes that need mime-types load it and answer as before. The cache is used with the launcher's
// node flags, rejected by V8 with others, refused when made from another bundle.js, and the agent
// starts the same in every case.
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MAIN, launcherFlags, startAgent } from '../helpers/agent-process';

const ROOT = path.join(__dirname, '..', '..');
const DIST = path.join(ROOT, 'dist');
/** The launcher's node flags (those the code cache was made with; main.js keeps the line). */
const FLAGS = launcherFlags();

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'portprobe-bundle-'));
  // Written by the agent's process at exit: every file in its module cache.
  writeFileSync(
    path.join(dir, 'record.js'),
    `process.once('exit', () => require('fs').writeFileSync(process.env.RECORD_TO, JSON.stringify({ files: Object.keys(require.cache), builtins: process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)) })));\n`,
  );
  writeFileSync(
    path.join(dir, 'closed.yml'),
    'modules: {t: {prober: tcp, timeout: 1s}}\ntargets: [{name: closed, module: t, address: "127.0.0.1:9"}]\n',
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the agent with the recorder, asks `paths`, stops it; returns the files it had loaded. */
async function loadedAfter(
  paths: string[],
): Promise<{ files: string[]; builtins: string[]; answers: [number, string | null, string | null][] }> {
  const out = path.join(dir, `loaded-${paths.length}.json`);
  const agent = await startAgent(path.join(dir, 'closed.yml'), [], { RECORD_TO: out }, [
    process.execPath,
    ...FLAGS,
    '--require',
    path.join(dir, 'record.js'),
    MAIN,
  ]);
  const answers: [number, string | null, string | null][] = [];
  try {
    for (const p of paths) {
      const res = await fetch(`${agent.base}${p}`);
      await res.text();
      answers.push([res.status, res.headers.get('content-type'), res.headers.get('etag')]);
    }
  } finally {
    await agent.stop();
  }
  return { ...(JSON.parse(readFileSync(out, 'utf8')) as { files: string[]; builtins: string[] }), answers };
}

const under = (files: string[], prefix: string): string[] =>
  files.filter((f) => f.startsWith(prefix)).map((f) => path.relative(ROOT, f));
const packages = (files: string[]): Set<string> =>
  new Set(files.map((f) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f)?.[1]).filter((p): p is string => !!p));

describe('the bundled agent', () => {
  it('loads one bundled file up to its first scrape, not the deferred dependencies', async () => {
    const { files, builtins, answers } = await loadedAfter(['/metrics']);
    expect(answers).toEqual([[200, 'text/plain; version=0.0.4; charset=utf-8', null]]);
    // No module here uses TLS, the agent is not sharded, nothing is pushed, signed or ETagged, logs
    // go to stderr: node's modules for those stay unloaded. (child_process and dgram are loaded by
    // node's own listen(), through cluster.)
    const unused = ['tls', 'https', 'crypto', 'assert'];
    expect(builtins.filter((b) => unused.includes(b))).toEqual([]);
    // bundle.js is compiled by main.js itself (vm), so it is not in the module cache.
    // The generated config validator is inside it too.
    expect(under(files, DIST + path.sep)).toEqual([path.join('dist', 'agent', 'main.js')]);
    const loaded = packages(files);
    // qs's own path holds a stand-in until first use (agent/http.ts): its dependency side-channel
    // is what the real qs would have loaded.
    for (const later of [
      'body-parser',
      'mime-types',
      'mime-db',
      'side-channel',
      'tedious',
      'systeminformation',
      'node-cron',
    ]) {
      expect([later, loaded.has(later)]).toEqual([later, false]);
    }
    // The schema compiler stays unloaded: the generated validator is current.
    expect(files.filter((f) => /node_modules\/ajv\/dist\/(2020|core|compile\/index)\.js$/.test(f))).toEqual([]);
    // express, prom-client, pino, yaml are inside the bundle: not loaded from node_modules.
    for (const bundled of ['express', 'prom-client', 'pino', 'yaml']) {
      expect([bundled, loaded.has(bundled)]).toEqual([bundled, false]);
    }
  });

  it('loads mime-types when a route sets a type through express, and answers with the same types', async () => {
    const { files, answers } = await loadedAfter(['/metrics', '/-/healthy', '/', '/nowhere']);
    // (The agent sends no ETags: express's is switched off.)
    expect(answers).toEqual([
      [200, 'text/plain; version=0.0.4; charset=utf-8', null],
      [200, 'text/plain; charset=utf-8', null],
      [200, 'text/html; charset=utf-8', null],
      [404, 'text/plain; charset=utf-8', null],
    ]);
    expect(packages(files).has('mime-types')).toBe(true);
  });
});

describe('the code cache of the bundle', () => {
  const report = (cmd: string[], env: NodeJS.ProcessEnv = {}): { out: string; err: string } => {
    const err = path.join(dir, 'stderr.txt');
    const out = execFileSync('sh', ['-c', '"$@" 2>"$ERR"', 'sh', ...cmd], {
      encoding: 'utf8',
      env: { ...process.env, ...env, PORTPROBE_CODE_CACHE_REPORT: '1', ERR: err },
    });
    return { out, err: readFileSync(err, 'utf8') };
  };
  const version = /^portprobe \S+ \(revision \S+, node v\d+\.\d+\.\d+\)\n$/;

  it('is used with the launcher flags, rejected by V8 with other flags, off when switched off', () => {
    const used = report([process.execPath, ...FLAGS, MAIN, '--version']);
    expect(used.err).toBe('code cache: used\n');
    expect(used.out).toMatch(version);
    const otherFlags = report([process.execPath, MAIN, '--version']);
    expect(otherFlags).toEqual({ out: used.out, err: 'code cache: rejected\n' });
    const off = report([process.execPath, ...FLAGS, MAIN, '--version'], { PORTPROBE_CODE_CACHE: '0' });
    expect(off).toEqual({ out: used.out, err: 'code cache: off\n' });
  });

  it('is refused when made from another bundle.js, and the agent still starts and checks a config', () => {
    // A copy of the installation with one byte more in bundle.js, beside the cache of the original.
    const copy = path.join(dir, 'copy');
    mkdirSync(path.join(copy, 'dist', 'agent'), { recursive: true });
    writeFileSync(path.join(copy, 'package.json'), JSON.stringify({ name: 'portprobe', version: '0.0.0-copy' }));
    cpSync(path.join(DIST, 'config'), path.join(copy, 'dist', 'config'), { recursive: true });
    for (const f of ['main.js', 'bundle.js', 'bundle.cache']) {
      cpSync(path.join(DIST, 'agent', f), path.join(copy, 'dist', 'agent', f));
    }
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
    const main = path.join(copy, 'dist', 'agent', 'main.js');
    expect(report([process.execPath, ...FLAGS, main, '--version']).err).toBe('code cache: used\n');
    appendFileSync(path.join(copy, 'dist', 'agent', 'bundle.js'), '\n');
    const stale = report([process.execPath, ...FLAGS, main, '--version']);
    expect(stale).toEqual({
      out: expect.stringMatching(/^portprobe 0\.0\.0-copy /) as unknown,
      err: 'code cache: stale\n',
    });
    const check = report([
      process.execPath,
      ...FLAGS,
      main,
      '--config.check',
      `--config.file=${path.join(dir, 'closed.yml')}`,
    ]);
    expect(check).toEqual({
      out: `${path.join(dir, 'closed.yml')}: OK (1 modules, 1 targets)\n`,
      err: 'code cache: stale\n',
    });
    rmSync(path.join(copy, 'dist', 'agent', 'bundle.cache'));
    expect(report([process.execPath, ...FLAGS, main, '--version']).err).toBe('code cache: absent\n');
  });
});
