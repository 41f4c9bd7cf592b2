// FTP control-channel replies (RFC 959 section 4.2): pure parsing with hard caps.
//
// A reply is one line "xyz text", or several lines opened by "xyz-text" and closed by a
// line that starts with the same code followed by a space (or the code alone). Lines in
// between may say anything, including other codes. The parser never holds more than one
// line of at most `maxLineBytes` plus the lines of the reply in progress (at most
// `maxLines`), so a peer that sends a 100 MB banner or an endless "220-" greeting costs a
// few kilobytes and ends in an error rather than in memory growth.

import { scrubText } from '../secret';

export interface Reply {
  /** Three-digit reply code, 100-599. */
  code: number;
  /** The text of each line with the code and separator removed, at most `maxLines` lines. */
  lines: string[];
}

export interface ReplyLimits {
  /** Longest line accepted in bytes, excluding the line ending. */
  maxLineBytes: number;
  /** Most lines one reply may have. */
  maxLines: number;
  /**
   * The module's secrets: a server may echo what it was sent (a password), so every line is
   * scrubbed as it is parsed, before any message cuts it short.
   */
  secrets?: readonly string[];
}

export const DEFAULT_REPLY_LIMITS: ReplyLimits = { maxLineBytes: 2048, maxLines: 64 };

export type ReplyErrorKind = 'line_too_long' | 'too_many_lines' | 'malformed';

export class ReplyError extends Error {
  constructor(
    readonly kind: ReplyErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'ReplyError';
  }
}

export interface PushOutcome {
  /** Replies completed by this chunk, in order. */
  replies: Reply[];
  /** Set once the stream is unusable; later pushes return the same error and no replies. */
  error?: ReplyError;
}

const CODE_LINE = /^([1-5][0-9][0-9])([ -]|$)/;

/**
 * Incremental reply parser. It does no I/O: feed it bytes as they arrive, it returns the
 * replies they complete. Splitting the same bytes into different chunks gives the same
 * replies (a property the fuzz tests check).
 */
export class ReplyParser {
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private current?: { code: number; lines: string[] };
  private error?: ReplyError;
  private readonly limits: ReplyLimits;

  constructor(limits: Partial<ReplyLimits> = {}) {
    this.limits = { ...DEFAULT_REPLY_LIMITS, ...limits };
  }

  /** Bytes buffered for an unfinished line (for tests of the cap). */
  get bufferedBytes(): number {
    return this.partialBytes;
  }

  /** True while a multi-line reply has been opened but not closed. */
  get inReply(): boolean {
    return this.current !== undefined;
  }

  push(chunk: Uint8Array): PushOutcome {
    if (this.error) return { replies: [], error: this.error };
    const replies: Reply[] = [];
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      // CR before LF is not part of the line; count it until we know.
      if (this.partialBytes + piece.length > this.limits.maxLineBytes + 1) {
        return this.fail(
          replies,
          new ReplyError('line_too_long', `reply line longer than ${this.limits.maxLineBytes} bytes`),
        );
      }
      if (nl < 0) {
        // An unfinished line: keep a copy (the caller may reuse its buffer) until its end comes.
        if (piece.length > 0) {
          this.partial.push(Buffer.from(piece));
          this.partialBytes += piece.length;
        }
        break;
      }
      start = nl + 1;
      let line: Uint8Array;
      if (this.partialBytes === 0) {
        // The whole line is in this chunk (the usual case): decode it where it lies.
        line = piece;
      } else {
        if (piece.length > 0) this.partial.push(Buffer.from(piece.buffer, piece.byteOffset, piece.length));
        line = Buffer.concat(this.partial, this.partialBytes + piece.length);
        this.partial = [];
        this.partialBytes = 0;
      }
      if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
      if (line.length > this.limits.maxLineBytes) {
        return this.fail(
          replies,
          new ReplyError('line_too_long', `reply line longer than ${this.limits.maxLineBytes} bytes`),
        );
      }
      const bytes = Buffer.isBuffer(line) ? line : Buffer.from(line.buffer, line.byteOffset, line.length);
      const err = this.line(bytes.toString('utf8'), replies);
      if (err) return this.fail(replies, err);
    }
    return { replies };
  }

  private line(raw: string, out: Reply[]): ReplyError | undefined {
    const m = CODE_LINE.exec(raw);
    // The code is read first, so a secret that happens to start with digits cannot change it.
    const secrets = this.limits.secrets ?? [];
    const text =
      secrets.length === 0 ? raw : m ? raw.slice(0, 4) + scrubText(raw.slice(4), secrets) : scrubText(raw, secrets);
    if (this.current) {
      const cur = this.current;
      if (m && Number(m[1]) === cur.code && m[2] !== '-') {
        cur.lines.push(text.slice(4));
        this.current = undefined;
        out.push(cur);
        return undefined;
      }
      if (cur.lines.length >= this.limits.maxLines - 1) {
        return new ReplyError('too_many_lines', `reply ${cur.code} has more than ${this.limits.maxLines} lines`);
      }
      // Continuation lines may repeat the code with "-" (common) or carry free text.
      cur.lines.push(m && Number(m[1]) === cur.code ? text.slice(4) : text);
      return undefined;
    }
    if (!m) {
      return new ReplyError('malformed', `not an FTP reply: ${JSON.stringify(text.slice(0, 80))}`);
    }
    const code = Number(m[1]);
    if (m[2] === '-') {
      this.current = { code, lines: [text.slice(4)] };
      if (this.limits.maxLines <= 1) {
        return new ReplyError('too_many_lines', `reply ${code} has more than ${this.limits.maxLines} lines`);
      }
      return undefined;
    }
    out.push({ code, lines: [text.slice(4)] });
    return undefined;
  }

  private fail(replies: Reply[], err: ReplyError): PushOutcome {
    this.error = err;
    this.partial = [];
    this.partialBytes = 0;
    this.current = undefined;
    return { replies, error: err };
  }
}

/** Parses a complete byte string into replies. Pure; for tests and one-shot use. */
export function parseReplies(data: Uint8Array, limits: Partial<ReplyLimits> = {}): PushOutcome & { rest: number } {
  const p = new ReplyParser(limits);
  const out = p.push(data);
  return { ...out, rest: p.bufferedBytes };
}

/** The reply's text on one line, bounded, for messages and logs. */
export function replyText(r: Reply, max = 200): string {
  const flat = r.lines
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .join(' ')
    // Peers control this text; keep it printable.
    .replace(/[\u0000-\u001f\u007f]/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** Reply class helpers (RFC 959 4.2.1). */
export const isPreliminary = (c: number): boolean => c >= 100 && c < 200;
export const isCompletion = (c: number): boolean => c >= 200 && c < 300;
