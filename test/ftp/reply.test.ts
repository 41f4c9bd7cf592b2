// The control-reply parser: RFC 959 single and multi-line replies, chunking, caps.
import { ReplyParser, parseReplies, replyText } from '../../exporters/ftp/reply';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('parseReplies', () => {
  test('single-line replies, CRLF and bare LF', () => {
    const r = parseReplies(b('220 Service ready\r\n331 Password\n'));
    expect(r.error).toBeUndefined();
    expect(r.replies).toEqual([
      { code: 220, lines: ['Service ready'] },
      { code: 331, lines: ['Password'] },
    ]);
  });

  test('a code with no text', () => {
    expect(parseReplies(b('200\r\n')).replies).toEqual([{ code: 200, lines: [''] }]);
  });

  test('multi-line reply (RFC 959 4.2 example), inner lines kept verbatim', () => {
    const text = '123-First line\r\nSecond line\r\n  234 A line beginning with numbers\r\n123 The last line\r\n';
    const r = parseReplies(b(text));
    expect(r.replies).toEqual([
      { code: 123, lines: ['First line', 'Second line', '  234 A line beginning with numbers', 'The last line'] },
    ]);
  });

  test('continuation lines repeating the code with "-" lose the prefix', () => {
    const r = parseReplies(b('220-Welcome\r\n220-to the server\r\n220 ready\r\n'));
    expect(r.replies).toEqual([{ code: 220, lines: ['Welcome', 'to the server', 'ready'] }]);
  });

  test('a line with another code does not end a multi-line reply', () => {
    const r = parseReplies(b('211-Features:\r\n 331 x\r\n230 not the end\r\n211 End\r\n'));
    expect(r.replies).toHaveLength(1);
    expect(r.replies[0].code).toBe(211);
    expect(r.replies[0].lines).toEqual(['Features:', ' 331 x', '230 not the end', 'End']);
  });

  test('the bare code ends a multi-line reply', () => {
    expect(parseReplies(b('220-hello\r\n220\r\n')).replies).toEqual([{ code: 220, lines: ['hello', ''] }]);
  });

  test('incomplete data waits for more', () => {
    const r = parseReplies(b('220-hello\r\n220 wor'));
    expect(r.replies).toEqual([]);
    expect(r.error).toBeUndefined();
    expect(r.rest).toBe(7);
  });

  test('a line that is not a reply is malformed', () => {
    for (const bad of ['SSH-2.0-OpenSSH\r\n', '99 too short\r\n', '620 out of range\r\n', '22x bad\r\n', '\r\n']) {
      expect(parseReplies(b(bad)).error?.kind).toBe('malformed');
    }
  });

  test('UTF-8 text decodes; invalid bytes do not throw', () => {
    expect(parseReplies(b('220 Grüße\r\n')).replies[0].lines).toEqual(['Grüße']);
    const r = parseReplies(Buffer.from([0x32, 0x32, 0x30, 0x20, 0xff, 0xfe, 0x0d, 0x0a]));
    expect(r.replies[0].code).toBe(220);
  });
});

describe('ReplyParser caps', () => {
  test('a line longer than maxLineBytes fails without buffering it', () => {
    const p = new ReplyParser({ maxLineBytes: 100, maxLines: 10 });
    expect(p.push(b('220 ')).error).toBeUndefined();
    const out = p.push(Buffer.alloc(200, 0x41));
    expect(out.error?.kind).toBe('line_too_long');
    expect(p.bufferedBytes).toBe(0);
  });

  test('a line of exactly maxLineBytes passes, CRLF not counted', () => {
    const line = `220 ${'x'.repeat(96)}`;
    const r = parseReplies(b(`${line}\r\n`), { maxLineBytes: 100, maxLines: 10 });
    expect(r.error).toBeUndefined();
    expect(r.replies[0].lines[0]).toHaveLength(96);
  });

  test('100 MB of banner in 64 KB chunks: error at the cap, never more than one line held', () => {
    const p = new ReplyParser();
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    p.push(b('220 '));
    let pushed = 0;
    let maxHeld = 0;
    let error: string | undefined;
    while (pushed < 100 * 1024 * 1024) {
      const out = p.push(chunk);
      pushed += chunk.length;
      maxHeld = Math.max(maxHeld, p.bufferedBytes);
      if (out.error) {
        error = out.error.kind;
        break;
      }
    }
    expect(error).toBe('line_too_long');
    expect(maxHeld).toBeLessThanOrEqual(2049);
    expect(pushed).toBe(chunk.length); // the first chunk already broke the cap
  });

  test('endless "220-" lines fail at maxLines', () => {
    const p = new ReplyParser({ maxLines: 64 });
    let error: string | undefined;
    let lines = 0;
    for (; lines < 10_000 && !error; lines++) error = p.push(b(`220-line ${lines}\r\n`)).error?.kind;
    expect(error).toBe('too_many_lines');
    expect(lines).toBe(64);
  });

  test('a reply of exactly maxLines lines passes', () => {
    const text = `${'220-x\r\n'.repeat(63)}220 end\r\n`;
    const r = parseReplies(b(text), { maxLines: 64 });
    expect(r.error).toBeUndefined();
    expect(r.replies[0].lines).toHaveLength(64);
  });

  test('after an error the parser stays failed', () => {
    const p = new ReplyParser();
    expect(p.push(b('nonsense\r\n')).error).toBeDefined();
    const again = p.push(b('220 fine\r\n'));
    expect(again.replies).toEqual([]);
    expect(again.error?.kind).toBe('malformed');
  });

  test('replies completed before an error in the same chunk are returned', () => {
    const out = new ReplyParser().push(b('220 ok\r\nxx\r\n'));
    expect(out.replies).toEqual([{ code: 220, lines: ['ok'] }]);
    expect(out.error?.kind).toBe('malformed');
  });
});

test('replyText joins lines, strips control characters and bounds the length', () => {
  expect(replyText({ code: 220, lines: ['a\u0007b', '', ' c '] })).toBe('a b c');
  expect(replyText({ code: 220, lines: ['x'.repeat(500)] }, 10)).toHaveLength(10);
});

describe('secrets in replies', () => {
  const password = 'Tr0ub4dor&3-horse';
  it('every line is scrubbed as it is parsed, before any message cuts it', () => {
    const padded = `530 ${'x'.repeat(195)}${password}\r\n`;
    const out = parseReplies(Buffer.from(padded), { secrets: [password] });
    expect(out.replies).toHaveLength(1);
    const line = out.replies[0].lines[0];
    expect(line).toBe(`${'x'.repeat(195)}<secret>`);
    // The 200-character cut of replyText now falls inside the mask, not inside the password.
    expect(replyText(out.replies[0])).not.toMatch(/Tr0/);
  });

  it('a malformed line is scrubbed before its 80-character excerpt', () => {
    const out = parseReplies(Buffer.from(`${'y'.repeat(77)}${password}\r\n`), { secrets: [password] });
    expect(out.error?.kind).toBe('malformed');
    expect(out.error?.message).not.toMatch(/Tr0/);
    expect(out.error?.message).toMatch(/y<se"$/);
  });

  it('the reply code is read before scrubbing, so a secret that starts like a reply cannot change it', () => {
    const out = parseReplies(Buffer.from('220 welcome\r\n230 in as 220 w\r\n'), { secrets: ['220 w'] });
    expect(out.error).toBeUndefined();
    expect(out.replies.map((r) => [r.code, r.lines[0]])).toEqual([
      [220, 'welcome'],
      [230, 'in as <secret>'],
    ]);
  });
});
