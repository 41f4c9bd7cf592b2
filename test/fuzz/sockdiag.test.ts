// sock_diag replies are parsed on every scan; whatever lengths the bytes claim (a truncated
// read, a lying nlmsg_len or rta_len, garbage), the parser returns a tally and never throws, and
// what it returns from a well-formed reply is exactly what was put in.
import fc from 'fast-check';
import { parseSockDiag } from '../../exporters/sockets/sockdiag';
import { done, errorFrame, frame, record, recordSpec, reply, type RecordSpec } from '../sockets/sockdiag-frames';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2_000);

/** What a well-formed reply must parse to: the listeners and the state counts. */
function expected(records: RecordSpec[], protocol: 'tcp' | 'udp') {
  const wanted = protocol === 'tcp' ? 10 : 7;
  const states = new Array<number>(16).fill(0);
  for (const r of records) states[r.state]++;
  return {
    states,
    listeners: records
      .filter((r) => r.state === wanted)
      .map((r) => [
        r.family,
        r.sport,
        r.inode,
        r.uid,
        protocol === 'tcp' ? r.rqueue : undefined,
        protocol === 'tcp' ? r.wqueue : undefined,
      ]),
  };
}

describe('sock_diag parser', () => {
  it.each(['tcp', 'udp'] as const)('%s: a well-formed reply parses to exactly its records', (protocol) => {
    fc.assert(
      fc.property(fc.array(recordSpec, { maxLength: 20 }), (records) => {
        const t = parseSockDiag(reply(records), protocol);
        const want = expected(records, protocol);
        expect(t.done).toBe(true);
        expect(t.truncated).toBe(false);
        expect(t.badMessages).toBe(0);
        expect(t.states).toEqual(want.states);
        expect(t.listeners.map((l) => [l.family, l.port, l.inode, l.uid, l.acceptQueue, l.acceptQueueLimit])).toEqual(
          want.listeners,
        );
        const est = protocol === 'tcp' ? records.filter((r) => r.state === 1).length : 0;
        expect([...t.established.values()].reduce((a, b) => a + b, 0)).toBe(est);
      }),
      { numRuns: RUNS },
    );
  });

  it('a reply cut anywhere never throws and yields a prefix of the listeners, flagged', () => {
    fc.assert(
      fc.property(fc.array(recordSpec, { minLength: 1, maxLength: 12 }), fc.nat(), (records, cutAt) => {
        const whole = reply(records);
        const cut = cutAt % whole.length;
        const full = parseSockDiag(whole, 'tcp');
        const t = parseSockDiag(whole.subarray(0, cut), 'tcp');
        expect(t.done).toBe(false);
        expect(full.listeners.slice(0, t.listeners.length)).toEqual(t.listeners);
      }),
      { numRuns: RUNS },
    );
  });

  it('a lying nlmsg_len or rta_len never throws, never invents a listener, and is counted', () => {
    fc.assert(
      fc.property(
        fc.array(recordSpec, { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.nat(),
        fc.boolean(),
        (records, which, lie, onAttr) => {
          const frames = records.map((r) => frame(20, record(r)));
          const i = which % frames.length;
          const f = Buffer.from(frames[i]);
          if (onAttr && (records[i].attrs ?? []).length > 0) {
            f.writeUInt16LE(lie & 0xffff, 16 + 72); // the first attribute's rta_len
          } else {
            f.writeUInt32LE(lie >>> 0, 0); // nlmsg_len
          }
          frames[i] = f;
          const t = parseSockDiag(Buffer.concat([...frames, done()]), 'tcp');
          const honest = parseSockDiag(reply(records), 'tcp');
          const key = (l: { port: number; inode: number; address: string }): string =>
            `${l.address} ${l.port} ${l.inode}`;
          const known = new Set(honest.listeners.map(key));
          for (const l of t.listeners) expect(known.has(key(l))).toBe(true);
          for (const l of t.listeners) {
            expect(Number.isInteger(l.port) && l.port >= 0 && l.port <= 65535).toBe(true);
          }
          // Either the lie happened to be the truth, or the tally says something was wrong.
          const changed = !f.equals(frame(20, record(records[i])));
          if (changed && t.listeners.length !== honest.listeners.length) {
            expect(t.badMessages + (t.truncated ? 1 : 0) + (t.done ? 0 : 1)).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('random bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (bytes, le) => {
        const t = parseSockDiag(bytes, 'tcp', { littleEndian: le });
        for (const l of t.listeners) expect(l.port).toBeLessThanOrEqual(65535);
      }),
      { numRuns: RUNS },
    );
  });

  it('an unaligned view into a larger buffer parses the same as a copy', () => {
    const body = reply([{ family: 6, state: 10, sport: 443, src: '::1', rqueue: 3, wqueue: 128, inode: 42 }]);
    const big = Buffer.alloc(body.length + 3);
    body.copy(big, 3);
    expect(parseSockDiag(big.subarray(3), 'tcp')).toEqual(parseSockDiag(body, 'tcp'));
    expect(parseSockDiag(body, 'tcp').listeners[0]).toMatchObject({
      address: '::1',
      port: 443,
      acceptQueue: 3,
      acceptQueueLimit: 128,
      inode: 42,
    });
  });

  describe('exact cases', () => {
    const listener: RecordSpec = {
      family: 4,
      state: 10,
      sport: 1433,
      src: '10.0.0.5',
      rqueue: 7,
      wqueue: 64,
      inode: 9,
      attrs: [[1, Uint8Array.of(1, 2, 3, 4)]],
    };
    const withAttrLen = (len: number): Buffer => {
      const f = frame(20, record(listener));
      f.writeUInt16LE(len, 16 + 72);
      return Buffer.concat([f, frame(20, record({ ...listener, sport: 1434 })), done()]);
    };

    it('an attribute longer than its message, or shorter than its header, drops only that record', () => {
      for (const len of [0, 3, 9, 200, 0xffff]) {
        const t = parseSockDiag(withAttrLen(len), 'tcp');
        expect([len, t.badMessages, t.listeners.map((l) => l.port), t.done]).toEqual([len, 1, [1434], true]);
        expect(t.badExamples[0]).toMatch(/^attribute length out of bounds at byte \d+$/);
      }
      expect(parseSockDiag(withAttrLen(8), 'tcp').listeners.map((l) => l.port)).toEqual([1433, 1434]);
    });

    it('a message length past the end stops the walk and says so', () => {
      const b = reply([listener, { ...listener, sport: 1434 }]);
      b.writeUInt32LE(b.length + 1, 0);
      const t = parseSockDiag(b, 'tcp');
      expect(t).toMatchObject({ truncated: true, done: false, listeners: [], badMessages: 1 });
    });

    it('NLMSG_ERROR gives the errno, NLM_F_DUMP_INTR marks the dump interrupted, a short record is bad', () => {
      expect(parseSockDiag(errorFrame(2), 'udp')).toMatchObject({ errno: 2, done: false });
      expect(parseSockDiag(reply([listener], 2 | 0x10), 'tcp')).toMatchObject({ interrupted: true, done: true });
      const short = parseSockDiag(Buffer.concat([frame(20, Buffer.alloc(40)), done()]), 'tcp');
      expect(short).toMatchObject({ badMessages: 1, sockets: 0, done: true });
    });

    it('a record of the other family than asked is bad; the address text is canonical', () => {
      const t = parseSockDiag(
        reply([listener, { family: 6, state: 10, sport: 22, src: '2001:db8:0:0:1:0:0:0' }]),
        'tcp',
        { family: 6 },
      );
      expect(t.listeners.map((l) => l.address)).toEqual(['2001:db8:0:0:1::']);
      expect(t.badMessages).toBe(1);
      const mapped = parseSockDiag(reply([{ family: 6, state: 1, sport: 80, src: '::ffff:192.0.2.1' }]), 'tcp');
      expect([...mapped.established]).toEqual([['6 ::ffff:192.0.2.1 80', 1]]);
    });
  });
});
