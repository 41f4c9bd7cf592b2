// The prelogin rung: the prober's own PRELOGIN on its TCP (or TDS 8 TLS) connection, which tells
// the version and the encryption policy without credentials.
import net from 'node:net';
import type tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { ProbeError, classifyError, type Ladder } from '../ladder';
import type { ProbeSignal } from '../signal';
import { PacketType, encodeMessage } from './packet';
import { Encrypt, buildPrelogin, formatVersion, instanceValidity, parsePrelogin, type Prelogin } from './prelogin';
import { advise, formatBuild, nameVersion } from './versions';
import { NOT_TDS_ADVICE, readMessage } from './wire';
import { patchAdvisoryFinding } from './findings';
import { NO_RESPONSE_ADVICE, STALLED_PRELOGIN_ADVICE } from './advice';
import type { MssqlSettings } from './settings';

/** The prelogin rung, with a dropped or silent connection explained in the operator's terms. */
export function preloginPhase(
  l: Ladder,
  socket: net.Socket,
  s: MssqlSettings,
  signal: ProbeSignal,
  strict: boolean,
): Promise<Prelogin> {
  return doPrelogin(l, socket, s, signal, strict).catch((err: unknown) => {
    const c = classifyError(err, signal);
    if (c.reason === 'reset') {
      throw new ProbeError(
        'reset',
        `the server closed the connection before answering the PRELOGIN (${c.message})`,
        strict
          ? 'The server dropped a PRELOGIN sent inside TLS: it may not support TDS 8 strict encryption; try encrypt: true.'
          : 'The port accepts connections but drops them: a server at its connection limit or starting up, ' +
              'a firewall or IPS that resets TDS, or a server that requires TDS 8 strict encryption (set encrypt: strict).',
      );
    }
    if (c.reason === 'timeout') {
      const received = (err as { received?: number }).received ?? 0;
      if (received > 0) {
        throw new ProbeError('stalled', `the PRELOGIN answer stopped after ${received} bytes`, STALLED_PRELOGIN_ADVICE);
      }
      throw new ProbeError(
        'no_response',
        'the TCP connection was accepted but the PRELOGIN got no answer before the deadline',
        NO_RESPONSE_ADVICE,
      );
    }
    throw err;
  });
}

async function doPrelogin(
  l: Ladder,
  socket: net.Socket,
  s: MssqlSettings,
  signal: ProbeSignal,
  strict: boolean,
): Promise<Prelogin> {
  // Offering encryption (OFF = "available, not required") makes the answer tell the server's
  // policy: OFF available, REQ forced, NOT_SUP no certificate. Under TDS 8 the value is ignored.
  const request = buildPrelogin({
    encryption: strict ? Encrypt.NOT_SUP : Encrypt.OFF,
    instance: s.instance ?? '',
    threadId: process.pid,
  });
  for (const p of encodeMessage(PacketType.PRELOGIN, request)) socket.write(p);
  const answer = await readMessage(socket, signal);
  if (answer.type !== PacketType.TABULAR_RESULT) {
    throw new ProbeError(
      'not_tds',
      `not a TDS server: PRELOGIN answered with packet type 0x${answer.type.toString(16)}`,
      NOT_TDS_ADVICE,
    );
  }
  const parsed = parsePrelogin(answer.payload);
  if (!parsed.ok) throw new ProbeError('protocol_error', `PRELOGIN answer cannot be read: ${parsed.error}`);
  const p = parsed.prelogin;
  if (p.version) {
    const v = p.version;
    const named = nameVersion(v);
    const advisory = advise(v, s.min_build);
    l.fact('probe_mssql_version_info', 1, { version: formatVersion(v), product: named.product, level: named.level });
    l.fact('probe_mssql_patch_advisory', advisory.below ? 1 : 0);
    l.details.version = formatVersion(v);
    l.details.versionName = named.name;
    l.details.build = formatBuild(v);
    if (advisory.below) l.details.advisory = advisory.message;
    const finding = patchAdvisoryFinding(advisory, s.min_build?.[String(v.major)] !== undefined);
    if (finding) l.finding(finding);
  }
  if (p.mars !== undefined) l.details.mars = p.mars;
  if (p.fedAuthRequired !== undefined) l.details.fedAuthRequired = p.fedAuthRequired;
  if (s.instance !== undefined && instanceValidity(p) === 'invalid') {
    throw new ProbeError(
      'instance_not_found',
      `the server on this port is not instance ${s.instance} (PRELOGIN INSTOPT)`,
      'The port belongs to another instance: check the instance name or the port in the target address.',
    );
  }
  l.debug(
    `prelogin: version ${typeof l.details.version === 'string' ? l.details.version : '?'} encryption ${p.encryption ?? '?'}`,
  );
  return p;
}

export function tdsTlsOptions(s: MssqlSettings, host: string): tls.ConnectionOptions {
  const servername = s.server_name ?? (net.isIP(host) ? undefined : host);
  const opts: tls.ConnectionOptions = { rejectUnauthorized: !s.trust_server_certificate, servername };
  if (s.ca_file) opts.ca = readFileSync(s.ca_file);
  return opts;
}
