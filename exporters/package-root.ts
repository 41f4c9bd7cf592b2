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

export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
