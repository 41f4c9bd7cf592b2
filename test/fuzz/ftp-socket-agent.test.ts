// The agent in server mode beside hostile peers: the built agent (dist/agent/main.js) probes a
// healthy FTP server (pyftpdlib) while hostile FTP and TLS peers serve a new fuzz case to every
// connection. It must keep serving /metrics, keep probing the healthy target successfully, report
// honest reasons for the hostile ones, and catch nothing with its last-resort guard.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAgent } from '../helpers/agent-process';
import { clientHello } from '../../exporters/silence';
import { selfSignedCert } from '../helpers/net';
import { makeFixture } from '../peers/ftp/common';
import { pyftpdlibUser, startPyftpdlib } from '../peers/ftp/pyftpdlib';
import {
  ftpCase,
  recordServerFlights,
  startFtpFuzzPeer,
  startTlsFuzzPeer,
  tlsCase,
  type TlsTarget,
} from '../peers/fuzz-peers';

// Long enough for several hundred hostile cases; FUZZ_RUNS (fuzz:long) runs it longer.
const RUN_MS = process.env.FUZZ_RUNS ? 120000 : 12000;

jest.setTimeout(RUN_MS + 90000);

function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`) || l.startsWith(`${name}{${labels},`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

// Whatever was started is stopped, in reverse order, however the test ends (a timeout included).
const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

test('the agent keeps serving /metrics and probing a healthy FTP server while hostile FTP and TLS peers cycle through cases', async () => {
  await run(cleanup);
});

async function run(cleanup: (() => unknown)[]): Promise<void> {
  const fx = makeFixture('agentfuzz');
  cleanup.push(() => fx.cleanup());
  const healthy = await startPyftpdlib(fx, { tls: 'off' }, pyftpdlibUser());
  cleanup.push(() => healthy.stop());
  const cert = selfSignedCert(5);
  const flights = await recordServerFlights(cert.certFile, cert.keyFile, await clientHello());
  const ftpPeer = await startFtpFuzzPeer();
  cleanup.push(() => ftpPeer.close());
  let served = 0;
  let seed = 0xa9e47;
  ftpPeer.cycle = () => {
    served++;
    // The agent sends one module's settings to every case: the case's own settings are unused.
    return ftpCase(seed++, ftpPeer.dataPort);
  };
  const tlsTargets: TlsTarget[] = ['ftp-implicit', 'ftp-explicit', 'tcp-tls'];
  const tlsPeers = await Promise.all(
    tlsTargets.map(async (only) => {
      const peer = await startTlsFuzzPeer();
      cleanup.push(() => peer.close());
      peer.cycle = () => {
        served++;
        return tlsCase(seed++, flights, only);
      };
      return peer;
    }),
  );
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-agentfuzz-'));
  const file = path.join(dir, 'agent.yml');
  writeFileSync(
    file,
    [
      // The shortest interval the agent allows is 1 s: many targets make many cases a second.
      'global: {interval: 1s, timeout: 900ms, concurrency: 128}',
      'modules:',
      '  ftp_healthy: {prober: ftp, timeout: 1s, ftp: {data_channel: [epsv, pasv]}}',
      '  ftp_hostile: {prober: ftp, ftp: {data_channel: [epsv, pasv], pasv_mismatch: follow_control_address}}',
      '  ftp_implicit: {prober: ftp, ftp: {tls: implicit, tls_config: {insecure_skip_verify: true}}}',
      '  ftp_explicit: {prober: ftp, ftp: {tls: explicit, tls_config: {insecure_skip_verify: true}}}',
      '  tcp_tls: {prober: tcp, tcp: {tls: true, tls_config: {insecure_skip_verify: true}, expect_banner: "."}}',
      'targets:',
      `  - {name: healthy, module: ftp_healthy, address: "127.0.0.1:${healthy.port}"}`,
      ...Array.from(
        { length: 40 },
        (_, i) => `  - {name: hostile-ftp-${i}, module: ftp_hostile, address: "127.0.0.1:${ftpPeer.port}"}`,
      ),
      ...Array.from(
        { length: 10 },
        (_, i) => `  - {name: hostile-implicit-${i}, module: ftp_implicit, address: "127.0.0.1:${tlsPeers[0].port}"}`,
      ),
      ...Array.from(
        { length: 10 },
        (_, i) => `  - {name: hostile-explicit-${i}, module: ftp_explicit, address: "127.0.0.1:${tlsPeers[1].port}"}`,
      ),
      ...Array.from(
        { length: 10 },
        (_, i) => `  - {name: hostile-tcp-tls-${i}, module: tcp_tls, address: "127.0.0.1:${tlsPeers[2].port}"}`,
      ),
      '',
    ].join('\n'),
  );
  const agent = await startAgent(file);
  let stopped: { code: number | null } | undefined;
  cleanup.push(async () => {
    stopped ??= await agent.stop();
  });
  const t0 = Date.now();
  let scrapes = 0;
  const failures: string[] = [];
  const hostileReasons = new Set<string>();
  let healthySuccessFirst: number | undefined;
  let text = '';
  while (Date.now() - t0 < RUN_MS) {
    await new Promise((r) => setTimeout(r, 250));
    const res = await fetch(`${agent.base}/metrics`);
    scrapes++;
    if (res.status !== 200) failures.push(`scrape ${scrapes}: HTTP ${res.status}`);
    text = await res.text();
    const ok = sample(text, 'portprobe_probes_total', 'module="ftp_healthy",result="success"');
    const up = sample(text, 'probe_success', 'target="healthy",module="ftp_healthy"');
    if (ok !== undefined) {
      healthySuccessFirst ??= ok;
      if (up !== 1) failures.push(`scrape ${scrapes}: probe_success of the healthy target is ${up}`);
    }
    for (const m of text.matchAll(
      /^probe_failure_info\{target="hostile[^"]*",module="[^"]*",phase="[^"]*",reason="([^"]+)"\} 1$/gm,
    )) {
      hostileReasons.add(m[1]);
    }
  }
  const healthyOk = sample(text, 'portprobe_probes_total', 'module="ftp_healthy",result="success"') ?? 0;
  console.log(
    `agent beside hostile peers: ${served} hostile cases in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${scrapes} scrapes, healthy successes ${healthyOk}, hostile reasons seen ${[...hostileReasons].sort().join(' ')}`,
  );
  expect(failures).toEqual([]);
  expect(served).toBeGreaterThan(300);
  // The healthy target kept being probed, successfully, the whole time.
  expect(healthyOk - (healthySuccessFirst ?? 0)).toBeGreaterThanOrEqual(Math.floor(RUN_MS / 1000) - 3);
  expect(sample(text, 'portprobe_probes_total', 'module="ftp_healthy",result="failure"') ?? 0).toBe(0);
  expect(hostileReasons.size).toBeGreaterThan(0);
  expect(hostileReasons.has('internal_error')).toBe(false);
  for (const kind of ['prober_threw', 'uncaught_exception', 'unhandled_rejection']) {
    expect(`${kind} ${sample(text, 'portprobe_last_resort_errors_total', `kind="${kind}"`)}`).toBe(`${kind} 0`);
  }
  expect(agent.logs()).not.toContain('last-resort');
  // The agent shuts down cleanly after all that.
  stopped = await agent.stop();
  expect(stopped.code).toBe(0);
}
