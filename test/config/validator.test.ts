// The build writes the config schema's validator as standalone JavaScript so the agent starts
// without the schema compiler. These tests generate it as the build does and hold it to the
// verdicts of the compiled schema, and check that a missing or stale file is never used.
import { mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { buildSchema } from '../../config/schema';
import {
  GENERATED_FILE,
  compileSchema,
  loadGenerated,
  schemaDigest,
  standaloneSource,
  writeStandalone,
} from '../../config/validator';

const ROOT = path.join(__dirname, '..', '..');
const TESTDATA = path.join(ROOT, 'config', 'testdata');

/** A directory outside the tree that still resolves the ajv runtime the generated code requires. */
function scratch(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-validator-'));
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return dir;
}

/** Documents that reach every part of the schema: the test data, the default config, hand-made breakage. */
function documents(): [string, unknown][] {
  const docs: [string, unknown][] = [];
  for (const f of readdirSync(TESTDATA).filter((n) => n.endsWith('.yml'))) {
    try {
      docs.push([f, parseYaml(readFileSync(path.join(TESTDATA, f), 'utf8'))]);
    } catch {
      // invalid-yaml.yml: never reaches the validator
    }
  }
  docs.push(['default.yml', parseYaml(readFileSync(path.join(ROOT, 'config', 'default.yml'), 'utf8'))]);
  docs.push(
    ['empty', {}],
    ['not an object', [1, 2]],
    ['null targets', { targets: null }],
    [
      'bad everything',
      {
        global: { interval: 5, timeout: 'x', concurrency: -1, extra: 1 },
        modules: { m: { prober: 'nope', tcp: { tls: 'yes' } } },
        targets: [{ name: 1 }, 'x'],
        probe_api: { allowed_addresses: 'x' },
      },
    ],
    ['bad labels', { targets: [{ name: 'a', module: 'm', address: 'h:1', labels: { 'bad-name': 'x', ok: 3 } }] }],
  );
  return docs;
}

describe('the generated config validator', () => {
  const dir = scratch();
  const file = writeStandalone(dir);
  const schema = buildSchema();
  const generated = loadGenerated(dir, schema);
  const compiled = compileSchema(schema);

  it('is written where the loader looks for it and records the schema digest', () => {
    expect(path.basename(file)).toBe(GENERATED_FILE);
    expect(readFileSync(file, 'utf8')).toContain(
      `module.exports.schemaDigest = ${JSON.stringify(schemaDigest(schema))};`,
    );
    expect(generated).toBeDefined();
  });

  it.each(documents())("gives the compiled schema's verdict and errors for %s", (_name, doc) => {
    const v = generated as NonNullable<typeof generated>;
    const want = compiled(doc);
    expect(v(doc)).toBe(want);
    const shape = (errs: typeof compiled.errors): unknown =>
      (errs ?? []).map((e) => ({
        path: e.instancePath,
        schemaPath: e.schemaPath,
        keyword: e.keyword,
        params: e.params,
        message: e.message,
        parentSchema: e.parentSchema,
      }));
    expect(shape(v.errors)).toEqual(shape(compiled.errors));
    if (!want) expect((v.errors ?? []).length).toBeGreaterThan(0);
  });

  it('is not used when it was made from another schema', () => {
    const other = { ...schema, title: 'something else' };
    expect(loadGenerated(dir, other)).toBeUndefined();
  });

  it('is not looked for where the build did not write it', () => {
    expect(loadGenerated(mkdtempSync(path.join(tmpdir(), 'portprobe-novalidator-')), schema)).toBeUndefined();
  });

  it('fails loudly when the file is there but broken', () => {
    const broken = mkdtempSync(path.join(tmpdir(), 'portprobe-badvalidator-'));
    writeFileSync(path.join(broken, GENERATED_FILE), 'module.exports = (;\n');
    expect(() => loadGenerated(broken, schema)).toThrow(/Unexpected token/);
  });

  it('is plain JavaScript that needs only the ajv runtime helpers', () => {
    const requires = [...standaloneSource(schema).matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]);
    for (const r of requires) expect(r).toMatch(/^ajv\/dist\/runtime\//);
  });
});
