// PRELOGIN (MS-TDS 2.2.6.5): the option table a client sends first and the server answers with
// in a tabular-result packet. No credentials are involved, so this alone tells the server's
// version and encryption policy. Pure functions; parse errors are values.

export const PreloginOption = {
  VERSION: 0x00,
  ENCRYPTION: 0x01,
  INSTOPT: 0x02,
  THREADID: 0x03,
  MARS: 0x04,
  TRACEID: 0x05,
  FEDAUTHREQUIRED: 0x06,
  NONCEOPT: 0x07,
  TERMINATOR: 0xff,
} as const;

export const Encrypt = {
  OFF: 0x00,
  ON: 0x01,
  NOT_SUP: 0x02,
  REQ: 0x03,
} as const;

export type EncryptionMode = 'off' | 'on' | 'not_supported' | 'required';

/** Name of the low bits of B_FENCRYPTION; the client-certificate bit (0x80) is reported apart. */
export function encryptionName(b: number): EncryptionMode | undefined {
  switch (b & 0x7f) {
    case Encrypt.OFF:
      return 'off';
    case Encrypt.ON:
      return 'on';
    case Encrypt.NOT_SUP:
      return 'not_supported';
    case Encrypt.REQ:
      return 'required';
    default:
      return undefined;
  }
}

export interface Version {
  major: number;
  minor: number;
  build: number;
  subbuild: number;
}

export interface Prelogin {
  version?: Version;
  /** Raw B_FENCRYPTION byte. */
  encryptionByte?: number;
  encryption?: EncryptionMode;
  /** INSTOPT: in a server answer 0 means "the instance you named is mine", 1 means it is not. */
  instance?: Buffer;
  threadId?: number;
  mars?: boolean;
  fedAuthRequired?: boolean;
  nonce?: Buffer;
  /** Option tokens in the order they appeared. */
  tokens: number[];
}

export type PreloginResult = { ok: true; prelogin: Prelogin } | { ok: false; error: string };

const MAX_OPTIONS = 64;

/** Parses a PRELOGIN payload (without the packet header). */
export function parsePrelogin(data: Uint8Array): PreloginResult {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  const out: Prelogin = { tokens: [] };
  const seen = new Set<number>();
  let pos = 0;
  let terminated = false;
  const entries: { token: number; offset: number; length: number }[] = [];
  while (pos < buf.length) {
    const token = buf[pos];
    if (token === PreloginOption.TERMINATOR) {
      terminated = true;
      pos += 1;
      break;
    }
    if (pos + 5 > buf.length) return { ok: false, error: `option table cut short at byte ${pos}` };
    if (entries.length >= MAX_OPTIONS) return { ok: false, error: `more than ${MAX_OPTIONS} options` };
    const offset = buf.readUInt16BE(pos + 1);
    const length = buf.readUInt16BE(pos + 3);
    if (seen.has(token)) return { ok: false, error: `option 0x${token.toString(16)} appears twice` };
    seen.add(token);
    entries.push({ token, offset, length });
    pos += 5;
  }
  if (!terminated) return { ok: false, error: 'option table has no terminator (0xFF)' };
  const tableEnd = pos;
  if (entries.length === 0) return { ok: false, error: 'option table is empty' };
  if (entries[0].token !== PreloginOption.VERSION) {
    return { ok: false, error: 'first option is not VERSION' };
  }
  for (const e of entries) {
    if (e.offset < tableEnd || e.offset + e.length > buf.length) {
      return {
        ok: false,
        error: `option 0x${e.token.toString(16)} points outside the data (offset ${e.offset}, length ${e.length}, payload ${buf.length})`,
      };
    }
    const v = buf.subarray(e.offset, e.offset + e.length);
    out.tokens.push(e.token);
    switch (e.token) {
      case PreloginOption.VERSION:
        if (v.length < 4) return { ok: false, error: `VERSION is ${v.length} bytes, expected 6` };
        out.version = {
          major: v[0],
          minor: v[1],
          build: v.readUInt16BE(2),
          subbuild: v.length >= 6 ? v.readUInt16BE(4) : 0,
        };
        break;
      case PreloginOption.ENCRYPTION:
        if (v.length < 1) return { ok: false, error: 'ENCRYPTION option is empty' };
        out.encryptionByte = v[0];
        out.encryption = encryptionName(v[0]);
        if (out.encryption === undefined) {
          return { ok: false, error: `unknown ENCRYPTION value 0x${v[0].toString(16)}` };
        }
        break;
      case PreloginOption.INSTOPT:
        out.instance = Buffer.from(v);
        break;
      case PreloginOption.THREADID:
        if (v.length >= 4) out.threadId = v.readUInt32BE(0);
        break;
      case PreloginOption.MARS:
        if (v.length >= 1) out.mars = v[0] === 1;
        break;
      case PreloginOption.FEDAUTHREQUIRED:
        if (v.length >= 1) out.fedAuthRequired = v[0] === 1;
        break;
      case PreloginOption.NONCEOPT:
        out.nonce = Buffer.from(v);
        break;
      default:
        // TRACEID and future options: carried, not interpreted.
        break;
    }
  }
  return { ok: true, prelogin: out };
}

/**
 * INSTOPT as the server answered it: valid (0), invalid (1), or the raw string a client sent.
 */
export function instanceValidity(p: Prelogin): 'valid' | 'invalid' | 'absent' {
  if (!p.instance || p.instance.length === 0) return 'absent';
  return p.instance[0] === 0 ? 'valid' : 'invalid';
}

export interface PreloginRequest {
  version?: Version;
  encryption?: number;
  /** Instance name to check (MBCS, sent NUL-terminated); empty means the default. */
  instance?: string;
  threadId?: number;
  mars?: boolean;
}

/** Builds a PRELOGIN payload: VERSION, ENCRYPTION, INSTOPT, THREADID, MARS, TERMINATOR. */
export function buildPrelogin(req: PreloginRequest = {}): Buffer {
  const ver = req.version ?? { major: 0, minor: 0, build: 0, subbuild: 0 };
  const version = Buffer.alloc(6);
  version[0] = ver.major & 0xff;
  version[1] = ver.minor & 0xff;
  version.writeUInt16BE(ver.build & 0xffff, 2);
  version.writeUInt16BE(ver.subbuild & 0xffff, 4);
  const thread = Buffer.alloc(4);
  thread.writeUInt32BE((req.threadId ?? 0) >>> 0, 0);
  const options: [number, Buffer][] = [
    [PreloginOption.VERSION, version],
    [PreloginOption.ENCRYPTION, Buffer.from([req.encryption ?? Encrypt.OFF])],
    [PreloginOption.INSTOPT, Buffer.concat([Buffer.from(req.instance ?? '', 'latin1'), Buffer.from([0])])],
    [PreloginOption.THREADID, thread],
    [PreloginOption.MARS, Buffer.from([req.mars ? 1 : 0])],
  ];
  return encodePreloginOptions(options);
}

/** Lays out an option table followed by the option data, as MS-TDS 2.2.6.5 describes. */
export function encodePreloginOptions(options: readonly (readonly [number, Uint8Array])[]): Buffer {
  const tableLen = options.length * 5 + 1;
  const dataLen = options.reduce((n, [, v]) => n + v.length, 0);
  const out = Buffer.alloc(tableLen + dataLen);
  let tablePos = 0;
  let dataPos = tableLen;
  for (const [token, value] of options) {
    out[tablePos] = token;
    out.writeUInt16BE(dataPos, tablePos + 1);
    out.writeUInt16BE(value.length, tablePos + 3);
    Buffer.from(value.buffer, value.byteOffset, value.length).copy(out, dataPos);
    tablePos += 5;
    dataPos += value.length;
  }
  out[tablePos] = PreloginOption.TERMINATOR;
  return out;
}

export function formatVersion(v: Version): string {
  return `${v.major}.${v.minor}.${v.build}.${v.subbuild}`;
}
