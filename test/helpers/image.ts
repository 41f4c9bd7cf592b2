// Builds and runs the container image without a registry or a daemon: buildah (chroot isolation)
// on local stand-ins for the base images that helm/image/Dockerfile names.
//
// The stand-ins are made here from what the official node images are made of: a minimal Debian
// bookworm (debootstrap from the machine's Debian mirror) with this machine's Node 20 where the
// official images keep it (/usr/local/bin/node, /usr/local/lib/node_modules/npm,
// /usr/local/include/node), and for the build image also gcc, g++, make and python3. They are
// committed under the official names, so the Dockerfile's FROM lines resolve to them, and they stay
// in buildah's storage for later runs; when one is missing it is built again.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const SLIM_IMAGE = 'docker.io/library/node:20-bookworm-slim';
export const BUILD_IMAGE = 'docker.io/library/node:20-bookworm';

/** Runs a command, returning stdout; throws with its output when it fails. */
export function sh(cmd: string, args: string[], opts: { cwd?: string; timeout?: number; input?: string } = {}): string {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    cwd: opts.cwd,
    timeout: opts.timeout ?? 1_200_000,
    input: opts.input,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0)
    throw new Error(
      `${cmd} ${args.join(' ')} exited with ${r.status}:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`,
    );
  return r.stdout;
}

export function imageExists(name: string): boolean {
  return spawnSync('buildah', ['inspect', '--type', 'image', name], { stdio: 'ignore' }).status === 0;
}

interface AptSource {
  uri: string;
  suites: string[];
}

/** The Debian bookworm entries of this machine's APT sources (one-line and deb822 formats). */
export function debianSources(): AptSource[] {
  const files = [
    '/etc/apt/sources.list',
    ...(existsSync('/etc/apt/sources.list.d')
      ? readdirSync('/etc/apt/sources.list.d').map((f) => path.join('/etc/apt/sources.list.d', f))
      : []),
  ];
  const out: AptSource[] = [];
  const wanted = (suite: string): boolean => /^bookworm(-updates|-security)?$/.test(suite);
  for (const f of files.filter((x) => existsSync(x))) {
    const text = readFileSync(f, 'utf8');
    if (f.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string): string[] =>
          new RegExp(`^${name}:\\s*(.+)$`, 'mi').exec(stanza)?.[1].trim().split(/\s+/) ?? [];
        if (!field('Types').includes('deb')) continue;
        const suites = field('Suites').filter(wanted);
        if (!field('Components').includes('main')) continue;
        for (const uri of field('URIs')) if (suites.length > 0) out.push({ uri, suites });
      }
    } else if (f.endsWith('.list')) {
      for (const line of text.split('\n')) {
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$/.exec(line.trim());
        if (m && wanted(m[2]) && m[3].split(/\s+/).includes('main')) out.push({ uri: m[1], suites: [m[2]] });
      }
    }
  }
  return out;
}

/** The mirror that serves bookworm itself. */
export function debianMirror(): string {
  const main = debianSources().find((s) => s.suites.includes('bookworm'));
  if (!main)
    throw new Error('no Debian bookworm mirror in /etc/apt/sources.list*: the image stand-ins are made from it');
  return main.uri;
}

/** Where this machine's Node keeps npm and its headers. */
function nodeInstall(): { node: string; npm: string; include: string } {
  const node = realpathSync(process.execPath);
  const prefix = path.dirname(path.dirname(node));
  const npmCli = realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
  const npm = path.dirname(path.dirname(npmCli)); // …/node_modules/npm
  const include = path.join(prefix, 'include', 'node');
  if (!existsSync(path.join(include, 'node_version.h')))
    throw new Error(`Node's headers are not in ${include}: the build stand-in needs them`);
  if (!process.version.startsWith('v20.'))
    throw new Error(`the stand-ins are for node:20 images, and this is Node ${process.version}`);
  return { node, npm, include };
}

/**
 * The slim stand-in: debootstrap's minbase of bookworm (what debian:bookworm-slim is made from)
 * plus Node 20 and npm under /usr/local, committed as node:20-bookworm-slim.
 */
function buildSlim(log: (line: string) => void): void {
  const work = mkdtempSync(path.join(tmpdir(), 'portprobe-standin-'));
  const root = path.join(work, 'rootfs');
  try {
    const mirror = debianMirror();
    log(`debootstrap --variant=minbase bookworm from ${mirror}`);
    sh('debootstrap', ['--variant=minbase', 'bookworm', root, mirror]);
    // Sources as the official image has them: bookworm, its updates and security, from this mirror set.
    const sources = debianSources();
    writeFileSync(path.join(root, 'etc', 'apt', 'sources.list'), '');
    writeFileSync(
      path.join(root, 'etc', 'apt', 'sources.list.d', 'debian.sources'),
      sources
        .map(
          (s) =>
            `Types: deb\nURIs: ${s.uri}\nSuites: ${s.suites.join(' ')}\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
        )
        .join('\n'),
    );
    // What an image does not carry: the build host's resolver, apt's lists and caches.
    rmSync(path.join(root, 'etc', 'resolv.conf'), { force: true });
    for (const dir of ['var/lib/apt/lists', 'var/cache/apt']) {
      for (const f of readdirSync(path.join(root, dir)))
        if (f !== 'partial' && f !== 'archives') rmSync(path.join(root, dir, f), { recursive: true, force: true });
    }
    rmSync(path.join(root, 'var', 'cache', 'apt', 'archives'), { recursive: true, force: true });
    mkdirSync(path.join(root, 'var', 'cache', 'apt', 'archives', 'partial'), { recursive: true });
    // Node where the official image keeps it.
    const n = nodeInstall();
    const local = path.join(root, 'usr', 'local');
    cpSync(n.node, path.join(local, 'bin', 'node'));
    cpSync(n.npm, path.join(local, 'lib', 'node_modules', 'npm'), { recursive: true });
    cpSync(n.include, path.join(local, 'include', 'node'), { recursive: true });
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(local, 'bin', 'npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(local, 'bin', 'npx'));
    // A machine-wide npmrc would point npm elsewhere; the official image has none.
    rmSync(path.join(local, 'lib', 'node_modules', 'npm', 'npmrc'), { force: true });
    log('committing the slim stand-in');
    const ctr = sh('buildah', ['from', 'scratch']).trim();
    try {
      const mnt = sh('buildah', ['mount', ctr]).trim();
      sh('cp', ['-a', `${root}/.`, mnt]);
      sh('buildah', ['umount', ctr]);
      sh('buildah', [
        'config',
        '--env',
        'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        '--env',
        `NODE_VERSION=${process.version.slice(1)}`,
        '--cmd',
        'node',
        '--label',
        'org.opencontainers.image.description=stand-in for node:20-bookworm-slim, made by the portprobe tests',
        ctr,
      ]);
      sh('buildah', ['commit', '--quiet', ctr, SLIM_IMAGE]);
    } finally {
      sh('buildah', ['rm', ctr]);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The build stand-in: the slim one plus the compilers the official full image carries. */
function buildFull(log: (line: string) => void): void {
  log('installing gcc, g++, make and python3 into the build stand-in');
  const ctr = sh('buildah', ['from', '--pull=never', SLIM_IMAGE]).trim();
  try {
    sh('buildah', [
      'run',
      '--isolation',
      'chroot',
      ctr,
      '--',
      'sh',
      '-c',
      'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcc g++ make python3 libc6-dev && rm -rf /var/lib/apt/lists/*',
    ]);
    sh('buildah', [
      'config',
      '--label',
      'org.opencontainers.image.description=stand-in for node:20-bookworm, made by the portprobe tests',
      ctr,
    ]);
    sh('buildah', ['commit', '--quiet', ctr, BUILD_IMAGE]);
  } finally {
    sh('buildah', ['rm', ctr]);
  }
}

/** Makes sure both stand-ins are in buildah's storage; returns which ones it had to build. */
export function ensureBaseImages(log: (line: string) => void = () => undefined): string[] {
  const built: string[] = [];
  if (!imageExists(SLIM_IMAGE)) {
    buildSlim(log);
    built.push(SLIM_IMAGE);
  }
  if (!imageExists(BUILD_IMAGE)) {
    buildFull(log);
    built.push(BUILD_IMAGE);
  }
  return built;
}
