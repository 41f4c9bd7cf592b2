// Where module loading time goes: preloaded with `node -r`, it times every require() (inclusive of
// what that module requires in turn) and, at exit, prints the slowest packages and project files
// as first loaded from outside themselves, plus the total.
// Run (after npm run build):
//   node -r ts-node/register/transpile-only -r ./bench/require-cost.ts -e "require('./dist/agent/main.js')"
//   node -r ts-node/register/transpile-only -r ./bench/require-cost.ts dist/agent/main.js --config.file=config/default.yml --config.check
import Module from 'node:module';
import { performance } from 'node:perf_hooks';

interface Loader {
  _load(request: string, parent: unknown, isMain: boolean): unknown;
  _resolveFilename(request: string, parent: unknown, isMain: boolean): string;
}

const loader = Module as unknown as Loader;
const original = loader._load.bind(loader);
/** Inclusive milliseconds by name: a package (node_modules/<name>) or a project file. */
const costs = new Map<string, number>();
const stack: string[] = [];
const started = performance.now();

/** The package a file belongs to, or the file itself below the project. */
function owner(file: string): string {
  const i = file.lastIndexOf('node_modules/');
  if (i < 0) return file.replace(/^.*\/dist\//, '');
  const rest = file.slice(i + 'node_modules/'.length).split('/');
  return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
}

loader._load = (request: string, parent: unknown, isMain: boolean): unknown => {
  let name = request;
  try {
    name = request.startsWith('node:') ? request : owner(loader._resolveFilename(request, parent, isMain));
  } catch {
    // unresolvable: the load below throws and says why
  }
  // Time counts only where a name is entered from outside itself (no double counting within a package).
  const outer = stack[stack.length - 1] !== name && !stack.includes(name);
  stack.push(name);
  const t = performance.now();
  try {
    return original(request, parent, isMain);
  } finally {
    stack.pop();
    if (outer) costs.set(name, (costs.get(name) ?? 0) + performance.now() - t);
  }
};

process.on('exit', () => {
  const rows = [...costs].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.REQUIRE_COST_TOP ?? 25));
  const out = rows.map(([n, ms]) => `${ms.toFixed(1).padStart(8)} ms  ${n}`);
  out.push(`${(performance.now() - started).toFixed(1).padStart(8)} ms  from the hook to exit`);
  process.stderr.write(`require cost (inclusive; nested names counted inside their parent too):\n${out.join('\n')}\n`);
});
