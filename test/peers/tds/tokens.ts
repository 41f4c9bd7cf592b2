// Encoders for the server-side TDS tokens the test peer sends (MS-TDS 2.2.7): LOGINACK,
// ENVCHANGE, INFO/ERROR, COLMETADATA, ROW and DONE. Little-endian unless the spec says otherwise.

export const Token = {
  COLMETADATA: 0x81,
  ERROR: 0xaa,
  INFO: 0xab,
  LOGINACK: 0xad,
  ROW: 0xd1,
  RETURNSTATUS: 0x79,
  DONEPROC: 0xfe,
  DONEINPROC: 0xff,
  ENVCHANGE: 0xe3,
  DONE: 0xfd,
} as const;

export const DoneStatus = { FINAL: 0x00, MORE: 0x01, ERROR: 0x02, COUNT: 0x10, ATTN: 0x20 } as const;

/** Latin1_General_CI_AS as the five COLLATION bytes servers send. */
export const COLLATION = Buffer.from([0x09, 0x04, 0xd0, 0x00, 0x34]);

const ucs2 = (s: string): Buffer => Buffer.from(s, 'utf16le');

/** B_VARCHAR: a one-byte character count, then UCS-2. */
export function bVarchar(s: string): Buffer {
  const chars = s.slice(0, 255);
  return Buffer.concat([Buffer.from([chars.length]), ucs2(chars)]);
}

/** US_VARCHAR: a two-byte character count, then UCS-2. */
export function usVarchar(s: string): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(s.length, 0);
  return Buffer.concat([b, ucs2(s)]);
}

function withLength(token: number, body: Buffer): Buffer {
  const h = Buffer.alloc(3);
  h[0] = token;
  h.writeUInt16LE(body.length, 1);
  return Buffer.concat([h, body]);
}

/** TDS 7.2 and later widen DONE row counts to 8 bytes and line numbers to 4. */
export function isTds72(tdsVersion: number): boolean {
  return tdsVersion >>> 0 >= 0x72000000;
}

export function loginAck(
  tdsVersion: number,
  progName: string,
  v: { major: number; minor: number; build: number },
): Buffer {
  const ver = Buffer.alloc(4);
  ver.writeUInt32BE(tdsVersion >>> 0, 0);
  return withLength(
    Token.LOGINACK,
    Buffer.concat([
      Buffer.from([0x01]), // SQL_TSQL
      ver,
      bVarchar(progName),
      Buffer.from([v.major & 0xff, v.minor & 0xff, (v.build >> 8) & 0xff, v.build & 0xff]),
    ]),
  );
}

/** ENVCHANGE with string values (database 1, language 2, packet size 4). */
export function envChangeString(type: number, newValue: string, oldValue: string): Buffer {
  return withLength(Token.ENVCHANGE, Buffer.concat([Buffer.from([type]), bVarchar(newValue), bVarchar(oldValue)]));
}

/** ENVCHANGE 7 (SQL collation): B_VARBYTE new, B_VARBYTE old. */
export function envChangeCollation(collation: Buffer): Buffer {
  return withLength(Token.ENVCHANGE, Buffer.concat([Buffer.from([7, collation.length]), collation, Buffer.from([0])]));
}

export interface ServerMessage {
  number: number;
  state: number;
  class: number;
  message: string;
  serverName: string;
  procName?: string;
  line?: number;
}

function message(token: number, m: ServerMessage, tdsVersion: number): Buffer {
  const head = Buffer.alloc(6);
  head.writeInt32LE(m.number, 0);
  head[4] = m.state;
  head[5] = m.class;
  const line = Buffer.alloc(isTds72(tdsVersion) ? 4 : 2);
  if (line.length === 4) line.writeInt32LE(m.line ?? 1, 0);
  else line.writeUInt16LE(m.line ?? 1, 0);
  return withLength(
    token,
    Buffer.concat([head, usVarchar(m.message), bVarchar(m.serverName), bVarchar(m.procName ?? ''), line]),
  );
}

export const errorToken = (m: ServerMessage, tds: number): Buffer => message(Token.ERROR, m, tds);
export const infoToken = (m: ServerMessage, tds: number): Buffer => message(Token.INFO, m, tds);

export function done(status: number, curCmd: number, rowCount: number, tdsVersion: number): Buffer {
  const wide = isTds72(tdsVersion);
  const b = Buffer.alloc(wide ? 13 : 9);
  b[0] = Token.DONE;
  b.writeUInt16LE(status, 1);
  b.writeUInt16LE(curCmd, 3);
  if (wide) b.writeBigUInt64LE(BigInt(rowCount), 5);
  else b.writeUInt32LE(rowCount, 5);
  return b;
}

/**
 * int is INTN(8) (bigint); tinyint, smallint and int32 are INTN(1), INTN(2) and INTN(4), the
 * widths SQL Server sends for tinyint, smallint and int columns.
 */
export type ColumnType = 'int' | 'tinyint' | 'smallint' | 'int32' | 'float' | 'nvarchar';

const INTN_BYTES: Partial<Record<ColumnType, number>> = { int: 8, tinyint: 1, smallint: 2, int32: 4 };

export interface Column {
  name: string;
  type: ColumnType;
}

export type Cell = string | number | null;

/** COLMETADATA with nullable INTN(1, 2, 4, 8), FLTN(8) or NVARCHAR(4000) columns. */
export function colMetadata(cols: readonly Column[]): Buffer {
  const parts: Buffer[] = [Buffer.from([Token.COLMETADATA, cols.length & 0xff, cols.length >> 8])];
  for (const c of cols) {
    const userTypeAndFlags = Buffer.from([0, 0, 0, 0, 0x01, 0x00]); // UserType 0, Flags: nullable
    let typeInfo: Buffer;
    const intBytes = INTN_BYTES[c.type];
    if (intBytes !== undefined) typeInfo = Buffer.from([0x26, intBytes]);
    else if (c.type === 'float') typeInfo = Buffer.from([0x6d, 8]);
    else typeInfo = Buffer.concat([Buffer.from([0xe7, 0x40, 0x1f]), COLLATION]); // 8000 bytes
    parts.push(userTypeAndFlags, typeInfo, bVarchar(c.name));
  }
  return Buffer.concat(parts);
}

export function row(cols: readonly Column[], cells: readonly Cell[]): Buffer {
  const parts: Buffer[] = [Buffer.from([Token.ROW])];
  cols.forEach((c, i) => {
    const v = cells[i] ?? null;
    if (c.type === 'nvarchar') {
      if (v === null) parts.push(Buffer.from([0xff, 0xff]));
      else {
        const data = ucs2(String(v));
        const len = Buffer.alloc(2);
        len.writeUInt16LE(data.length, 0);
        parts.push(len, data);
      }
    } else if (v === null) {
      parts.push(Buffer.from([0]));
    } else {
      const n = INTN_BYTES[c.type] ?? 8;
      const b = Buffer.alloc(1 + n);
      b[0] = n;
      const x = Math.trunc(Number(v));
      if (c.type === 'float') b.writeDoubleLE(Number(v), 1);
      else if (n === 8) b.writeBigInt64LE(BigInt(x), 1);
      else if (n === 4) b.writeInt32LE(x, 1);
      else if (n === 2) b.writeInt16LE(x, 1);
      else b.writeUInt8(x, 1);
      parts.push(b);
    }
  });
  return Buffer.concat(parts);
}
