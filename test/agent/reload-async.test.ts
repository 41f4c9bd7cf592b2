// Reloads of a running agent (SIGHUP, POST /-/reload) parse the file in a child process and apply
// the targets in slices. They must end exactly where a synchronous reload ends, let the event
// loop run while they work, run one at a time, and reject a bad file as the synchronous one does.
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PerformanceObserver, constants, performance, type PerformanceEntry } from 'node:perf_hooks';
import { Agent, SHRINK_GC_AGAIN_MS, SHRINK_GC_TARGETS, allFamilies, fullGc } from '../../agent/agent';
import { Slicer } from '../../agent/slicer';
import { Scheduler, spreadOffsets } from '../../agent/scheduler';
import { loadConfigFile, parseConfig } from '../../config/load';
import { createLogger } from '../../agent/logger';
import { closedPort, listen } from '../helpers/net';
import { ResultStore } from '../../agent/store';
import { FamilyRegistry } from '../../agent/exposition';
import { createSelfMetrics } from '../../agent/self-metrics';
import { silentLogger } from '../helpers/context';

const ROOT = path.join(__dirname, '..', '..');

function configText(n: number, port: number, label = 'a', interval = '1h'): string {
  const lines = [`global: {interval: ${interval}}`, 'modules: {t: {prober: tcp, timeout: 1s}}', 'targets:'];
  for (let i = 0; i < n; i++)
    lines.push(`  - {name: t${i}, module: t, address: "127.0.0.1:${port}", labels: {team: ${label}}}`);
  return `${lines.join('\n')}\n`;
}

function series(agent: Agent): string[] {
  return [...agent.store.entries()].map((e) => `${e.target.name} ${e.prefix}`).sort();
}

const logger = createLogger('error', 'json', { write: () => true });

describe('reloadAsync', () => {
  let port: number;
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-reload-async-'));
  const agents: Agent[] = [];
  const newAgent = (file: string): Agent => {
    const a = new Agent({ configFile: file, logger, build: { version: 't', revision: 't' } });
    agents.push(a);
    return a;
  };
  beforeAll(async () => {
    port = await closedPort();
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
  });

  it('ends where a synchronous reload ends, growing and shrinking', async () => {
    const fa = path.join(dir, 'a.yml');
    const fb = path.join(dir, 'b.yml');
    writeFileSync(fa, configText(10, port));
    writeFileSync(fb, configText(10, port));
    const sync = newAgent(fa);
    const sliced = newAgent(fb);
    expect(sync.reload().ok).toBe(true);
    expect(sliced.reload().ok).toBe(true);
    for (const [n, label] of [
      [3000, 'a'],
      [3000, 'b'],
      [5, 'b'],
    ] as const) {
      writeFileSync(fa, configText(n, port, label));
      writeFileSync(fb, configText(n, port, label));
      expect(sync.reload()).toEqual({ ok: true, errors: [] });
      expect(await sliced.reloadAsync()).toEqual({ ok: true, errors: [] });
      expect(series(sliced)).toEqual(series(sync));
      expect(series(sliced)).toHaveLength(n);
      expect(sliced.config?.targets).toEqual(sync.config?.targets);
      expect(sliced.ready).toBe(true);
    }
  });

  it('lets timers run between slices of a large reload', async () => {
    const f = path.join(dir, 'big.yml');
    writeFileSync(f, configText(10, port));
    const agent = newAgent(f);
    agent.reload();
    writeFileSync(f, configText(20000, port));
    let ticks = 0;
    const iv = setInterval(() => ticks++, 1);
    const cfg = loadConfigFile(f);
    const slicer = new Slicer(2);
    const ticksBefore = ticks;
    await agent.scheduler.applySliced(cfg.targets, cfg.modules, 16, slicer);
    clearInterval(iv);
    await agent.stop(); // no 20,000 first probes in the background of the next tests
    expect(slicer.pauses).toBeGreaterThan(0);
    expect(ticks).toBeGreaterThan(ticksBefore);
    // Where the offsets of the new targets come from: the same spread as a synchronous apply.
    const spread = spreadOffsets(cfg.targets);
    expect(spread.size).toBe(20000);
  });

  it('runs one reload at a time; the last file wins', async () => {
    const f = path.join(dir, 'queue.yml');
    writeFileSync(f, configText(10, port));
    const agent = newAgent(f);
    agent.reload();
    writeFileSync(f, configText(2000, port));
    const first = agent.reloadAsync();
    writeFileSync(f, configText(7, port, 'c'));
    const second = agent.reloadAsync();
    const third = agent.reloadAsync();
    expect(third).toBe(second);
    expect((await first).ok).toBe(true);
    expect((await second).ok).toBe(true);
    expect(series(agent)).toHaveLength(7);
    expect(series(agent)[0]).toContain('team="c"');
  });

  it('gives the memory of the targets a large shrink dropped back (a full collection after it)', async () => {
    const f = path.join(dir, 'shrink.yml');
    writeFileSync(f, configText(10, port));
    const agent = newAgent(f);
    agent.reload();
    const gc = fullGc();
    expect(typeof gc).toBe('function');
    (gc as () => void)();
    const small = process.memoryUsage().heapUsed;
    writeFileSync(f, configText(SHRINK_GC_TARGETS * 3, port));
    expect((await agent.reloadAsync()).ok).toBe(true);
    const large = process.memoryUsage().heapUsed;
    expect(large - small).toBeGreaterThan(30 * 1024 * 1024);
    writeFileSync(f, configText(10, port));
    expect((await agent.reloadAsync()).ok).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    const after = process.memoryUsage().heapUsed;
    // Within half of what the large config added (probes of the dropped targets that were still in
    // flight hold a little; without the collection the heap stayed several times above this).
    expect(after - small).toBeLessThan((large - small) / 2);
    await agent.stop();
  });

  it('collects again once the waiting probes of the dropped targets have been turned away (a second full collection later)', async () => {
    const f = path.join(dir, 'shrink-again.yml');
    writeFileSync(f, configText(SHRINK_GC_TARGETS * 3, port));
    const agent = newAgent(f);
    agent.reload();
    const majors: number[] = [];
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const detail = (e as PerformanceEntry & { detail?: { kind?: number } }).detail;
        if (detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors.push(e.startTime);
      }
    });
    obs.observe({ entryTypes: ['gc'] });
    try {
      writeFileSync(f, configText(10, port));
      expect((await agent.reloadAsync()).ok).toBe(true);
      const done = performance.now();
      await new Promise((r) => setTimeout(r, SHRINK_GC_AGAIN_MS + 1000));
      // One right after the reload, one about SHRINK_GC_AGAIN_MS later.
      expect(majors.some((t) => t - done < SHRINK_GC_AGAIN_MS / 2)).toBe(true);
      expect(majors.some((t) => t - done >= SHRINK_GC_AGAIN_MS - 100)).toBe(true);
    } finally {
      obs.disconnect();
      await agent.stop();
    }
  });

  it('rejects a bad file with the synchronous messages and keeps the running config', async () => {
    const f = path.join(dir, 'bad.yml');
    writeFileSync(f, configText(3, port));
    const agent = newAgent(f);
    agent.reload();
    writeFileSync(f, 'global: {interval: nope}\ntargets: [{name: x}]\n');
    const out = await agent.reloadAsync();
    expect(out.ok).toBe(false);
    expect(out.errors).toEqual(agent.reload().errors);
    expect(out.errors.join('\n')).toContain('global.interval: must be a duration');
    expect(series(agent)).toHaveLength(3);
    expect(agent.reloadState.ok).toBe(false);
  });
});

describe('a target removed while its probe waits for a slot', () => {
  it.each(['apply', 'applySliced'] as const)('is not probed once the slot frees (%s)', async (how) => {
    // One slot: "slow" holds it 1.5 s waiting for a banner that never comes; "gone" waits behind it
    // and leaves the config meanwhile. Its peer must never see a connection.
    let goneAccepts = 0;
    const silent = await listen();
    const gone = await listen((c) => {
      goneAccepts++;
      c.end();
    });
    const metrics = createSelfMetrics({ version: 't', revision: 't' });
    const store = new ResultStore(new FamilyRegistry(allFamilies()));
    const sched = new Scheduler({ store, metrics, logger: silentLogger, concurrency: 1 });
    const cfg = (withGone: boolean): ReturnType<typeof parseConfig> =>
      parseConfig(
        [
          'global: {interval: 1h, concurrency: 1}',
          'modules: {slow: {prober: tcp, timeout: 1500ms, tcp: {expect_banner: "."}}, fast: {prober: tcp, timeout: 1s}}',
          'targets:',
          `  - {name: slow, module: slow, address: "127.0.0.1:${silent.port}"}`,
          ...(withGone ? [`  - {name: gone, module: fast, address: "127.0.0.1:${gone.port}"}`] : []),
        ].join('\n'),
        'slot.yml',
      );
    try {
      const first = cfg(true);
      sched.apply(first.targets, first.modules, 1);
      const all = sched.runAllOnce();
      await new Promise((r) => setTimeout(r, 100));
      const second = cfg(false);
      if (how === 'apply') sched.apply(second.targets, second.modules, 1);
      else await sched.applySliced(second.targets, second.modules, 1, new Slicer());
      await all;
      await new Promise((r) => setTimeout(r, 100));
      expect(goneAccepts).toBe(0);
    } finally {
      await sched.stop();
      await silent.close();
      await gone.close();
    }
  });

  it('is probed when it stays (the same sequence without removing it)', async () => {
    let accepts = 0;
    const silent = await listen();
    const kept = await listen((c) => {
      accepts++;
      c.end();
    });
    const metrics = createSelfMetrics({ version: 't', revision: 't' });
    const store = new ResultStore(new FamilyRegistry(allFamilies()));
    const sched = new Scheduler({ store, metrics, logger: silentLogger, concurrency: 1 });
    const cfg = parseConfig(
      [
        'global: {interval: 1h, concurrency: 1}',
        'modules: {slow: {prober: tcp, timeout: 1500ms, tcp: {expect_banner: "."}}, fast: {prober: tcp, timeout: 1s}}',
        'targets:',
        `  - {name: slow, module: slow, address: "127.0.0.1:${silent.port}"}`,
        `  - {name: kept, module: fast, address: "127.0.0.1:${kept.port}"}`,
      ].join('\n'),
      'slot.yml',
    );
    try {
      sched.apply(cfg.targets, cfg.modules, 1);
      const all = sched.runAllOnce();
      await new Promise((r) => setTimeout(r, 100));
      sched.apply(cfg.targets, cfg.modules, 1);
      await all;
      expect(accepts).toBe(1);
    } finally {
      await sched.stop();
      await silent.close();
      await kept.close();
    }
  });
});

describe('the child-process loader of the build', () => {
  // The compiled loader (npm run build) is what runs in the child; from TypeScript it runs inline.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the built module, on purpose
  const built = require(path.join(ROOT, 'dist', 'config', 'load-async.js')) as typeof import('../../config/load-async');
  const TESTDATA = path.join(ROOT, 'config', 'testdata');

  it.each(readdirSync(TESTDATA).filter((f) => f.endsWith('.yml')))(
    'gives what loadConfigFile gives for %s',
    async (name) => {
      const file = path.join(TESTDATA, name);
      let want: unknown;
      try {
        want = { config: JSON.parse(JSON.stringify(loadConfigFile(file, { DB_PASSWORD: 'pw' }), replacer)) };
      } catch (e) {
        want = { errors: (e as { errors: string[] }).errors };
      }
      let got: unknown;
      try {
        got = {
          config: JSON.parse(
            JSON.stringify(await built.loadConfigFileOffThread(file, { DB_PASSWORD: 'pw' }, 0), replacer),
          ),
        };
      } catch (e) {
        got = { errors: (e as { errors: string[] }).errors };
      }
      expect(got).toEqual(want);
    },
  );

  it('reads the file a large config came from, in batches', async () => {
    const f = path.join(mkdtempSync(path.join(tmpdir(), 'portprobe-offthread-')), 'c.yml');
    writeFileSync(f, configText(built.TARGET_BATCH * 2 + 5, 9));
    const cfg = await built.loadConfigFileOffThread(f, process.env, 0);
    expect(cfg.targets).toHaveLength(built.TARGET_BATCH * 2 + 5);
    expect(cfg.targets[built.TARGET_BATCH * 2 + 4].name).toBe(`t${built.TARGET_BATCH * 2 + 4}`);
    expect(readFileSync(f, 'utf8')).toContain('t0');
  });

  it('starts a loader process only for a file of INLINE_BELOW_BYTES or more', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the module the built loader calls
    const cp = require('node:child_process') as typeof import('node:child_process');
    const fork = jest.spyOn(cp, 'fork');
    try {
      const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-inline-'));
      const small = path.join(dir, 'small.yml');
      writeFileSync(small, configText(10, 9));
      expect((await built.loadConfigFileOffThread(small)).targets).toHaveLength(10);
      expect(fork).not.toHaveBeenCalled();
      const large = path.join(dir, 'large.yml');
      writeFileSync(large, configText(2000, 9));
      expect(readFileSync(large).length).toBeGreaterThanOrEqual(built.INLINE_BELOW_BYTES);
      expect((await built.loadConfigFileOffThread(large)).targets).toHaveLength(2000);
      expect(fork).toHaveBeenCalledTimes(1);
    } finally {
      fork.mockRestore();
    }
  });

  it('says which file it cannot read', async () => {
    for (const inlineBelow of [0, built.INLINE_BELOW_BYTES]) {
      await expect(
        built.loadConfigFileOffThread('/nonexistent/portprobe.yml', process.env, inlineBelow),
      ).rejects.toMatchObject({
        errors: ['/nonexistent/portprobe.yml: cannot read config: ENOENT'],
      });
    }
  });
});

/** Maps and RegExps (modules, probe_api) in a comparable form; Secrets show their class. */
function replacer(_k: string, v: unknown): unknown {
  if (v instanceof Map) return Object.fromEntries(v);
  if (v instanceof RegExp) return v.source;
  if (v && typeof v === 'object' && v.constructor && v.constructor.name === 'Secret')
    return `Secret:${String((v as { reveal?: () => string }).reveal?.())}`;
  return v;
}
