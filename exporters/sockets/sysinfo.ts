// The portable path for hosts without procfs (macOS, Windows): systeminformation's
// networkConnections(), mapped to the same listener records as the procfs path.
import net from 'node:net';
import { normalizeAddress } from './address';
import { TCP_STATE_NAMES, type Listener } from './procnet';

export { normalizeAddress } from './address';

/** The fields of a systeminformation connection that we read. */
export interface SiConnection {
  protocol: string;
  localAddress: string;
  localPort: string;
  peerAddress: string;
  peerPort: string;
  state: string;
  pid: number | null;
  process: string;
}

export interface SiTables {
  listeners: Listener[];
  tcpStates: number[];
  /** Rows that could not be read as a socket. */
  badLines: number;
}

const STATE_BY_NAME = new Map<string, number>(TCP_STATE_NAMES.map((n, i) => [n.toUpperCase().replace(/-/g, '_'), i]));
STATE_BY_NAME.set('ESTAB', 1);
STATE_BY_NAME.set('FIN_WAIT_1', 4);
STATE_BY_NAME.set('FIN_WAIT_2', 5);
STATE_BY_NAME.set('SYN_RECEIVED', 3);
STATE_BY_NAME.set('CLOSED', 7);
STATE_BY_NAME.set('LISTENING', 10);

/** Maps systeminformation rows to listeners and TCP state counts. Pure. */
export function fromSiConnections(rows: readonly SiConnection[]): SiTables {
  const out: SiTables = { listeners: [], tcpStates: new Array<number>(16).fill(0), badLines: 0 };
  for (const r of rows) {
    const proto = String(r.protocol).toLowerCase();
    const protocol = proto.startsWith('tcp') ? 'tcp' : proto.startsWith('udp') ? 'udp' : undefined;
    const port = Number(r.localPort);
    if (protocol === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
      out.badLines++;
      continue;
    }
    const hinted: 4 | 6 = proto.endsWith('6') || String(r.localAddress).includes(':') ? 6 : 4;
    const address = normalizeAddress(String(r.localAddress), hinted);
    if (address === undefined) {
      out.badLines++;
      continue;
    }
    const family: 4 | 6 = net.isIPv6(address) ? 6 : 4;
    const state = STATE_BY_NAME.get(String(r.state).toUpperCase()) ?? 0;
    let listening: boolean;
    if (protocol === 'tcp') {
      out.tcpStates[state]++;
      listening = state === 10;
    } else {
      // UDP has no state; a socket with no peer is a bound one.
      listening =
        r.peerAddress === '*' || r.peerAddress === '' || r.peerPort === '*' || r.peerPort === '' || r.peerPort === '0';
    }
    if (!listening) continue;
    const owner = r.pid && r.pid > 0 ? { pid: r.pid, name: r.process ?? '' } : null;
    out.listeners.push({ protocol, family, address, port, inode: 0, uid: -1, owner });
  }
  return out;
}

/** Asks systeminformation; loaded lazily so the Linux path never pays for it. */
export async function readSiTables(): Promise<SiTables> {
  const si = await import('systeminformation');
  const rows = (await si.networkConnections()) as unknown as SiConnection[];
  return fromSiConnections(rows);
}
