// The prober's own little TDS client: send a PRELOGIN, read the answer, and run a TLS handshake
// wrapped in PRELOGIN packets as MS-TDS 2.2.6.5 prescribes. Everything here honours the probe's
// deadline signal and caps what it buffers.
import type net from 'node:net';
import type tls from 'node:tls';
import { Duplex } from 'node:stream';
import { DeadlineError, ProbeError, untilAborted } from '../ladder';
import { startTls } from '../net';
import { MessageFramer, PacketType, encodePacket, parsePacketHeader, type Message } from './packet';
import type { ProbeSignal } from '../signal';

const PRELOGIN_LIMITS = { maxPacketBytes: 32768, maxMessageBytes: 65536 };

/** Printable excerpt of what a non-TDS peer sent, for messages and the status page. */
export function excerpt(bytes: Buffer, max = 60): string {
  const s = bytes.subarray(0, max).toString('latin1');
  return s.replace(/[^\x20-\x7e]/g, '.');
}

/**
 * Reads one complete TDS message. Bytes that are not a TDS packet header become
 * ProbeError('not_tds'); a close before a full message becomes a reset. At the deadline, a
 * DeadlineError carries `received`: how many bytes of the answer had come (0: silence).
 */
export function readMessage(socket: net.Socket, signal: ProbeSignal): Promise<Message> {
  const framer = new MessageFramer(PRELOGIN_LIMITS);
  let first: Buffer | undefined;
  let received = 0;
  const p = new Promise<Message>((resolve, reject) => {
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      first = first ? Buffer.concat([first, chunk]).subarray(0, 256) : chunk.subarray(0, 256);
      framer.push(chunk);
      if (framer.error) {
        cleanup();
        const h = parsePacketHeader(first);
        const what = h.ok ? framer.error : `the peer answered ${JSON.stringify(excerpt(first))}`;
        reject(new ProbeError('not_tds', `not a TDS server: ${what}`, NOT_TDS_ADVICE));
        return;
      }
      const m = framer.shift();
      if (m) {
        cleanup();
        resolve(m);
      }
    };
    const onEnd = (): void => {
      cleanup();
      if (first && first.length > 0 && !parsePacketHeader(first).ok) {
        reject(
          new ProbeError(
            'not_tds',
            `not a TDS server: the peer answered ${JSON.stringify(excerpt(first))}`,
            NOT_TDS_ADVICE,
          ),
        );
        return;
      }
      const e = new Error('connection closed by the server before it answered the PRELOGIN') as NodeJS.ErrnoException;
      e.code = 'ECONNRESET';
      reject(e);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
  });
  return untilAborted(p, signal, () => socket.destroy()).catch((err: unknown) => {
    if (err instanceof DeadlineError) throw Object.assign(err, { received });
    throw err;
  });
}

export const NOT_TDS_ADVICE =
  'Another service answers on this port: check the port number (SQL Server listens on 1433 by default, ' +
  'a named instance on the port the Browser reports) and what is really listening there.';

/**
 * TLS handshake inside TDS: every record the TLS layer writes goes out as the payload of a
 * PRELOGIN packet, and the server's packets are unwrapped before TLS reads them. The caller
 * destroys the returned TLS socket and the TCP socket.
 */
export async function tlsOverTds(
  socket: net.Socket,
  opts: tls.ConnectionOptions,
  signal: ProbeSignal,
): Promise<tls.TLSSocket> {
  const framer = new MessageFramer(PRELOGIN_LIMITS);
  let packetId = 1;
  const inner = new Duplex({
    read: () => undefined,
    write: (chunk: Buffer, _enc, cb) => {
      socket.write(encodePacket(PacketType.PRELOGIN, chunk, { packetId: packetId++ & 0xff }), cb);
    },
    final: (cb) => cb(),
    destroy: (err, cb) => cb(err),
  });
  const onData = (chunk: Buffer): void => {
    framer.push(chunk);
    if (framer.error) {
      inner.destroy(new ProbeError('tls_error', `TLS handshake: the server sent a bad TDS packet: ${framer.error}`));
      return;
    }
    for (let m = framer.shift(); m; m = framer.shift()) inner.push(m.payload);
  };
  const onEnd = (): void => {
    inner.push(null);
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  try {
    // tls.connect accepts any Duplex as its transport.
    return await startTls(inner, opts, signal);
  } finally {
    socket.off('data', onData);
    socket.off('end', onEnd);
  }
}
