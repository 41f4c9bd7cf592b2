// The netlink worker thread: loads the sock_diag addon, makes the dumps, parses them, finds the
// owners and evaluates the listeners, so that none of it happens on the agent's event loop.
// One scan at a time: messages are handled in order.
import { parentPort } from 'node:worker_threads';
import { loadSockDiag, runNetlinkScan, type SockDiagDump } from './netlink';
import { InodeProcessCache } from './procfs';
import type { SocketsSettings } from './settings';

let dump: SockDiagDump | undefined;
let loadError: string | undefined;
try {
  dump = loadSockDiag().dump;
} catch (err) {
  loadError = err instanceof Error ? err.message : String(err);
}

let cache: InodeProcessCache | undefined;
let cacheRoot = '';
let queue: Promise<void> = Promise.resolve();

async function handle(m: { id: number; settings: SocketsSettings }): Promise<void> {
  if (dump === undefined) {
    parentPort?.postMessage({
      id: m.id,
      ok: false,
      message: `netlink unavailable: ${loadError}`,
      code: 'EUNAVAILABLE',
    });
    return;
  }
  if (cache === undefined || cacheRoot !== m.settings.procfs) {
    cache = new InodeProcessCache(m.settings.procfs);
    cacheRoot = m.settings.procfs;
  }
  try {
    parentPort?.postMessage({ id: m.id, ok: true, result: await runNetlinkScan(dump, m.settings, cache) });
  } catch (err) {
    const code = (err as { code?: string }).code;
    parentPort?.postMessage({ id: m.id, ok: false, message: err instanceof Error ? err.message : String(err), code });
  }
}

parentPort?.on('message', (m: { id: number; settings: SocketsSettings }) => {
  queue = queue.then(() => handle(m));
});
