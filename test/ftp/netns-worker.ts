// Runs inside a network namespace the firewall test created: starts the four real FTP servers
// there (each with its own passive port range), then runs probes through the agent's runner on
// request. One JSON object per line both ways, so the test can start it once and share the
// servers across every fault it applies with nftables.
//   stdout, first: {"ready": {"vsftpd": {"address": "127.0.0.1:N", "user": ..., "password": ...}, ...}}
//   stdin:  {"id": 1, "server": "vsftpd", "timeoutMs": 2000, "settings": {...}}
//   stdout: {"id": 1, "result": ProbeResult, "advice": "..."}
// It stops the servers and exits when stdin closes.
import readline from 'node:readline';
import { PROBERS } from '../../exporters';
import { adviceFor } from '../../exporters/advice';
import { mergeDefaults } from '../../config/load';
import { runProbe } from '../../agent/runner';
import { Secret } from '../../exporters/secret';
import { silentLogger } from '../helpers/context';
import { makeFixture, type FtpPeer, type PeerUser } from '../peers/ftp/common';
import { startVsftpd, vsftpdUser } from '../peers/ftp/vsftpd';
import { startProftpd, proftpdUser } from '../peers/ftp/proftpd';
import { startPureftpd, pureftpdUser } from '../peers/ftp/pureftpd';
import { startPyftpdlib, pyftpdlibUser } from '../peers/ftp/pyftpdlib';

/** Passive port range of each server: the test's firewall rules name them. */
export const PASSIVE_PORTS: Record<string, string> = {
  vsftpd: '50000-50099',
  proftpd: '50100-50199',
  'pure-ftpd': '50200-50299',
  pyftpdlib: '50300-50399',
};

/** The agent's active-mode listener range per server (active_listen.ports). */
export const ACTIVE_PORTS: Record<string, string> = {
  vsftpd: '40000-40099',
  proftpd: '40100-40199',
  'pure-ftpd': '40200-40299',
  pyftpdlib: '40300-40399',
};

interface Request {
  id: number;
  server: string;
  timeoutMs: number;
  settings: Record<string, unknown>;
}

async function main(): Promise<void> {
  const fx = makeFixture('netns');
  const peers: Record<string, { peer: FtpPeer; user: PeerUser }> = {};
  const stopAll = async (): Promise<void> => {
    await Promise.all(Object.values(peers).map((p) => p.peer.stop()));
    fx.cleanup();
  };
  try {
    const v = vsftpdUser();
    peers.vsftpd = { peer: await startVsftpd(fx, { tls: 'off', passivePorts: PASSIVE_PORTS.vsftpd }), user: v };
    const p = proftpdUser();
    peers.proftpd = { peer: await startProftpd(fx, { tls: 'off', passivePorts: PASSIVE_PORTS.proftpd }, p), user: p };
    const u = pureftpdUser();
    peers['pure-ftpd'] = {
      peer: await startPureftpd(fx, { tls: 'off', passivePorts: PASSIVE_PORTS['pure-ftpd'] }, u),
      user: u,
    };
    const y = pyftpdlibUser();
    peers.pyftpdlib = {
      peer: await startPyftpdlib(fx, { tls: 'off', passivePorts: PASSIVE_PORTS.pyftpdlib }, y),
      user: y,
    };
  } catch (e) {
    await stopAll();
    process.stdout.write(`${JSON.stringify({ error: String(e) })}\n`);
    process.exit(1);
  }
  const ready: Record<string, { address: string; user: string; password: string }> = {};
  for (const [name, { peer, user }] of Object.entries(peers)) {
    ready[name] = { address: `${peer.host}:${peer.port}`, user: user.name, password: user.password };
  }
  process.stdout.write(`${JSON.stringify({ ready })}\n`);

  const def = PROBERS.ftp;
  const rl = readline.createInterface({ input: process.stdin });
  const running: Promise<void>[] = [];
  rl.on('line', (line) => {
    const req = JSON.parse(line) as Request;
    const target = peers[req.server];
    // The password as the config loader resolves it: a Secret under `password`.
    const settings = { username: target.user.name, password: new Secret(target.user.password), ...req.settings };
    running.push(
      runProbe({
        target: { name: req.server, address: `${target.peer.host}:${target.peer.port}`, labels: {} },
        module: {
          name: 'netns',
          prober: 'ftp',
          timeoutSeconds: req.timeoutMs / 1000,
          settings: mergeDefaults(def.defaults as Record<string, unknown>, settings),
        },
        logger: silentLogger,
      }).then((result) => {
        const advice = result.failure ? adviceFor('ftp', result.failure) : undefined;
        process.stdout.write(`${JSON.stringify({ id: req.id, result, advice })}\n`);
      }),
    );
  });
  rl.on('close', () => {
    void Promise.allSettled(running)
      .then(stopAll)
      .then(() => process.exit(0));
  });
}

// The test imports the port ranges from here; only a process started on this file runs.
if (require.main === module) void main();
