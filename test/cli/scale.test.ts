import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAgent } from '../helpers/agent-process';
import { listen } from '../helpers/net';

jest.setTimeout(30000);

it('hundreds of probes in flight at once: no listener-leak warning, no unhandled rejection', async () => {
  const silent = await listen();
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-scale-'));
  const f = path.join(dir, 'c.yml');
  const targets = Array.from(
    { length: 300 },
    (_, i) => `  - {name: t${i}, module: slow, address: "127.0.0.1:${silent.port}"}`,
  );
  writeFileSync(
    f,
    [
      'global: {interval: 1s, concurrency: 300}',
      'modules: {slow: {prober: tcp, timeout: 900ms, tcp: {expect_banner: "."}}}',
      'targets:',
      ...targets,
    ].join('\n'),
  );
  const agent = await startAgent(f);
  try {
    await new Promise((r) => setTimeout(r, 2500));
    const text = await (await fetch(`${agent.base}/metrics`)).text();
    expect(text).toMatch(/portprobe_probes_total\{module="slow",result="failure"\} [1-9][0-9]{2,}/);
  } finally {
    await agent.stop();
    await silent.close();
  }
  expect(agent.logs()).not.toContain('MaxListenersExceededWarning');
  expect(agent.logs()).not.toContain('unhandled promise rejection');
});
