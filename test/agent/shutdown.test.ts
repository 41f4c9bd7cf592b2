import { Shutdown } from '../../agent/shutdown';

describe('Shutdown', () => {
  it('calls each subscriber once on abort, not those that left, and late subscribers at once', () => {
    const sd = new Shutdown();
    const calls: string[] = [];
    sd.subscribe(() => calls.push('a'));
    const leave = sd.subscribe(() => calls.push('b'));
    leave();
    expect(sd.aborted).toBe(false);
    sd.abort();
    sd.abort();
    expect(calls).toEqual(['a']);
    expect(sd.aborted).toBe(true);
    expect(sd.signal.aborted).toBe(true);
    sd.subscribe(() => calls.push('late'));
    expect(calls).toEqual(['a', 'late']);
  });

  it('holds tens of thousands of waiting probes and stops them all', () => {
    const sd = new Shutdown();
    let called = 0;
    const leaves = Array.from({ length: 50_000 }, () => sd.subscribe(() => called++));
    for (let i = 0; i < 50_000; i += 2) leaves[i]();
    sd.abort();
    expect(called).toBe(25_000);
  });
});
