// Issue 22, "Also": an agent that runs out of file descriptors says so, instead of reporting an
// unexplained internal error. The agent runs --once under a 60-descriptor limit with 120 probes
// at once against a silent peer, so some sockets cannot be opened.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MAIN } from '../helpers/agent-process';
import { listen } from '../helpers/net';

jest.setTimeout(30000);

it('a probe that finds no file descriptor names the shortage and what to raise', async () => {
  const silent = await listen();
  try {
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-emfile-'));
    const f = path.join(dir, 'c.yml');
    writeFileSync(
      f,
      [
        'global: {concurrency: 200}',
        'modules: {t: {prober: tcp, timeout: 2s, tcp: {expect_banner: "."}}}',
        'targets:',
        ...Array.from({ length: 120 }, (_, i) => `  - {name: t${i}, module: t, address: "127.0.0.1:${silent.port}"}`),
      ].join('\n'),
    );
    const out = await new Promise<string>((resolve) =>
      execFile(
        'bash',
        [
          '-c',
          `ulimit -n 60 && exec "${process.execPath}" "${MAIN}" --once --config.file="${f}" --log.level=debug --log.format=json`,
        ],
        { timeout: 25000, maxBuffer: 16 * 1024 * 1024 },
        (_err, stdout, stderr) => resolve(stdout + stderr),
      ),
    );
    const failed = out
      .split('\n')
      .filter((l) => l.includes('"msg":"probe failed"'))
      .map((l) => JSON.parse(l) as Record<string, string>);
    const short = failed.filter((r) => r.reason === 'internal_error');
    expect(short.length).toBeGreaterThan(0);
    for (const r of short)
      expect(r.error).toBe('the agent ran out of file descriptors (EMFILE); the target was not tried');
    // The others connected and waited for a banner that never came.
    expect(failed.some((r) => r.reason === 'no_greeting')).toBe(true);
  } finally {
    await silent.close();
  }
});
