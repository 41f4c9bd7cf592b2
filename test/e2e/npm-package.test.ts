// The npm package as a user gets it: `npm pack` of this repository, then `npm install -g` of the
// tarball into scratch prefixes, without a C compiler, with a compiler that fails, with scripts
// ignored and with a working compiler. Every installed copy must run and probe; only the last one
// may (and must) date probes with the native addon. Also: the tarball's contents, and the lockfile
// that a fresh `npm install` must leave as it is.
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAgent } from '../helpers/agent-process';
import { listen } from '../helpers/net';
import { readPackageJson } from '../helpers/package-json';

jest.setTimeout(180_000);

const REPO = path.join(__dirname, '..', '..');
const pkg = readPackageJson(REPO);
const scratch = mkdtempSync(path.join(tmpdir(), 'portprobe-npm-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** npm's own script, run with this Node, so a PATH without compilers still runs npm. */
const NPM_CLI = realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());

/** The node-gyp that npm ships and runs for install scripts. */
const NODE_GYP = path.join(path.dirname(NPM_CLI), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
/** The running Node's install prefix, whose include/node has its headers. */
const NODE_PREFIX = path.dirname(path.dirname(realpathSync(process.execPath)));

function npm(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  const r = spawnSync(process.execPath, [NPM_CLI, '--no-audit', '--no-fund', '--no-update-notifier', ...args], {
    cwd: opts.cwd ?? REPO,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    timeout: 170_000,
  });
  if (r.error) throw r.error;
  return r;
}

/** The packed tarball (scripts ignored: the pretest step has built dist/). */
let tarball: string;
let packed: string[];
/** The tarball unpacked. */
let unpacked: string;

beforeAll(() => {
  if (!existsSync(path.join(REPO, pkg.bin.portprobe)))
    throw new Error(`${pkg.bin.portprobe} is missing: run npm run build first`);
  const r = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', scratch]);
  expect([r.status, r.stderr]).toEqual([0, expect.any(String)]);
  const [info] = JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(scratch, info.filename);
  packed = info.files.map((f) => f.path).sort();
  unpacked = path.join(scratch, 'unpacked');
  mkdirSync(unpacked);
  execFileSync('tar', ['-xzf', tarball, '-C', unpacked]);
});

describe('the tarball', () => {
  test('carries the built agent, its default config and schema, the addon sources and their build script, LICENSE and README', () => {
    const wanted = [
      pkg.bin.portprobe,
      pkg.main,
      'config/default.yml',
      'config/portprobe.schema.json',
      'binding.gyp',
      'native/arrival.c',
      'native/build.js',
      'LICENSE',
      'README.md',
      'package.json',
    ];
    for (const f of wanted) expect([f, packed.includes(f)]).toEqual([f, true]);
    // The install script is one the tarball carries.
    expect(pkg.scripts.install).toBe('node native/build.js');
    // Every source file binding.gyp compiles is in the tarball.
    for (const src of readFileSync(path.join(REPO, 'binding.gyp'), 'utf8').match(/native\/[\w.-]+\.c/g) ?? []) {
      expect([src, packed.includes(src)]).toEqual([src, true]);
    }
  });

  test('carries no source maps, TypeScript sources, tests or build output', () => {
    const stray = packed.filter((f) => /\.(map|ts|node)$/.test(f) || /^(test|bench|build|node_modules|helm)\//.test(f));
    expect(stray).toEqual([]);
    // No compiled file points at a map it does not have.
    const pointing = packed.filter(
      (f) => f.endsWith('.js') && readFileSync(path.join(unpacked, 'package', f), 'utf8').includes('sourceMappingURL'),
    );
    expect(pointing).toEqual([]);
  });

  test('every require in it resolves: relative ones to a shipped file, bare ones to Node or a dependency; every dependency is required', () => {
    const deps = Object.keys(pkg.dependencies);
    const used = new Set<string>();
    const problems: string[] = [];
    for (const f of packed.filter((p) => p.endsWith('.js'))) {
      const text = readFileSync(path.join(unpacked, 'package', f), 'utf8');
      for (const m of text.matchAll(/\brequire(?:\.resolve)?\((["'])([^"']+)\1\)/g)) {
        const spec = m[2];
        if (spec.startsWith('.')) {
          const base = path.posix.join(path.posix.dirname(f), spec);
          if (![base, `${base}.js`, `${base}.json`, `${base}/index.js`].some((c) => packed.includes(c)))
            problems.push(`${f}: ${spec}`);
        } else if (spec.startsWith('node:') || builtinModules.includes(spec)) {
          continue;
        } else {
          const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
          if (deps.includes(name)) used.add(name);
          else problems.push(`${f}: ${spec} is not a dependency`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(deps.filter((d) => !used.has(d))).toEqual([]);
  });

  test('LICENSE is the Apache License 2.0 that package.json names', () => {
    expect(pkg.license).toBe('Apache-2.0');
    const text = readFileSync(path.join(unpacked, 'package', 'LICENSE'), 'utf8');
    expect(text).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004\s/);
    expect(text).toContain('TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION');
    expect(text).toContain('END OF TERMS AND CONDITIONS');
  });
});

test('npm install in a fresh copy leaves package-lock.json byte for byte as committed', () => {
  const dir = path.join(scratch, 'clone');
  mkdirSync(dir);
  const lock = readFileSync(path.join(REPO, 'package-lock.json'));
  writeFileSync(path.join(dir, 'package.json'), readFileSync(path.join(REPO, 'package.json')));
  writeFileSync(path.join(dir, 'package-lock.json'), lock);
  // Both ways npm may be set up: with and without resolved URLs in lockfiles.
  for (const omit of ['true', 'false']) {
    const r = npm(
      [
        'install',
        '--package-lock-only',
        '--ignore-scripts',
        '--prefer-offline',
        `--omit-lockfile-registry-resolved=${omit}`,
      ],
      { cwd: dir },
    );
    expect([omit, r.status, r.stderr]).toEqual([omit, 0, expect.any(String)]);
    const after = readFileSync(path.join(dir, 'package-lock.json'));
    expect([omit, after.equals(lock)]).toEqual([omit, true]);
  }
  const root = (
    JSON.parse(lock.toString('utf8')) as { packages: Record<string, { engines?: unknown; dependencies?: unknown }> }
  ).packages[''];
  expect(root.engines).toEqual(pkg.engines);
  expect(root.dependencies).toEqual(pkg.dependencies);
});

describe('npm install -g of the tarball', () => {
  let up: Awaited<ReturnType<typeof listen>>;
  let config: string;
  beforeAll(async () => {
    up = await listen();
    config = path.join(scratch, 'portprobe.yml');
    writeFileSync(
      config,
      [
        'global: {interval: 1s}',
        'modules: {tcp_connect: {prober: tcp, timeout: 900ms}}',
        'targets:',
        `  - {name: local, module: tcp_connect, address: "127.0.0.1:${up.port}"}`,
      ].join('\n'),
    );
  });
  afterAll(async () => up?.close());

  /** A bin directory with only node and sh (npm runs scripts with it): no cc, gcc, g++, make or python3. */
  function nodeOnlyPath(): string {
    const bin = path.join(scratch, 'node-only-bin');
    if (!existsSync(bin)) {
      mkdirSync(bin);
      symlinkSync(process.execPath, path.join(bin, 'node'));
      symlinkSync('/bin/sh', path.join(bin, 'sh'));
    }
    for (const tool of ['cc', 'gcc', 'g++', 'make', 'python3']) {
      expect([tool, spawnSync('/bin/sh', ['-c', `command -v ${tool}`], { env: { PATH: bin } }).status]).toEqual([
        tool,
        127,
      ]);
    }
    return bin;
  }

  /** Installs the tarball into a new prefix; returns the install's output and the package folder. */
  function install(
    name: string,
    env: NodeJS.ProcessEnv,
    flags: string[],
  ): { out: string; dir: string; prefix: string } {
    const prefix = path.join(scratch, name);
    // --allow-scripts: npm versions that hold back dependencies' install scripts must run this one.
    // --foreground-scripts: the script's output is shown, as it is for a user who asks for it.
    const r = npm(
      [
        'install',
        '-g',
        '--prefix',
        prefix,
        '--prefer-offline',
        '--foreground-scripts',
        `--allow-scripts=${tarball}`,
        ...flags,
        tarball,
      ],
      { env },
    );
    const out = `${r.stdout}${r.stderr}`;
    expect([name, r.status, out]).toEqual([name, 0, expect.any(String)]);
    return { out, prefix, dir: path.join(prefix, 'lib', 'node_modules', 'portprobe') };
  }

  /** The lines the install script printed. */
  const scriptLines = (out: string): string[] => out.split('\n').filter((l) => l.startsWith('portprobe: '));

  /** Runs the installed `portprobe` and checks it starts, probes once and serves its own metrics. */
  async function checkInstalled(prefix: string, stampsEnabled: 0 | 1): Promise<void> {
    const bin = path.join(prefix, 'bin', 'portprobe');
    const version = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 20_000 });
    expect([version.status, version.stdout]).toEqual([
      0,
      expect.stringMatching(new RegExp(`^portprobe ${pkg.version.replace(/\./g, '\\.')} `)),
    ]);
    // The installed copy finds its own config (the default) and passes the check.
    const check = spawnSync(bin, ['--config.check'], { encoding: 'utf8', timeout: 20_000 });
    expect([check.status, `${check.stdout}${check.stderr}`]).toEqual([0, expect.any(String)]);
    const once = spawnSync(bin, [`--config.file=${config}`, '--once'], { encoding: 'utf8', timeout: 30_000 });
    expect([once.status, once.stdout]).toEqual([
      0,
      expect.stringContaining('probe_success{target="local",module="tcp_connect"} 1'),
    ]);
    const agent = await startAgent(config, [], {}, [bin]);
    try {
      const metrics = await (await fetch(`${agent.base}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`^portprobe_arrival_stamps_enabled ${stampsEnabled}$`, 'm'));
      expect(metrics).toMatch(
        new RegExp(`^portprobe_build_info\\{version="${pkg.version.replace(/\./g, '\\.')}",`, 'm'),
      );
    } finally {
      await agent.stop();
    }
  }

  test('without a C compiler, g++, make or python3 on PATH: installs, says in one line why the addon is not built, and probes', async () => {
    const { out, dir, prefix } = install('no-compiler', { ...process.env, PATH: nodeOnlyPath() }, []);
    expect(scriptLines(out)).toEqual([
      'portprobe: native addon not built: no C compiler (cc not found); probes are timed on the event loop (portprobe_arrival_stamps_enabled 0) and sockets are read from /proc. Install gcc, g++, make and python3, then reinstall portprobe to build it.',
    ]);
    expect(out).not.toMatch(/gyp/);
    expect(existsSync(path.join(dir, 'build'))).toBe(false);
    await checkInstalled(prefix, 0);
  });

  test('with a compiler that fails (CC=/bin/false): installs, says in one line that the build failed, leaves no build behind, and probes', async () => {
    const { out, dir, prefix } = install('failing-compiler', { ...process.env, CC: '/bin/false' }, []);
    const lines = scriptLines(out);
    const log = path.join(dir, 'native', 'build.log');
    // The reason is the first error of the build: make's, as /bin/false says nothing.
    expect(lines).toEqual([
      expect.stringMatching(
        /^portprobe: native addon not built: the build failed \(make: \*\*\* \[\S+: Release\/obj\.target\/arrival\/native\/arrival\.o\] Error 1\); probes are timed on the event loop \(portprobe_arrival_stamps_enabled 0\) and sockets are read from \/proc\. /,
      ),
    ]);
    expect(lines[0].endsWith(` The build's output is in ${log}.`)).toBe(true);
    expect(out).not.toMatch(/gyp (ERR|info)/);
    // The whole build is in the log it names.
    expect(readFileSync(log, 'utf8')).toMatch(/gyp info using node-gyp[\s\S]*gyp ERR! not ok/);
    expect(existsSync(path.join(dir, 'build'))).toBe(false);
    await checkInstalled(prefix, 0);
  });

  test('with --ignore-scripts: installs without building and probes', async () => {
    const { out, dir, prefix } = install('ignore-scripts', process.env, ['--ignore-scripts']);
    expect(scriptLines(out)).toEqual([]);
    expect(existsSync(path.join(dir, 'build'))).toBe(false);
    await checkInstalled(prefix, 0);
  });

  test('with gcc, make and python3: builds the addon, and the installed agent dates probes with it', async () => {
    const { out, dir, prefix } = install('with-compiler', process.env, []);
    expect(scriptLines(out)).toEqual(['portprobe: native addon built (arrival stamps on)']);
    expect(readdirSync(path.join(dir, 'build', 'Release'))).toContain('arrival.node');
    await checkInstalled(prefix, 1);
  });
});

test("the build script compiles against the running Node's own headers, with no nodedir configured and nothing downloaded", () => {
  expect(existsSync(path.join(NODE_PREFIX, 'include', 'node', 'node_version.h'))).toBe(true);
  const copy = path.join(scratch, 'headers-copy');
  execFileSync('cp', ['-r', path.join(unpacked, 'package'), copy]);
  // No npm configuration at all reaches node-gyp: only where npm's node-gyp is.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  const r = spawnSync(process.execPath, [path.join(copy, 'native', 'build.js')], {
    env: { ...env, npm_config_node_gyp: NODE_GYP },
    encoding: 'utf8',
  });
  expect([r.status, r.stderr]).toEqual([0, 'portprobe: native addon built (arrival stamps on)\n']);
  expect(existsSync(path.join(copy, 'build', 'Release', 'arrival.node'))).toBe(true);
  // node-gyp records the headers it used: these, not a downloaded copy.
  expect(readFileSync(path.join(copy, 'build', 'config.gypi'), 'utf8')).toContain(
    `"nodedir": ${JSON.stringify(NODE_PREFIX)}`,
  );
});

describe('on an OS other than Linux', () => {
  test('the install script builds nothing, says so in one line and succeeds', () => {
    // process.platform is set before the script runs; nothing else about the machine changes.
    const pretend = path.join(scratch, 'pretend-darwin.js');
    writeFileSync(pretend, "Object.defineProperty(process, 'platform', { value: 'darwin' });\n");
    const copy = path.join(scratch, 'os-copy');
    execFileSync('cp', ['-r', path.join(unpacked, 'package'), copy]);
    const r = spawnSync(process.execPath, ['--require', pretend, path.join(copy, 'native', 'build.js')], {
      encoding: 'utf8',
    });
    expect([r.status, r.stdout, r.stderr]).toEqual([
      0,
      '',
      'portprobe: native addon not built: it is Linux-only and this is darwin; probes are timed on the event loop (portprobe_arrival_stamps_enabled 0) and sockets are read from /proc\n',
    ]);
    expect(existsSync(path.join(copy, 'build'))).toBe(false);
  });

  test('binding.gyp compiles nothing when gyp is told the OS is not Linux', () => {
    const copy = path.join(scratch, 'gyp-copy');
    execFileSync('cp', ['-r', path.join(unpacked, 'package'), copy]);
    for (const os of ['mac', 'win']) {
      rmSync(path.join(copy, 'build'), { recursive: true, force: true });
      const r = spawnSync(process.execPath, [NODE_GYP, 'rebuild', `--nodedir=${NODE_PREFIX}`, '--', `-DOS=${os}`], {
        cwd: copy,
        encoding: 'utf8',
      });
      expect([os, r.status, r.stderr.slice(-2000)]).toEqual([os, 0, expect.any(String)]);
      const built = execFileSync('find', [path.join(copy, 'build'), '-name', '*.node', '-o', '-name', '*.o'], {
        encoding: 'utf8',
      });
      expect([os, built]).toEqual([os, '']);
    }
    // And the same invocation for Linux does build it: the condition is what made the difference.
    rmSync(path.join(copy, 'build'), { recursive: true, force: true });
    const linux = spawnSync(process.execPath, [NODE_GYP, 'rebuild', `--nodedir=${NODE_PREFIX}`], {
      cwd: copy,
      encoding: 'utf8',
    });
    expect([linux.status, linux.stderr.slice(-2000)]).toEqual([0, expect.any(String)]);
    expect(existsSync(path.join(copy, 'build', 'Release', 'arrival.node'))).toBe(true);
  });
});
