// The image's Dockerfile (helm/image/Dockerfile) against the chart and the package, statically.
// test/e2e/image-build.test.ts builds the image for real and runs it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { launcherFlags } from '../helpers/agent-process';
import { BUILD_IMAGE, SLIM_IMAGE } from '../helpers/image';
import { CHART, REPO } from './harness';

const IMAGE_DIR = path.join(REPO, 'helm', 'image');
const dockerfile = readFileSync(path.join(IMAGE_DIR, 'Dockerfile'), 'utf8');
const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
const values = parseYaml(readFileSync(path.join(CHART, 'values.yaml'), 'utf8'));

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

test('builds on the Node 20 bookworm images that test/e2e/image-build.test.ts stands in for', () => {
  const args = all.filter((i) => i.op === 'ARG' && /_IMAGE=/.test(i.args)).map((i) => i.args);
  const short = (name: string): string => name.replace(/^docker\.io\/library\//, '');
  expect(args).toEqual([`NODE_IMAGE=${short(SLIM_IMAGE)}`, `BUILD_IMAGE=${short(BUILD_IMAGE)}`]);
  expect(stages.map((s) => s[0].args)).toEqual(['${BUILD_IMAGE} AS build', '${NODE_IMAGE}']);
});

test("runs as the chart's non-root user on the chart's port, starting the package bin", () => {
  const user = runtime.find((i) => i.op === 'USER')?.args;
  expect(user).toBe(`${values.podSecurityContext.runAsUser}:${values.podSecurityContext.runAsGroup}`);
  expect(values.podSecurityContext.runAsUser).toBeGreaterThan(0);
  expect(runtime.find((i) => i.op === 'EXPOSE')?.args).toBe(String(values.port));
  const entry = JSON.parse(runtime.find((i) => i.op === 'ENTRYPOINT')?.args ?? '[]');
  expect(entry).toEqual(['node', ...launcherFlags(), `/opt/portprobe/${pkg.bin.portprobe}`]);
  expect(runtime.find((i) => i.op === 'WORKDIR')?.args).toBe('/opt/portprobe');
});
