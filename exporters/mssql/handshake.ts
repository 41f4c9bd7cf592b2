// The prelogin rung: the prober's own PRELOGIN on its TCP (or TDS 8 TLS) connection, which tells
// the version and the encryption policy without credentials.
import net from 'node:net';
import type tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { ProbeError, classifyError, type Ladder } from '../ladder';
import type { ProbeSignal } from '../signal';
import { PacketType, encodeMessage } from './packet';
import {
  Encrypt,
  buildPrelogin,
  formatVersion,
  instanceValidity,
  parsePrelogin,
  type Prelogin,
  type Version,
} from './prelogin';
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
  for (const p of preloginPackets(strict, s.instance ?? '')) socket.write(p);
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
    const known = versionFacts(v);
    const advisory = advise(v, s.min_build);
    l.fact('probe_mssql_version_info', 1, known.labels);
    l.fact('probe_mssql_patch_advisory', advisory.below ? 1 : 0);
    l.details.version = known.labels.version;
    l.details.versionName = known.name;
    l.details.build = known.build;
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

// A server answers with the same version on every probe, and the agent sends the same PRELOGIN:
// both are worked out once (small maps: one entry per instance name and per version seen).
const MEMO_LIMIT = 1024;

const requests = new Map<string, readonly Buffer[]>();

/** The PRELOGIN packets for this encryption offer and instance (the same bytes on every probe). */
export function preloginPackets(strict: boolean, instance: string): readonly Buffer[] {
  const key = `${strict ? 's' : 'p'}${instance}`;
  let packets = requests.get(key);
  if (!packets) {
    // Offering encryption (OFF = "available, not required") makes the answer tell the server's
    // policy: OFF available, REQ forced, NOT_SUP no certificate. Under TDS 8 the value is ignored.
    const request = buildPrelogin({
      encryption: strict ? Encrypt.NOT_SUP : Encrypt.OFF,
      instance,
      threadId: process.pid,
    });
    packets = encodeMessage(PacketType.PRELOGIN, request);
    if (requests.size >= MEMO_LIMIT) requests.clear();
    requests.set(key, packets);
  }
  return packets;
}

interface VersionFacts {
  /** Labels of probe_mssql_version_info; shared by every result that saw this version, never changed. */
  labels: Readonly<Record<'version' | 'product' | 'level', string>>;
  name: string;
  build: string;
}

const versions = new Map<string, VersionFacts>();

function versionFacts(v: Version): VersionFacts {
  const version = formatVersion(v);
  let f = versions.get(version);
  if (!f) {
    const named = nameVersion(v);
    f = { labels: { version, product: named.product, level: named.level }, name: named.name, build: formatBuild(v) };
    if (versions.size >= MEMO_LIMIT) versions.clear();
    versions.set(version, f);
  }
  return f;
}

export function tdsTlsOptions(s: MssqlSettings, host: string): tls.ConnectionOptions {
  const servername = s.server_name ?? (net.isIP(host) ? undefined : host);
  const opts: tls.ConnectionOptions = { rejectUnauthorized: !s.trust_server_certificate, servername };
  if (s.ca_file) opts.ca = readFileSync(s.ca_file);
  return opts;
}
