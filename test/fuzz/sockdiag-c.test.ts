// The addon's C parser (native/sockdiag.c, what a netlink scan runs) against the TypeScript
// parser (exporters/sockets/sockdiag.ts, the reference) and attributeConnections(): on
// well-formed replies, on replies cut anywhere, with lying nlmsg_len and rta_len fields, and on
// random bytes, the two must agree on every listener (with its connections), every state count,
// every bad message and its words, and on done, truncated, interrupted and errno. The C parser
// reads nothing outside the bytes it is given; the addon is loaded in this process, so a stray
// read would crash the test run rather than fail one case.
import fc from 'fast-check';
import { attributeConnections } from '../../exporters/sockets/connections';
import { loadSockDiag } from '../../exporters/sockets/netlink';
import { ListenerReuse, readPackedTable } from '../../exporters/sockets/packed';
import type { Listener } from '../../exporters/sockets/procnet';
import { parseSockDiag, type SockDiagStatus } from '../../exporters/sockets/sockdiag';
import { done, errorFrame, frame, record, recordSpec, reply, type RecordSpec } from '../sockets/sockdiag-frames';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2_000);
const { parse } = loadSockDiag();

type Protocol = 'tcp' | 'udp';
const PROTO = { tcp: 6, udp: 17 } as const;

/** What both parsers say about `bytes`, in one comparable shape. */
function both(bytes: Uint8Array, protocol: Protocol, family: 0 | 4 | 6): { c: unknown; ts: unknown } {
  const packed = readPackedTable(parse(bytes, PROTO[protocol], family));
  const cListeners = new ListenerReuse().listeners([packed]);
  const t = parseSockDiag(bytes, protocol, family === 0 ? {} : { family });
  attributeConnections(t.listeners, [t.established]);
  // The C parser puts IPv4 records first, each family in reply order (as one dump per family).
  const tsListeners = [...t.listeners.filter((l) => l.family === 4), ...t.listeners.filter((l) => l.family === 6)];
  const row = (l: Listener): unknown[] => [
    l.protocol,
    l.family,
    l.address,
    l.port,
    l.inode,
    l.uid,
    l.acceptQueue,
    l.acceptQueueLimit,
    l.connections,
  ];
  const shape = (x: SockDiagStatus): SockDiagStatus => ({
    states: x.states,
    sockets: x.sockets,
    badMessages: x.badMessages,
    badExamples: x.badExamples,
    truncated: x.truncated,
    done: x.done,
    errno: x.errno,
    interrupted: x.interrupted,
  });
  return {
    c: { ...shape(packed), listeners: cListeners.map(row) },
    ts: { ...shape(t), listeners: tsListeners.map(row) },
  };
}

function agree(bytes: Uint8Array, protocol: Protocol, family: 0 | 4 | 6): void {
  const { c, ts } = both(bytes, protocol, family);
  expect(c).toEqual(ts);
}

const protocols = fc.constantFrom<Protocol>('tcp', 'udp');
const families = fc.constantFrom<0 | 4 | 6>(0, 4, 6);

describe('C sock_diag parser against the TypeScript one', () => {
  it('well-formed replies (both reply types), every family filter', () => {
    fc.assert(
      fc.property(
        fc.array(recordSpec, { maxLength: 30 }),
        protocols,
        families,
        fc.constantFrom(18, 20),
        (records, protocol, family, type) => agree(reply(records, 2, type), protocol, family),
      ),
      { numRuns: RUNS },
    );
  });

  it('replies cut anywhere', () => {
    fc.assert(
      fc.property(
        fc.array(recordSpec, { minLength: 1, maxLength: 12 }),
        fc.nat(),
        protocols,
        (records, cutAt, protocol) => {
          const whole = reply(records);
          agree(whole.subarray(0, cutAt % (whole.length + 1)), protocol, 0);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('lying nlmsg_len, rta_len, types, families and states', () => {
    fc.assert(
      fc.property(
        fc.array(recordSpec, { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.nat(),
        fc.constantFrom('nlmsg_len', 'rta_len', 'type', 'family', 'state', 'flags'),
        protocols,
        families,
        (records, which, lie, field, protocol, family) => {
          const frames = records.map((r) => Buffer.from(frame(20, record(r))));
          const f = frames[which % frames.length];
          if (field === 'nlmsg_len') f.writeUInt32LE(lie >>> 0, 0);
          else if (field === 'rta_len' && f.length >= 16 + 72 + 2) f.writeUInt16LE(lie & 0xffff, 16 + 72);
          else if (field === 'type') f.writeUInt16LE(lie & 0xffff, 4);
          else if (field === 'family') f[16] = lie & 0xff;
          else if (field === 'state') f[17] = lie & 0xff;
          else f.writeUInt16LE(lie & 0xffff, 6);
          agree(Buffer.concat([...frames, done()]), protocol, family);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('random bytes, and random bytes after a valid prefix', () => {
    fc.assert(
      fc.property(
        fc.array(recordSpec, { maxLength: 4 }),
        fc.uint8Array({ maxLength: 600 }),
        protocols,
        families,
        (records, bytes, protocol, family) => {
          agree(bytes, protocol, family);
          agree(Buffer.concat([...records.map((r) => frame(20, record(r))), bytes]), protocol, family);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('NLMSG_ERROR, a short error message, NOOP and an unaligned view', () => {
    agree(errorFrame(2), 'udp', 4);
    agree(Buffer.concat([frame(2, Buffer.alloc(2)), reply([])]), 'tcp', 0);
    agree(Buffer.concat([frame(1, Buffer.alloc(0)), reply([])]), 'tcp', 0);
    const err = Buffer.alloc(20);
    err.writeInt32LE(-0x80000000, 0);
    agree(frame(2, err, 0), 'tcp', 0);
    const body = reply([{ family: 6, state: 10, sport: 443, src: '::1', rqueue: 3, wqueue: 128, inode: 42 }]);
    const big = Buffer.alloc(body.length + 3);
    body.copy(big, 3);
    agree(big.subarray(3), 'tcp', 6);
  });

  it('connections: exact address first, then the wildcard of the family; shared label sets count once', () => {
    const L = (over: Partial<RecordSpec>): RecordSpec => ({ family: 4, state: 10, sport: 80, src: '0.0.0.0', ...over });
    const E = (over: Partial<RecordSpec>): RecordSpec => L({ state: 1, ...over });
    const bytes = reply([
      L({ inode: 1 }),
      L({ src: '10.0.0.1', inode: 2 }),
      L({ src: '10.0.0.1', inode: 3 }), // SO_REUSEPORT twin: counted on the first
      L({ family: 6, src: '::', inode: 4 }),
      E({ src: '10.0.0.1' }),
      E({ src: '10.0.0.1' }),
      E({ src: '10.0.0.2' }),
      E({ family: 6, src: '::ffff:10.0.0.2' }),
      E({ sport: 81, src: '10.0.0.1' }),
    ]);
    agree(bytes, 'tcp', 0);
    const listeners = new ListenerReuse().listeners([readPackedTable(parse(bytes, 6, 0))]);
    expect(listeners.map((l) => [l.address, l.inode, l.connections])).toEqual([
      ['0.0.0.0', 1, 1],
      ['10.0.0.1', 2, 2],
      ['10.0.0.1', 3, 0],
      ['::', 4, 1],
    ]);
  });

  it('refuses what is not bytes, or an unknown protocol or family', () => {
    const p = parse as unknown as (...a: unknown[]) => unknown;
    expect(() => p('x', 6, 0)).toThrow('parse(bytes Uint8Array, protocol 6|17, family 0|4|6)');
    expect(() => p(new Uint16Array(4), 6, 0)).toThrow('parse(bytes Uint8Array, protocol 6|17, family 0|4|6)');
    expect(() => p(Buffer.alloc(0), 1, 0)).toThrow('parse(bytes Uint8Array, protocol 6|17, family 0|4|6)');
    expect(() => p(Buffer.alloc(0), 6, 5)).toThrow('parse(bytes Uint8Array, protocol 6|17, family 0|4|6)');
  });
});
