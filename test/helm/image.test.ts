// The image (helm/image/Dockerfile). No Docker daemon runs here, so the Dockerfile is checked
// statically against the repository and the chart, and the runtime stage's file layout is
// rebuilt in a temp dir and started the way the image's ENTRYPOINT starts it.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CHART, REPO, Renderer } from './harness';

const IMAGE_DIR = path.join(REPO, 'helm', 'image');
const dockerfile = readFileSync(path.join(IMAGE_DIR, 'Dockerfile'), 'utf8');
const ignore = readFileSync(path.join(IMAGE_DIR, 'Dockerfile.dockerignore'), 'utf8');
const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
const values = parseYaml(readFileSync(path.join(CHART, 'values.yaml'), 'utf8'));

/** The node flags of the agent's launcher line (`#!/usr/bin/env -S node …` atop agent/main.ts). */
function launcherFlags(): string[] {
  const first = readFileSync(path.join(REPO, 'agent', 'main.ts'), 'utf8').split('\n', 1)[0];
  const m = /^#!\/usr\/bin\/env -S node((?: --[a-z-]+=\S+)*)$/.exec(first);
  if (!m) throw new Error(`agent/main.ts does not start with a node launcher line: ${first}`);
  return m[1].trim().split(' ').filter(Boolean);
}

test('the image, npm start and the package bin start node with the same flags', () => {
  expect(launcherFlags()).toEqual(['--max-semi-space-size=4', '--heap-growing-percent=50']);
  const start = (pkg.scripts.start as string).split(' ');
  expect(start.slice(0, 1 + launcherFlags().length)).toEqual(['node', ...launcherFlags()]);
  // The compiled bin keeps the line, so an installed `portprobe` runs with the flags too.
  const built = readFileSync(path.join(REPO, pkg.bin.portprobe), 'utf8').split('\n', 1)[0];
  expect(built).toBe(`#!/usr/bin/env -S node ${launcherFlags().join(' ')}`);
});

interface Instruction {
  op: string;
  args: string;
}
/** Dockerfile instructions with line continuations joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const joined = text.replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const m = /^([A-Z]+)\s+(.*)$/.exec(l);
      if (!m) throw new Error(`unparsable Dockerfile line: ${l}`);
      return { op: m[1], args: m[2] };
    });
}

const all = instructions(dockerfile);
const stages: Instruction[][] = [];
for (const i of all) {
  if (i.op === 'FROM') stages.push([]);
  if (stages.length > 0) stages[stages.length - 1].push(i);
}
const runtime = stages[stages.length - 1];
const build = stages[0];

test('is multi-stage on Node 20, and the runtime stage runs no npm and no shell', () => {
  expect(stages.length).toBe(2);
  const args = all.filter((i) => i.op === 'ARG').map((i) => i.args);
  expect(args).toEqual(['NODE_IMAGE=node:20-bookworm-slim', 'BUILD_IMAGE=node:20-bookworm']);
  // The addon is compiled in the build stage: same Node major and Debian release (glibc) as the runtime.
  expect(build[0].args).toBe('${BUILD_IMAGE} AS build');
  expect(runtime[0].args).toBe('${NODE_IMAGE}');
  expect(runtime.filter((i) => i.op === 'RUN')).toEqual([]);
  expect(build.map((i) => i.args).join('\n')).toMatch(/npm ci[\s\S]*npm run build[\s\S]*npm prune --omit=dev/);
  // binding.gyp and the C source are in place before npm ci, which builds the addon from them.
  const ci = build.findIndex((i) => i.op === 'RUN' && i.args.includes('npm ci'));
  const copied = build.slice(0, ci).filter((i) => i.op === 'COPY').flatMap((i) => i.args.split(/\s+/).slice(0, -1));
  expect(copied).toEqual(expect.arrayContaining(['binding.gyp', 'native/']));
});

test('runs as the chart\'s non-root user on the chart\'s port, starting the package bin', () => {
  const user = runtime.find((i) => i.op === 'USER')?.args;
  expect(user).toBe(`${values.podSecurityContext.runAsUser}:${values.podSecurityContext.runAsGroup}`);
  expect(values.podSecurityContext.runAsUser).toBeGreaterThan(0);
  expect(runtime.find((i) => i.op === 'EXPOSE')?.args).toBe(String(values.port));
  const entry = JSON.parse(runtime.find((i) => i.op === 'ENTRYPOINT')?.args ?? '[]');
  expect(entry).toEqual(['node', ...launcherFlags(), `/opt/portprobe/${pkg.bin.portprobe}`]);
  expect(runtime.find((i) => i.op === 'WORKDIR')?.args).toBe('/opt/portprobe');
});

test('copies from the context only what exists and what the ignore file lets through', () => {
  const kept = ignore
    .split('\n')
    .filter((l) => l.startsWith('!'))
    .map((l) => l.slice(1).replace(/\/$/, ''));
  expect(ignore.split('\n')).toContain('*');
  const sources = build
    .filter((i) => i.op === 'COPY')
    .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
    .map((s) => s.replace(/\/$/, ''));
  expect(sources.length).toBeGreaterThan(0);
  for (const s of sources) {
    expect([s, existsSync(path.join(REPO, s))]).toEqual([s, true]);
    expect(kept).toContain(s);
  }
  // Everything tsc compiles is in the context.
  const include: string[] = JSON.parse(readFileSync(path.join(REPO, 'tsconfig.json'), 'utf8')).include;
  for (const glob of include) expect(kept).toContain(glob.split('/')[0]);
});

describe('the runtime layout', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'portprobe-image-'));
  const app = path.join(root, 'opt', 'portprobe');
  let renderer: Renderer;

  beforeAll(() => {
    const main = path.join(REPO, pkg.bin.portprobe);
    if (!existsSync(main)) throw new Error(`${pkg.bin.portprobe} is missing: run npm run build first`);
    // The runtime stage's COPY lines, replayed.
    for (const i of runtime.filter((x) => x.op === 'COPY')) {
      const parts = i.args.replace(/^--from=build\s+/, '').split(/\s+/);
      const dest = path.join(app, parts.pop() as string);
      for (const src of parts) {
        const from = path.join(REPO, path.relative('/src', src));
        // Docker's rules: a directory's contents go into dest; a file goes into dest/ or to dest.
        const isDir = statSync(from).isDirectory();
        const to = !isDir && (parts.length > 1 || dest.endsWith('/')) ? path.join(dest, path.basename(from)) : dest;
        mkdirSync(path.dirname(to), { recursive: true });
        if (path.basename(from) === 'node_modules') symlinkSync(from, to.replace(/\/$/, ''));
        else cpSync(from, to.replace(/\/$/, ''), { recursive: true });
      }
    }
    renderer = Renderer.build();
  }, 180_000);
  afterAll(() => {
    renderer?.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  const run = (args: string[]): { status: number | null; out: string } => {
    const entry = JSON.parse(runtime.find((i) => i.op === 'ENTRYPOINT')?.args ?? '[]') as string[];
    const r = spawnSync(entry[0] === 'node' ? process.execPath : entry[0], [...entry.slice(1, -1), path.join(root, entry[entry.length - 1]), ...args], {
      cwd: app,
      encoding: 'utf8',
      timeout: 20_000,
    });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };

  test('--version names the package version', () => {
    const r = run(['--version']);
    expect([r.status, r.out]).toEqual([0, expect.stringContaining(pkg.version)]);
  });

  test('the default CMD config passes --config.check', () => {
    const cmd = JSON.parse(runtime.find((i) => i.op === 'CMD')?.args ?? '[]') as string[];
    const args = cmd.map((a) => a.replace('/opt/portprobe', app));
    const r = run([...args, '--config.check']);
    expect([r.status, r.out]).toEqual([0, expect.any(String)]);
  });

  test('the agent in the image loads the arrival-stamp addon from where the image puts it', () => {
    const r = spawnSync(process.execPath, ['-e', "process.stdout.write(String(require('./dist/exporters/net/arrival').arrivalStampsEnabled()))"], {
      cwd: app,
      encoding: 'utf8',
    });
    expect([r.status, r.stdout]).toEqual([0, 'true']);
  });

  test('the chart\'s default ConfigMap passes --config.check', () => {
    const cm = renderer.render([]).objects.find((o) => o.kind === 'ConfigMap');
    const file = path.join(root, 'portprobe.yml');
    writeFileSync(file, cm?.data['portprobe.yml']);
    const r = run([`--config.file=${file}`, '--config.check']);
    expect([r.status, r.out]).toEqual([0, expect.any(String)]);
  });
});
