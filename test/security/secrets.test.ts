// A sentinel password goes through every path a secret could leak by: metrics, logs at debug
// level, HTTP error bodies and debug output, the status page, --config.check, --once, a config
// with a syntax error next to the secret, and failing logins against peers that echo it back.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MAIN, startAgent } from '../helpers/agent-process';
import { ftpLoginPeer } from '../helpers/ftp-login-peer';
import { listen } from '../helpers/net';
import { startTdsPeer, type TdsPeer } from '../peers/tds/server';

jest.setTimeout(60000);

const SENTINEL = 'Sentinel-7c3f9a-pw';
const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-secrets-'));
const pwFile = path.join(dir, 'password');
writeFileSync(pwFile, `${SENTINEL}\n`);

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { env: { ...process.env, ...env }, timeout: 30000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
      },
    );
  });
}

/** An FTP server that quotes the password it was sent in its 530 reply. */
async function echoingFtpPeer() {
  return ftpLoginPeer({
    greeting: '220 echo peer ready\r\n',
    pass: (pw) => `530 Login incorrect: "${pw}" is not the password\r\n`,
    other: (line) => `500 ${line} not understood\r\n`,
  });
}

describe('a secret never leaks', () => {
  let ftp: Awaited<ReturnType<typeof listen>>;
  let tds: TdsPeer;
  let cfgFile: string;
  const env = { PP_SENTINEL_PW: SENTINEL };

  beforeAll(async () => {
    ftp = await echoingFtpPeer();
    tds = await startTdsPeer({ users: { probe: 'the-real-password' } });
    cfgFile = path.join(dir, 'portprobe.yml');
    writeFileSync(
      cfgFile,
      [
        'global: {interval: 1s}',
        'modules:',
        '  ftp_env: {prober: ftp, timeout: 900ms, ftp: {username: probe, password: "${PP_SENTINEL_PW}", data_channel: [pasv]}}',
        `  ftp_file: {prober: ftp, timeout: 900ms, ftp: {username: probe, password_file: ${pwFile}, data_channel: [pasv]}}`,
        `  mssql_file: {prober: mssql, timeout: 900ms, mssql: {username: probe, password_file: ${pwFile}}}`,
        'targets:',
        `  - {name: ftp-env, module: ftp_env, address: "127.0.0.1:${ftp.port}"}`,
        `  - {name: ftp-file, module: ftp_file, address: "127.0.0.1:${ftp.port}"}`,
        `  - {name: sql, module: mssql_file, address: "127.0.0.1:${tds.port}"}`,
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await ftp.close();
    await tds.close();
  });

  it('through a running agent at debug level: metrics, /probe, debug output, status page, reload errors', async () => {
    const agent = await startAgent(cfgFile, ['--log.level=debug'], env);
    let seen = '';
    try {
      let metrics = '';
      for (let i = 0; i < 60 && (metrics.match(/probe_failure_info\{/g) ?? []).length < 3; i++) {
        await new Promise((r) => setTimeout(r, 100));
        metrics = await (await fetch(`${agent.base}/metrics`)).text();
      }
      expect(metrics).toContain(
        'probe_failure_info{target="ftp-env",module="ftp_env",phase="login",reason="auth_failed"} 1',
      );
      expect(metrics).toContain(
        'probe_failure_info{target="sql",module="mssql_file",phase="login",reason="auth_failed"} 1',
      );
      seen += metrics;
      for (const t of ['ftp-env', 'ftp-file', 'sql']) {
        seen += await (await fetch(`${agent.base}/probe?target=${t}`)).text();
        const debug = await (await fetch(`${agent.base}/probe?target=${t}&debug=true`)).text();
        expect(debug).toContain('auth_failed');
        seen += debug;
      }
      seen += await (await fetch(`${agent.base}/`)).text();
      // A broken config with the secret's variable next to the error, then a reload.
      writeFileSync(cfgFile.replace('.yml', '-broken.yml'), '');
      const original = readFileSync(cfgFile, 'utf8');
      writeFileSync(
        cfgFile,
        original.replace('password: "${PP_SENTINEL_PW}"', `password: "${SENTINEL}"`).replace('global: {', 'global: {{'),
      );
      const reload = await fetch(`${agent.base}/-/reload`, { method: 'POST' });
      expect(reload.status).toBe(400);
      seen += await reload.text();
      writeFileSync(cfgFile, original.replace('password: "${PP_SENTINEL_PW}"', `password: "${SENTINEL}"`));
      const reload2 = await fetch(`${agent.base}/-/reload`, { method: 'POST' });
      expect(reload2.status).toBe(400);
      const body2 = await reload2.text();
      expect(body2).toContain('inline secrets are not accepted');
      seen += body2;
      writeFileSync(cfgFile, original);
    } finally {
      await agent.stop();
    }
    seen += agent.logs();
    expect(agent.logs()).toContain('"level":"debug"');
    expect(seen).not.toContain(SENTINEL);
  });

  it('through --config.check, --once and a syntax error next to the secret', async () => {
    const check = await run([`--config.file=${cfgFile}`, '--config.check'], env);
    expect(check.code).toBe(0);
    const once = await run([`--config.file=${cfgFile}`, '--once', '--log.level=debug'], env);
    expect(once.code).toBe(0);
    expect(once.out).toContain('reason="auth_failed"');
    const broken = path.join(dir, 'broken.yml');
    writeFileSync(
      broken,
      `modules:\n  m:\n    prober: ftp\n    ftp:\n      password: "${SENTINEL}\n      username: [probe\n`,
    );
    const bad = await run([`--config.file=${broken}`, '--config.check'], env);
    expect(bad.code).toBe(2);
    const inline = path.join(dir, 'inline.yml');
    writeFileSync(inline, `modules:\n  m:\n    prober: ftp\n    ftp:\n      password: "${SENTINEL}"\n`);
    const inl = await run([`--config.file=${inline}`, '--config.check'], env);
    expect(inl.code).toBe(2);
    expect(inl.out).toContain('modules.m.ftp.password: must be an environment reference');
    for (const out of [check.out, once.out, bad.out, inl.out]) expect(out).not.toContain(SENTINEL);
  });
});
