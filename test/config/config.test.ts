import { readFileSync, readdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import Ajv2020 from 'ajv/dist/2020';
import { parse as parseYaml } from 'yaml';
import { loadConfigFile, parseConfig } from '../../config/load';
import { schemaText } from '../../config/write-schema';
import { PROBERS } from '../../exporters';
import { Secret } from '../../exporters/secret';
import { parseDuration } from '../../exporters/duration';
import { errorsOf } from '../helpers/config';

const TESTDATA = path.join(__dirname, '..', '..', 'config', 'testdata');

describe('invalid configs: one exact message each', () => {
  const files = readdirSync(TESTDATA).filter((f) => f.startsWith('invalid-') && f.endsWith('.yml'));
  it('has a table to test', () => {
    expect(files.length).toBeGreaterThanOrEqual(15);
  });
  it.each(files)('%s', (file) => {
    const text = readFileSync(path.join(TESTDATA, file), 'utf8');
    const expected = /^# error: (.*)$/m.exec(text)?.[1].replace('PROBERS', Object.keys(PROBERS).join(', '));
    expect(expected).toBeDefined();
    const errors = errorsOf(() => parseConfig(text, file));
    expect(errors).toEqual([expected]);
  });
});

describe('valid configs', () => {
  it('normalises durations, defaults and labels', () => {
    const cfg = loadConfigFile(path.join(TESTDATA, 'valid-full.yml'));
    expect(cfg.global).toEqual({ intervalMs: 15000, timeoutMs: 5000, concurrency: 32 });
    expect(cfg.modules.get('tcp_connect')?.timeoutSeconds).toBe(5);
    expect(cfg.modules.get('tcp_tls')?.timeoutSeconds).toBe(3);
    expect(cfg.modules.get('tcp_connect')?.settings).toEqual({
      preferred_ip_protocol: 'ip4',
      ip_protocol_fallback: true,
      precise_connect_timing: false,
      tls: false,
      tls_config: {},
    });
    expect(cfg.modules.get('tcp_tls')?.settings).toMatchObject({
      tls: true,
      tls_config: { insecure_skip_verify: true },
    });
    expect(cfg.targets.map((t) => [t.name, t.intervalMs, t.schedule])).toEqual([
      ['sql-primary', 15000, undefined],
      ['web', 60000, undefined],
      ['nightly', 15000, '0 */5 * * * *'],
    ]);
    expect(cfg.targets[0].labels).toEqual({ env: 'prod' });
  });

  it('accepts the built-in default config', () => {
    const cfg = loadConfigFile(path.join(__dirname, '..', '..', 'config', 'default.yml'));
    expect(cfg.targets.length).toBeGreaterThan(0);
  });

  it("takes Prometheus's day, week and year units in durations", () => {
    const cfg = parseConfig(['global:', '  interval: 1d', '  timeout: 1w', ''].join('\n'), 'units.yml');
    expect(cfg.global.intervalMs).toBe(86_400_000);
    expect(cfg.global.timeoutMs).toBe(604_800_000);
    expect(errorsOf(() => parseConfig(['global:', '  interval: 1y2x', ''].join('\n'), 'units.yml'))).toEqual([
      'units.yml:2: global.interval: must be a duration such as 500ms, 15s, 1m or 1h30m',
    ]);
  });

  it('accepts an empty file as "probe nothing"', () => {
    const cfg = parseConfig('', 'empty.yml');
    expect(cfg.targets).toEqual([]);
    expect(cfg.global.intervalMs).toBe(30000);
  });

  it('reports every problem at once, each with its own line', () => {
    const text = ['global:', '  interval: soon', '  timeout: 1x', 'bogus: 1', ''].join('\n');
    expect(errorsOf(() => parseConfig(text, 'multi.yml'))).toEqual(
      [
        'multi.yml:4: bogus: unknown field (expected one of: ' +
          Object.keys((JSON.parse(schemaText()) as { properties: object }).properties).join(', ') +
          ')',
        'multi.yml:2: global.interval: must be a duration such as 500ms, 15s, 1m or 1h30m',
        'multi.yml:3: global.timeout: must be a duration such as 500ms, 15s, 1m or 1h30m',
      ]
        .sort((a, b) => a.localeCompare(b))
        .filter(Boolean)
        .sort((a, b) => order(a) - order(b)),
    );
    function order(s: string): number {
      return Number(/:(\d+):/.exec(s)?.[1]);
    }
  });

  it('names the file when it cannot be read', () => {
    expect(errorsOf(() => loadConfigFile('/nonexistent/portprobe.yml'))).toEqual([
      '/nonexistent/portprobe.yml: cannot read config: ENOENT',
    ]);
  });
});

describe('secrets', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-secret-'));

  it.each(['ftp', 'mssql'])('%s: reads password_file and ${ENV} into Secret objects, rejects inline', (name) => {
    writeFileSync(path.join(dir, 'pw'), 'hunter2-sentinel\n');
    const viaFile = parseConfig(
      `modules:\n  m:\n    prober: ${name}\n    ${name}:\n      username: u\n      password_file: pw\n`,
      path.join(dir, 'c.yml'),
    );
    const s1 = (viaFile.modules.get('m')?.settings as { password: Secret }).password;
    expect(s1).toBeInstanceOf(Secret);
    expect(s1.reveal()).toBe('hunter2-sentinel');
    expect(JSON.stringify(viaFile.modules.get('m'))).not.toContain('hunter2');

    const viaEnv = parseConfig(
      `modules:\n  m:\n    prober: ${name}\n    ${name}:\n      username: u\n      password: \${PP_TEST_PW}\n`,
      path.join(dir, 'c.yml'),
      { PP_TEST_PW: 'from-env-sentinel' },
    );
    expect((viaEnv.modules.get('m')?.settings as { password: Secret }).password.reveal()).toBe('from-env-sentinel');

    const inline = errorsOf(() =>
      parseConfig(
        `modules:\n  m:\n    prober: ${name}\n    ${name}:\n      username: u\n      password: hunter2\n`,
        'c.yml',
      ),
    );
    expect(inline.join('\n')).toContain(`modules.m.${name}.password: must be an environment reference`);
    expect(inline.join('\n')).not.toContain('hunter2');

    const unset = errorsOf(() =>
      parseConfig(
        `modules:\n  m:\n    prober: ${name}\n    ${name}:\n      username: u\n      password: \${PP_UNSET_VAR}\n`,
        'c.yml',
        {},
      ),
    );
    expect(unset).toEqual([`c.yml:6: modules.m.${name}.password: environment variable PP_UNSET_VAR is not set`]);
  });

  it('never echoes a secret from a YAML syntax error on a neighbouring line', () => {
    const text = 'modules:\n  m:\n    prober: tcp\n    pw: "hunter2-sentinel\n  bad: [\n';
    const errors = errorsOf(() => parseConfig(text, 'broken.yml'));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.join('\n')).not.toContain('hunter2');
  });

  it('Secret prints as <secret> everywhere', () => {
    const s = new Secret('sentinel-value');
    expect(String(s)).toBe('<secret>');
    // eslint-disable-next-line @typescript-eslint/restrict-template-expressions -- the point: a Secret in a template shows no value
    expect(`${s}`).toBe('<secret>');
    expect(JSON.stringify({ s })).toBe('{"s":"<secret>"}');
    expect(inspect({ s })).not.toContain('sentinel');
  });
});

describe('published schema', () => {
  const file = path.join(__dirname, '..', '..', 'config', 'portprobe.schema.json');
  it('config/portprobe.schema.json is up to date (npm run schema)', () => {
    expect(readFileSync(file, 'utf8')).toBe(schemaText());
  });
  it('validates the default config and rejects unknown keys', () => {
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(JSON.parse(readFileSync(file, 'utf8')));
    const cfg: unknown = parseYaml(readFileSync(path.join(__dirname, '..', '..', 'config', 'default.yml'), 'utf8'));
    expect(validate(cfg)).toBe(true);
    expect(validate({ ...(cfg as object), nope: 1 })).toBe(false);
  });
});

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['15s', 15000],
    ['1m30s', 90000],
    ['2h', 7200000],
    ['1d', 86_400_000],
    ['2w', 1_209_600_000],
    ['1y', 31_536_000_000],
    ['1d12h', 129_600_000],
    ['1w500ms', 604_800_500],
  ])('%s = %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
  it('rejects other text', () => {
    expect(() => parseDuration('15')).toThrow('"15" is not a duration');
    expect(() => parseDuration('1x')).toThrow('"1x" is not a duration');
    expect(() => parseDuration('1.5h')).toThrow('"1.5h" is not a duration');
    expect(() => parseDuration('')).toThrow('"" is not a duration');
  });
});

describe('every error in one run', () => {
  it('a bad duration does not hide an unknown module (schema and semantic errors together, by line)', () => {
    const text = [
      'global:',
      '  interval: 30 seconds',
      'modules:',
      '  tcp_connect: {prober: tcp, timeout: 5s}',
      'targets:',
      '  - {name: web, module: tcp, address: "www.example.org:443"}',
      '  - {name: db, module: tcp_connect, address: "db.example.org:1433", interval: 1 minute}',
      '',
    ].join('\n');
    expect(errorsOf(() => parseConfig(text, 'bad.yml'))).toEqual([
      'bad.yml:2: global.interval: must be a duration such as 500ms, 15s, 1m or 1h30m',
      'bad.yml:6: targets[0].module: unknown module "tcp" (known: tcp_connect)',
      'bad.yml:7: targets[1].interval: must be a duration such as 500ms, 15s, 1m or 1h30m',
    ]);
  });

  it('an unknown key is dropped for the second pass, which still finds a duplicate name', () => {
    const text = [
      'modules: {m: {prober: tcp, colour: red}}',
      'targets:',
      '  - {name: a, module: m, address: "127.0.0.1:1"}',
      '  - {name: a, module: m, address: "127.0.0.1:2"}',
      '',
    ].join('\n');
    const errors = errorsOf(() => parseConfig(text, 'k.yml'));
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/^k\.yml:1: modules\.m\.colour: unknown field/);
    expect(errors[1]).toBe('k.yml:4: targets[1].name: duplicate target name "a" (also targets[0])');
  });

  it('a rejected required value stops there: no follow-on errors about what it would have defined', () => {
    const text = [
      'modules: {m: {prober: telnet}}',
      'targets:',
      '  - {name: a, module: m, address: "127.0.0.1:1"}',
      '',
    ].join('\n');
    const errors = errorsOf(() => parseConfig(text, 'p.yml'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^p\.yml:1: modules\.m\.prober: must be one of/);
  });

  it('a rejected list element stops there too (indices would shift)', () => {
    const text = [
      'modules: {m: {prober: tcp}}',
      'targets:',
      '  - 42',
      '  - {name: a, module: x, address: "127.0.0.1:1"}',
      '',
    ].join('\n');
    const errors = errorsOf(() => parseConfig(text, 'l.yml'));
    expect(errors.some((e) => e.includes('unknown module'))).toBe(false);
    expect(errors[0]).toMatch(/^l\.yml:3: targets\[0\]/);
  });
});
