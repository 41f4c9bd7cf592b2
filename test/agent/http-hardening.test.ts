// Issue 22, "Also": HEAD /probe must not probe; 400 bodies do not echo raw input and every answer
// says nosniff; a probe that finds no file descriptor says so. Item 8: the "probe failed" record
// keeps its failure text in JSON and logfmt.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from '../../agent/agent';
import { createLogger } from '../../agent/logger';
import { classifyError } from '../../exporters/ladder';
import { startAgentHttp, type AgentHttp } from '../helpers/agent-http';
import { closedPort, listen } from '../helpers/net';

describe('HTTP answers to hostile requests', () => {
  let peer: Awaited<ReturnType<typeof listen>>;
  let accepted = 0;
  let h: AgentHttp;
  let base: string;
  const logger = createLogger('error', 'json', { write: () => true });

  beforeAll(async () => {
    peer = await listen(() => accepted++);
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-hard-'));
    const file = path.join(dir, 'c.yml');
    writeFileSync(
      file,
      `global: {interval: 1h}\nmodules: {t: {prober: tcp, timeout: 1s}}\ntargets: [{name: a, module: t, address: "127.0.0.1:${peer.port}"}]\n`,
    );
    h = await startAgentHttp({ configFile: file, logger, build: { version: 't', revision: 't' } });
    base = h.base;
  });

  afterAll(async () => {
    await h.stop();
    await peer.close();
  });

  it('HEAD /probe answers 405 and runs no probe', async () => {
    await new Promise((r) => setTimeout(r, 200));
    const before = accepted;
    const r = await fetch(`${base}/probe?target=a`, { method: 'HEAD' });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET');
    await new Promise((r2) => setTimeout(r2, 200));
    expect(accepted).toBe(before);
    // GET still probes.
    expect(await (await fetch(`${base}/probe?target=a`)).text()).toContain('probe_success 1');
    expect(accepted).toBe(before + 1);
  });

  it('400 bodies quote the input on one line, inert, and every answer says nosniff', async () => {
    const evil = encodeURIComponent('x\r\nSet-Cookie: a=b\n<script>alert(1)</script>');
    for (const p of [`/probe?target=${evil}`, `/probe?target=a&module=${evil}`]) {
      const r = await fetch(base + p);
      expect(r.status).toBe(400);
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      const body = await r.text();
      expect(body.endsWith('\n')).toBe(true);
      expect(body.slice(0, -1)).not.toMatch(/[\r\n<>]/);
      expect(body).toContain('\\u003cscript\\u003e');
    }
    const t = await fetch(`${base}/probe?target=a`, { headers: { 'x-prometheus-scrape-timeout-seconds': '<b>' } });
    expect(await t.text()).toBe('X-Prometheus-Scrape-Timeout-Seconds: "\\u003cb\\u003e" is not a positive number\n');
    for (const p of ['/metrics', '/-/healthy', '/nope']) {
      expect((await fetch(base + p)).headers.get('x-content-type-options')).toBe('nosniff');
    }
  });
});

describe('running out of file descriptors', () => {
  it("is reported as the agent's own shortage, not as an unexplained internal error", () => {
    // The error Node raises when socket() or accept() hits the open-files limit.
    const err = Object.assign(new Error('connect EMFILE 127.0.0.1:21 - Local (undefined:undefined)'), {
      code: 'EMFILE',
      errno: -24,
      syscall: 'connect',
    });
    const c = classifyError(err);
    expect(c.reason).toBe('internal_error');
    expect(c.message).toBe('the agent ran out of file descriptors (EMFILE); the target was not tried');
    expect(c.advice).toMatch(/open-files limit/);
  });
});

describe('the "probe failed" log record', () => {
  it.each(['json', 'logfmt'] as const)('keeps one msg and the failure text (%s)', async (format) => {
    const down = await closedPort();
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-logrec-'));
    const file = path.join(dir, 'c.yml');
    writeFileSync(
      file,
      `global: {interval: 1h}\nmodules: {t: {prober: tcp, timeout: 1s}}\ntargets: [{name: down, module: t, address: "127.0.0.1:${down}"}]\n`,
    );
    let out = '';
    const logger = createLogger('debug', format, { write: (s: string) => (out += s) });
    const agent = new Agent({ configFile: file, logger, build: { version: 't', revision: 't' } });
    expect(agent.reload().ok).toBe(true);
    await agent.scheduler.runAllOnce();
    await agent.stop();
    const line = out.split('\n').find((l) => l.includes('probe failed')) as string;
    expect(line).toBeDefined();
    if (format === 'json') {
      expect(line.match(/"msg":/g)).toHaveLength(1);
      const rec = JSON.parse(line) as Record<string, unknown>;
      expect(rec.msg).toBe('probe failed');
      expect(rec.error).toMatch(/ECONNREFUSED/);
    } else {
      expect(line.match(/ msg=/g)).toHaveLength(1);
      expect(line).toContain('msg="probe failed"');
      expect(line).toMatch(/ error="[^"]*ECONNREFUSED/);
    }
  });

  it("renames a caller's field that clashes with the record's own keys", () => {
    let out = '';
    const logger = createLogger('info', 'json', { write: (s: string) => (out += s) });
    logger.info('hello', { msg: 'theirs', level: 'x', time: 1 });
    const rec = JSON.parse(out) as Record<string, unknown>;
    expect(out.match(/"msg":/g)).toHaveLength(1);
    expect(rec).toMatchObject({ msg: 'hello', level: 'info', field_msg: 'theirs', field_level: 'x', field_time: 1 });
  });
});
