// The scrape body lives in one reused buffer: a response still being sent must never see the
// next scrape's bytes.
import http from 'node:http';
import { spawn } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Agent } from '../../agent/agent';
import { ScrapeBuffer } from '../../agent/exposition';
import { createApp } from '../../agent/http';
import { createLogger } from '../../agent/logger';
import type { ProbeResult } from '../../exporters/types';

describe('ScrapeBuffer', () => {
  it('lends one buffer at a time and reuses it once given back', () => {
    const sb = new ScrapeBuffer();
    const a = sb.borrow();
    const first = a.alloc(1000);
    const b = sb.borrow();
    const second = b.alloc(1000);
    expect(second.buffer).not.toBe(first.buffer);
    a.release();
    a.release(); // twice is harmless
    const c = sb.borrow();
    expect(c.alloc(900).buffer).toBe(first.buffer);
    // Still lent to c: another borrower gets fresh memory even though b gave nothing back.
    b.release();
    expect(sb.borrow().alloc(10).buffer).not.toBe(first.buffer);
    c.release();
    // Grows for a larger body, shrinks for a much smaller one.
    const d = sb.borrow();
    const big = d.alloc(1_000_000);
    expect(big.length).toBeGreaterThanOrEqual(1_000_000);
    d.release();
    const e = sb.borrow();
    expect(e.alloc(1000).length).toBeLessThan(100_000);
    e.release();
  });
});

/** Sends GET /metrics with a tiny receive buffer, reads a little, waits for stdin, prints the body. */
const SLOW_CLIENT = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
data = s.recv(1024)
sys.stdout.write("paused\\n"); sys.stdout.flush()
sys.stdin.readline()
while True:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
head, _, body = data.partition(b"\\r\\n\\r\\n")
if b"chunked" in head.lower():
    out, rest = b"", body
    while True:
        size, _, rest = rest.partition(b"\\r\\n")
        n = int(size, 16)
        if n == 0: break
        out += rest[:n]; rest = rest[n + 2:]
    body = out
sys.stdout.write(body.decode()); sys.stdout.flush()
`;

describe('GET /metrics with a reused body buffer', () => {
  const N = 20000;
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-scrapebuf-'));
  const file = path.join(dir, 'c.yml');
  let agent: Agent;
  let server: http.Server;
  let port: number;

  beforeAll(async () => {
    const lines = ['global: {interval: 24h, timeout: 1s}', 'modules: {t: {prober: tcp}}', 'targets:'];
    for (let i = 0; i < N; i++) lines.push(`  - {name: target-${i}, module: t, address: "127.0.0.1:9"}`);
    writeFileSync(file, lines.join('\n'));
    const logger = createLogger('error', 'json', { write: () => true });
    agent = new Agent({ configFile: file, logger, build: { version: 't', revision: 't' } });
    expect(agent.reload().ok).toBe(true);
    // Nothing is probed during the test: results are recorded by hand.
    await agent.scheduler.stop();
    server = http.createServer(createApp({ agent, logger, reload: () => agent.reload() }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
  }, 30_000);
  afterAll(async () => {
    await agent.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const recordAll = (seconds: number): void => {
    const r: ProbeResult = {
      success: true,
      durationSeconds: seconds,
      phases: [{ phase: 'connect', seconds }],
      facts: [],
      ipProtocol: 4,
    };
    for (let i = 0; i < N; i++) agent.store.record(`target-${i}`, ['resolve', 'connect'], r, 1_700_000_000_000);
  };

  // Probe and connect-phase durations: the first families of the body and one near its end.
  const durations = (text: string): Set<string> =>
    new Set(
      [
        ...text.matchAll(
          /^probe_duration_seconds\{[^}]*\} (\S+)$|^probe_phase_duration_seconds\{[^}]*phase="connect"\} (\S+)$/gm,
        ),
      ].map((m) => m[1] ?? m[2]),
    );

  it('a slow reader gets the body of its own scrape while later scrapes run', async () => {
    recordAll(0.001);
    // An uncompressed scrape by a client with a 4 KiB receive window that stops reading: the
    // body (about 8 MB) cannot leave the server (the kernel holds at most 4 MB of it), so the
    // server keeps its buffer until the client reads on.
    const slow = spawn('python3', ['-c', SLOW_CLIENT, String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    slow.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve) => {
      const iv = setInterval(() => {
        if (out.includes('paused')) {
          clearInterval(iv);
          resolve();
        }
      }, 20);
    });
    await new Promise((r) => setTimeout(r, 200));
    recordAll(0.002);
    const gz = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { 'accept-encoding': 'gzip' } });
    const gzText = await gz.text();
    const plain = await (
      await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { 'accept-encoding': 'identity' } })
    ).text();
    recordAll(0.003);
    slow.stdin.end('go\n');
    await new Promise((r) => slow.on('exit', r));
    const slowText = out.slice(out.indexOf('paused\n') + 7);
    expect(durations(slowText)).toEqual(new Set(['0.001']));
    expect(durations(gzText)).toEqual(new Set(['0.002']));
    expect(durations(plain)).toEqual(new Set(['0.002']));
    for (const t of [slowText, gzText, plain]) {
      expect(t.match(/^probe_success\{/gm)).toHaveLength(N);
      expect(t).toMatch(/\nportprobe_build_info\{[^\n]*\} 1\n/);
    }
    expect(slowText.length).toBeGreaterThan(6_000_000);
    // And the buffer came back: a later gzip scrape is whole.
    const again = await new Promise<Buffer>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/metrics', headers: { 'accept-encoding': 'gzip' } }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => resolve(gunzipSync(Buffer.concat(parts))));
        })
        .on('error', reject);
    });
    expect(durations(again.toString())).toEqual(new Set(['0.003']));
  }, 30_000);
});
