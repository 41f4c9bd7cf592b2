import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MAIN, startAgent } from '../helpers/agent-process';
import { closedPort, listen } from '../helpers/net';

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { timeout: 20000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-cli-'));
const write = (name: string, text: string): string => {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
};

describe('portprobe command line', () => {
  it('--version', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^portprobe \d+\.\d+\.\d+ \(revision .*, node v\d+/);
  });

  it('--help lists every flag', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const f of [
      '--config.file',
      '--config.check',
      '--web.listen-address',
      '--web.config.file',
      '--log.level',
      '--log.format',
      '--once',
      '--version',
    ]) {
      expect(r.stdout).toContain(f);
    }
  });

  it.each([
    [['--bogus'], 'portprobe: unknown flag --bogus (see --help)\n'],
    [['--log.level=loud'], 'portprobe: --log.level must be one of debug, info, warn, error, not "loud"\n'],
    [['--log.format=xml'], 'portprobe: --log.format must be logfmt or json, not "xml"\n'],
    [
      ['--web.listen-address=nowhere'],
      'portprobe: --web.listen-address: "nowhere" is not host:port (e.g. :9821, 127.0.0.1:9821, [::1]:9821)\n',
    ],
    [['--shard.count=2', '--shard.index=2'], 'portprobe: --shard.index 2 must be below --shard.count 2\n'],
    [['--config.file'], 'portprobe: --config.file needs a value\n'],
  ])('bad flags %j exit 2 with one line', async (args, msg) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(msg);
  });

  it('--config.check: 0 for a valid file', async () => {
    const f = write('ok.yml', 'modules: {t: {prober: tcp}}\ntargets: [{name: a, module: t, address: "127.0.0.1:1"}]\n');
    const r = await run([`--config.file=${f}`, '--config.check']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${f}: OK (1 modules, 1 targets)\n`);
  });

  it('--config.check: 2 and every error for an invalid file', async () => {
    const f = write('bad.yml', 'global:\n  interval: x\ntargets: [{name: a, module: t}]\n');
    const r = await run([`--config.file=${f}`, '--config.check']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `${f}:2: global.interval: must be a duration such as 500ms, 15s, 1m or 1h30m\n` +
        `${f}:3: targets[0]: missing required field "address"\n`,
    );
  });

  it('the default config is valid', async () => {
    const r = await run(['--config.check']);
    expect(r.code).toBe(0);
  });

  it('--once probes every target once and prints the exposition', async () => {
    const l = await listen();
    const down = await closedPort();
    try {
      const f = write(
        'once.yml',
        `modules: {t: {prober: tcp, timeout: 2s}}\ntargets:\n  - {name: up, module: t, address: "127.0.0.1:${l.port}"}\n  - {name: down, module: t, address: "127.0.0.1:${down}"}\n`,
      );
      const r = await run([`--config.file=${f}`, '--once', '--log.level=error']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('probe_success{target="up",module="t"} 1\n');
      expect(r.stdout).toContain('probe_success{target="down",module="t"} 0\n');
      expect(r.stdout).toContain('probe_failure_info{target="down",module="t",phase="connect",reason="refused"} 1\n');
      expect(r.stdout).not.toContain('process_');
    } finally {
      await l.close();
    }
  });

  it('serves, reloads on SIGHUP, and exits promptly on SIGTERM', async () => {
    const l = await listen();
    const f = write(
      'serve.yml',
      `modules: {t: {prober: tcp}}\nglobal: {interval: 1s}\ntargets: [{name: a, module: t, address: "127.0.0.1:${l.port}"}]\n`,
    );
    let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
    try {
      agent = await startAgent(f);
      expect((await fetch(`${agent.base}/-/ready`)).status).toBe(200);
      writeFileSync(
        f,
        `modules: {t: {prober: tcp}}\nglobal: {interval: 1s}\ntargets: [{name: b, module: t, address: "127.0.0.1:${l.port}"}]\n`,
      );
      agent.proc.kill('SIGHUP');
      let text = '';
      for (let i = 0; i < 50; i++) {
        text = await (await fetch(`${agent.base}/metrics`)).text();
        if (text.includes('target="b"') && !text.includes('target="a"')) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(text).toContain('probe_success{target="b",module="t"} 1');
      expect(text).not.toContain('target="a"');
      writeFileSync(f, 'targets: {}\n');
      agent.proc.kill('SIGHUP');
      for (let i = 0; i < 50 && !text.includes('portprobe_config_last_reload_successful 0'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        text = await (await fetch(`${agent.base}/metrics`)).text();
      }
      expect(text).toContain('portprobe_config_last_reload_successful 0');
      expect(text).toContain('probe_success{target="b",module="t"} 1');
    } finally {
      await l.close();
    }
    const { code, ms } = await agent.stop();
    expect(code).toBe(0);
    expect(ms).toBeLessThan(5000);
  });

  it('refuses to start on an invalid config, with exit code 2', async () => {
    const f = write('bad-start.yml', 'bogus: 1\n');
    const r = await run([`--config.file=${f}`, '--web.listen-address=127.0.0.1:0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f}:1: bogus: unknown field`);
  });
});
