// Active mode with a configured listener: the agent listens on the given address and port
// range, skips ports already taken, and pyftpdlib connects back to it.
import net from 'node:net';
import {
  CANARY_BODY,
  CANARY_NAME,
  freePort,
  makeFixture,
  type Fixture,
  type FtpPeer,
  type PeerUser,
} from '../peers/ftp/common';
import { pyftpdlibUser, startPyftpdlib } from '../peers/ftp/pyftpdlib';
import { fact, probeFtp } from './probe';

let fx: Fixture;
let user: PeerUser;
let peer: FtpPeer;

beforeAll(async () => {
  fx = makeFixture('active');
  user = pyftpdlibUser();
  peer = await startPyftpdlib(fx, { tls: 'off' }, user);
});
afterAll(async () => {
  await peer?.stop();
  fx?.cleanup();
});

/** Two adjacent ports free on 127.0.0.1. */
async function twoFreePorts(): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (p >= 65535) continue;
    const s = net.createServer();
    const free = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.listen(p + 1, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((r) => (free ? s.close(() => r()) : r()));
    if (free) return p;
  }
}

const portInLog = (log: string[] | undefined): number | undefined => {
  const line = log?.find((l) => l.startsWith('> PORT '));
  if (!line) return undefined;
  const n = line.slice(7).split(',').map(Number);
  return n[4] * 256 + n[5];
};

test('the listener uses the configured address and range, skipping a taken port', async () => {
  const first = await twoFreePorts();
  const squatter = net.createServer();
  await new Promise<void>((r) => squatter.listen(first, '127.0.0.1', () => r()));
  try {
    const r = await probeFtp(`${peer.host}:${peer.port}`, {
      username: user.name,
      password: user.password,
      retrieve: CANARY_NAME,
      data_channel: ['active'],
      active_listen: { address: '127.0.0.1', ports: `${first}-${first + 1}` },
    });
    expect(r.success).toBe(true);
    expect(portInLog(r.log)).toBe(first + 1);
    expect(fact(r, 'probe_ftp_transfer_bytes', { mode: 'active' })).toBe(CANARY_BODY.length);
  } finally {
    await new Promise<void>((r) => squatter.close(() => r()));
  }
});

test('every port of the range taken → active_refused naming the range', async () => {
  const first = await freePort();
  const squatter = net.createServer();
  await new Promise<void>((r) => squatter.listen(first, '127.0.0.1', () => r()));
  try {
    const r = await probeFtp(`${peer.host}:${peer.port}`, {
      data_channel: ['active'],
      active_listen: { address: '127.0.0.1', ports: `${first}` },
    });
    expect(r.failure).toMatchObject({ phase: 'data_active', reason: 'active_refused' });
    expect(r.failure?.message).toContain(`ports ${first}`);
  } finally {
    await new Promise<void>((r) => squatter.close(() => r()));
  }
});

test('the listener is closed after the probe', async () => {
  const port = await freePort();
  const r = await probeFtp(`${peer.host}:${peer.port}`, {
    data_channel: ['active'],
    active_listen: { address: '127.0.0.1', ports: `${port}` },
  });
  expect(r.success).toBe(true);
  const refused = await new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
  expect(refused).toBe(true);
});

test("listening on 0.0.0.0 advertises the control connection's local address", async () => {
  const port = await freePort();
  const r = await probeFtp(`${peer.host}:${peer.port}`, {
    data_channel: ['active'],
    active_listen: { address: '0.0.0.0', ports: `${port}` },
  });
  expect(r.success).toBe(true);
  expect(r.log).toContain(`> PORT 127,0,0,1,${port >> 8},${port & 255}`);
});
