// The `modules.<name>.ftp` schema, defaults, semantic checks and address rules.
import Ajv2020 from 'ajv/dist/2020';
import { ftpProber, type FtpSettings } from '../../exporters/ftp';
import type { JsonSchema } from '../../exporters/types';
import { probeFtp } from './probe';

const ajv = new Ajv2020({ strict: true, allErrors: true });
const validate = ajv.compile(ftpProber.schema);
const ok = (v: unknown): boolean => validate(v) === true;

test('the schema compiles in strict mode and accepts the defaults', () => {
  const { password, ...plain } = ftpProber.defaults;
  void password;
  expect(ok(plain)).toBe(true);
  expect(ok({})).toBe(true);
});

test('every field carries a description (the schema is published for editors)', () => {
  const missing: string[] = [];
  const walk = (s: JsonSchema, at: string): void => {
    if (typeof s.description !== 'string' || s.description === '') missing.push(at);
    const props = (s.properties ?? {}) as Record<string, JsonSchema>;
    for (const [k, v] of Object.entries(props)) walk(v, `${at}.${k}`);
  };
  walk(ftpProber.schema, 'ftp');
  expect(missing).toEqual([]);
  expect(ftpProber.schema.additionalProperties).toBe(false);
});

test('a full module validates', () => {
  expect(
    ok({
      username: 'probe',
      password_file: '/etc/portprobe/ftp.pass',
      tls: 'explicit',
      tls_config: { ca_file: '/etc/ssl/ca.pem', server_name: 'ftp.example.com' },
      data_channel: ['epsv', 'pasv', 'active'],
      retrieve: 'canary.txt',
      pasv_mismatch: 'follow_control_address',
      active_listen: { address: '192.0.2.10', ports: '50000-50010' },
    }),
  ).toBe(true);
});

test.each([
  ['an inline password', { password: 'hunter2' }],
  ['a ${VAR} with extra text', { password: 'x${FTP_PASSWORD}' }],
  ['an unknown key', { user: 'x' }],
  ['an unknown key under active_listen', { active_listen: { port: 1 } }],
  ['an unknown tls mode', { tls: 'starttls' }],
  ['an unknown data mode', { data_channel: ['epsv', 'extended'] }],
  ['an empty data_channel', { data_channel: [] }],
  ['a repeated data mode', { data_channel: ['pasv', 'pasv'] }],
  ['a bad pasv_mismatch', { pasv_mismatch: 'ignore' }],
  ['a port range with words', { active_listen: { ports: 'high' } }],
  ['a path with a line break (command injection)', { path: 'x\r\nDELE y' }],
  ['a username with a line break', { username: 'a\nPASS b' }],
])('rejects %s', (_what, settings) => {
  expect(ok(settings)).toBe(false);
});

test('accepts a password given as an environment reference', () => {
  expect(ok({ password: '${FTP_PASSWORD}' })).toBe(true);
});

describe('validate', () => {
  const v = (s: Partial<FtpSettings>): string[] => ftpProber.validate?.({ ...ftpProber.defaults, ...s }) ?? [];
  test('defaults are fine', () => expect(v({})).toEqual([]));
  test('path and retrieve together', () => {
    expect(v({ path: '/pub', retrieve: 'x' })).toEqual([
      'retrieve: set either path (LIST) or retrieve (RETR), not both',
    ]);
  });
  test('active_listen without active mode', () => {
    expect(v({ active_listen: { ports: '50000-50001' } })).toEqual([
      'active_listen: set, but data_channel does not include active',
    ]);
  });
  test('active_listen address and range', () => {
    expect(v({ data_channel: ['active'], active_listen: { address: 'agent.local', ports: '50010-50000' } })).toEqual([
      'active_listen.address: "agent.local" is not an IP address',
      'active_listen.ports: "50010-50000": the first port is above the last',
    ]);
  });
});

describe('validateAddress', () => {
  const va = (a: string, tls: FtpSettings['tls'] = 'none'): string | undefined =>
    ftpProber.validateAddress?.(a, { ...ftpProber.defaults, tls });
  test.each(['ftp.example.com', 'ftp.example.com:2121', '192.0.2.1', '[2001:db8::1]:21', '2001:db8::1'])('%s', (a) => {
    expect(va(a)).toBeUndefined();
  });
  test.each(['', 'ftp.example.com:0', 'ftp.example.com:99999', '[2001:db8::1', 'bad host:21'])('rejects "%s"', (a) => {
    expect(va(a)).toEqual(expect.any(String));
  });
});

test('phases and families are declared', () => {
  expect(ftpProber.phases).toEqual([
    'resolve',
    'connect',
    'banner',
    'tls',
    'login',
    'data_epsv',
    'data_pasv',
    'data_active',
    'quit',
  ]);
  const names = ftpProber.metrics.map((m) => m.name);
  expect(names).toEqual(
    expect.arrayContaining([
      'probe_ftp_status_code',
      'probe_ftp_data_channel_success',
      'probe_ftp_data_duration_seconds',
      'probe_ftp_transfer_bytes',
      'probe_ftp_pasv_address_mismatch',
      'probe_ftp_server_info',
      'probe_tls_cert_not_after_timestamp_seconds',
      'probe_tls_version_info',
    ]),
  );
  for (const m of ftpProber.metrics) expect(m.name).toMatch(/^probe_[a-z_]+$/);
});

// Where a target without a port is dialled (whatever answers there, if anything).
describe('default ports', () => {
  test.each([
    ['none', '127.0.0.1:21'],
    ['explicit', '127.0.0.1:21'],
    ['implicit', '127.0.0.1:990'],
  ] as const)('tls: %s → %s', async (tls, peer) => {
    const r = await probeFtp('127.0.0.1', { tls, tls_config: { insecure_skip_verify: true } }, 2);
    expect(r.details?.peer).toBe(peer);
  });
});
