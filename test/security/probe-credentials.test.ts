// Issue 22, item 7: /probe must not carry a module's password to a host that was configured
// without it. The module with credentials runs only against addresses configured with it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../agent/logger';
import { startAgentHttp, type AgentHttp } from '../helpers/agent-http';
import { ftpLoginPeer } from '../helpers/ftp-login-peer';

const logger = createLogger('error', 'json', { write: () => true });

/** An FTP-speaking peer that records every PASS it receives. */
async function recordingFtpPeer() {
  const passes: string[] = [];
  const l = await ftpLoginPeer({
    greeting: '220 ready\r\n',
    pass: (pw) => {
      passes.push(pw);
      return '530 no\r\n';
    },
    other: () => '502 no\r\n',
  });
  return { ...l, passes };
}

describe('/probe with a module that carries credentials', () => {
  let own: Awaited<ReturnType<typeof recordingFtpPeer>>;
  let other: Awaited<ReturnType<typeof recordingFtpPeer>>;
  let h: AgentHttp;
  let base: string;

  beforeAll(async () => {
    own = await recordingFtpPeer();
    other = await recordingFtpPeer();
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-creds-'));
    const file = path.join(dir, 'c.yml');
    writeFileSync(
      file,
      [
        'global: {interval: 1h}',
        'probe_api:',
        '  allowed_addresses: ["127\\\\.0\\\\.0\\\\.1:[0-9]+"]',
        'modules:',
        '  creds: {prober: ftp, timeout: 2s, ftp: {username: probe, password: "${PP_CREDS_PW}", data_channel: [pasv]}}',
        '  anon: {prober: ftp, timeout: 2s, ftp: {data_channel: [pasv]}}',
        'targets:',
        `  - {name: own, module: creds, address: "127.0.0.1:${own.port}"}`,
        `  - {name: other, module: anon, address: "127.0.0.1:${other.port}"}`,
      ].join('\n'),
    );
    h = await startAgentHttp({
      configFile: file,
      logger,
      build: { version: 't', revision: 't' },
      env: { PP_CREDS_PW: 'relay-me-not-42' },
    });
    base = h.base;
  });

  afterAll(async () => {
    await h.stop();
    await own.close();
    await other.close();
  });

  it('runs it against the target configured with it', async () => {
    const r = await fetch(`${base}/probe?target=own&module=creds`);
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('reason="auth_failed"');
    expect(own.passes).toContain('relay-me-not-42');
  });

  it('refuses it for a target configured with another module, before connecting', async () => {
    const r = await fetch(`${base}/probe?target=other&module=creds`);
    expect(r.status).toBe(403);
    expect(await r.text()).toBe(
      'module "creds" carries credentials: /probe runs it only against the addresses of targets configured with it, and "other" is not one\n',
    );
    expect(other.passes).toEqual([]);
  });

  it('refuses it for an allowed ad-hoc address, but runs a module without credentials there', async () => {
    const r = await fetch(`${base}/probe?target=127.0.0.1:${other.port}&module=creds`);
    expect(r.status).toBe(403);
    expect(other.passes).toEqual([]);
    const anon = await fetch(`${base}/probe?target=127.0.0.1:${own.port}&module=anon`);
    expect(anon.status).toBe(200);
    expect(other.passes).toEqual([]);
  });
});
