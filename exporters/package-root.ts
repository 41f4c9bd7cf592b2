// Finds the installation's root (the folder with portprobe's package.json), whether running
// from dist/ or from the TypeScript sources.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string };
      if (pkg.name === 'portprobe') return (root = dir);
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the portprobe installation root');
    dir = up;
  }
}

/**
 * A module of this program that is started on its own (a worker thread, a child process) or loaded
 * by path, by its path under the sources without extension ('config/load-child'): the compiled
 * file under dist/ when running compiled, the TypeScript file when running from the sources (tests,
 * benchmarks through ts-node). Not relative to the caller's own file: the built agent's entry is one
 * bundled file (scripts/bundle.js), in dist/agent/, whatever the caller's place in the sources.
 */
export function ownModule(rel: string): string {
  const fromSources = path.extname(__filename) === '.ts';
  return path.join(packageRoot(), fromSources ? '' : 'dist', `${rel}${fromSources ? '.ts' : '.js'}`);
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
