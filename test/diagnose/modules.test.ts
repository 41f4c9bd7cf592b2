// diagnose runs the module the agent would: a configured target, a URL with a configured module,
// and any prober setting through --set, checked by the prober's own schema. Per-mode FTP lines
// come from the per-mode samples; findings are rendered from the result's one list.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { formatJson, formatText, parseSets, planDiagnose, parseDiagnoseArgs } from '../../agent/cli/diagnose';
import { PROBERS } from '../../exporters';
import type { ProbeResult } from '../../exporters/types';
import { diagnose } from '../helpers/diagnose';
import { listen } from '../helpers/net';
import { startTdsPeer } from '../peers/tds/server';
import { CANARY_NAME, makeFixture, type Fixture, type FtpPeer } from '../peers/ftp/common';
import { startVsftpd } from '../peers/ftp/vsftpd';
import { startHostile, type HostilePeer } from '../peers/ftp/hostile';

jest.setTimeout(30000);

interface JsonOut {
  success: boolean;
  module: string;
  phases: { phase: string; status: string }[];
  findings: { code: string; severity: string; message: string; advice?: string }[];
  facts: { metric: string; labels?: Record<string, string>; value: number }[];
  failure?: { phase: string; reason: string; advice?: string };
}

const statuses = (j: JsonOut): Record<string, string> => Object.fromEntries(j.phases.map((p) => [p.phase, p.status]));

function configFile(lines: string[]): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-diag-cfg-'));
  const f = path.join(dir, 'c.yml');
  writeFileSync(f, `${lines.join('\n')}\n`);
  return f;
}

describe('diagnose --help', () => {
  it('documents every flag it accepts, and exits 0', async () => {
    const r = await diagnose(['--help']);
    expect(r.code).toBe(0);
    for (const flag of [
      '--config.file',
      '--module',
      '--set',
      '--ping[=required]',
      '--timeout',
      '--password-file',
      '--insecure',
      '--output',
    ]) {
      expect(r.out).toContain(flag);
    }
  });

  it('every flag --help names is accepted, and the README diagnose section names it too', async () => {
    const help = (await diagnose(['--help'])).out;
    const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### `portprobe diagnose`'), readme.indexOf('### ICMP'));
    const flags = [...new Set([...help.matchAll(/(?<![\w-])--([a-z][a-z.-]*)/g)].map((m) => m[1]))];
    expect(flags.length).toBeGreaterThan(8);
    for (const f of flags) {
      expect({ flag: f, inReadme: section.includes(`--${f}`) }).toEqual({ flag: f, inReadme: true });
      const r = await diagnose(['tcp://127.0.0.1:1', `--${f}`, 'x']);
      expect({ flag: f, unknown: r.err.includes('unknown flag') }).toEqual({ flag: f, unknown: false });
    }
  });
});

describe('--set: module settings checked by the prober schema', () => {
  it('types values by the schema: booleans, lists split on commas, strings kept as written, nested keys', () => {
    expect(
      parseSets(['encrypt=true', 'min_build.8=8.0.2039', 'trust_server_certificate=false'], PROBERS.mssql.schema),
    ).toEqual({
      encrypt: true,
      trust_server_certificate: false,
      min_build: { '8': '8.0.2039' },
    });
    expect(
      parseSets(
        ['data_channel=epsv,active', 'retrieve=0001', 'tls_config.insecure_skip_verify=true'],
        PROBERS.ftp.schema,
      ),
    ).toEqual({
      data_channel: ['epsv', 'active'],
      retrieve: '0001',
      tls_config: { insecure_skip_verify: true },
    });
    expect(parseSets(['data_channel=[pasv]'], PROBERS.ftp.schema)).toEqual({ data_channel: ['pasv'] });
  });

  it.each([
    [
      ['mssql://127.0.0.1', '--set', 'encrypt=maybe'],
      'portprobe diagnose: --set (mssql settings): encrypt: must be one of: true, false, strict\n',
    ],
    [
      ['mssql://127.0.0.1', '--set', 'encryption=true'],
      'portprobe diagnose: --set (mssql settings): encryption: unknown field',
    ],
    [
      ['ftp://127.0.0.1', '--set', 'data_channel=epsv,carrier-pigeon'],
      'portprobe diagnose: --set (ftp settings): data_channel[1]: must be one of: epsv, pasv, active\n',
    ],
    [
      ['mssql://127.0.0.1', '--set', 'min_build.8=banana'],
      '--set (mssql settings): min_build[8]: must be a string matching',
    ],
    [
      ['mssql://127.0.0.1', '--set', 'min_build.15=16.0.1000'],
      'portprobe diagnose: settings (mssql): min_build.15: build 16.0.1000 belongs to major version 16\n',
    ],
    [
      ['mssql://127.0.0.1', '--set', 'password=hunter2'],
      'portprobe diagnose: --set password: secrets do not belong on the command line',
    ],
    [['ftp://127.0.0.1', '--set', 'data_channel'], 'portprobe diagnose: --set "data_channel": expected KEY=VALUE'],
    [['tcp://127.0.0.1:1', '--module', 'x'], 'portprobe diagnose: --module needs --config.file'],
    [
      ['some-target', '--config.file=/dev/null', '--insecure'],
      "portprobe diagnose: --insecure goes with a URL; for a configured target set the prober's own setting with --set",
    ],
    [
      ['some-target'],
      'portprobe diagnose: "some-target" is not a URL; to diagnose a configured target, give its config: --config.file=FILE\n',
    ],
  ])('%j is a usage error: %s', async (args, msg) => {
    const r = await diagnose(args);
    expect(r.code).toBe(2);
    expect(r.err).toContain(msg);
    expect(r.err).not.toContain('hunter2');
  });

  it('the timeout bounds the module: --timeout wins over the configured one', () => {
    const f = configFile([
      'modules:',
      '  slow: {prober: tcp, timeout: 7s}',
      'targets:',
      '  - {name: t, module: slow, address: "127.0.0.1:1"}',
    ]);
    expect(planDiagnose(parseDiagnoseArgs(['t', `--config.file=${f}`]), {}).module.timeoutSeconds).toBe(7);
    expect(planDiagnose(parseDiagnoseArgs(['t', `--config.file=${f}`, '--timeout=2s']), {}).module.timeoutSeconds).toBe(
      2,
    );
    expect(planDiagnose(parseDiagnoseArgs(['tcp://127.0.0.1:1']), {}).module.timeoutSeconds).toBe(10);
  });
});

describe('a configured target, or a URL with a configured module', () => {
  let ssh: Awaited<ReturnType<typeof listen>>;
  let cfg: string;
  beforeAll(async () => {
    ssh = await listen((s) => s.write('220 not ssh at all\r\n'));
    cfg = configFile([
      'modules:',
      '  ssh_banner: {prober: tcp, timeout: 2s, tcp: {expect_banner: "^SSH-"}}',
      '  ftp_active: {prober: ftp, ftp: {data_channel: [active]}}',
      'targets:',
      `  - {name: jump-host, module: ssh_banner, address: "127.0.0.1:${ssh.port}"}`,
    ]);
  });
  afterAll(async () => {
    await ssh.close();
  });

  it('runs the target with its module settings (expect_banner), named in the header', async () => {
    const r = await diagnose(['jump-host', `--config.file=${cfg}`]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('portprobe diagnose jump-host\n');
    expect(r.out).toContain(`module ssh_banner (tcp), address 127.0.0.1:${ssh.port}, timeout 2s`);
    expect(r.out).toContain('result: FAILED at banner (banner_unexpected)');
  });

  it('runs a URL with a module from the file, and --set on top of it', async () => {
    const r = await diagnose([`tcp://127.0.0.1:${ssh.port}`, `--config.file=${cfg}`, '--module=ssh_banner']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('result: FAILED at banner (banner_unexpected)');
    const fixed = await diagnose([
      `tcp://127.0.0.1:${ssh.port}`,
      `--config.file=${cfg}`,
      '--module=ssh_banner',
      '--set',
      'expect_banner=^220 ',
    ]);
    expect(fixed.code).toBe(0);
    expect(fixed.out).toMatch(/✓ banner/);
  });

  it('names what is wrong: an unknown target or module, a module of another prober, a bad file', async () => {
    expect((await diagnose(['nope', `--config.file=${cfg}`])).err).toBe(
      `portprobe diagnose: ${cfg}: no target "nope" (targets: jump-host)\n`,
    );
    expect((await diagnose(['tcp://127.0.0.1:1', `--config.file=${cfg}`, '--module=nope'])).err).toBe(
      `portprobe diagnose: ${cfg}: no module "nope" (modules: ssh_banner, ftp_active)\n`,
    );
    expect((await diagnose(['tcp://127.0.0.1:1', `--config.file=${cfg}`, '--module=ftp_active'])).err).toBe(
      'portprobe diagnose: module "ftp_active" runs the ftp prober, but tcp://127.0.0.1:1 is a tcp URL\n',
    );
    const bad = configFile(['modules:', '  m: {prober: tcp, tcp: {expect_bannerz: x}}']);
    const r = await diagnose(['t', `--config.file=${bad}`]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`portprobe diagnose: ${bad}:2: modules.m.tcp.expect_bannerz: unknown field`);
  });
});

describe('FTP modes, against vsftpd and a scripted peer', () => {
  let fx: Fixture;
  let vs: FtpPeer;
  let hostile: HostilePeer;
  beforeAll(async () => {
    fx = makeFixture('diag-modes');
    vs = await startVsftpd(fx, { tls: 'off' });
    hostile = await startHostile('closed_data_port');
  });
  afterAll(async () => {
    await vs?.stop();
    await hostile?.stop();
    fx?.cleanup();
  });

  it('active mode and retrieve are reachable with --set; a mode not asked for is "not tested"', async () => {
    const r = await diagnose([
      `ftp://127.0.0.1:${vs.port}/`,
      '--set',
      'data_channel=epsv,active',
      '--set',
      `retrieve=${CANARY_NAME}`,
    ]);
    expect(r.out).toMatch(/✓ data_epsv/);
    expect(r.out).toMatch(/✓ data_active/);
    expect(r.out).toMatch(/· data_pasv +not tested/);
    expect(r.code).toBe(0);
    const j = JSON.parse(
      (await diagnose([`ftp://127.0.0.1:${vs.port}/`, '--set', 'data_channel=active', '--output=json'])).out,
    ) as JsonOut;
    expect(j.success).toBe(true);
    expect(statuses(j)).toMatchObject({ data_active: 'ok', data_epsv: 'not_tested', data_pasv: 'not_tested' });
  });

  it('a later mode that failed is printed as failed, never as passed; text, JSON and exit agree', async () => {
    const url = `ftp://127.0.0.1:${hostile.port}/`;
    const r = await diagnose([url, '--set', 'data_channel=epsv,pasv', '--timeout=5s']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/✗ data_epsv .* pasv_unreachable: /);
    // The later mode says its own reason, not only that it failed.
    expect(r.out).toMatch(/✗ data_pasv .* pasv_unreachable: PASV data port /);
    expect(r.out).not.toMatch(/✓ data_pasv/);
    expect(r.out).toMatch(/· data_active +not tested/);
    expect(r.out).toContain('result: FAILED at data_epsv (pasv_unreachable)');
    expect(r.out).toContain('also failed: data_pasv (pasv_unreachable)');
    const j = JSON.parse(
      (await diagnose([url, '--set', 'data_channel=epsv,pasv', '--timeout=5s', '--output=json'])).out,
    ) as JsonOut;
    expect(j.success).toBe(false);
    expect(statuses(j)).toMatchObject({ data_epsv: 'failed', data_pasv: 'failed', data_active: 'not_tested' });
  });
});

describe('SQL Server settings through --set', () => {
  it('encrypt and trust_server_certificate add the TLS rung; min_build reaches the prober', async () => {
    const peer = await startTdsPeer({
      encryption: 'off',
      version: { major: 15, minor: 0, build: 2000, subbuild: 5 },
      users: { probe: 'Pr0be-pass' },
    });
    try {
      const plain = await diagnose([`mssql://127.0.0.1:${peer.port}`]);
      expect(plain.code).toBe(0);
      expect(plain.out).not.toMatch(/✓ tls/);
      const r = await diagnose([
        `mssql://127.0.0.1:${peer.port}`,
        '--set',
        'encrypt=true',
        '--set',
        'trust_server_certificate=true',
      ]);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/✓ tls/);
      expect(r.out).toMatch(/tls_version: TLS/);
      // Without credentials the version is known from PRELOGIN: the untrusted certificate is a finding.
      const versionOnly = await diagnose([`mssql://127.0.0.1:${peer.port}`, '--set', 'encrypt=true']);
      expect(versionOnly.code).toBe(0);
      expect(versionOnly.out).toMatch(
        /\[warning\] mssql_certificate_untrusted: the server certificate is not trusted \(self-signed/,
      );
      // A module that logs in must not send its password over an untrusted channel: tls_error.
      const untrusted = await diagnose([`mssql://probe@127.0.0.1:${peer.port}`, '--set', 'encrypt=true'], {
        PORTPROBE_PASSWORD: 'Pr0be-pass',
      });
      expect(untrusted.code).toBe(1);
      expect(untrusted.out).toContain('result: FAILED at tls (tls_error)');
      const j = JSON.parse(
        (await diagnose([`mssql://127.0.0.1:${peer.port}`, '--set', 'min_build.15=15.0.4355', '--output=json'])).out,
      ) as JsonOut;
      expect(j.facts).toContainEqual({ metric: 'probe_mssql_patch_advisory', value: 1 });
    } finally {
      await peer.close();
    }
  });
});

describe('findings, rendered from the result', () => {
  const plan = planDiagnose(parseDiagnoseArgs(['mssql://db.example.org']), {});
  const result: ProbeResult = {
    success: true,
    durationSeconds: 0.01,
    phases: [
      { phase: 'resolve', seconds: 0.001 },
      { phase: 'connect', seconds: 0.002 },
      { phase: 'prelogin', seconds: 0.003 },
    ],
    facts: [
      {
        metric: 'probe_mssql_version_info',
        value: 1,
        labels: { version: '8.0.194', product: 'SQL Server 2000', level: 'RTM' },
      },
    ],
    findings: [
      { code: 'mssql_encryption', severity: 'info', message: 'encryption available, not forced' },
      {
        code: 'mssql_patch_advisory',
        severity: 'critical',
        message: 'SQL Server 2000 build 8.00.194 is below 8.00.760: remote connections are refused',
        advice: 'Install Service Pack 3 or later (SP4, 8.00.2039).',
      },
    ],
  };

  it('text: each finding with its severity and advice, most severe first, after the rungs and the version', () => {
    const t = formatText(plan, result, false);
    expect(t).toContain('    mssql_version: 8.0.194 SQL Server 2000 RTM\n');
    expect(t).toContain(
      'findings (1 critical, 1 info):\n' +
        '  [critical] mssql_patch_advisory: SQL Server 2000 build 8.00.194 is below 8.00.760: remote connections are refused\n' +
        '      what to do: Install Service Pack 3 or later (SP4, 8.00.2039).\n' +
        '  [info] mssql_encryption: encryption available, not forced\n',
    );
    expect(t).toContain('result: every rung passed; findings above: 1 critical, 1 info\n');
  });

  it('JSON: the same findings, and success agrees with the text', () => {
    const j = JSON.parse(formatJson(plan, result)) as JsonOut;
    expect(j.success).toBe(true);
    expect(j.findings.map((f) => `${f.severity}:${f.code}`)).toEqual([
      'critical:mssql_patch_advisory',
      'info:mssql_encryption',
    ]);
    expect(j.findings[0].advice).toBe('Install Service Pack 3 or later (SP4, 8.00.2039).');
  });
});
