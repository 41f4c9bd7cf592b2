// What the arrival stamps are worth, against a peer's own clock. A python3 peer (SCHED_FIFO where
// allowed) accepts, writes a line D ms later and reports both times on CLOCK_MONOTONIC, the clock
// the stamps use. For each connection made through the same path as a banner probe (watchedSocket
// + connectTcp), this prints how the stamps and the event loop's own view compare with the peer:
//   connected − accept: ≤ 0 when the handshake is dated right (it completes before accept returns)
//   arrival − write: ≥ 0 and small when the bytes are dated right
//   loop − write: when JavaScript saw the bytes (what timing on the event loop would read)
// With `busy`, the event loop is held for 5 ms out of every 7, as a loaded agent's is.
// Run: npx ts-node --transpile-only bench/stamps.bench.ts [connections=300] [busy|idle]
import { spawn, spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import readline from 'node:readline';
import { arrivalAddon, watchedSocket, connectTcp } from '../exporters/net';
import { ProbeAbort } from '../exporters/signal';
import { PY_UNTIL, percentile } from './common';

const N = Number(process.argv[2] ?? 300);
const BUSY = process.argv[3] === 'busy';
const D_MS = 20;

const PEER_PY = `
import socket, sys, threading, time
D = ${D_MS} * 1000000
${PY_UNTIL}
def greet(c, t0):
    until(t0 + D)
    c.sendall(b"hello\\r\\n")
    print("peer %d %d" % (t0, time.monotonic_ns()), flush=True)
    try:
        while c.recv(4096):
            pass
    except OSError:
        pass
    c.close()
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print("ready %d" % s.getsockname()[1], flush=True)
threading.Thread(target=lambda: (sys.stdin.read(), __import__("os")._exit(0)), daemon=True).start()
while True:
    c, _ = s.accept(); t0 = time.monotonic_ns()
    threading.Thread(target=greet, args=(c, t0), daemon=True).start()
`;

async function main(): Promise<void> {
  const a = arrivalAddon();
  if (!a) throw new Error('the arrival addon is not built (npm install builds it)');
  // performance.now() minus CLOCK_MONOTONIC (ms): peer times move onto the stamps' scale.
  const toPerf = performance.now() - a.now();
  const rt = spawnSync('chrt', ['-f', '50', 'true']).status === 0;
  const py = ['python3', '-c', PEER_PY];
  const peer = spawn(rt ? 'chrt' : py[0], rt ? ['-f', '50', ...py] : py.slice(1), {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const peerTimes: [number, number][] = [];
  const port = await new Promise<number>((resolve) => {
    readline.createInterface({ input: peer.stdout }).on('line', (l) => {
      const f = l.split(' ');
      if (f[0] === 'ready') resolve(Number(f[1]));
      else peerTimes.push([Number(f[1]) / 1e6 + toPerf, Number(f[2]) / 1e6 + toPerf]);
    });
  });
  let busyTimer: NodeJS.Timeout | undefined;
  if (BUSY) {
    busyTimer = setInterval(() => {
      const end = performance.now() + 5;
      while (performance.now() < end) {
        // held, as by other probes' work
      }
    }, 7);
  }
  const ours: { connected?: number; arrival?: number; loop: number }[] = [];
  for (let i = 0; i < N; i++) {
    const w = watchedSocket(4);
    if (!w) throw new Error('no watched socket');
    const socket = await connectTcp('127.0.0.1', port, new ProbeAbort(), { socket: w.socket });
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    ours.push({ connected: w.watch.connectedAt(), arrival: w.watch.lastArrival(), loop: performance.now() });
    w.watch.stop();
    socket.destroy();
    await new Promise((r) => setTimeout(r, 10));
  }
  if (busyTimer) clearInterval(busyTimer);
  for (let i = 0; i < 50 && peerTimes.length < N; i++) await new Promise((r) => setTimeout(r, 20));
  peer.stdin?.end();
  peerTimes.sort((x, y) => x[0] - y[0]); // connections are sequential: accept order is ours
  const col = (f: (i: number) => number | undefined): number[] =>
    ours.map((_, i) => f(i)).filter((x): x is number => x !== undefined && Number.isFinite(x));
  const rows: [string, number[]][] = [
    ['connected - accept', col((i) => (ours[i].connected ?? NaN) - peerTimes[i][0])],
    ['arrival - write', col((i) => (ours[i].arrival ?? NaN) - peerTimes[i][1])],
    ['loop - write', col((i) => ours[i].loop - peerTimes[i][1])],
  ];
  const f = (x: number): string => x.toFixed(3).padStart(8);
  console.log(
    `stamps: ${N} connections, peer ${rt ? 'SCHED_FIFO' : 'normal priority'}, event loop ${BUSY ? 'busy 5 ms of every 7' : 'idle'}; ms`,
  );
  console.log(`${''.padEnd(20)}${['min', 'p50', 'p99', 'max'].map((h) => h.padStart(8)).join('')}     n`);
  for (const [name, xs] of rows) {
    console.log(
      `${name.padEnd(20)}${f(Math.min(...xs))}${f(percentile(xs, 50))}${f(percentile(xs, 99))}${f(Math.max(...xs))}  ${String(xs.length).padStart(4)}`,
    );
  }
  const late = rows[0][1].filter((x) => x > 0.05).length;
  console.log(
    `summary connected stamps later than the peer's accept (by > 0.05 ms): ${late} of ${rows[0][1].length}; arrival − write p99 ${percentile(rows[1][1], 99).toFixed(3)} ms vs loop − write p99 ${percentile(rows[2][1], 99).toFixed(3)} ms`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
