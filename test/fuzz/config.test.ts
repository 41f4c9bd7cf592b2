// The config loader reads files people write by hand and edit under pressure: whatever the
// bytes, it returns a config or a ConfigError, never anything else, and never hangs.
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../config/load';
import { loadWebConfig } from '../../agent/web-config';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);

function onlyConfigErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const line of e.errors) {
      expect(typeof line).toBe('string');
      expect(line.length).toBeGreaterThan(0);
    }
  }
}

// Values shaped like a config: right keys, wrong or right types at every depth.
const scalar = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('15s', '1m', 'tcp', 'ftp', 'mssql', '${X}', '127.0.0.1:21'),
);
const keys = fc.constantFrom(
  'global',
  'modules',
  'targets',
  'sockets',
  'probe_api',
  'interval',
  'timeout',
  'prober',
  'tcp',
  'ftp',
  'mssql',
  'name',
  'module',
  'address',
  'labels',
  'password',
  'password_file',
  'data_channel',
  'tls',
  'queries',
  'expect',
  'x',
);
const tree = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: 'small' },
    scalar,
    fc.array(tie('node'), { maxLength: 4 }),
    fc.dictionary(keys, tie('node'), { maxKeys: 5 }),
  ),
})).node;

describe('config loader never throws anything but ConfigError', () => {
  it('on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => onlyConfigErrors(() => parseConfig(text, 'fuzz.yml', {}))),
      { numRuns: RUNS },
    );
  });

  it('on config-shaped YAML with wrong types anywhere', () => {
    fc.assert(
      fc.property(fc.dictionary(keys, tree, { maxKeys: 5 }), (obj) =>
        onlyConfigErrors(() => parseConfig(stringify(obj), 'fuzz.yml', { X: 'v' })),
      ),
      { numRuns: RUNS },
    );
  });

  it('on web configs', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-fuzz-web-'));
    const f = path.join(dir, 'web.yml');
    const webKeys = fc.constantFrom(
      'tls_server_config',
      'basic_auth_users',
      'http_server_config',
      'cert_file',
      'key_file',
      'client_auth_type',
      'headers',
      'x',
    );
    const webTree = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        scalar,
        fc.array(tie('node'), { maxLength: 3 }),
        fc.dictionary(webKeys, tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    fc.assert(
      fc.property(fc.dictionary(webKeys, webTree, { maxKeys: 4 }), (obj) => {
        writeFileSync(f, stringify(obj));
        onlyConfigErrors(() => loadWebConfig(f));
      }),
      { numRuns: Math.min(RUNS, 2000) },
    );
  });
});
