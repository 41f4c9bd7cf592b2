// A child process holding L listeners on 127.0.0.1 and C loopback connections to them (2C
// established sockets), for the socket-scan benchmarks.
import { spawn } from 'node:child_process';
import readline from 'node:readline';

const HOLDER = `
  const net = require('node:net');
  const L = Number(process.argv[1]), C = Number(process.argv[2]);
  const keep = [];
  (async () => {
    const servers = [];
    for (let i = 0; i < L; i += 500) {
      const batch = [];
      for (let j = i; j < Math.min(L, i + 500); j++) {
        const s = net.createServer((c) => keep.push(c));
        batch.push(new Promise((ok, bad) => { s.once('error', bad); s.listen(0, '127.0.0.1', 1024, ok); }));
        servers.push(s);
      }
      await Promise.all(batch);
    }
    for (let i = 0; i < C; i += 500) {
      const batch = [];
      for (let j = i; j < Math.min(C, i + 500); j++) {
        const port = servers[j % servers.length].address().port;
        batch.push(new Promise((ok, bad) => { const c = net.connect(port, '127.0.0.1', ok); c.once('error', bad); keep.push(c); }));
      }
      await Promise.all(batch);
    }
    // wait until every connection is accepted on the server side too
    while (keep.length < 2 * C) await new Promise((r) => setTimeout(r, 20));
    process.stdout.write('ready\\n');
  })().catch((e) => { process.stderr.write('holder: ' + e.message + '\\n'); process.exit(1); });
`;

export async function startHolder(listeners: number, connections: number): Promise<{ pid: number; stop: () => void }> {
  // Raise the holder's descriptor limit: to 65536 where permitted, else to the hard limit.
  const raise = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"';
  const child = spawn('bash', ['-c', raise, process.execPath, '-e', HOLDER, String(listeners), String(connections)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.value !== 'ready')
    throw new Error(
      'the socket holder failed (raise the hard limit: ulimit -Hn must allow listeners + 2 x connections + 100)',
    );
  return { pid: child.pid ?? -1, stop: () => child.kill('SIGTERM') };
}
