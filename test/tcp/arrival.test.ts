// Arrival stamps (native/arrival.c): a phase ends when its bytes arrived, not when a busy event
// loop got to them. The peer is another process, so it keeps time while this loop is blocked.
import { tcpProber } from '../../exporters/tcp';
import { arrivalStampsEnabled, setArrivalStamps } from '../../exporters/arrival';
import { runProber } from '../helpers/context';
import { pythonListener } from '../helpers/net';
import type { ProbeResult } from '../../exporters/types';

const DELAY_MS = 150;

/** A peer that sends "ready" DELAY_MS after accepting each connection. */
function delayedPeer(): Promise<{ port: number; stop: () => void }> {
  return pythonListener(8, [
    'def greet(c):',
    `    time.sleep(${DELAY_MS / 1000}); c.sendall(b"ready\\r\\n"); time.sleep(2); c.close()`,
    'while True:',
    '    c, _ = s.accept(); threading.Thread(target=greet, args=(c,), daemon=True).start()',
  ]);
}

/** Probes the peer while this event loop is blocked from 20 ms to 20 + blockMs after the start. */
async function probeWhileBlocked(port: number, blockMs: number): Promise<ProbeResult> {
  const pending = runProber(tcpProber, `127.0.0.1:${port}`, { expect_banner: '^ready$' }, 3000);
  await new Promise((r) => setTimeout(r, 20));
  const end = Date.now() + blockMs;
  while (Date.now() < end) {
    // busy: the banner arrives meanwhile, and nothing in this process sees it
  }
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
    const rs = await Promise.all(
      Array.from({ length: 20 }, () => runProber(tcpProber, `127.0.0.1:${peer.port}`, { expect_banner: '^ready$' }, 3000)),
    );
    for (const r of rs) {
      expect(r.success).toBe(true);
      expect(phase(r, 'banner')).toBeGreaterThanOrEqual(DELAY_MS - 5);
      expect(phase(r, 'banner')).toBeLessThan(DELAY_MS + 100);
    }
  });
});
