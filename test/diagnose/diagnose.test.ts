import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { diagnoseUsage, parseDiagnoseUrl, rungLines, UsageError } from '../../agent/cli/diagnose';
import { PROBERS } from '../../exporters';
import { diagnose } from '../helpers/diagnose';
import { closedPort, listen } from '../helpers/net';
import { startTdsPeer } from '../peers/tds/server';
import { makeFixture, type FtpPeer } from '../peers/ftp/common';
import { startFtpSrv, ftpsrvUser } from '../peers/ftp/ftpsrv';

jest.setTimeout(30000);

describe('diagnose URLs', () => {
  it.each([
    ['tcp://db.example.org:1433', { prober: 'tcp', address: 'db.example.org:1433', settings: {} }],
    ['icmp://gw.example.org', { prober: 'icmp', address: 'gw.example.org', settings: {} }],
    ['ftp://files.example.org', { prober: 'ftp', address: 'files.example.org:21', settings: { tls: 'none' } }],
    [
      'ftp://alice@files.example.org:2121/pub',
      { prober: 'ftp', address: 'files.example.org:2121', settings: { tls: 'none', username: 'alice', path: '/pub' } },
    ],
    ['ftps://files.example.org', { prober: 'ftp', address: 'files.example.org:21', settings: { tls: 'explicit' } }],
    [
      'ftps://files.example.org:990',
      { prober: 'ftp', address: 'files.example.org:990', settings: { tls: 'implicit' } },
    ],
    ['mssql://db.example.org', { prober: 'mssql', address: 'db.example.org:1433', settings: {} }],
    [
      'mssql://db.example.org/SQLEXPRESS',
      { prober: 'mssql', address: 'db.example.org', settings: { instance: 'SQLEXPRESS' } },
    ],
    [
      'mssql://db.example.org:2433/HIDDEN',
      { prober: 'mssql', address: 'db.example.org:2433', settings: { instance: 'HIDDEN' } },
    ],
  ])('%s', (url, want) => {
    expect(parseDiagnoseUrl(url)).toEqual({ url, ...want });
  });

  it.each([
    [
      'ftp://alice:hunter2@files.example.org',
      'passwords do not belong on the command line: use --password-file=PATH or PORTPROBE_PASSWORD',
    ],
    ['tcp://db.example.org', '"tcp://db.example.org": tcp:// needs a port'],
    ['http://x', 'unsupported scheme "http:" (use tcp, ftp, ftps, mssql or icmp)'],
    [
      'not a url',
      '"not a url" is not a URL such as tcp://host:port, ftp://[user@]host[:port][/path], mssql://[user@]host[:port][/instance] or icmp://host',
    ],
    ['ftp://a%zz@files.example.org', '"ftp://a%zz@files.example.org": URI malformed'],
  ])('rejects %s', (url, msg) => {
    expect(() => parseDiagnoseUrl(url)).toThrow(new UsageError(msg));
  });

  it('takes the schemes the probers declare, each going to its own prober, and lists their forms in --help', () => {
    const help = diagnoseUsage();
    let schemes = 0;
    for (const def of Object.values(PROBERS)) {
      if (!def.urls) continue;
      expect(help).toContain(`  ${def.urls.usage}\n`);
      for (const scheme of def.urls.schemes) {
        schemes++;
        expect(parseDiagnoseUrl(`${scheme}://h.example.org:1/x`).prober).toBe(def.name);
      }
    }
    expect(schemes).toBe(5);
  });

  it('puts the password in a Secret only with a user', () => {
    const r = parseDiagnoseUrl('mssql://sa@db.example.org', 'pw');
    expect(String(r.settings.password)).toBe('<secret>');
    expect(parseDiagnoseUrl('mssql://db.example.org', 'pw').settings.password).toBeUndefined();
  });
});

describe('rungLines', () => {
  it('marks the failed rung and lists the later ones as not reached', () => {
    const lines = rungLines(PROBERS.tcp, {
      success: false,
      durationSeconds: 0.1,
      phases: [
        { phase: 'resolve', seconds: 0.001 },
        { phase: 'connect', seconds: 0.002 },
      ],
      failure: { phase: 'connect', reason: 'refused', message: 'x' },
      facts: [],
    });
    expect(lines.map((l) => `${l.phase}:${l.status}`)).toEqual([
      'resolve:ok',
      'connect:failed',
      'tls:not_reached',
      'banner:not_reached',
    ]);
  });
});

describe('portprobe diagnose, live', () => {
  it('tcp refused: exit 1, one line per rung, and what to check', async () => {
    const port = await closedPort();
    const r = await diagnose([`tcp://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/✓ resolve/);
    expect(r.out).toMatch(/✗ connect .* refused: connect ECONNREFUSED/);
    expect(r.out).toContain('result: FAILED at connect (refused)');
    expect(r.out).toContain('what to check: Nothing accepts connections on this port');
    expect(r.out).not.toContain('\x1b[');
  });

  it('tcp open: exit 0; colour only on a terminal, and NO_COLOR wins', async () => {
    const l = await listen();
    try {
      const plain = await diagnose([`tcp://127.0.0.1:${l.port}`]);
      expect(plain.code).toBe(0);
      expect(plain.out).toContain('result: every rung passed');
      const tty = await diagnose([`tcp://127.0.0.1:${l.port}`], {}, true);
      expect(tty.out).toContain('\x1b[32m✓\x1b[0m');
      const noColour = await diagnose([`tcp://127.0.0.1:${l.port}`], { NO_COLOR: '1' }, true);
      expect(noColour.out).not.toContain('\x1b[');
    } finally {
      await l.close();
    }
  });

  it('mssql refused on 1433-style port: SQL Server advice', async () => {
    const port = await closedPort();
    const r = await diagnose([`mssql://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('is the SQL Server service running');
    expect(r.out).toContain('2433');
  });

  it('mssql without credentials: version from PRELOGIN, SQL 2000 advisory visible', async () => {
    const peer = await startTdsPeer({ version: { major: 8, minor: 0, build: 760, subbuild: 0 } });
    try {
      const r = await diagnose([`mssql://127.0.0.1:${peer.port}`]);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/✓ prelogin/);
      expect(r.out).toMatch(/mssql_version: 8\.0\.760/);
    } finally {
      await peer.close();
    }
  });

  it('mssql wrong password from --password-file: auth_failed at login, --output json', async () => {
    const peer = await startTdsPeer({ users: { probe: 'right' } });
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-diag-'));
    const pw = path.join(dir, 'pw');
    writeFileSync(pw, 'wrong-sentinel\n');
    try {
      const r = await diagnose([`mssql://probe@127.0.0.1:${peer.port}`, `--password-file=${pw}`, '--output=json']);
      expect(r.code).toBe(1);
      const j = JSON.parse(r.out) as { success: boolean; failure: { phase: string; reason: string; advice: string } };
      expect(j.success).toBe(false);
      expect(j.failure).toMatchObject({ phase: 'login', reason: 'auth_failed' });
      expect(j.failure.advice.length).toBeGreaterThan(10);
      expect(r.out + r.err).not.toContain('wrong-sentinel');
    } finally {
      await peer.close();
    }
  });

  it('ftp against a real ftp-srv with the password from the environment', async () => {
    const fx = makeFixture('portprobe-diag-ftp-');
    const user = ftpsrvUser();
    const peer: FtpPeer = await startFtpSrv(fx, { tls: 'off' }, user);
    try {
      const ok = await diagnose([`ftp://${user.name}@127.0.0.1:${peer.port}/`], { PORTPROBE_PASSWORD: user.password });
      expect(ok.code).toBe(0);
      expect(ok.out).toMatch(/✓ login/);
      expect(ok.out).toMatch(/✓ data_epsv/);
      const bad = await diagnose([`ftp://${user.name}@127.0.0.1:${peer.port}/`], { PORTPROBE_PASSWORD: 'nope' });
      expect(bad.code).toBe(1);
      expect(bad.out).toContain('result: FAILED at login (auth_failed)');
    } finally {
      await peer.stop();
    }
  });

  it('--ping adds the ICMP rung first', async () => {
    const l = await listen();
    try {
      const r = await diagnose([`tcp://127.0.0.1:${l.port}`, '--ping']);
      expect(r.code).toBe(0);
      expect(r.out.indexOf('icmp')).toBeLessThan(r.out.indexOf('connect'));
      expect(r.out).toMatch(/✓ icmp/);
    } finally {
      await l.close();
    }
  });

  it('usage errors exit 2', async () => {
    expect((await diagnose([])).code).toBe(2);
    expect((await diagnose(['tcp://127.0.0.1:1', '--output=xml'])).err).toBe(
      'portprobe diagnose: --output must be text or json\n',
    );
    expect((await diagnose(['tcp://127.0.0.1:1', '--password-file=/nonexistent'])).code).toBe(2);
  });
});
