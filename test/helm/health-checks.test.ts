// The chart's liveness and readiness checks, run the way the kubelet runs them against a real
// agent started with the web config each ci file describes: plain HTTP, HTTPS (the kubelet does
// not verify the certificate), HTTPS with basic auth (the kubelet has no password: TCP connect).
import https from 'node:https';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { startAgent, type AgentProcess } from '../helpers/agent-process';
import { selfSignedCert } from '../helpers/net';
import { CHART, Renderer } from './harness';

jest.setTimeout(120_000);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

let renderer: Renderer;
beforeAll(() => {
  renderer = Renderer.build();
}, 180_000);
afterAll(() => renderer?.dispose());

/** What the kubelet does with one probe spec: true when the check passes. */
async function kubeletCheck(probe: Any, port: number, secure: boolean): Promise<{ ok: boolean; status?: number }> {
  if (probe.tcpSocket) {
    return new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve({ ok: true });
      });
      s.once('error', () => resolve({ ok: false }));
    });
  }
  const g = probe.httpGet;
  const scheme = g.scheme ?? 'HTTP';
  if ((scheme === 'HTTPS') !== secure) return { ok: false };
  if (!secure) {
    const res = await fetch(`http://127.0.0.1:${port}${g.path}`);
    return { ok: res.status >= 200 && res.status < 400, status: res.status };
  }
  return new Promise((resolve) => {
    https
      .get({ host: '127.0.0.1', port, path: g.path, rejectUnauthorized: false }, (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve({ ok: status >= 200 && status < 400, status });
      })
      .once('error', () => resolve({ ok: false }));
  });
}

describe.each([
  ['values.yaml (no web config)', [] as string[], { tls: false, users: false }],
  ['ci/webconfig-tls-values.yaml', ['webconfig-tls-values.yaml'], { tls: true, users: false }],
  ['ci/webconfig-basicauth-values.yaml', ['webconfig-basicauth-values.yaml'], { tls: true, users: true }],
])('%s', (_name, files, web) => {
  let agent: AgentProcess;
  let dir: string;
  let probes: Any[];

  beforeAll(async () => {
    const r = renderer.render(files.map((f) => path.join(CHART, 'ci', f)));
    const w = r.objects.find((o) => o.kind === 'Deployment') as Any;
    const c = w.spec.template.spec.containers[0];
    probes = [c.livenessProbe, c.readinessProbe];
    dir = mkdtempSync(path.join(tmpdir(), 'portprobe-health-'));
    const config = path.join(dir, 'portprobe.yml');
    writeFileSync(config, 'modules: {m: {prober: tcp}}\ntargets: []\n');
    const args: string[] = [];
    // The agent reads the web config from where the chart mounts it; here, a temp dir.
    if (c.args.includes('--web.config.file=/etc/portprobe/web/config/web.yml')) {
      const cert = selfSignedCert();
      const lines = [];
      if (web.tls) lines.push(`tls_server_config: {cert_file: ${cert.certFile}, key_file: ${cert.keyFile}}`);
      if (web.users) lines.push(`basic_auth_users: {prometheus: "${bcrypt.hashSync('scrape-secret', 4)}"}`);
      writeFileSync(path.join(dir, 'web.yml'), `${lines.join('\n')}\n`);
      args.push(`--web.config.file=${path.join(dir, 'web.yml')}`);
    }
    agent = await startAgent(config, args);
  });
  afterAll(async () => {
    await agent?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('liveness and readiness pass', async () => {
    for (const p of probes) expect(await kubeletCheck(p, agent.port, web.tls)).toMatchObject({ ok: true });
  });

  if (web.users) {
    test('an HTTP check would not: the agent answers it 401 without the password', async () => {
      const r = await kubeletCheck({ httpGet: { path: '/-/ready', scheme: 'HTTPS' } }, agent.port, true);
      expect(r).toEqual({ ok: false, status: 401 });
    });
  }
});
