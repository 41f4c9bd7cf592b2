// Issue 22, item 9: on SIGTERM a response being written is written to the end, even to a client
// that reads it slowly, and the agent then exits 0.
import net from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAgent } from '../helpers/agent-process';
import { closedPort } from '../helpers/net';

jest.setTimeout(60000);

it('SIGTERM finishes a large /metrics response to a slow reader, then exits 0', async () => {
  const down = await closedPort();
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-drain-'));
  const f = path.join(dir, 'c.yml');
  // 400 targets whose every series carries 2 KB of labels: a /metrics body of several MB, more
  // than the loopback socket buffers hold, so it is still being written when SIGTERM comes.
  const pad = 'p'.repeat(1000);
  const targets = Array.from(
    { length: 400 },
    (_, i) => `  - {name: t${i}, module: c, address: "127.0.0.1:${down}", labels: {pa: "${pad}", pb: "${pad}"}}`,
  );
  writeFileSync(
    f,
    ['global: {interval: 2s}', 'modules: {c: {prober: tcp, timeout: 1s}}', 'targets:', ...targets].join('\n'),
  );
  const agent = await startAgent(f);
  try {
    // Wait until every target has a result.
    let size = 0;
    for (let i = 0; i < 80 && size < 5_000_000; i++) {
      await new Promise((r) => setTimeout(r, 500));
      size = (await (await fetch(`${agent.base}/metrics`)).arrayBuffer()).byteLength;
    }
    expect(size).toBeGreaterThan(5_000_000);

    const sock = net.connect(agent.port, '127.0.0.1');
    sock.on('error', () => undefined);
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await new Promise<void>((r) => sock.once('data', () => r()));
    sock.pause();
    agent.proc.kill('SIGTERM');
    // Read nothing for longer than the old shutdown waited before cutting connections.
    await new Promise((r) => setTimeout(r, 5000));
    sock.resume();
    await closed;
    const raw = Buffer.concat(chunks);
    const headEnd = raw.indexOf('\r\n\r\n');
    const head = raw.subarray(0, headEnd).toString();
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
    expect(length).toBeGreaterThan(5_000_000);
    expect(raw.length - headEnd - 4).toBe(length);
    const code = await new Promise<number | null>((resolve) => {
      if (agent.proc.exitCode !== null) resolve(agent.proc.exitCode);
      else agent.proc.once('exit', (c) => resolve(c));
    });
    expect(code).toBe(0);
  } finally {
    await agent.stop();
  }
});
