// One transfer per data-channel mode. Passive modes (EPSV, PASV) connect to the server; active
// mode listens and lets the server connect back (PORT for IPv4, EPRT for IPv6). Each opens at
// most one data connection and closes it, and any listener, before returning.
import net from 'node:net';
import type tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { DeadlineError, ProbeError, untilAborted } from '../ladder';
import { connectTcp, startTls } from '../net';
import { dataFailure, probeError } from './advice';
import { stalledError, verbOf, type ControlConnection } from './control';
import { formatEprt, formatPort, ipv4Kind, parseEpsv, parsePasv, parsePortRange, sameHost } from './passive';
import { isCompletion, isPreliminary, replyText, type Reply } from './reply';
import type { DataMode, FtpSettings } from './settings';
import type { ProbeSignal } from '../signal';

export interface DataEnv {
  ctrl: ControlConnection;
  settings: FtpSettings;
  signal: ProbeSignal;
  /** TLS options for data connections when PROT P is in force; undefined for clear data. */
  dataTls?: tls.ConnectionOptions;
  log: (line: string) => void;
  /** Called with the advertised host when a PASV reply names another host than the control peer. */
  onPasvAddress: (advertised: string, port: number, mismatch: boolean) => void;
  /** This mode's share of the probe's time, for messages (the signal fires at its end). */
  budgetSeconds: number;
  /** Called when a PASV mismatch was followed to the control address (a finding). */
  onPasvFollowed?: (advertised: string, peer: string) => void;
}

export interface TransferResult {
  bytes: number;
  /** From the transfer command to the server's completion reply. */
  seconds: number;
}

function isShutdown(err: unknown): boolean {
  return err instanceof DeadlineError && err.shutdown;
}

/** Strips the IPv4-mapped prefix so that PORT can carry the address. */
function plainAddress(a: string): string {
  return a.toLowerCase().startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}

/**
 * The agent's own address on the control connection, which PORT/EPRT advertise. A connection the
 * server already closed has none: that is the server hanging up, not a fault of the agent.
 */
function controlLocalAddress(ctrl: DataEnv['ctrl']): string {
  const a = plainAddress(ctrl.localAddress);
  if (a === '')
    throw new ProbeError('reset', 'active: the server closed the control connection before PORT/EPRT could be sent');
  return a;
}

async function openPassive(mode: 'epsv' | 'pasv', env: DataEnv): Promise<net.Socket> {
  const { ctrl, signal } = env;
  const peer = plainAddress(ctrl.remoteAddress);
  let host: string;
  let port: number;
  if (mode === 'epsv') {
    const r = await ctrl.command('EPSV', signal);
    if (r.code !== 229) throw dataFailure('EPSV', r, mode, env.settings.tls);
    const p = parseEpsv(r.lines.join(' '));
    if (typeof p === 'string') throw probeError('protocol_error', p);
    host = peer;
    port = p;
  } else {
    if (net.isIPv6(peer)) {
      // RFC 2428: PASV can only name IPv4 addresses; over IPv6 only EPSV works.
      throw new ProbeError(
        'protocol_error',
        `PASV cannot carry the IPv6 address ${peer} the server is reached at`,
        'Over IPv6 use the epsv mode (remove pasv from data_channel), or set preferred_ip_protocol: ip4.',
      );
    }
    const r = await ctrl.command('PASV', signal);
    if (r.code !== 227) throw dataFailure('PASV', r, mode, env.settings.tls);
    const a = parsePasv(r.lines.join(' '));
    if (typeof a === 'string') throw probeError('protocol_error', a);
    const mismatch = !sameHost(a.host, peer);
    env.onPasvAddress(a.host, a.port, mismatch);
    if (mismatch) {
      if (env.settings.pasv_mismatch === 'fail') {
        throw probeError(
          'pasv_address_mismatch',
          `PASV reply advertises ${a.host}:${a.port} (a ${ipv4Kind(a.host)} address) but the server is reached at ${peer}; not connecting there`,
        );
      }
      env.log(`PASV advertised ${a.host}; following the control address ${peer}`);
      env.onPasvFollowed?.(a.host, peer);
      host = peer;
    } else {
      host = a.host;
    }
    port = a.port;
  }
  try {
    return await connectTcp(host, port, signal);
  } catch (e) {
    if (isShutdown(e)) throw e;
    const why = e instanceof DeadlineError ? `no answer ${within(env)}` : (e as Error).message;
    throw probeError('pasv_unreachable', `${mode.toUpperCase()} data port ${host}:${port}: ${why}`);
  }
}

/** Listens for the server's data connection, on the configured address and port range. */
async function listenActive(env: DataEnv): Promise<net.Server> {
  const cfg = env.settings.active_listen ?? {};
  const address = cfg.address ?? controlLocalAddress(env.ctrl);
  let from = 0;
  let to = 0;
  if (cfg.ports !== undefined) {
    const r = parsePortRange(cfg.ports);
    if (typeof r === 'string') throw new ProbeError('internal_error', `active_listen.ports: ${r}`);
    ({ from, to } = r);
  }
  let lastError: unknown;
  for (let port = from; port <= to; port++) {
    if (env.signal.aborted) throw new DeadlineError(false);
    const server = net.createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: address, port, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      return server;
    } catch (e) {
      server.close();
      lastError = e;
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') break;
    }
  }
  throw probeError(
    'active_refused',
    `cannot listen for the active data connection on ${address}${cfg.ports ? ` ports ${cfg.ports}` : ''}: ${(lastError as Error)?.message ?? 'no port free'}`,
  );
}

/** Counts bytes until the peer closes; never buffers them. */
function drain(sock: net.Socket): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let bytes = 0;
    sock.on('data', (b: Buffer) => {
      bytes += b.length;
    });
    sock.once('end', () => resolve(bytes));
    sock.once('close', () => resolve(bytes));
    sock.once('error', reject);
  });
}

function transferCommand(s: FtpSettings): string {
  if (s.retrieve !== undefined) return `RETR ${s.retrieve}`;
  return s.path ? `LIST ${s.path}` : 'LIST';
}

/** "within 1.7 s", the time this mode had, for messages. */
function within(env: DataEnv): string {
  return `within this mode's ${env.budgetSeconds.toFixed(1)} s`;
}

/**
 * Runs one transfer in the given mode and returns its size and time. Throws ProbeError with
 * the reason of the rung that broke. Every socket and listener it opens is closed on return.
 * The control connection may be left mid-reply when this throws: the caller does not reuse it.
 */
export async function transfer(mode: DataMode, env: DataEnv): Promise<TransferResult> {
  const { ctrl, signal } = env;
  const sockets: net.Socket[] = [];
  let server: net.Server | undefined;
  try {
    let accepted: Promise<net.Socket> | undefined;
    let raw: net.Socket | undefined;
    if (mode === 'active') {
      const srv = await listenActive(env);
      server = srv;
      const peer = plainAddress(ctrl.remoteAddress);
      accepted = new Promise<net.Socket>((resolve) => {
        srv.on('connection', (sock) => {
          sockets.push(sock);
          const from = plainAddress(sock.remoteAddress ?? '');
          if (!sameHost(from, peer) || raw !== undefined) {
            // Only the server we talk to may deliver data; anything else is dropped unread.
            env.log(`active: dropped a connection from ${from}`);
            sock.destroy();
            return;
          }
          raw = sock;
          resolve(sock);
        });
      });
      const addr = srv.address() as net.AddressInfo;
      // Bound to every address (0.0.0.0 or ::): tell the server the one it already talks to.
      const unspecified = addr.address === '0.0.0.0' || addr.address === '::';
      const advertised = unspecified ? controlLocalAddress(ctrl) : plainAddress(addr.address);
      const cmd = net.isIPv4(advertised)
        ? `PORT ${formatPort(advertised, addr.port)}`
        : `EPRT ${formatEprt(advertised, addr.port)}`;
      let r: Reply;
      try {
        r = await ctrl.command(cmd, signal);
      } catch (e) {
        // pyftpdlib connects back before it answers PORT: silence with no connection is the
        // connect-back that never came.
        if (e instanceof ProbeError && e.reason === 'stalled' && raw === undefined) {
          throw probeError(
            'active_refused',
            `the server did not answer ${verbOf(cmd)} nor connect back to the agent ${within(env)} (some servers connect before they answer; a server hung at ${verbOf(cmd)} looks the same)`,
          );
        }
        throw e;
      }
      if (!isCompletion(r.code)) throw dataFailure(verbOf(cmd), r, mode, env.settings.tls);
    } else {
      raw = await openPassive(mode, env);
      sockets.push(raw);
    }

    // Start reading the data connection as soon as it exists, so nothing is lost or stalls.
    const secureOver = (sock: net.Socket): Promise<net.Socket> => {
      if (!env.dataTls) return Promise.resolve(sock);
      return startTls(sock, { ...env.dataTls, session: ctrl.session() }, signal).then((t) => {
        sockets.push(t);
        return t;
      });
    };
    const connected: Promise<net.Socket> = raw ? Promise.resolve(raw) : (accepted as Promise<net.Socket>);
    const received = connected.then(secureOver).then(drain);
    received.catch(() => undefined); // awaited below; keep Node from flagging it meanwhile

    const cmd = transferCommand(env.settings);
    const verb = verbOf(cmd);
    const noConnectBack = (what: string): ProbeError =>
      probeError('active_refused', `the server accepted ${what} but did not connect back to the agent ${within(env)}`);
    const t0 = performance.now();
    ctrl.send(cmd);
    let first: Reply;
    try {
      first = await ctrl.read(signal);
    } catch (e) {
      if (!(e instanceof DeadlineError) || e.shutdown) throw e;
      // Some servers (vsftpd) connect back before they answer the transfer command: silence
      // with no connection is the connect-back that never came, not a hung server.
      if (mode === 'active' && raw === undefined) {
        throw probeError(
          'active_refused',
          `the server accepted PORT but neither answered ${verb} nor connected back to the agent ${within(env)} (some servers connect before they answer; a server hung at ${verb} looks the same)`,
        );
      }
      throw stalledError(cmd);
    }
    if (!isPreliminary(first.code) && !isCompletion(first.code)) {
      throw dataFailure(verb, first, mode, env.settings.tls);
    }
    // After a 1xx the completion (or a refusal such as 425) follows; read it while the data
    // connection is awaited, so a refusal ends the wait at once.
    const finalReply: Promise<Reply> = isCompletion(first.code) ? Promise.resolve(first) : ctrl.read(signal);
    finalReply.catch(() => undefined);

    if (mode === 'active' && raw === undefined) {
      let early: Reply | undefined;
      try {
        early = await Promise.race([connected.then(() => undefined), finalReply]);
      } catch (e) {
        if (!(e instanceof DeadlineError) || e.shutdown) throw e;
        throw noConnectBack(`PORT and ${verb} (${first.code})`);
      }
      if (early !== undefined && raw === undefined) {
        if (!isCompletion(early.code)) throw dataFailure(verb, early, mode, env.settings.tls);
        // A completion with no connection yet: the connection may still be queued.
        try {
          await untilAborted(connected, signal);
        } catch (e) {
          if (!(e instanceof DeadlineError) || e.shutdown) throw e;
          throw noConnectBack(`PORT and ${verb} (${early.code})`);
        }
      }
    }

    let bytes: number;
    try {
      bytes = await untilAborted(received, signal);
    } catch (e) {
      if (isShutdown(e)) throw e;
      if (e instanceof DeadlineError) {
        throw probeError(
          'data_timeout',
          `the ${mode} data connection opened but the transfer did not finish ${within(env)}`,
        );
      }
      if (e instanceof ProbeError) throw e;
      throw probeError('data_error', `${mode} data connection: ${(e as Error).message}`);
    }

    let final: Reply;
    try {
      final = await finalReply;
    } catch (e) {
      if (e instanceof DeadlineError && !e.shutdown) {
        throw probeError(
          'stalled',
          `${verb}: the data connection closed after ${bytes} bytes but no completion reply came ${within(env)}`,
        );
      }
      throw e;
    }
    if (!isCompletion(final.code)) throw dataFailure(verb, final, mode, env.settings.tls);
    env.log(`${mode}: ${bytes} bytes, ${replyText(final, 80)}`);
    return { bytes, seconds: (performance.now() - t0) / 1000 };
  } finally {
    for (const s of sockets) s.destroy();
    server?.close();
  }
}
