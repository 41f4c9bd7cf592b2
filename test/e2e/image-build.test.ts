// The container image (helm/image/Dockerfile), built and run for real: buildah with chroot
// isolation builds the Dockerfile against local stand-ins for its base images (see
// test/helpers/image.ts), then the image's root is mounted read-only and the agent started in it
// the way a container runtime would, as the image's user, with the image's environment and
// entrypoint, and with capabilities as the chart grants them: all dropped, NET_RAW added when
// ICMP is used, no privilege escalation (no_new_privs).
//
// Minutes in CI (the base images are built on the first run and kept; the agent image every run).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parse as parseYaml } from 'yaml';
import { startAgent } from '../helpers/agent-process';
import { ensureBaseImages, sh } from '../helpers/image';
import { listen } from '../helpers/net';
import { Renderer } from '../helm/harness';
import { readPackageJson } from '../helpers/package-json';

jest.setTimeout(120_000);

const REPO = path.join(__dirname, '..', '..');
const pkg = readPackageJson(REPO);
const TAG = `localhost/portprobe:e2e-${process.pid}`;
const REVISION =
  spawnSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).stdout?.trim() ||
  '0123456789abcdef0123456789abcdef01234567';
const CREATED = new Date().toISOString().replace(/\.\d+Z$/, 'Z');

const scratch = mkdtempSync(path.join(tmpdir(), 'portprobe-image-'));
/** Where each run mounts the image's root read-only (in a mount namespace of its own). */
const roRoot = path.join(scratch, 'root');
/** The chart's config volume, mounted at /etc/portprobe/config. */
const configDir = path.join(scratch, 'config');

interface ImageConfig {
  User: string;
  Env: string[];
  Entrypoint: string[];
  Cmd: string[];
  WorkingDir: string;
  Labels: Record<string, string>;
  ExposedPorts: Record<string, unknown>;
}
let config: ImageConfig;
let container = '';
/** The container's root, as buildah mounts it (read-write: it is the container's own layer). */
let mounted = '';

/** How long the image build took, printed for the record (never asserted). */
const timings: string[] = [];

beforeAll(() => {
  const t0 = performance.now();
  const built = ensureBaseImages((line) => timings.push(`${((performance.now() - t0) / 1000).toFixed(0)}s ${line}`));
  const t1 = performance.now();
  mkdirSync(roRoot);
  mkdirSync(configDir);
  // The registry as this machine's npm reaches it (a mirror, or a proxy's certificate authority),
  // for the build's npm ci only: mounted for RUN steps, never committed into the image.
  const npmEtc = path.join(scratch, 'npm-etc');
  mkdirSync(npmEtc);
  const npmrc: string[] = [];
  const registry = sh('npm', ['config', 'get', 'registry']).trim();
  if (registry) npmrc.push(`registry=${registry}`);
  const cafile = sh('npm', ['config', 'get', 'cafile']).trim();
  if (cafile && cafile !== 'null' && cafile !== 'undefined' && existsSync(cafile)) {
    cpSync(cafile, path.join(npmEtc, 'ca.pem'));
    npmrc.push('cafile=/usr/local/etc/ca.pem');
  }
  writeFileSync(path.join(npmEtc, 'npmrc'), `${npmrc.join('\n')}\n`);
  // buildah gives RUN steps 1024 open files by default, and npm ci over a warm cache can open
  // more at once on a busy machine (EMFILE); allow 8192, or the host's hard limit if lower.
  const hard = sh('sh', ['-c', 'ulimit -Hn']).trim();
  const nofile = hard === 'unlimited' ? 8192 : Math.min(8192, Number(hard));
  sh(
    'buildah',
    [
      'bud',
      '--isolation',
      'chroot',
      '--pull=never',
      '--ulimit',
      `nofile=${nofile}:${nofile}`,
      '--volume',
      `${npmEtc}:/usr/local/etc:ro`,
      '--ignorefile',
      'helm/image/Dockerfile.dockerignore',
      '--file',
      'helm/image/Dockerfile',
      '--build-arg',
      `VERSION=${pkg.version}`,
      '--build-arg',
      `REVISION=${REVISION}`,
      '--build-arg',
      `CREATED=${CREATED}`,
      '--tag',
      TAG,
      '.',
    ],
    { cwd: REPO },
  );
  const t2 = performance.now();
  timings.push(
    `base images ${built.length === 0 ? 'present' : `built (${built.join(', ')})`}: ${((t1 - t0) / 1000).toFixed(0)}s; image build: ${((t2 - t1) / 1000).toFixed(0)}s`,
  );
  config = (JSON.parse(sh('buildah', ['inspect', '--type', 'image', TAG])) as { OCIv1: { config: ImageConfig } }).OCIv1
    .config;
  container = sh('buildah', ['from', '--pull=never', '--name', `portprobe-e2e-${process.pid}`, TAG]).trim();
  mounted = sh('buildah', ['mount', container]).trim();
  // The mount point of the config volume, made in the container's layer as a runtime makes it.
  mkdirSync(path.join(mounted, 'etc', 'portprobe', 'config'), { recursive: true });
}, 30 * 60_000);

afterAll(() => {
  process.stdout.write(`image build timings:\n  ${timings.join('\n  ')}\n`);
  if (container) spawnSync('buildah', ['rm', container], { stdio: 'ignore' });
  spawnSync('buildah', ['rmi', TAG], { stdio: 'ignore' });
  rmSync(scratch, { recursive: true, force: true });
});

type Caps = 'none' | 'NET_RAW';

/**
 * The command that runs `args` in the image as a container would: in a mount namespace of its own,
 * the image's root read-only with /proc, /dev and the config volume, chrooted, the image's user
 * with only the given capabilities and no_new_privs, the image's environment only, in its working
 * directory. With `isolatedNet`, in a network namespace of its own (loopback only) where
 * unprivileged ICMP sockets are off (net.ipv4.ping_group_range "1 0"), so only NET_RAW can ping.
 */
function inImage(args: string[], opts: { caps: Caps; isolatedNet?: boolean }): string[] {
  const [uid, gid] = config.User.split(':');
  const capFlags =
    opts.caps === 'NET_RAW'
      ? // setpriv cannot hand a capability to a non-root process other than as ambient; as the
        // agent's own, it is what the runtime gives the container's first process.
        ['--bounding-set=-all,+net_raw', '--inh-caps=-all,+net_raw', '--ambient-caps=-all,+net_raw']
      : ['--bounding-set=-all', '--inh-caps=-all'];
  const script = [
    'set -e',
    'mount --make-rprivate /',
    'mount --bind "$1" "$2"',
    'mount -o remount,bind,ro "$2"',
    'mount -t proc proc "$2/proc"',
    'mount --rbind /dev "$2/dev"',
    'mount --bind -o ro "$3" "$2/etc/portprobe/config"',
    'if [ "$4" = net ]; then ip link set lo up; sysctl -q -w net.ipv4.ping_group_range="1 0"; fi',
    'root=$2',
    'shift 4',
    'exec chroot "$root" "$@"',
  ].join('\n');
  return [
    'unshare',
    '--mount',
    ...(opts.isolatedNet ? ['--net'] : []),
    'sh',
    '-c',
    script,
    'sh',
    mounted,
    roRoot,
    configDir,
    opts.isolatedNet ? 'net' : 'host',
    // In the image from here on.
    '/usr/bin/env',
    '-i',
    ...config.Env,
    'HOME=/',
    '/usr/bin/setpriv',
    `--reuid=${uid}`,
    `--regid=${gid}`,
    '--clear-groups',
    ...capFlags,
    '--no-new-privs',
    '--',
    '/bin/sh',
    '-c',
    'cd "$0" && exec "$@"',
    config.WorkingDir,
    ...args,
  ];
}

function runInImage(
  args: string[],
  opts: { caps: Caps; isolatedNet?: boolean },
): { status: number | null; stdout: string; stderr: string } {
  const argv = inImage(args, opts);
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the image, as built', () => {
  test("runs as the chart's non-root user, on its port, starting the package bin with the launcher flags", () => {
    const values = parseYaml(readFileSync(path.join(REPO, 'helm', 'portprobe', 'values.yaml'), 'utf8')) as {
      podSecurityContext: { runAsUser: number; runAsGroup: number };
      port: number;
    };
    expect(config.User).toBe(`${values.podSecurityContext.runAsUser}:${values.podSecurityContext.runAsGroup}`);
    expect(config.User).not.toMatch(/^0:|^root/);
    expect(Object.keys(config.ExposedPorts)).toEqual([`${values.port}/tcp`]);
    const launcher = readFileSync(path.join(REPO, 'agent', 'main.ts'), 'utf8')
      .split('\n', 1)[0]
      .replace('#!/usr/bin/env -S ', '')
      .split(' ');
    expect(config.Entrypoint).toEqual([...launcher, `/opt/portprobe/${pkg.bin.portprobe}`]);
    expect(config.Cmd).toEqual(['--config.file=/opt/portprobe/config/default.yml']);
  });

  test('carries the OCI labels and the revision from the build arguments', () => {
    expect(config.Labels).toEqual(
      expect.objectContaining({
        'org.opencontainers.image.title': 'portprobe',
        'org.opencontainers.image.version': pkg.version,
        'org.opencontainers.image.revision': REVISION,
        'org.opencontainers.image.created': CREATED,
        'org.opencontainers.image.licenses': pkg.license,
      }),
    );
    expect(config.Env).toContain(`PORTPROBE_REVISION=${REVISION}`);
  });

  test('has ping with cap_net_raw as a file capability, not setuid, and no compilers, npm cache or dev dependencies', () => {
    const ping = path.join(mounted, 'usr', 'bin', 'ping');
    expect(sh('getcap', [ping]).trim()).toBe(`${ping} cap_net_raw=ep`);
    expect(statSync(ping).mode & 0o6000).toBe(0);
    for (const absent of [
      'usr/bin/gcc',
      'usr/bin/cc',
      'usr/bin/make',
      'root/.npm',
      'opt/portprobe/native',
      'opt/portprobe/agent',
    ]) {
      expect([absent, existsSync(path.join(mounted, absent))]).toEqual([absent, false]);
    }
    // Every package the lockfile marks dev-only (jest, typescript, …) stays out; @types/node, say,
    // is also a dependency of a runtime dependency.
    const lock = JSON.parse(readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const devOnly = Object.keys(pkg.devDependencies).filter((d) => lock.packages[`node_modules/${d}`]?.dev === true);
    expect(devOnly).toEqual(expect.arrayContaining(['jest', 'typescript', 'ts-jest']));
    const present = devOnly.filter((d) => existsSync(path.join(mounted, 'opt', 'portprobe', 'node_modules', d)));
    expect(present).toEqual([]);
    const maps = execFileSync('find', [path.join(mounted, 'opt', 'portprobe', 'dist'), '-name', '*.map'], {
      encoding: 'utf8',
    });
    expect(maps).toBe('');
  });
});

describe('the image, running', () => {
  test('--version names the package version and the revision it was built from', () => {
    const r = runInImage([...config.Entrypoint, '--version'], { caps: 'none' });
    expect([r.status, r.stdout, r.stderr]).toEqual([
      0,
      `portprobe ${pkg.version} (revision ${REVISION}, node ${process.version})\n`,
      '',
    ]);
  });

  test('starts the bundled agent from the code cache the build wrote with the ENTRYPOINT flags', () => {
    const r = runInImage(['env', 'PORTPROBE_CODE_CACHE_REPORT=1', ...config.Entrypoint, '--version'], {
      caps: 'none',
    });
    expect([r.status, r.stderr]).toEqual([0, 'code cache: used\n']);
    const files = ['bundle.js', 'bundle.cache', 'main.js'].map((f) =>
      existsSync(path.join(mounted, 'opt', 'portprobe', 'dist', 'agent', f)),
    );
    expect(files).toEqual([true, true, true]);
  });

  test("the default CMD config and the chart's default ConfigMap pass --config.check", () => {
    const r = runInImage([...config.Entrypoint, ...config.Cmd, '--config.check'], { caps: 'none' });
    expect([r.status, r.stderr]).toEqual([0, '']);
    const renderer = Renderer.build();
    try {
      const data = renderer
        .render([])
        .objects.filter((o) => o.kind === 'ConfigMap')
        .map((o) => o.data as Record<string, string> | undefined)
        .find((d) => d?.['portprobe.yml']);
      writeFileSync(path.join(configDir, 'portprobe.yml'), data?.['portprobe.yml'] ?? '');
    } finally {
      renderer.dispose();
    }
    const chart = runInImage(
      [...config.Entrypoint, '--config.file=/etc/portprobe/config/portprobe.yml', '--config.check'],
      { caps: 'none' },
    );
    expect([chart.status, chart.stderr]).toEqual([0, '']);
  });

  test('serves /metrics as 65532 from a read-only root, with the arrival-stamp and netlink addons loaded and the revision in portprobe_build_info', async () => {
    const up = await listen();
    writeFileSync(
      path.join(configDir, 'portprobe.yml'),
      [
        'global: {interval: 1s}',
        'sockets: {interval: 1s, source: netlink}',
        'modules: {tcp_connect: {prober: tcp, timeout: 900ms}}',
        'targets:',
        `  - {name: local, module: tcp_connect, address: "127.0.0.1:${up.port}"}`,
      ].join('\n'),
    );
    // startAgent adds --config.file, the listen address and the log format after the entrypoint.
    const agent = await startAgent(
      '/etc/portprobe/config/portprobe.yml',
      [],
      {},
      inImage(config.Entrypoint, { caps: 'none' }),
    );
    try {
      // The process is the agent itself (every step before it exec'd), as the image's user.
      const status = readFileSync(`/proc/${agent.proc.pid}/status`, 'utf8');
      expect(`${/^Uid:\s+(\d+)/m.exec(status)?.[1]}:${/^Gid:\s+(\d+)/m.exec(status)?.[1]}`).toBe(config.User);
      expect(/^CapEff:\s+(\w+)/m.exec(status)?.[1]).toBe('0000000000000000');
      expect(readFileSync(`/proc/${agent.proc.pid}/cmdline`, 'utf8').split('\0')[0]).toBe('node');
      // Its root is the read-only mount.
      const rootMount = readFileSync(`/proc/${agent.proc.pid}/mountinfo`, 'utf8')
        .split('\n')
        .find((l) => l.split(' ')[4] === '/');
      expect(rootMount?.split(' ')[5].split(',')).toContain('ro');
      let metrics = '';
      for (let i = 0; i < 100 && !/^probe_success\{target="local"/m.test(metrics); i++) {
        metrics = await (await fetch(`${agent.base}/metrics`)).text();
        if (!/^probe_success\{target="local"/m.test(metrics)) await new Promise((r) => setTimeout(r, 200));
      }
      expect(metrics).toMatch(/^probe_success\{target="local",module="tcp_connect"\} 1$/m);
      expect(metrics).toMatch(/^portprobe_arrival_stamps_enabled 1$/m);
      // The netlink addon is in the image too: the socket scan reads sock_diag, not /proc.
      for (let i = 0; i < 100 && !/^portprobe_socket_scan_source_info\{/m.test(metrics); i++) {
        await new Promise((r) => setTimeout(r, 200));
        metrics = await (await fetch(`${agent.base}/metrics`)).text();
      }
      expect(metrics).toMatch(/^portprobe_socket_scan_source_info\{source="netlink"\} 1$/m);
      expect(metrics).toMatch(
        new RegExp(
          `^portprobe_build_info\\{version="${pkg.version.replace(/\./g, '\\.')}",revision="${REVISION}",nodejs="${process.version}"\\} 1$`,
          'm',
        ),
      );
      expect(agent.logs()).not.toMatch(/EROFS|read-only file system/i);
    } finally {
      const { code } = await agent.stop();
      await up.close();
      expect(code).toBe(0);
    }
  });

  describe('ICMP, where unprivileged ICMP sockets are off', () => {
    const icmpConfig = (): void =>
      writeFileSync(
        path.join(configDir, 'portprobe.yml'),
        [
          'modules: {ping: {prober: icmp, timeout: 5s, icmp: {packets: 2}}}',
          'targets:',
          '  - {name: loopback, module: ping, address: 127.0.0.1}',
        ].join('\n'),
      );

    test('with NET_RAW, as the chart grants it, the agent pings', () => {
      icmpConfig();
      const r = runInImage([...config.Entrypoint, '--config.file=/etc/portprobe/config/portprobe.yml', '--once'], {
        caps: 'NET_RAW',
        isolatedNet: true,
      });
      expect([r.status, r.stderr]).toEqual([0, expect.not.stringMatching(/level=(warn|error)/)]);
      expect(r.stdout).toMatch(/^probe_success\{target="loopback",module="ping"\} 1$/m);
      expect(r.stdout).toMatch(/^probe_icmp_packets_received\{target="loopback",module="ping"\} 2$/m);
    });

    test('without NET_RAW the same probe fails, saying ICMP is unavailable', () => {
      icmpConfig();
      const r = runInImage([...config.Entrypoint, '--config.file=/etc/portprobe/config/portprobe.yml', '--once'], {
        caps: 'none',
        isolatedNet: true,
      });
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^probe_success\{target="loopback",module="ping"\} 0$/m);
      expect(r.stdout).toMatch(
        /^probe_failure_info\{target="loopback",module="ping",phase="icmp",reason="icmp_unavailable"\} 1$/m,
      );
    });
  });
});
