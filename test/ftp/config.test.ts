// The FTP module through the real config loader: schema, defaults, secrets from a file or the
// environment, semantic errors with their field paths, and a probe run with the loaded module.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ftpProber, type FtpSettings } from '../../exporters/ftp';
import { Secret } from '../../exporters/secret';
import { parseConfig } from '../../config/load';
import { CANARY_BODY, makeFixture, type Fixture, type FtpPeer, type PeerUser } from '../peers/ftp/common';
import { pyftpdlibUser, startPyftpdlib } from '../peers/ftp/pyftpdlib';
import { fact } from './probe';
import { errorsOf } from '../helpers/config';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'portprobe-ftpconf-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const load = (yaml: string, env: NodeJS.ProcessEnv = {}) => parseConfig(yaml, path.join(dir, 'portprobe.yml'), env);

test('defaults are merged and a ${VAR} password becomes a Secret', () => {
  const cfg = load(
    [
      'modules:',
      '  f:',
      '    prober: ftp',
      '    ftp:',
      '      username: probe',
      '      password: ${FTP_PW}',
      'targets:',
      '  - {name: a, module: f, address: ftp.example.com}',
    ].join('\n'),
    { FTP_PW: 'sentinel-pw-1' },
  );
  const s = cfg.modules.get('f')?.settings as FtpSettings;
  expect(s.data_channel).toEqual(['epsv', 'pasv']);
  expect(s.tls).toBe('none');
  expect(s.password).toBeInstanceOf(Secret);
  expect(s.password?.reveal()).toBe('sentinel-pw-1');
  expect(JSON.stringify(s)).not.toContain('sentinel-pw-1');
});

test('password_file is read into a Secret', () => {
  const file = path.join(dir, 'ftp.pass');
  writeFileSync(file, 'sentinel-pw-2\n', { mode: 0o600 });
  const cfg = load(
    [
      'modules:',
      '  f:',
      '    prober: ftp',
      '    ftp:',
      '      username: probe',
      `      password_file: ${file}`,
      'targets: []',
    ].join('\n'),
  );
  expect((cfg.modules.get('f')?.settings as FtpSettings).password?.reveal()).toBe('sentinel-pw-2');
});

test('an inline password is rejected without being echoed', () => {
  const errors = errorsOf(() =>
    load(
      ['modules:', '  f:', '    prober: ftp', '    ftp:', '      password: sentinel-pw-3', 'targets: []'].join('\n'),
    ),
  );
  expect(errors.join('\n')).toContain('modules.f.ftp.password');
  expect(errors.join('\n')).not.toContain('sentinel-pw-3');
});

test('semantic errors name the field path', () => {
  const errors = errorsOf(() =>
    load(
      [
        'modules:',
        '  f:',
        '    prober: ftp',
        '    ftp:',
        '      path: /pub',
        '      retrieve: canary.txt',
        'targets: []',
      ].join('\n'),
    ),
  );
  expect(errors.join('\n')).toMatch(/modules\.f\.ftp\.retrieve.*either path \(LIST\) or retrieve \(RETR\)/);
});

test('an unknown key is reported with its line and the fields expected', () => {
  const errors = errorsOf(() =>
    load(['modules:', '  f:', '    prober: ftp', '    ftp:', '      pasive: true', 'targets: []'].join('\n')),
  );
  expect(errors).toEqual([
    expect.stringMatching(/portprobe\.yml:5: modules\.f\.ftp\.pasive: unknown field \(expected one of: .*data_channel/),
  ]);
});

test("a bad target address is reported by the prober's address rule", () => {
  const errors = errorsOf(() =>
    load(
      [
        'modules:',
        '  f:',
        '    prober: ftp',
        '    ftp: {}',
        'targets:',
        '  - {name: a, module: f, address: "ftp.example.com:99999"}',
      ].join('\n'),
    ),
  );
  expect(errors).toEqual([
    expect.stringContaining('targets[0].address: "ftp.example.com:99999": port 99999 is out of range 1-65535'),
  ]);
});

describe('a loaded module probes a real server', () => {
  let fx: Fixture;
  let user: PeerUser;
  let peer: FtpPeer;
  beforeAll(async () => {
    fx = makeFixture('conf');
    user = pyftpdlibUser();
    peer = await startPyftpdlib(fx, { tls: 'explicit' }, user);
  });
  afterAll(async () => {
    await peer?.stop();
    fx?.cleanup();
  });

  test('explicit FTPS, RETR of the canary, password from the environment', async () => {
    const cfg = load(
      [
        'modules:',
        '  f:',
        '    prober: ftp',
        '    timeout: 5s',
        '    ftp:',
        `      username: ${user.name}`,
        '      password: ${FTP_PW}',
        '      tls: explicit',
        '      tls_config:',
        `        ca_file: ${fx.certFile}`,
        '      retrieve: canary.txt',
        '      data_channel: [epsv, pasv, active]',
        'targets:',
        `  - {name: a, module: f, address: "127.0.0.1:${peer.port}"}`,
      ].join('\n'),
      { FTP_PW: user.password },
    );
    const module = cfg.modules.get('f') as {
      name: string;
      prober: string;
      timeoutSeconds: number;
      settings: FtpSettings;
    };
    const target = cfg.targets[0];
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), module.timeoutSeconds * 1000);
    try {
      const r = await ftpProber.run({
        target,
        module,
        signal: ac.signal,
        deadline: Date.now() + module.timeoutSeconds * 1000,
        logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
      });
      expect(r.failure).toBeUndefined();
      expect(r.success).toBe(true);
      for (const mode of ['epsv', 'pasv', 'active'])
        expect(fact(r, 'probe_ftp_transfer_bytes', { mode })).toBe(CANARY_BODY.length);
      expect(fact(r, 'probe_tls_cert_not_after_timestamp_seconds')).toBe(fx.notAfter);
    } finally {
      clearTimeout(timer);
    }
  });
});
