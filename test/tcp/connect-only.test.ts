// The connect-only path of the tcp prober: Node's bare TCP handle, and `net` as its fallback.
// Both must behave alike: same errors, same abort, no handle left open.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { ArrivalWatch, setArrivalStamps, connectOnly, setBareConnect, tcpBinding } from '../../exporters/net';
import { DeadlineError } from '../../exporters/ladder';
import { ProbeAbort } from '../../exporters/signal';
import { closedPort, holdEventLoop, listen, pythonListener } from '../helpers/net';

/** Open TCP client handles of this process (servers excluded). */
const openClientHandles = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

/**
 * Waits (up to 2 s) until no TCP socket handle is open in this process: ours close in a later
 * turn of the loop, and the test servers' accepted sockets once they read the end.
 */
async function settle(): Promise<void> {
  for (let i = 0; i < 100 && openClientHandles() > 0; i++) await new Promise((r) => setTimeout(r, 20));
}

/**
 * A listener that never accepts, with its accept queue already full, so that the kernel drops
 * further SYNs and a connect to it stays pending. python3 holds the listening socket.
 */
async function unansweredPort(): Promise<{ port: number; stop: () => void }> {
  const peer = await pythonListener(0, ['time.sleep(60)']);
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 3; i++) fillers.push(net.connect(peer.port, '127.0.0.1').on('error', () => undefined));
  await new Promise((r) => setTimeout(r, 200));
  return {
    port: peer.port,
    stop: () => {
      for (const f of fillers) f.destroy();
      peer.stop();
    },
  };
}

describe.each([
  ['the bare TCP handle', true],
  ['net.Socket', false],
])('connectOnly through %s', (_name, bare) => {
  beforeAll(() => setBareConnect(bare));
  afterAll(() => setBareConnect(true));

  it('takes the path it is set to (this Node offers the bare handle)', () => {
    expect(tcpBinding() !== null).toBe(bare);
  });

  it('connects, and destroy closes the connection at the peer', async () => {
    let peerClosed!: Promise<void>;
    const accepted = new Promise<void>((resolveAccepted) => {
      peerClosed = new Promise<void>((resolveClosed) => {
        void listen((s) => {
          resolveAccepted();
          s.on('close', () => resolveClosed());
          s.resume();
        }).then((l) => {
          server = l;
          void connectOnly('127.0.0.1', 4, l.port, new ProbeAbort()).then((c) => {
            conn = c;
          });
        });
      });
    });
    let server: Awaited<ReturnType<typeof listen>> | undefined;
    let conn: { destroy(): void } | undefined;
    try {
      await accepted;
      await new Promise((r) => setImmediate(r));
      expect(conn).toBeDefined();
      conn?.destroy();
      conn?.destroy(); // twice is harmless
      await peerClosed;
      await settle();
      expect(openClientHandles()).toBe(0);
    } finally {
      await server?.close();
    }
  });

  it('a closed port: rejects with the error net gives (ECONNREFUSED, address and port)', async () => {
    const port = await closedPort();
    const err = await connectOnly('127.0.0.1', 4, port, new ProbeAbort()).then(
      () => undefined,
      (e: unknown) => e as NodeJS.ErrnoException & { address: string; port: number },
    );
    expect(Object.prototype.toString.call(err)).toBe('[object Error]');
    expect(err).toMatchObject({ code: 'ECONNREFUSED', syscall: 'connect', address: '127.0.0.1', port });
    expect(err?.message).toBe(`connect ECONNREFUSED 127.0.0.1:${port}`);
    await settle();
    expect(openClientHandles()).toBe(0);
  });

  it.each([false, true])('IPv6 loopback (stamped: %s)', async (stamp) => {
    const l = await listen(undefined, '::1');
    try {
      const before = performance.now();
      const pending = connectOnly('::1', 6, l.port, new ProbeAbort(), stamp);
      // Holds the loop after the connect call, so that the stamping thread has surely run.
      process.nextTick(() => holdEventLoop(20));
      const c = await pending;
      if (stamp) expect((c.connectedAt as number) - before).toBeLessThan(15);
      else expect(c.connectedAt).toBeUndefined();
      c.destroy();
      await settle();
      expect(openClientHandles()).toBe(0);
    } finally {
      await l.close();
    }
  });

  it('a signal that already fired: DeadlineError, no socket opened', async () => {
    const signal = new ProbeAbort();
    signal.abort(new DeadlineError(true));
    const before = openClientHandles();
    await expect(connectOnly('127.0.0.1', 4, 9, signal)).rejects.toMatchObject({
      name: 'DeadlineError',
      shutdown: true,
    });
    expect(openClientHandles()).toBe(before);
  });

  it.each([false, true])(
    'abort while the SYN goes unanswered: DeadlineError, and the pending socket is closed (stamped: %s)',
    async (stamp) => {
      const peer = await unansweredPort();
      const held = ArrivalWatch.held();
      try {
        const signal = new ProbeAbort();
        const pending = connectOnly('127.0.0.1', 4, peer.port, signal, stamp);
        await new Promise((r) => setTimeout(r, 100));
        expect(openClientHandles()).toBeGreaterThanOrEqual(1); // ours, still connecting (plus the fillers)
        const withOurs = openClientHandles();
        signal.abort(new DeadlineError(false));
        await expect(pending).rejects.toMatchObject({ name: 'DeadlineError', shutdown: false });
        await new Promise((r) => setTimeout(r, 50));
        expect(openClientHandles()).toBe(withOurs - 1);
        expect(ArrivalWatch.held()).toBe(held);
      } finally {
        peer.stop();
      }
    },
  );

  it('a real AbortSignal works as well', async () => {
    const l = await listen();
    try {
      const c = await connectOnly('127.0.0.1', 4, l.port, new AbortController().signal);
      c.destroy();
      await settle();
      expect(openClientHandles()).toBe(0);
    } finally {
      await l.close();
    }
  });

  it('500 connects in parallel, half refused, half stamped: every handle and watch released afterwards', async () => {
    const held = ArrivalWatch.held();
    const l = await listen();
    const refused = await closedPort();
    try {
      const outcomes = await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          connectOnly('127.0.0.1', 4, i % 2 ? refused : l.port, new ProbeAbort(), i % 4 < 2).then(
            (c) => {
              c.destroy();
              return 'ok';
            },
            (e: NodeJS.ErrnoException) => e.code,
          ),
        ),
      );
      expect(outcomes.filter((o) => o === 'ok')).toHaveLength(250);
      expect(outcomes.filter((o) => o === 'ECONNREFUSED')).toHaveLength(250);
      await settle();
      expect(openClientHandles()).toBe(0);
      expect(ArrivalWatch.held()).toBe(held);
    } finally {
      await l.close();
    }
  });

  it.each([
    ['with arrival stamps: the connect is dated by the handshake', true],
    ['without them: it is dated by the event loop (what the stamps fix)', false],
  ])('the event loop stalls right after the connect call, %s', async (_label, stamps) => {
    setArrivalStamps(stamps);
    const l = await listen();
    try {
      const before = performance.now();
      const pending = connectOnly('127.0.0.1', 4, l.port, new ProbeAbort(), true);
      // Runs after the connect call on either path (net makes it in a tick queued before this one).
      process.nextTick(() => holdEventLoop(200));
      const c = await pending;
      c.destroy();
      expect(performance.now() - before).toBeGreaterThanOrEqual(200);
      if (stamps) {
        expect(c.connectedAt).toBeGreaterThanOrEqual(before);
        expect((c.connectedAt as number) - before).toBeLessThan(50);
      } else {
        expect(c.connectedAt).toBeUndefined();
      }
    } finally {
      setArrivalStamps(true);
      await l.close();
    }
  });
});
