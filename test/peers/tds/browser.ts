// A SQL Server Browser (MC-SQLR) responder on UDP. Hidden instances are left out of listings
// and get no answer at all, as a real Browser does for instances marked "hide".
import dgram from 'node:dgram';

export interface PeerInstance {
  name: string;
  tcpPort: number;
  version?: string;
  hidden?: boolean;
}

export interface BrowserPeer {
  port: number;
  /** Requests received, as their first byte and instance name. */
  requests: string[];
  close(): Promise<void>;
}

export async function startBrowserPeer(opts: {
  host?: string;
  port?: number;
  serverName?: string;
  instances: PeerInstance[];
  log?: (line: string) => void;
}): Promise<BrowserPeer> {
  const serverName = opts.serverName ?? 'TDSPEER';
  const log = opts.log ?? ((): void => undefined);
  const sock = dgram.createSocket('udp4');
  const peer: BrowserPeer = { port: 0, requests: [], close: async () => undefined };
  const record = (i: PeerInstance): string =>
    `ServerName;${serverName};InstanceName;${i.name};IsClustered;No;Version;${i.version ?? '16.0.1000.6'};tcp;${i.tcpPort};;`;
  const reply = (text: string, to: dgram.RemoteInfo): void => {
    const data = Buffer.from(text, 'latin1');
    const head = Buffer.from([0x05, data.length & 0xff, data.length >> 8]);
    sock.send(Buffer.concat([head, data]), to.port, to.address);
  };
  sock.on('message', (msg, from) => {
    const kind = msg[0];
    if (kind === 0x02 || kind === 0x03) {
      peer.requests.push(`ucast_ex`);
      const visible = opts.instances.filter((i) => !i.hidden);
      log(`CLNT_${kind === 2 ? 'BCAST' : 'UCAST'}_EX from ${from.address}:${from.port}`);
      if (visible.length > 0) reply(visible.map(record).join(''), from);
    } else if (kind === 0x04) {
      const name = msg.subarray(1).toString('latin1').replace(/\0.*$/s, '');
      peer.requests.push(`ucast_inst ${name}`);
      const inst = opts.instances.find((i) => i.name.toUpperCase() === name.toUpperCase());
      log(
        `CLNT_UCAST_INST ${name}: ${inst ? (inst.hidden ? 'hidden, no answer' : `port ${inst.tcpPort}`) : 'unknown, no answer'}`,
      );
      if (inst && !inst.hidden) reply(record(inst), from);
    }
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      sock.off('error', reject);
      resolve();
    });
  });
  peer.port = sock.address().port;
  peer.close = () => new Promise<void>((resolve) => sock.close(() => resolve()));
  return peer;
}
