// TDS packet framing (MS-TDS 2.2.3): an 8-byte header in front of every packet, and messages
// made of one or more packets up to the one with the end-of-message status bit. Pure: the
// framer takes bytes and hands back packets or an error value; it never throws.

export const PACKET_HEADER_BYTES = 8;

/** Packet types (MS-TDS 2.2.3.1.1) that this exporter sends or expects. */
export const PacketType = {
  SQL_BATCH: 0x01,
  RPC: 0x03,
  TABULAR_RESULT: 0x04,
  ATTENTION: 0x06,
  LOGIN7: 0x10,
  SSPI: 0x11,
  PRELOGIN: 0x12,
} as const;

/** All packet types defined by MS-TDS; anything else in the first byte means "not TDS". */
const KNOWN_TYPES = new Set([0x01, 0x02, 0x03, 0x04, 0x06, 0x07, 0x08, 0x0e, 0x0f, 0x10, 0x11, 0x12]);

export const STATUS_EOM = 0x01;

export interface PacketHeader {
  type: number;
  status: number;
  /** Total packet length including the header. */
  length: number;
  spid: number;
  packetId: number;
  window: number;
}

export type HeaderResult = { ok: true; header: PacketHeader } | { ok: false; error: string };

/** Reads and checks one header. `maxPacket` bounds the length field a peer may claim. */
export function parsePacketHeader(buf: Uint8Array, maxPacket = 32768): HeaderResult {
  if (buf.length < PACKET_HEADER_BYTES) {
    return { ok: false, error: `short packet header: ${buf.length} of 8 bytes` };
  }
  const type = buf[0];
  if (!KNOWN_TYPES.has(type)) {
    return { ok: false, error: `unknown TDS packet type 0x${hex2(type)}` };
  }
  const length = (buf[2] << 8) | buf[3];
  if (length < PACKET_HEADER_BYTES) {
    return { ok: false, error: `packet length ${length} is shorter than its own header` };
  }
  if (length > maxPacket) {
    return { ok: false, error: `packet length ${length} exceeds the limit of ${maxPacket} bytes` };
  }
  return {
    ok: true,
    header: {
      type,
      status: buf[1],
      length,
      spid: (buf[4] << 8) | buf[5],
      packetId: buf[6],
      window: buf[7],
    },
  };
}

/** Builds one packet. The caller splits payloads longer than the negotiated packet size. */
export function encodePacket(
  type: number,
  payload: Uint8Array,
  opts: { eom?: boolean; packetId?: number } = {},
): Buffer {
  const out = Buffer.alloc(PACKET_HEADER_BYTES + payload.length);
  out[0] = type;
  out[1] = opts.eom === false ? 0x00 : STATUS_EOM;
  out.writeUInt16BE(out.length, 2);
  out[6] = (opts.packetId ?? 1) & 0xff;
  Buffer.from(payload.buffer, payload.byteOffset, payload.length).copy(out, PACKET_HEADER_BYTES);
  return out;
}

/** Splits a message into packets of at most `packetSize` bytes each (header included). */
export function encodeMessage(type: number, payload: Uint8Array, packetSize = 4096): Buffer[] {
  const room = Math.max(1, packetSize - PACKET_HEADER_BYTES);
  const packets: Buffer[] = [];
  let id = 1;
  for (let off = 0; off < payload.length || packets.length === 0; off += room) {
    const chunk = payload.subarray(off, off + room);
    const last = off + room >= payload.length;
    packets.push(encodePacket(type, chunk, { eom: last, packetId: id }));
    id = (id + 1) & 0xff;
  }
  return packets;
}

export interface Message {
  type: number;
  payload: Buffer;
}

export interface FramerLimits {
  /** Largest packet a peer may announce. */
  maxPacketBytes: number;
  /** Largest message (sum of payloads) accepted before giving up. */
  maxMessageBytes: number;
}

export const DEFAULT_FRAMER_LIMITS: FramerLimits = { maxPacketBytes: 32768, maxMessageBytes: 1 << 20 };

/**
 * Incremental framer: push bytes as they arrive, take complete messages out. A header that
 * lies about its length (too small, too large, or past the cap) or an unknown type puts the
 * framer into a sticky error state instead of throwing. A length that claims more bytes than
 * ever arrive simply never completes; the caller's deadline ends that wait.
 */
export class MessageFramer {
  private buf: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private partType = -1;
  private readonly done: Message[] = [];
  private err?: string;

  constructor(private readonly limits: FramerLimits = DEFAULT_FRAMER_LIMITS) {}

  get error(): string | undefined {
    return this.err;
  }

  /** Bytes received but not yet part of a complete packet. */
  get pendingBytes(): number {
    return this.buf.length;
  }

  push(chunk: Uint8Array): void {
    if (this.err) return;
    const c = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    while (!this.err && this.buf.length >= PACKET_HEADER_BYTES) {
      const h = parsePacketHeader(this.buf, this.limits.maxPacketBytes);
      if (!h.ok) {
        this.fail(h.error);
        return;
      }
      if (this.buf.length < h.header.length) return;
      const payload = this.buf.subarray(PACKET_HEADER_BYTES, h.header.length);
      this.buf = this.buf.subarray(h.header.length);
      if (this.partType >= 0 && this.partType !== h.header.type) {
        this.fail(`packet type changed from 0x${hex2(this.partType)} to 0x${hex2(h.header.type)} inside a message`);
        return;
      }
      this.partType = h.header.type;
      this.partsBytes += payload.length;
      if (this.partsBytes > this.limits.maxMessageBytes) {
        this.fail(`message exceeds the limit of ${this.limits.maxMessageBytes} bytes`);
        return;
      }
      this.parts.push(Buffer.from(payload));
      if ((h.header.status & STATUS_EOM) !== 0) {
        this.done.push({ type: this.partType, payload: Buffer.concat(this.parts) });
        this.parts = [];
        this.partsBytes = 0;
        this.partType = -1;
      }
    }
  }

  /** Next complete message, if any. */
  shift(): Message | undefined {
    return this.done.shift();
  }

  private fail(error: string): void {
    this.err = error;
    this.buf = Buffer.alloc(0);
    this.parts = [];
  }
}

export function hex2(n: number): string {
  return n.toString(16).padStart(2, '0').toUpperCase();
}
