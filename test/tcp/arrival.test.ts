// Arrival stamps (native/arrival.c): a phase ends when its bytes arrived, not when a busy event
// loop got to them. The peer is another process, so it keeps time while this loop is blocked.
import { tcpProber } from '../../exporters/tcp';
import { performance } from 'node:perf_hooks';
import { ArrivalWatch, arrivalStampsEnabled, setArrivalStamps, watchedSocket, connectTcp } from '../../exporters/net';
import { ProbeAbort } from '../../exporters/signal';
import { runProber } from '../helpers/context';
import { closedPort, holdEventLoop, openFdCount, pythonListener } from '../helpers/net';
import type { ProbeResult } from '../../exporters/types';

const DELAY_MS = 150;

/** A peer that sends "ready" DELAY_MS after accepting each connection. */
function delayedPeer(): Promise<{ port: number; stop: () => void }> {
  return pythonListener(64, [
    'def greet(c):',
    `    time.sleep(${DELAY_MS / 1000}); c.sendall(b"ready\\r\\n"); time.sleep(2); c.close()`,
    'while True:',
    '    c, _ = s.accept(); threading.Thread(target=greet, args=(c,), daemon=True).start()',
  ]);
}

type Watched = NonNullable<ReturnType<typeof watchedSocket>>;
const fdOf = (w: Watched): number => (w.socket as unknown as { _handle: { fd: number } })._handle.fd;

/** Probes the peer while this event loop is blocked from 20 ms to 20 + blockMs after the start. */
async function probeWhileBlocked(port: number, blockMs: number): Promise<ProbeResult> {
  const pending = runProber(tcpProber, `127.0.0.1:${port}`, { expect_banner: '^ready$' }, 3000);
  await new Promise((r) => setTimeout(r, 20));
  holdEventLoop(blockMs); // the banner arrives meanwhile, and nothing in this process sees it
  return pending;
}

const phase = (r: ProbeResult, name: string): number => (r.phases.find((p) => p.phase === name)?.seconds ?? NaN) * 1000;

describe('arrival stamps', () => {
  let peer: { port: number; stop: () => void };
  beforeAll(async () => {
    peer = await delayedPeer();
  });
  afterAll(() => peer.stop());
  afterEach(() => setArrivalStamps(true));

  it('the addon is built and loads (npm install builds it)', () => {
    expect(arrivalStampsEnabled()).toBe(true);
  });

  it('a banner that arrives while the event loop is blocked: the phase ends at its arrival', async () => {
    const r = await probeWhileBlocked(peer.port, 400);
    expect(r.failure).toBeUndefined();
    // The loop saw the banner ~270 ms late; the stamp does not.
    expect(phase(r, 'banner')).toBeGreaterThanOrEqual(DELAY_MS - 5);
    expect(phase(r, 'banner')).toBeLessThan(DELAY_MS + 60);
    expect(r.durationSeconds * 1000).toBeGreaterThanOrEqual(400);
  });

  it('without the stamps the same probe reads the loop delay into the phase (what the stamps fix)', async () => {
    setArrivalStamps(false);
    expect(arrivalStampsEnabled()).toBe(false);
    const r = await probeWhileBlocked(peer.port, 400);
    expect(r.failure).toBeUndefined();
    expect(phase(r, 'banner')).toBeGreaterThanOrEqual(300);
  });

  it('many banner probes in a row: every watch is released and stamps stay per socket', async () => {
    const held = ArrivalWatch.held();
    const rs = await Promise.all(
      Array.from({ length: 20 }, () =>
        runProber(tcpProber, `127.0.0.1:${peer.port}`, { expect_banner: '^ready$' }, 3000),
      ),
    );
    for (const r of rs) {
      expect(r.success).toBe(true);
      expect(phase(r, 'banner')).toBeGreaterThanOrEqual(DELAY_MS - 5);
      expect(phase(r, 'banner')).toBeLessThan(DELAY_MS + 100);
    }
    expect(ArrivalWatch.held()).toBe(held);
  });

  it('the handshake is stamped when it happens, even if the loop stalls right after the connect call', async () => {
    const w = watchedSocket(4) as Watched;
    expect(w).toBeDefined();
    try {
      const before = performance.now();
      const connecting = connectTcp('127.0.0.1', peer.port, new ProbeAbort(), { socket: w.socket });
      // net makes the connect call in a tick it has queued; this one runs right after it. On
      // loopback the handshake completes inside that call, before any later registration could.
      process.nextTick(() => holdEventLoop(200));
      await connecting;
      const at = w.watch.connectedAt() as number;
      expect(at).toBeGreaterThanOrEqual(before);
      expect(at - before).toBeLessThan(50);
      expect(performance.now() - before).toBeGreaterThanOrEqual(200);
    } finally {
      w.watch.stop();
      w.socket.destroy();
    }
  });

  it('a socket that never connects (refused) gets neither stamp: its unconnected state is not an event', async () => {
    const w = watchedSocket(4) as Watched;
    try {
      await expect(
        connectTcp('127.0.0.1', await closedPort(), new ProbeAbort(), { socket: w.socket }),
      ).rejects.toMatchObject({
        code: 'ECONNREFUSED',
      });
      await new Promise((r) => setTimeout(r, 20));
      expect(w.watch.connectedAt()).toBeUndefined();
      expect(w.watch.lastArrival()).toBeUndefined();
    } finally {
      w.watch.stop();
      w.socket.destroy();
    }
  });

  it('releasing a watch after its socket closed leaves the socket that reuses the descriptor watched', async () => {
    const first = watchedSocket(4) as Watched;
    await connectTcp('127.0.0.1', peer.port, new ProbeAbort(), { socket: first.socket });
    const oldFd = fdOf(first);
    first.socket.destroy(); // closes the descriptor while the watch is still held (as net does on errors)
    const second = watchedSocket(4) as Watched;
    try {
      expect(fdOf(second)).toBe(oldFd); // the lowest free number: the one just closed
      first.watch.stop(); // must not unregister `second`
      await connectTcp('127.0.0.1', peer.port, new ProbeAbort(), { socket: second.socket });
      await new Promise<void>((resolve) => second.socket.once('data', () => resolve()));
      // The stamp is written by the addon's own thread: on a busy machine the event loop can see
      // the data first. A watch released by mistake never gets it; give the thread up to 2 s.
      for (let i = 0; i < 200 && second.watch.lastArrival() === undefined; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(second.watch.connectedAt()).toBeDefined();
      expect((second.watch.lastArrival() as number) - (second.watch.connectedAt() as number)).toBeGreaterThanOrEqual(
        DELAY_MS - 5,
      );
    } finally {
      second.watch.stop();
      second.socket.destroy();
    }
  });

  it('a watched socket that is never connected releases its descriptor', async () => {
    const base = openFdCount();
    const held = ArrivalWatch.held();
    for (let i = 0; i < 200; i++) {
      const w = watchedSocket(i % 2 ? 6 : 4) as Watched;
      w.watch.stop();
      w.socket.destroy();
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(openFdCount()).toBeLessThanOrEqual(base);
    expect(ArrivalWatch.held()).toBe(held);
  });
});
