// SQL Server Resolution Protocol (MC-SQLR): the Browser service on UDP 1434 that maps instance
// names to TCP ports. Requests are built and answers parsed by pure functions; `queryBrowser`
// is the only part that touches the network.
import net from 'node:net';
import { DeadlineError, untilAborted } from '../ladder';
import type { ProbeSignal } from '../signal';

export const CLNT_UCAST_EX = 0x03;
export const CLNT_UCAST_INST = 0x04;
export const SVR_RESP = 0x05;

/** MC-SQLR caps the instance name in a request at 32 bytes. */
export const MAX_INSTANCE_NAME_BYTES = 32;

export function buildUcastEx(): Buffer {
  return Buffer.from([CLNT_UCAST_EX]);
}

export function buildUcastInst(instance: string): Buffer {
  return Buffer.concat([Buffer.from([CLNT_UCAST_INST]), Buffer.from(instance, 'latin1'), Buffer.from([0])]);
}

export interface BrowserInstance {
  serverName: string;
  instanceName: string;
  isClustered?: boolean;
  version: string;
  /** TCP port when the instance listens on TCP. */
  tcpPort?: number;
  /** Named-pipe path when offered. */
  pipe?: string;
  /** Other transports seen (via, rpc, spx, adsp, bv), by name. */
  other: Record<string, string>;
}

export type SvrRespResult =
  | { ok: true; instances: BrowserInstance[]; /** records that could not be read */ skipped: string[] }
  | { ok: false; error: string };

/** Parameter counts of each transport after its keyword; BV carries five. */
const TRANSPORT_PARAMS: Record<string, number> = { np: 1, tcp: 1, via: 1, rpc: 1, spx: 1, adsp: 1, bv: 5 };

/**
 * Parses a whole SVR_RESP datagram. RESP_SIZE larger than the datagram means the reply was
 * truncated: the complete records before the cut are still returned, the cut one is skipped.
 */
export function parseSvrResp(data: Uint8Array): SvrRespResult {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  if (buf.length < 3) return { ok: false, error: `reply of ${buf.length} bytes is shorter than the 3-byte header` };
  if (buf[0] !== SVR_RESP)
    return { ok: false, error: `reply starts with 0x${buf[0].toString(16)}, not SVR_RESP (0x05)` };
  const size = buf.readUInt16LE(1);
  const available = buf.length - 3;
  const truncated = size > available;
  const text = buf.subarray(3, 3 + Math.min(size, available)).toString('latin1');
  return parseRespData(text, truncated);
}

/**
 * Parses RESP_DATA: records of `key;value` pairs, each record ending in an empty field (`;;`).
 * Fields are read by key, so an empty value (`ServerName;;`) is a value, not a record end.
 */
export function parseRespData(text: string, truncated = false): SvrRespResult {
  const instances: BrowserInstance[] = [];
  const skipped: string[] = [];
  const f = text.split(';');
  let pos = 0;
  while (pos < f.length) {
    if (f[pos] === '') {
      pos += 1;
      continue;
    }
    const r = readRecord(f, pos);
    pos = r.next;
    if (!r.terminated && truncated) skipped.push('truncated record');
    else if (typeof r.record === 'string') skipped.push(r.record);
    else instances.push(r.record);
  }
  if (instances.length === 0 && skipped.length > 0) {
    return { ok: false, error: `no readable instance record (${skipped[0]})` };
  }
  return { ok: true, instances, skipped };
}

const HEAD_KEYS = new Set(['servername', 'instancename', 'isclustered', 'version']);

function readRecord(
  f: readonly string[],
  start: number,
): { record: BrowserInstance | string; next: number; terminated: boolean } {
  const inst: BrowserInstance = { serverName: '', instanceName: '', version: '', other: {} };
  const seen = new Set<string>();
  const name = (): string => inst.instanceName.slice(0, 40);
  let i = start;
  let error: string | undefined;
  // Head: ServerName, InstanceName, IsClustered, Version; values may be empty.
  while (i < f.length && HEAD_KEYS.has(f[i].toLowerCase()) && !seen.has(f[i].toLowerCase())) {
    const key = f[i].toLowerCase();
    seen.add(key);
    const value = f[i + 1] ?? '';
    if (key === 'servername') inst.serverName = value;
    else if (key === 'instancename') inst.instanceName = value;
    else if (key === 'isclustered') inst.isClustered = value.toLowerCase() === 'yes';
    else inst.version = value;
    i += 2;
  }
  if (!seen.has('instancename')) error = 'record without InstanceName';
  // Transports until the empty field that ends the record.
  while (error === undefined && i < f.length && f[i] !== '') {
    const key = f[i].toLowerCase();
    if (key === 'servername') break; // the next record began without the ";;" terminator
    const n = TRANSPORT_PARAMS[key];
    if (n === undefined) {
      error = `unknown transport "${f[i].slice(0, 20)}" in instance ${name()}`;
      break;
    }
    if (i + n >= f.length) {
      error = `transport ${key} is missing parameters in instance ${name()}`;
      i = f.length;
      break;
    }
    const params = f.slice(i + 1, i + 1 + n);
    if (key === 'tcp') {
      const p = params[0].trim();
      if (!/^[0-9]{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) {
        error = `tcp port "${p.slice(0, 20)}" is not a port in instance ${name()}`;
      } else inst.tcpPort = Number(p);
    } else if (key === 'np') inst.pipe = params[0];
    else inst.other[key] = params.join(';');
    i += 1 + n;
  }
  if (error !== undefined) {
    while (i < f.length && f[i] !== '') i += 1;
  }
  // Complete when an empty field (the second ";" of ";;") follows, or the next record starts.
  const terminated = i < f.length && (f[i] === '' ? i + 1 < f.length : true);
  return { record: error ?? inst, next: Math.max(i, start + 1), terminated };
}

/** Finds an instance by name, case-insensitively as MC-SQLR says names compare. */
export function findInstance(instances: readonly BrowserInstance[], name: string): BrowserInstance | undefined {
  const want = name.toUpperCase();
  return instances.find((x) => x.instanceName.toUpperCase() === want);
}

export const MAX_SVR_RESP_BYTES = 65535 + 3;

/**
 * Sends one request to the Browser and waits for one answer from that host and port. Resolves
 * undefined when nothing answers before the signal fires or `waitMs` passes (hidden instance,
 * Browser stopped, UDP blocked): a silent Browser is an answer, not an error. ICMP port
 * unreachable surfaces as a socket error and is also reported as no answer; `seen.refused`
 * then says so, for the message.
 */
export async function queryBrowser(
  address: string,
  port: number,
  request: Buffer,
  signal: ProbeSignal,
  waitMs: number,
  seen: { refused?: boolean } = {},
): Promise<Buffer | undefined> {
  // node:dgram on first use: an agent that never asks SQL Browser does not load it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- see above
  const { createSocket } = require('node:dgram') as typeof import('node:dgram');
  const sock = createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
  let timer: NodeJS.Timeout | undefined;
  try {
    const answer = new Promise<Buffer | undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), Math.max(1, waitMs));
      sock.on('message', (msg, rinfo) => {
        if (rinfo.port !== port) return;
        resolve(msg.length > MAX_SVR_RESP_BYTES ? msg.subarray(0, MAX_SVR_RESP_BYTES) : msg);
      });
      sock.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED') seen.refused = true;
        resolve(undefined);
      });
      sock.connect(port, address, () => {
        sock.send(request, (err) => {
          if (err) resolve(undefined);
        });
      });
    });
    return await untilAborted(answer, signal);
  } catch (err) {
    if (err instanceof DeadlineError && !err.shutdown) return undefined;
    throw err;
  } finally {
    if (timer) clearTimeout(timer);
    try {
      sock.close();
    } catch {
      // already closed
    }
  }
}
