// The last-resort guards: an error that escaped every handler is counted, logged once per stack,
// and the agent goes on serving and probing. A prober that throws is counted as well.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAgent } from '../helpers/agent-process';
import { listen } from '../helpers/net';
import { runProbe } from '../../agent/runner';
import { lastResortCounts } from '../../agent/last-resort';
import { PROBERS } from '../../exporters';

jest.setTimeout(30000);

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

it('a prober that throws gives internal_error and is counted as prober_threw', async () => {
  const spy = jest.spyOn(PROBERS.tcp, 'run').mockImplementation(() => {
    throw new Error('boom inside a prober');
  });
  const errors: Record<string, unknown>[] = [];
  try {
    const before = lastResortCounts().get('prober_threw') ?? 0;
    for (let i = 0; i < 2; i++) {
      const r = await runProbe({
        target: { name: 't', address: '127.0.0.1:1', labels: {} },
        module: { name: 'm', prober: 'tcp', timeoutSeconds: 1, settings: PROBERS.tcp.defaults },
        logger: { ...quiet, error: (_m, f) => errors.push(f ?? {}) },
      });
      expect(r.failure).toMatchObject({ reason: 'internal_error', message: 'boom inside a prober' });
    }
    expect(lastResortCounts().get('prober_threw')).toBe(before + 2);
    // The same stack is logged once, with the stack.
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ kind: 'prober_threw', target: 't', prober: 'tcp' });
    expect(String(errors[0].stack)).toContain('boom inside a prober');
  } finally {
    spy.mockRestore();
  }
});

it('in server mode an uncaught exception is counted and logged once, and the agent keeps serving and probing', async () => {
  const peer = await listen();
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-lastresort-'));
  const cfg = path.join(dir, 'c.yml');
  writeFileSync(
    cfg,
    [
      'global: {interval: 1s}',
      'modules: {tcp: {prober: tcp, timeout: 1s}}',
      'targets:',
      `  - {name: up, module: tcp, address: "127.0.0.1:${peer.port}"}`,
    ].join('\n'),
  );
  // Stands in for a library whose 'error' event nobody listened to: the same throw, twice, from a
  // timer once the agent serves (not a hook of the agent's: node loads it before the agent).
  const thrower = path.join(dir, 'throw.js');
  writeFileSync(
    thrower,
    "for (const ms of [1500, 1700]) setTimeout(() => { throw new Error('escaped from a socket parser'); }, ms).unref();\n",
  );
  const agent = await startAgent(cfg, [], { NODE_OPTIONS: `--require ${thrower}` });
  try {
    let text = '';
    for (let i = 0; i < 60; i++) {
      await new Promise((r) => setTimeout(r, 100));
      text = await (await fetch(`${agent.base}/metrics`)).text();
      if (/portprobe_last_resort_errors_total\{kind="uncaught_exception"\} 2/.test(text)) break;
    }
    expect(text).toMatch(/portprobe_last_resort_errors_total\{kind="uncaught_exception"\} 2\n/);
    expect(text).toMatch(/portprobe_last_resort_errors_total\{kind="prober_threw"\} 0\n/);
    const probesBefore = Number(/portprobe_probes_total\{module="tcp",result="success"\} (\d+)/.exec(text)?.[1] ?? 0);
    await new Promise((r) => setTimeout(r, 2200));
    const later = await (await fetch(`${agent.base}/metrics`)).text();
    expect(
      Number(/portprobe_probes_total\{module="tcp",result="success"\} (\d+)/.exec(later)?.[1] ?? 0),
    ).toBeGreaterThan(probesBefore);
    expect(agent.proc.exitCode).toBeNull();
    const logged = agent
      .logs()
      .split('\n')
      .filter((l) => l.includes('last-resort guard'));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('escaped from a socket parser');
    expect(logged[0]).toContain('"kind":"uncaught_exception"');
  } finally {
    await agent.stop();
    await peer.close();
  }
});
