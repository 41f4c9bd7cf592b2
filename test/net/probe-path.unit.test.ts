// The pieces every talking probe runs through once or several times per probe, which were made
// cheaper (BENCHMARKS.md, "Probe CPU: FTP and PRELOGIN"): each keeps the contract it had.
import net from 'node:net';
import fc from 'fast-check';
import { DeadlineError, ProbeError, oneLine } from '../../exporters/ladder';
import { ReadQueue, connectTcp, parseHostPort, parseTargetAddress } from '../../exporters/net';
import { ProbeAbort, type ProbeSignal } from '../../exporters/signal';
import { ReplyParser } from '../../exporters/ftp/reply';
import { preloginPackets } from '../../exporters/mssql/handshake';
import { Encrypt, buildPrelogin } from '../../exporters/mssql/prelogin';
import { PacketType, encodeMessage } from '../../exporters/mssql/packet';
import { scrubText } from '../../exporters/secret';

/** A signal that counts the abort listeners attached and not yet removed (or fired). */
function countingSignal(): { signal: ProbeSignal; attached: () => number } {
  const inner = new ProbeAbort();
  const live = new Set<() => void>();
  const signal: ProbeSignal = {
    get aborted() {
      return inner.aborted;
    },
    get reason() {
      return inner.reason;
    },
    addEventListener: (type, fn) => {
      live.add(fn);
      inner.addEventListener(type, () => {
        if (live.delete(fn)) fn();
      });
    },
    removeEventListener: (_type, fn) => {
      live.delete(fn);
    },
  };
  return { signal, attached: () => live.size };
}

function queue(): ReadQueue<string> {
  return new ReadQueue<string>({
    pause: () => undefined,
    resume: () => undefined,
    highWater: 8,
    closedMessage: 'closed',
    name: 'Test',
  });
}

describe('ReadQueue.next and the deadline', () => {
  it('hands over a queued item without listening for the abort at all', async () => {
    const q = queue();
    const s = countingSignal();
    q.push('ready');
    expect(await q.next(s.signal)).toBe('ready');
    expect(s.attached()).toBe(0);
  });

  it('listens while the read waits and stops listening once the item came', async () => {
    const q = queue();
    const s = countingSignal();
    const read = q.next(s.signal);
    expect(s.attached()).toBe(1);
    q.push('later');
    expect(await read).toBe('later');
    expect(s.attached()).toBe(0);
  });

  it('stops listening when the stream fails under a waiting read', async () => {
    const q = queue();
    const s = countingSignal();
    const read = q.next(s.signal);
    const boom = new Error('boom');
    q.fail(boom);
    await expect(read).rejects.toBe(boom);
    expect(s.attached()).toBe(0);
  });

  it('rejects at once, with the shutdown flag of the reason, when the signal fired before the read', async () => {
    const q = queue();
    const signal = new ProbeAbort();
    signal.abort(new DeadlineError(true));
    await expect(q.next(signal)).rejects.toMatchObject({ name: 'DeadlineError', shutdown: true });
    // No read is left waiting: the next one with a live signal gets the next item.
    q.push('x');
    expect(await q.next(new ProbeAbort())).toBe('x');
  });
});

describe('connectTcp and the deadline', () => {
  let server: net.Server;
  let port: number;
  beforeAll(async () => {
    server = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  it('connects and leaves no abort listener behind', async () => {
    const s = countingSignal();
    const sock = await connectTcp('127.0.0.1', port, s.signal);
    try {
      expect(sock.remotePort).toBe(port);
      expect(s.attached()).toBe(0);
    } finally {
      sock.destroy();
    }
  });

  it('rejects with the errno of a refused connect and leaves no abort listener behind', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const gone = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const s = countingSignal();
    await expect(connectTcp('127.0.0.1', gone, s.signal)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(s.attached()).toBe(0);
  });

  it('rejects with DeadlineError and opens nothing when the signal already fired', async () => {
    const signal = new ProbeAbort();
    signal.abort(new DeadlineError(false));
    let accepted = 0;
    const counting = net.createServer((c) => {
      accepted++;
      c.destroy();
    });
    await new Promise<void>((r) => counting.listen(0, '127.0.0.1', r));
    try {
      const p = (counting.address() as net.AddressInfo).port;
      await expect(connectTcp('127.0.0.1', p, signal)).rejects.toMatchObject({
        name: 'DeadlineError',
        shutdown: false,
      });
      await new Promise((r) => setTimeout(r, 50));
      expect(accepted).toBe(0);
    } finally {
      await new Promise((r) => counting.close(r));
    }
  });
});

describe('errors of a failed rung', () => {
  it('carry reason, message and advice, are Errors, and capture no stack frames', () => {
    const before = Error.stackTraceLimit;
    const e = new ProbeError('refused', 'connect ECONNREFUSED', 'check the port');
    expect(e).toBeInstanceOf(Error);
    expect(e).toMatchObject({ name: 'ProbeError', reason: 'refused', message: 'connect ECONNREFUSED' });
    expect(e.advice).toBe('check the port');
    expect(String(e.stack).split('\n')).toEqual(['ProbeError: connect ECONNREFUSED']);
    const d = new DeadlineError(true);
    expect(d).toMatchObject({ name: 'DeadlineError', shutdown: true, message: 'probe aborted: agent shutting down' });
    // Other errors keep their stacks: the limit is back as it was.
    expect(Error.stackTraceLimit).toBe(before);
    expect(String(new Error('x').stack).split('\n').length).toBeGreaterThan(1);
  });
});

describe('oneLine', () => {
  // What oneLine did before it handed clean lines back untouched.
  const reference = (s: string, max: number, secrets: readonly string[]): string => {
    const flat = scrubText(s, secrets)
      .replace(/[\r\n\t]+/g, ' ')
      .trim();
    return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
  };

  it('gives what it gave before for any text, length and secrets', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.string({ unit: fc.constantFrom('a', ' ', '\t', '\r', '\n', '\u00a0', '\u2028', 'é', 'x'), maxLength: 40 }),
    );
    fc.assert(
      fc.property(
        text,
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.constantFrom('secret', 'abc'), { maxLength: 2 }),
        (s, max, secrets) => {
          expect(oneLine(s, max, secrets)).toBe(reference(s, max, secrets));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('ReplyParser', () => {
  it('keeps its own copy of an unfinished line when the caller reuses the buffer', () => {
    const p = new ReplyParser();
    const buf = Buffer.from('220 hel');
    expect(p.push(buf).replies).toEqual([]);
    buf.write('XXXXXXX');
    expect(p.push(Buffer.from('lo\r\n')).replies).toEqual([{ code: 220, lines: ['hello'] }]);
  });

  it('reads plain Uint8Array chunks, whole lines and split ones alike', () => {
    const p = new ReplyParser();
    const bytes = new TextEncoder().encode('331 password please\r\n230-wel');
    const out = p.push(bytes.subarray(0));
    expect(out.replies).toEqual([{ code: 331, lines: ['password please'] }]);
    expect(p.push(new TextEncoder().encode('come\r\n230 in\r\n')).replies).toEqual([
      { code: 230, lines: ['welcome', 'in'] },
    ]);
  });
});

describe('preloginPackets', () => {
  it('sends the bytes the PRELOGIN builder makes, built once per offer and instance', () => {
    for (const [strict, instance] of [
      [false, ''],
      [true, ''],
      [false, 'SQLEXPRESS'],
    ] as const) {
      const expected = encodeMessage(
        PacketType.PRELOGIN,
        buildPrelogin({ encryption: strict ? Encrypt.NOT_SUP : Encrypt.OFF, instance, threadId: process.pid }),
      );
      const packets = preloginPackets(strict, instance);
      expect(packets.map((b) => b.toString('hex'))).toEqual(expected.map((b) => b.toString('hex')));
      expect(preloginPackets(strict, instance)).toBe(packets);
    }
    expect(preloginPackets(false, 'A')).not.toEqual(preloginPackets(false, 'B'));
  });
});

describe('parseTargetAddress', () => {
  it("gives parseHostPort's answer for each default port, and parses again when the address changed", () => {
    const target = { address: 'db.example:1444' };
    expect(parseTargetAddress(target)).toEqual(parseHostPort('db.example:1444'));
    expect(parseTargetAddress(target)).toBe(parseTargetAddress(target));
    const bare = { address: 'db.example' };
    expect(parseTargetAddress(bare)).toBe('"db.example": a port is required (host:port)');
    expect(parseTargetAddress(bare, 1433)).toEqual({ host: 'db.example', port: 1433 });
    expect(parseTargetAddress(bare, 990)).toEqual({ host: 'db.example', port: 990 });
    expect(parseTargetAddress(bare)).toBe('"db.example": a port is required (host:port)');
    const changing = { address: '10.0.0.1:21' };
    expect(parseTargetAddress(changing, 21)).toEqual({ host: '10.0.0.1', port: 21 });
    changing.address = '[::1]:2121';
    expect(parseTargetAddress(changing, 21)).toEqual({ host: '::1', port: 2121 });
  });
});
