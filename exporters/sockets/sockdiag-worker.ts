// The netlink worker thread: loads the sock_diag addon, makes the dumps (which the addon parses),
// finds the owners and evaluates the listeners, so that none of it happens on the agent's event
// loop. One scan at a time: messages are handled in order. The listener list goes back as one
// transferred buffer of numbers.
import { parentPort } from 'node:worker_threads';
import { EvaluationMemo } from './evaluate';
import { loadSockDiag, runNetlinkScan, type NetlinkScanState, type SockDiagScan } from './netlink';
import { ListenerReuse } from './packed';
import { InodeProcessCache } from './procfs';
import type { SocketsSettings } from './settings';

let scan: SockDiagScan | undefined;
let loadError: string | undefined;
try {
  scan = loadSockDiag().scan;
} catch (err) {
  loadError = err instanceof Error ? err.message : String(err);
}

/** Owners and listener objects kept between scans (for one procfs root). */
let state: NetlinkScanState | undefined;
let stateRoot = '';
let queue: Promise<void> = Promise.resolve();

async function handle(m: { id: number; settings: SocketsSettings }): Promise<void> {
  if (scan === undefined) {
    parentPort?.postMessage({
      id: m.id,
      ok: false,
      message: `netlink unavailable: ${loadError}`,
      code: 'EUNAVAILABLE',
    });
    return;
  }
  if (state === undefined || stateRoot !== m.settings.procfs) {
    state = {
      owners: new InodeProcessCache(m.settings.procfs),
      reuse: new ListenerReuse(),
      memo: new EvaluationMemo(),
    };
    stateRoot = m.settings.procfs;
  }
  try {
    const result = await runNetlinkScan(scan, m.settings, state);
    parentPort?.postMessage({ id: m.id, ok: true, result }, [result.listeners.numbers.buffer as ArrayBuffer]);
  } catch (err) {
    const code = (err as { code?: string }).code;
    parentPort?.postMessage({ id: m.id, ok: false, message: err instanceof Error ? err.message : String(err), code });
  }
}

parentPort?.on('message', (m: { id: number; settings: SocketsSettings }) => {
  queue = queue.then(() => handle(m));
});
