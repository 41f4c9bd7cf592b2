// Issue 22, item 7: /probe must not carry a module's password to a host that was configured
// without it. The module with credentials runs only against addresses configured with it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from '../../agent/agent';
import { createApp } from '../../agent/http';
import { createLogger } from '../../agent/logger';
import { listen } from '../helpers/net';

const logger = createLogger('error', 'json', { write: () => true });

/** An FTP-speaking peer that records every PASS it receives. */
async function recordingFtpPeer() {
  const passes: string[] = [];
  const l = await listen((s) => {
    s.write('220 ready\r\n');
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (/^USER /i.test(line)) s.write('331 password please\r\n');
        else if (/^PASS /i.test(line)) {
          passes.push(line.slice(5));
          s.write('530 no\r\n');
        } else if (/^QUIT/i.test(line)) s.end('221 bye\r\n');
        else s.write('502 no\r\n');
      }
    });
  });
  return { ...l, passes };
}

describe('/probe with a module that carries credentials', () => {
  let own: Awaited<ReturnType<typeof recordingFtpPeer>>;
  let other: Awaited<ReturnType<typeof recordingFtpPeer>>;
  let agent: Agent;
  let server: http.Server;
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
    agent = new Agent({ configFile: file, logger, build: { version: 't', revision: 't' }, env: { PP_CREDS_PW: 'relay-me-not-42' } });
    expect(agent.reload().ok).toBe(true);
    server = http.createServer(createApp({ agent, logger, reload: () => agent.reload() }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await agent.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
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
