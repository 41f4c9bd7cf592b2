// Why a few hostile bytes could end the agent, and where that is stopped.
//
// tedious reads every message from the server through a token-stream parser made by
// Connection#createTokenStreamParser: an EventEmitter around `Readable.from(parseTokens(...))`.
// That inner Readable gets 'data', 'drain' and 'end' listeners but no 'error' listener. When the
// generator throws (an unknown token type such as 0x10 — "Unknown type: 16" — a length that runs
// past the message, a token the state's handler rejects), the Readable is destroyed and emits
// 'error' with nobody listening, and Node turns that into an uncaught exception: the process ends,
// every other target with it. The connection's own 'error' listener never sees it.
//
// The fix sits where the parser is made: each connection the prober opens gets its own
// createTokenStreamParser that adds the missing listener. The error then ends this connection
// the way tedious ends it for a broken socket, so the login or the request fails with it:
// - while logging in (and during ATTENTION) tedious awaits `events.once(parser, 'end')`, which
//   rejects when the parser emits 'error': the parser re-emits it there;
// - while a request runs, tedious waits for 'end' with no error path: the socket is destroyed
//   with the error, and tedious fails the request with it (its socketError handling).
// The prober maps TokenStreamError to protocol_error on the rung it was on.
//
// The same wrapper checks one value tedious trusts blindly: the packet size of an ENVCHANGE. It
// parses it with parseInt and splits every later message into packets of (size - 8) bytes; a
// size of 8 or less, or NaN, makes that split loop forever, allocating until the heap is gone
// (found by test/fuzz/mssql-tokens.test.ts). MS-TDS allows 512 to 32767; anything else is a
// protocol error, raised inside the token handler so that it takes the path above.
import type { Connection } from 'tedious';

/** The server's TDS token stream could not be parsed (code ETDS, as tedious's own protocol errors). */
export class TokenStreamError extends Error {
  readonly code = 'ETDS';
  constructor(readonly parserMessage: string) {
    super(`the server's answer is not a valid TDS token stream: ${parserMessage}`);
    this.name = 'TokenStreamError';
  }
}

interface ParserLike {
  parser?: { on(event: 'error', fn: (err: unknown) => void): unknown };
  listenerCount(event: string): number;
  emit(event: string, ...args: unknown[]): boolean;
}

interface HandlerLike {
  onPacketSizeChange?: (token: { newValue: unknown }) => void;
}

/** MS-TDS 2.2.7.9 (ENVCHANGE type 4) and LOGIN7 PacketSize: 512 to 32767 bytes. */
export const MIN_PACKET_SIZE = 512;
export const MAX_PACKET_SIZE = 32767;

function guardPacketSize(handler: unknown): void {
  const h = handler as HandlerLike | undefined;
  const original = h?.onPacketSizeChange;
  if (!h || typeof original !== 'function') return;
  h.onPacketSizeChange = (token) => {
    const size = token.newValue;
    if (typeof size !== 'number' || !Number.isInteger(size) || size < MIN_PACKET_SIZE || size > MAX_PACKET_SIZE) {
      throw new Error(`ENVCHANGE packet size ${String(size)} is outside ${MIN_PACKET_SIZE}..${MAX_PACKET_SIZE}`);
    }
    original.call(h, token);
  };
}

interface ConnectionInternals {
  createTokenStreamParser?: (...args: unknown[]) => ParserLike;
  socket?: { destroy(err?: Error): void };
}

/**
 * Gives every token-stream parser of this connection an 'error' listener (see the top of this
 * file). `onError` hears each parse error first. Returns false when tedious no longer has the
 * hook this relies on (test/mssql/containment.test.ts pins it, so an upgrade that moves it fails
 * there rather than in production).
 */
export function containTokenErrors(connection: Connection, onError: (err: TokenStreamError) => void): boolean {
  const c = connection as unknown as ConnectionInternals;
  const make = c.createTokenStreamParser;
  if (typeof make !== 'function') return false;
  c.createTokenStreamParser = function (this: ConnectionInternals, ...args: unknown[]): ParserLike {
    guardPacketSize(args[1]);
    const p = make.apply(this, args);
    p.parser?.on('error', (err: unknown) => {
      const e = new TokenStreamError(err instanceof Error ? err.message : String(err));
      onError(e);
      // A waiter on events.once(parser, 'end') rejects with it (login, attention) ...
      if (p.listenerCount('error') > 0) p.emit('error', e);
      // ... and a running request learns it from the socket. Destroying it again later is a no-op.
      c.socket?.destroy(e);
    });
    return p;
  };
  return true;
}

/** True when `err` or one of its causes is a TokenStreamError. */
export function isTokenStreamError(err: unknown): err is TokenStreamError {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e instanceof TokenStreamError) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
