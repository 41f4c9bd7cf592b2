// The netlink worker thread: loads the sock_diag addon, makes the dumps and parses them, so that
// neither the blocking reads nor the parsing happen on the agent's event loop.
import { parentPort } from 'node:worker_threads';
import { loadSockDiag, scanSockDiag, type NetlinkScanOptions, type SockDiagDump } from './netlink';

let dump: SockDiagDump | undefined;
let loadError: string | undefined;
try {
  dump = loadSockDiag().dump;
} catch (err) {
  loadError = err instanceof Error ? err.message : String(err);
}

parentPort?.on('message', (m: { id: number; opts: NetlinkScanOptions }) => {
  if (dump === undefined) {
    parentPort?.postMessage({ id: m.id, ok: false, message: `netlink unavailable: ${loadError}`, code: 'EUNAVAILABLE' });
    return;
  }
  try {
    parentPort?.postMessage({ id: m.id, ok: true, tables: scanSockDiag(dump, m.opts) });
  } catch (err) {
    const code = (err as { code?: string }).code;
    parentPort?.postMessage({ id: m.id, ok: false, message: err instanceof Error ? err.message : String(err), code });
  }
});
