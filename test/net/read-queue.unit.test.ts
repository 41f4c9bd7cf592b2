// The hand-over between a socket reader and the probe (exporters/net/read-queue.ts), which the
// line reader and the FTP control connection share: order, flow control, the end of the stream
// and the probe's deadline.
import { DeadlineError } from '../../exporters/ladder';
import { ReadQueue } from '../../exporters/net';
import { ProbeAbort } from '../../exporters/signal';

function queue(highWater = 3): { q: ReadQueue<string>; paused: () => boolean } {
  let paused = false;
  const q = new ReadQueue<string>({
    pause: () => (paused = true),
    resume: () => (paused = false),
    highWater,
    closedMessage: 'closed by the peer',
    name: 'TestReader',
  });
  return { q, paused: () => paused };
}

const never = new ProbeAbort();

describe('ReadQueue', () => {
  it('hands out items in order, whether they came before or after the read', async () => {
    const { q } = queue();
    q.push('a');
    q.push('b');
    expect(await q.next(never)).toBe('a');
    expect(await q.next(never)).toBe('b');
    const later = q.next(never);
    q.push('c');
    expect(await later).toBe('c');
    expect(q.length).toBe(0);
  });

  it('pauses the socket at the high-water mark and resumes it once a read takes it below', async () => {
    const { q, paused } = queue(3);
    q.push('1');
    q.push('2');
    expect(paused()).toBe(false);
    q.push('3');
    expect(paused()).toBe(true);
    await q.next(never);
    expect(paused()).toBe(false);
  });

  it("gives what was queued before the end, then rejects with ECONNRESET and the reader's message", async () => {
    const { q } = queue();
    q.push('last');
    q.end();
    expect(q.done).toBe(true);
    expect(await q.next(never)).toBe('last');
    await expect(q.next(never)).rejects.toMatchObject({ message: 'closed by the peer', code: 'ECONNRESET' });
  });

  it('rejects a waiting read with the first failure, not a later one or the end', async () => {
    const { q } = queue();
    const read = q.next(never);
    const first = new Error('first');
    q.fail(first);
    q.fail(new Error('second'));
    q.end();
    await expect(read).rejects.toBe(first);
    await expect(q.next(never)).rejects.toBe(first);
  });

  it('refuses a second read while one waits', async () => {
    const { q } = queue();
    const first = q.next(never);
    await expect(q.next(never)).rejects.toThrow('TestReader: concurrent read');
    q.push('x');
    expect(await first).toBe('x');
  });

  it('gives up a read at the deadline, and the next read gets the item that came after', async () => {
    const { q } = queue();
    const signal = new ProbeAbort();
    const read = q.next(signal);
    signal.abort(new DeadlineError(false));
    await expect(read).rejects.toBeInstanceOf(DeadlineError);
    q.push('late');
    expect(await q.next(never)).toBe('late');
  });

  it('goes on after reopen (a TLS upgrade over the same connection)', async () => {
    const { q } = queue();
    q.end();
    q.reopen();
    expect(q.done).toBe(false);
    const read = q.next(never);
    q.push('over tls');
    expect(await read).toBe('over tls');
  });
});
