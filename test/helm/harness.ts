// Builds the Go render harness (test/helm/render) and renders the chart with it, like
// `helm template`. Go and Debian's sprig and yaml.v3 sources are required: a missing toolchain
// is a failure, not a skip.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

export const REPO = path.resolve(__dirname, '..', '..');
export const CHART = path.join(REPO, 'helm', 'portprobe');
const RENDER_SRC = path.join(__dirname, 'render');
/** Where Debian's golang-*-dev packages put their sources. */
const DEBIAN_GOPATH = '/usr/share/gocode';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each kind has fields of its own, parsed from YAML
  [key: string]: any;
}

export interface Rendered {
  values: Record<string, unknown>;
  objects: Array<K8sObject & { source: string }>;
  notes: string;
}

export function goEnv(workDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GO111MODULE: 'off',
    GOFLAGS: '',
    GOPATH: DEBIAN_GOPATH,
    GOCACHE: process.env.GOCACHE ?? path.join(tmpdir(), 'portprobe-helm-gocache'),
    HOME: process.env.HOME ?? workDir,
  };
}

export class Renderer {
  private constructor(
    readonly dir: string,
    private readonly binary: string,
  ) {}

  /** Compiles the harness into a fresh temp dir. */
  static build(): Renderer {
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-helm-'));
    const binary = path.join(dir, 'render');
    const r = spawnSync('go', ['build', '-o', binary, '.'], { cwd: RENDER_SRC, env: goEnv(dir), encoding: 'utf8' });
    if (r.error) throw new Error(`cannot run go (install golang-go): ${r.error.message}`);
    if (r.status !== 0) throw new Error(`go build of the render harness failed:\n${r.stderr}`);
    return new Renderer(dir, binary);
  }

  /** Renders the chart; throws with the template error when rendering fails. */
  render(
    valueFiles: readonly string[],
    opts: { setStrings?: Record<string, string>; namespace?: string; chart?: string } = {},
  ): Rendered {
    const args = ['-chart', opts.chart ?? CHART, '-name', 'portprobe', '-namespace', opts.namespace ?? 'monitoring'];
    for (const f of valueFiles) args.push('-values', f);
    for (const [k, v] of Object.entries(opts.setStrings ?? {})) args.push('-set-string', `${k}=${v}`);
    const out = execRender(this.binary, args);
    const parsed = JSON.parse(out) as {
      values: Record<string, unknown>;
      manifests: { source: string; content: string }[] | null;
      notes: string;
    };
    const objects: Rendered['objects'] = [];
    for (const m of parsed.manifests ?? []) {
      for (const doc of parseAllDocuments(m.content)) {
        if (doc.errors.length > 0) throw new Error(`${m.source}: YAML error: ${doc.errors[0].message}\n${m.content}`);
        const obj = doc.toJS() as K8sObject | null;
        if (obj === null) continue;
        objects.push({ ...obj, source: m.source });
      }
    }
    return { values: parsed.values, objects, notes: parsed.notes };
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function execRender(binary: string, args: string[]): string {
  const r = spawnSync(binary, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(r.stderr.trim() || `render exited ${r.status}`);
  return r.stdout;
}

export function readText(...parts: string[]): string {
  return readFileSync(path.join(...parts), 'utf8');
}

/** Runs the harness's own Go tests (render/main_test.go); returns go test's output. */
export function goTest(): { status: number | null; out: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-gotest-'));
  try {
    const r = spawnSync('go', ['test', '-count=1', '.'], { cwd: RENDER_SRC, env: goEnv(dir), encoding: 'utf8' });
    if (r.error) throw new Error(`cannot run go (install golang-go): ${r.error.message}`);
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The harness's Go sources are gofmt-clean and pass go vet. */
export function goChecks(): { gofmt: string; vet: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-govet-'));
  try {
    const gofmt = execFileSync('gofmt', ['-l', '.'], { cwd: RENDER_SRC, encoding: 'utf8' });
    const vet = spawnSync('go', ['vet', '.'], { cwd: RENDER_SRC, env: goEnv(dir), encoding: 'utf8' });
    if (vet.error) throw vet.error;
    return { gofmt: gofmt.trim(), vet: vet.status === 0 ? '' : vet.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
