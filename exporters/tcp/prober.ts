// The "telnet host port" rung: resolve, connect, optional TLS, optional banner check.
import type { ProberDef } from '../types';
import { ProbeError, runLadder } from '../ladder';
import {
  IP_PROTOCOL_PROPERTIES,
  LineReader,
  TLS_CONFIG_SCHEMA,
  TLS_METRICS,
  connectOnly,
  connectTcp,
  parseHostPort,
  resolveHost,
  startTls,
  recordTls,
  tlsOptions,
  type IpPreference,
  type TlsSettings,
  watchedSocket,
} from '../net';
import type net from 'node:net';
import { classifyAnswer, lookSays, readOrExplain } from '../silence';

export interface TcpSettings {
  preferred_ip_protocol: IpPreference;
  ip_protocol_fallback: boolean;
  /** Wrap the connection in TLS right after connect. */
  tls: boolean;
  tls_config: TlsSettings;
  /** Send this (after TLS) before reading the banner, e.g. "HEAD / HTTP/1.0\r\n\r\n". */
  send?: string;
  /** Regular expression the first line from the peer must match. */
  expect_banner?: string;
  /**
   * Date a connect-only probe's connect phase by the handshake (arrival stamps) rather than by
   * the event loop. Probes with expect_banner are always dated so; connect-only ones only on
   * request, as it costs them about a third more CPU (BENCHMARKS.md).
   */
  precise_connect_timing: boolean;
}

export const TCP_SETTINGS_SCHEMA = {
  type: 'object',
  description: 'TCP connect probe settings.',
  additionalProperties: false,
  properties: {
    ...IP_PROTOCOL_PROPERTIES,
    tls: { type: 'boolean', description: 'Start TLS immediately after connecting.' },
    tls_config: TLS_CONFIG_SCHEMA,
    send: { type: 'string', maxLength: 4096, description: 'Bytes to send before reading the banner.' },
    expect_banner: {
      type: 'string',
      maxLength: 1024,
      description: 'Regular expression the first line received must match.',
    },
    precise_connect_timing: {
      type: 'boolean',
      description:
        'For a probe that only connects: time the connect by the kernel handshake, not by when the busy event loop saw it (needs the native addon; about a third more CPU per probe). Probes with expect_banner are always timed this way.',
    },
  },
} as const;

const BANNER_LIMITS = { maxLineBytes: 4096, maxBufferedBytes: 16384 };

/** What to check when the banner rung meets silence or another service (exporters/silence.ts). */
export const BANNER_ADVICE = {
  silent:
    'The TCP handshake completed, so the network path is fine: the service accepted the connection but sent no banner. It is hung or overloaded, or a service that waits for its client to speak first holds the port (then set send, or fix the port). Check the service and its logs, and what listens on this port.',
  stalled:
    'The service began to answer and stopped: it is hung or overloaded, not the network. Check the service and its logs.',
  tls: 'The port expects TLS from the first byte: set tls: true in the module, or point the target at the clear-text port.',
  other: 'Another service holds this port: check the port in the target and what listens there on the host (ss -ltnp).',
} as const;

const RESPONSE_SILENT =
  'The TCP handshake completed and the request was sent, so the network path is fine: the service never answered it. It is hung or overloaded, or it does not understand the bytes in send. Check the service and its logs, and what listens on this port.';

export const tcpProber: ProberDef<TcpSettings> = {
  name: 'tcp',
  urls: {
    schemes: ['tcp'],
    usage: 'tcp://host:port',
    fromUrl(u) {
      if (u.port === undefined) throw new Error('tcp:// needs a port');
      return { address: `${u.host}:${u.port}`, settings: {} };
    },
  },
  phases: ['resolve', 'connect', 'tls', 'banner'],
  metrics: TLS_METRICS,
  schema: TCP_SETTINGS_SCHEMA,
  defaults: {
    preferred_ip_protocol: 'ip4',
    ip_protocol_fallback: true,
    tls: false,
    tls_config: {},
    precise_connect_timing: false,
  },
  validate(settings) {
    const errors: string[] = [];
    if (settings.expect_banner !== undefined) {
      try {
        new RegExp(settings.expect_banner);
      } catch (e) {
        errors.push(`expect_banner: not a valid regular expression: ${(e as Error).message}`);
      }
    }
    return errors;
  },
  validateAddress(address) {
    const hp = parseHostPort(address);
    return typeof hp === 'string' ? hp : undefined;
  },
  run: (ctx) =>
    runLadder(ctx, async (l) => {
      const s = ctx.module.settings;
      const hp = parseHostPort(ctx.target.address);
      if (typeof hp === 'string') throw new ProbeError('internal_error', hp);
      const resolved = await l.phase('resolve', () =>
        resolveHost(hp.host, s.preferred_ip_protocol, s.ip_protocol_fallback, ctx.signal),
      );
      l.ipProtocol = resolved.family;
      if (!s.tls && s.send === undefined && s.expect_banner === undefined) {
        const conn = await l.phase('connect', async () => {
          const c = await connectOnly(resolved.address, resolved.family, hp.port, ctx.signal, s.precise_connect_timing);
          if (c.connectedAt !== undefined) l.endedAt(c.connectedAt);
          return c;
        });
        conn.destroy();
        l.details.peer = `${resolved.address}:${hp.port}`;
        return;
      }
      // Arrival stamps time the banner (and the connect before it) off the event loop; the
      // watched socket exists before it connects, so that no handshake goes unseen.
      const watched = s.expect_banner === undefined ? undefined : watchedSocket(resolved.family);
      const watch = watched?.watch;
      let socket: net.Socket | undefined = watched?.socket;
      try {
        // This rung writes at most once (`send`): Nagle's algorithm costs it nothing.
        const opts = { noDelay: false, socket: watched?.socket };
        socket = await l.phase('connect', async () => {
          const c = await connectTcp(resolved.address, hp.port, ctx.signal, opts);
          const at = s.tls ? undefined : watch?.connectedAt();
          if (at !== undefined) l.endedAt(at);
          return c;
        });
        l.details.peer = `${resolved.address}:${hp.port}`;
        if (s.tls) {
          const plain = socket;
          socket = await l.phase('tls', () => startTls(plain, tlsOptions(s.tls_config, hp.host), ctx.signal));
          recordTls(l, 'server', socket as import('node:tls').TLSSocket);
        }
        if (s.send !== undefined || s.expect_banner !== undefined) {
          const conn = socket;
          await l.phase('banner', async () => {
            if (s.send !== undefined) conn.write(s.send);
            if (s.expect_banner === undefined) return;
            const reader = new LineReader(conn, BANNER_LIMITS);
            try {
              const line = await readOrExplain(reader.readLine(ctx.signal), {
                signal: ctx.signal,
                deadline: ctx.deadline,
                socket: conn,
                clearText: !s.tls,
                expecting: s.send === undefined ? 'greeting' : 'response',
                what: 'banner',
                advice: s.send === undefined ? BANNER_ADVICE : { ...BANNER_ADVICE, silent: RESPONSE_SILENT },
              });
              const arrived = watch?.lastArrival();
              if (arrived !== undefined) l.endedAt(arrived);
              l.details.banner = line.slice(0, 256);
              if (!new RegExp(s.expect_banner).test(line)) {
                const look = classifyAnswer(Buffer.from(`${line}\n`, 'latin1'), true);
                const known =
                  look?.kind === 'http' || look?.kind === 'ssh' || look?.kind === 'tls' ? `: ${lookSays(look)}` : '';
                throw new ProbeError(
                  'banner_unexpected',
                  `banner ${JSON.stringify(line.slice(0, 120))} does not match /${s.expect_banner}/${known}`,
                  'Check that the expected service (and not another one) listens on this port.',
                );
              }
            } finally {
              reader.detach();
            }
          });
        }
      } finally {
        watch?.stop();
        socket?.destroy();
      }
    }),
};
