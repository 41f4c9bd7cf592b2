// Hostile token streams for the TDS peer: what a broken or malicious server might send after a
// valid PRELOGIN, in answer to LOGIN7 or to a SQL batch. Each case is a pure function of its
// number, so a failing case can be replayed alone (hostileCase(n)).
import {
  COLLATION,
  DoneStatus,
  Token,
  colMetadata,
  done,
  envChangeCollation,
  envChangeString,
  errorToken,
  infoToken,
  loginAck,
  row,
  type Column,
} from './tokens';
import { prng } from '../../helpers/prng';

const TDS74 = 0x74000004;

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)];
const bytes = (r: Rand, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(r, 256)));

/** Every token type MS-TDS defines for a server, and some it does not (0x10 among them). */
const TOKEN_TYPES = [
  0x81, 0xaa, 0xab, 0xad, 0xd1, 0xd2, 0x79, 0xfe, 0xff, 0xe3, 0xfd, 0xa9, 0xa5, 0xa4, 0xac, 0xae, 0xed, 0xee, 0xe4,
  0x88, 0x10, 0x00, 0x01, 0x20, 0x78, 0xa0, 0xa1, 0xd3, 0xec, 0xf0, 0xfc,
] as const;
const INTERESTING_16 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff] as const;
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff] as const;

const msg = (number: number, message: string) => ({
  number,
  state: 1,
  class: 14,
  message,
  serverName: 'HOSTILE',
  line: 1,
});

/** A correct answer to LOGIN7, as the peer sends it. */
export function validLoginStream(): Buffer {
  return Buffer.concat([
    envChangeString(1, 'master', 'master'),
    infoToken({ ...msg(5701, "Changed database context to 'master'."), class: 0 }, TDS74),
    envChangeCollation(COLLATION),
    envChangeString(2, 'us_english', ''),
    envChangeString(4, '4096', '4096'),
    loginAck(TDS74, 'Microsoft SQL Server', { major: 16, minor: 0, build: 4135 }),
    done(DoneStatus.FINAL, 0, 0, TDS74),
  ]);
}

const COLUMN_TYPES: readonly Column['type'][] = ['int', 'float', 'nvarchar'];

/** A correct answer to a SQL batch: a result set of one to four columns. */
export function validBatchStream(r: Rand = prng(1)): Buffer {
  const cols: Column[] = Array.from({ length: 1 + int(r, 4) }, (_, i) => ({
    name: `c${i}`,
    type: pick(r, COLUMN_TYPES),
  }));
  const rows = Array.from({ length: int(r, 4) }, () =>
    cols.map((c) => (r() < 0.2 ? null : c.type === 'nvarchar' ? 'x'.repeat(int(r, 40)) : int(r, 1e6))),
  );
  return Buffer.concat([
    colMetadata(cols),
    ...rows.map((cells) => row(cols, cells)),
    done(DoneStatus.COUNT, 0xc1, rows.length, TDS74),
  ]);
}

/** One token of a random type with a body that is sometimes consistent with its length field. */
function randomToken(r: Rand): Buffer {
  const type = pick(r, TOKEN_TYPES);
  const body = bytes(r, int(r, 48));
  const roll = r();
  if (type === Token.DONE || type === Token.DONEPROC || type === Token.DONEINPROC) {
    const d = done(int(r, 0x40), int(r, 0x100), int(r, 1000), TDS74);
    d[0] = type;
    return roll < 0.8 ? d : d.subarray(0, int(r, d.length));
  }
  if (type === Token.ERROR || type === Token.INFO) {
    const t = (type === Token.ERROR ? errorToken : infoToken)(msg(int(r, 60000), 'x'.repeat(int(r, 30))), TDS74);
    if (roll < 0.5) return t;
    const copy = Buffer.from(t);
    copy.writeUInt16LE(pick(r, INTERESTING_16), 1);
    return copy;
  }
  if (type === Token.LOGINACK && roll < 0.5)
    return loginAck(pick(r, [0x74000004, 0x73000000, 0x01000000, 0xffffffff]), 'x'.repeat(int(r, 20)), {
      major: int(r, 256),
      minor: 0,
      build: int(r, 65536),
    });
  if (type === Token.COLMETADATA && roll < 0.5) return colMetadata([{ name: 'v', type: pick(r, COLUMN_TYPES) }]);
  // Length-prefixed (USHORT) framing for the rest, right or wrong.
  const len = roll < 0.6 ? body.length : pick(r, INTERESTING_16);
  const head = Buffer.from([type, len & 0xff, len >> 8]);
  return Buffer.concat([head, body]);
}

const MUTATIONS = ['flip', 'byte', 'insert', 'delete', 'truncate', 'duplicate', 'u16', 'u32', 'splice'] as const;

/** Applies one to four mutations to `input`. */
export function mutate(input: Buffer, r: Rand): Buffer {
  let b = Buffer.from(input);
  const n = 1 + int(r, 4);
  for (let i = 0; i < n; i++) {
    const at = int(r, Math.max(1, b.length));
    switch (pick(r, MUTATIONS)) {
      case 'flip':
        if (b.length) b[at] ^= 1 << int(r, 8);
        break;
      case 'byte':
        if (b.length) b[at] = r() < 0.5 ? int(r, 256) : pick(r, [0, 0xff, 0x7f, 0x80, 0x10, ...TOKEN_TYPES]);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), bytes(r, 1 + int(r, 16)), b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(r, 16)))]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'duplicate': {
        const end = Math.min(b.length, at + 1 + int(r, 32));
        b = Buffer.concat([b.subarray(0, end), b.subarray(at, end), b.subarray(end)]);
        break;
      }
      case 'u16':
        if (b.length >= at + 2) b.writeUInt16LE(pick(r, INTERESTING_16), at);
        break;
      case 'u32':
        if (b.length >= at + 4) b.writeUInt32LE(pick(r, INTERESTING_32), at);
        break;
      case 'splice':
        b = Buffer.concat([b.subarray(0, at), randomToken(r), b.subarray(at)]);
        break;
    }
  }
  return b;
}

export interface HostileCase {
  /** Which answer is hostile: LOGIN7's, or the version query's after a good login. */
  target: 'login' | 'batch';
  /** How the bytes were made (for the figures). */
  kind: 'mutated' | 'tokens' | 'random' | 'empty';
  payload: Buffer;
}

/** Case number n: half for LOGIN7, half for SQL batches; mostly mutations of valid answers. */
export function hostileCase(n: number): HostileCase {
  const r = prng(0x9e3779b9 ^ n);
  const target = n % 2 === 0 ? 'login' : 'batch';
  const valid = target === 'login' ? validLoginStream() : validBatchStream(r);
  const roll = r();
  if (roll < 0.01) return { target, kind: 'empty', payload: Buffer.alloc(0) };
  if (roll < 0.65) return { target, kind: 'mutated', payload: mutate(valid, r) };
  if (roll < 0.9) {
    const parts = Array.from({ length: 1 + int(r, 8) }, () => randomToken(r));
    // Often ends with a DONE, so the stream reaches the handlers' end-of-message logic.
    if (r() < 0.5) parts.push(done(DoneStatus.FINAL, 0, 0, TDS74));
    return { target, kind: 'tokens', payload: Buffer.concat(parts) };
  }
  return { target, kind: 'random', payload: bytes(r, int(r, 300)) };
}
