// The agent as a container runs it without NET_RAW: an unprivileged user, no_new_privs
// (allowPrivilegeEscalation: false) and every capability dropped. Debian's ping carries
// cap_net_raw as a file capability, which such a process may not gain, so the kernel refuses to
// start it (EPERM): the probe must say ICMP is unavailable and what to grant, not fail internally.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MAIN } from '../helpers/agent-process';

const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-no-net-raw-'));
chmodSync(dir, 0o755); // the unprivileged user reads its config from here
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('without NET_RAW under no_new_privs, ping with a file capability is reported as icmp_unavailable', () => {
  const ping = spawnSync('sh', ['-c', 'command -v ping'], { encoding: 'utf8' }).stdout.trim();
  expect(spawnSync('getcap', [ping], { encoding: 'utf8' }).stdout).toContain('cap_net_raw=ep');
  const cfg = path.join(dir, 'portprobe.yml');
  writeFileSync(
    cfg,
    [
      'modules: {ping: {prober: icmp, timeout: 5s, icmp: {packets: 1}}}',
      'targets:',
      '  - {name: loopback, module: ping, address: 127.0.0.1}',
    ].join('\n'),
  );
  const r = spawnSync(
    'setpriv',
    [
      '--reuid=65532',
      '--regid=65532',
      '--clear-groups',
      '--bounding-set=-all',
      '--inh-caps=-all',
      '--no-new-privs',
      '--',
      process.execPath,
      MAIN,
      `--config.file=${cfg}`,
      '--once',
      '--log.level=debug',
      '--log.format=json',
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  expect([r.status, r.stdout, r.stderr.slice(0, 2000)]).toEqual([
    0,
    expect.stringMatching(
      /^probe_failure_info\{target="loopback",module="ping",phase="icmp",reason="icmp_unavailable"\} 1$/m,
    ),
    expect.any(String),
  ]);
  // The log of the failed probe says why and what to grant.
  expect(r.stderr).toMatch(/EPERM \(it needs NET_RAW, which this process may not have\)/);
});
