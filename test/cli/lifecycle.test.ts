import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAgent } from '../helpers/agent-process';
import { listen } from '../helpers/net';

jest.setTimeout(30000);

describe('shutdown', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s: aborts probes in flight, finishes the response in flight, exits 0 within 5 s',
    async (signal) => {
      const silent = await listen();
      const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-life-'));
      const f = path.join(dir, 'c.yml');
      const targets = Array.from(
        { length: 20 },
        (_, i) => `  - {name: s${i}, module: slow, address: "127.0.0.1:${silent.port}"}`,
      );
      writeFileSync(
        f,
        [
          'global: {interval: 1m}',
          'modules: {slow: {prober: tcp, timeout: 50s, tcp: {expect_banner: "."}}}',
          'targets:',
          ...targets,
        ].join('\n'),
      );
      const agent = await startAgent(f);
      try {
        const inFlight = fetch(`${agent.base}/probe?target=s0`).then(async (r) => ({
          status: r.status,
          text: await r.text(),
        }));
        await new Promise((r) => setTimeout(r, 300));
        const t0 = Date.now();
        agent.proc.kill(signal);
        const response = await inFlight;
        expect(response.status).toBe(200);
        expect(response.text).toContain('probe_success 0');
        expect(response.text).toContain('reason="aborted"');
        const code = await new Promise<number | null>((resolve) => {
          if (agent.proc.exitCode !== null) resolve(agent.proc.exitCode);
          else agent.proc.once('exit', (c) => resolve(c));
        });
        expect(code).toBe(0);
        expect(Date.now() - t0).toBeLessThan(5000);
        expect(agent.logs()).toContain('"msg":"shutting down"');
        expect(agent.logs()).not.toContain('unhandled promise rejection');
      } finally {
        await agent.stop();
        await silent.close();
      }
    },
  );
});
