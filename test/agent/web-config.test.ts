import https from 'node:https';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { MAIN, startAgent } from '../helpers/agent-process';
import { listen, selfSignedCert } from '../helpers/net';
import { loadWebConfig } from '../../agent/web-config';
import { ConfigError } from '../../config/load';

const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-web-'));
const write = (name: string, text: string): string => {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
};

function httpsGet(
  url: string,
  opts: https.RequestOptions = {},
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, opts, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
  });
}

describe('--web.config.file', () => {
  let target: Awaited<ReturnType<typeof listen>>;
  let agentConfig: string;
  const hash = bcrypt.hashSync('correct horse', 10);
  beforeAll(async () => {
    target = await listen();
    agentConfig = write(
      'agent.yml',
      `modules: {t: {prober: tcp}}\ntargets: [{name: a, module: t, address: "127.0.0.1:${target.port}"}]\n`,
    );
  });
  afterAll(() => target.close());

  it('basic auth: 401 without or with wrong credentials, 200 with the right ones, on every path', async () => {
    const web = write('auth.yml', `basic_auth_users:\n  prometheus: "${hash}"\n`);
    const agent = await startAgent(agentConfig, [`--web.config.file=${web}`]);
    try {
      for (const p of ['/metrics', '/probe?target=a', '/-/healthy', '/', '/nope']) {
        const none = await fetch(agent.base + p);
        expect(none.status).toBe(401);
        expect(none.headers.get('www-authenticate')).toBe('Basic realm="portprobe"');
        expect(await none.text()).toBe('Unauthorized\n');
      }
      const auth = (u: string, pw: string) => ({
        authorization: `Basic ${Buffer.from(`${u}:${pw}`).toString('base64')}`,
      });
      expect((await fetch(`${agent.base}/metrics`, { headers: auth('prometheus', 'wrong') })).status).toBe(401);
      expect((await fetch(`${agent.base}/metrics`, { headers: auth('nobody', 'correct horse') })).status).toBe(401);
      const ok = await fetch(`${agent.base}/metrics`, { headers: auth('prometheus', 'correct horse') });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('portprobe_build_info');
      const probe = await fetch(`${agent.base}/probe?target=a`, { headers: auth('prometheus', 'correct horse') });
      expect(await probe.text()).toContain('probe_success 1');
      expect(agent.logs()).not.toContain('correct horse');
    } finally {
      await agent.stop();
    }
  });

  it('TLS: serves HTTPS with the configured certificate and headers', async () => {
    const cert = selfSignedCert();
    const web = write(
      'tls.yml',
      `tls_server_config:\n  cert_file: ${cert.certFile}\n  key_file: ${cert.keyFile}\n  min_version: TLS12\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n`,
    );
    const agent = await startAgent(agentConfig, [`--web.config.file=${web}`]);
    try {
      const url = `https://localhost:${agent.port}/metrics`;
      const res = await httpsGet(url, { ca: readFileSync(cert.certFile) });
      expect(res.status).toBe(200);
      expect(res.headers['x-frame-options']).toBe('deny');
      expect(res.body).toContain('portprobe_build_info');
      await expect(httpsGet(url)).rejects.toThrow(/self.signed|certificate/i);
      await expect(fetch(`http://127.0.0.1:${agent.port}/metrics`)).rejects.toThrow();
    } finally {
      await agent.stop();
    }
  });

  it('mutual TLS: a client without a trusted certificate is turned away', async () => {
    const server = selfSignedCert();
    const client = selfSignedCert();
    const stranger = selfSignedCert();
    const web = write(
      'mtls.yml',
      [
        'tls_server_config:',
        `  cert_file: ${server.certFile}`,
        `  key_file: ${server.keyFile}`,
        '  client_auth_type: RequireAndVerifyClientCert',
        `  client_ca_file: ${client.certFile}`,
      ].join('\n'),
    );
    const agent = await startAgent(agentConfig, [`--web.config.file=${web}`]);
    try {
      const url = `https://localhost:${agent.port}/metrics`;
      const ca = readFileSync(server.certFile);
      const good = await httpsGet(url, { ca, cert: readFileSync(client.certFile), key: readFileSync(client.keyFile) });
      expect(good.status).toBe(200);
      await expect(httpsGet(url, { ca })).rejects.toThrow();
      await expect(
        httpsGet(url, { ca, cert: readFileSync(stranger.certFile), key: readFileSync(stranger.keyFile) }),
      ).rejects.toThrow();
    } finally {
      await agent.stop();
    }
  });

  it("accepts an existing exporter's file with Go-only settings and says they are not applied", async () => {
    const cert = selfSignedCert();
    const web = write(
      'go.yml',
      [
        'tls_server_config:',
        `  cert_file: ${cert.certFile}`,
        `  key_file: ${cert.keyFile}`,
        '  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]',
        '  curve_preferences: [X25519]',
        'http_server_config:',
        '  http2: false',
      ].join('\n'),
    );
    const cfg = loadWebConfig(web);
    expect(cfg.ignored).toEqual([
      'tls_server_config.cipher_suites (Go cipher names; Node uses its own safe defaults)',
      'tls_server_config.curve_preferences',
      'http_server_config.http2 (HTTP/1.1 is served)',
    ]);
  });

  it('rejects a bad web config with file:line errors, exit code 2', async () => {
    const web = write(
      'bad.yml',
      'basic_auth_users:\n  admin: plaintext\ntls_server_config:\n  cert_file: /nonexistent/cert.pem\n',
    );
    const errors = (() => {
      try {
        loadWebConfig(web);
      } catch (e) {
        return (e as ConfigError).errors;
      }
      return [];
    })();
    expect(errors).toEqual([
      `${web}:2: basic_auth_users.admin: must be a bcrypt hash such as \`htpasswd -nBC 10 USER\` prints`,
      `${web}:4: tls_server_config: missing required field "key_file"`,
    ]);
    const code = await new Promise<number>((resolve) =>
      execFile(process.execPath, [MAIN, `--config.file=${agentConfig}`, `--web.config.file=${web}`], (err) =>
        resolve(err ? ((err as { code?: number }).code ?? 1) : 0),
      ),
    );
    expect(code).toBe(2);
  });
});
