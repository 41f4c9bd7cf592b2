// Property tests for the FTP reply parser: any bytes, any chunking, never a throw, never
// more than the caps held, and chunking never changes the result.
import fc from 'fast-check';
import { ReplyParser, type PushOutcome, type Reply } from '../../exporters/ftp/reply';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
const LIMITS = { maxLineBytes: 256, maxLines: 16 };

/** Feeds `data` in pieces cut at `cuts`; returns all replies and the first error kind. */
function feed(data: Uint8Array, cuts: number[]): { replies: Reply[]; error?: string; maxHeld: number } {
  const p = new ReplyParser(LIMITS);
  const replies: Reply[] = [];
  let error: string | undefined;
  let maxHeld = 0;
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  let prev = 0;
  for (const end of [...points, data.length]) {
    const out: PushOutcome = p.push(data.subarray(prev, end));
    prev = end;
    replies.push(...out.replies);
    maxHeld = Math.max(maxHeld, p.bufferedBytes);
    if (out.error && !error) error = out.error.kind;
  }
  return { replies, error, maxHeld };
}

/** Bytes that look like FTP replies often enough to reach deep states. */
const replyish = fc
  .array(
    fc.oneof(
      fc.constantFrom('220', '220-', '230 ', '331 ', '150 ', '226 ', '211-', '211 ', '\r\n', '\n', ' ', '-', '999 '),
      fc.string({ maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 20 }),
    ),
    { maxLength: 60 },
  )
  .map((parts) => Buffer.from(parts.join(''), 'utf8'));

const anyBytes = fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a));

test('never throws, holds at most one capped line, caps every reply', () => {
  fc.assert(
    fc.property(fc.oneof(replyish, anyBytes), fc.array(fc.nat(), { maxLength: 8 }), (data, cuts) => {
      const r = feed(data, cuts);
      expect(r.maxHeld).toBeLessThanOrEqual(LIMITS.maxLineBytes + 1);
      for (const reply of r.replies) {
        expect(reply.code).toBeGreaterThanOrEqual(100);
        expect(reply.code).toBeLessThanOrEqual(599);
        expect(reply.lines.length).toBeGreaterThanOrEqual(1);
        expect(reply.lines.length).toBeLessThanOrEqual(LIMITS.maxLines);
        for (const l of reply.lines) expect(Buffer.byteLength(l, 'utf8')).toBeLessThanOrEqual(LIMITS.maxLineBytes * 3);
      }
    }),
    { numRuns: RUNS },
  );
});

test('chunking does not change the replies or the error', () => {
  fc.assert(
    fc.property(replyish, fc.array(fc.nat(), { maxLength: 8 }), (data, cuts) => {
      const whole = feed(data, []);
      const pieces = feed(data, cuts);
      expect(pieces.replies).toEqual(whole.replies);
      expect(pieces.error).toEqual(whole.error);
    }),
    { numRuns: RUNS },
  );
});

test('well-formed replies round-trip', () => {
  const text = fc.string({ maxLength: 60 }).filter((s) => !/[\r\n]/.test(s));
  const reply = fc.record({
    code: fc.integer({ min: 100, max: 599 }),
    lines: fc.array(text, { minLength: 1, maxLength: LIMITS.maxLines }),
  });
  fc.assert(
    fc.property(fc.array(reply, { maxLength: 5 }), fc.array(fc.nat(), { maxLength: 8 }), (replies, cuts) => {
      const wire = replies
        .map(({ code, lines }) =>
          lines.length === 1
            ? `${code} ${lines[0]}\r\n`
            : // inner lines are prefixed with a space so none can look like the terminator
              `${code}-${lines[0]}\r\n${lines
                .slice(1, -1)
                .map((l) => ` ${l}\r\n`)
                .join('')}${code} ${lines[lines.length - 1]}\r\n`,
        )
        .join('');
      const data = Buffer.from(wire, 'utf8');
      fc.pre(wire.split('\r\n').every((l) => Buffer.byteLength(l, 'utf8') <= LIMITS.maxLineBytes));
      const r = feed(data, cuts);
      expect(r.error).toBeUndefined();
      expect(r.replies.map((x) => x.code)).toEqual(replies.map((x) => x.code));
      r.replies.forEach((got, i) => {
        const want = replies[i].lines;
        expect(got.lines).toEqual(
          want.length === 1 ? want : [want[0], ...want.slice(1, -1).map((l) => ` ${l}`), want[want.length - 1]],
        );
      });
    }),
    { numRuns: RUNS },
  );
});
