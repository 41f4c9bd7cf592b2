import { ProbeAbort, abortSignalOf } from '../../exporters/signal';

describe('ProbeAbort', () => {
  it('calls each listener once, in order, with the reason set first', () => {
    const s = new ProbeAbort();
    const seen: string[] = [];
    s.addEventListener('abort', () => seen.push(`a:${String(s.reason)}:${s.aborted}`));
    s.addEventListener('abort', () => seen.push('b'));
    s.addEventListener('abort', () => seen.push('c'));
    s.abort('deadline');
    s.abort('again');
    expect(seen).toEqual(['a:deadline:true', 'b', 'c']);
    expect(s.reason).toBe('deadline');
  });

  it('removed listeners are not called, whichever position they had', () => {
    const s = new ProbeAbort();
    const seen: number[] = [];
    const fns = [0, 1, 2, 3].map((i) => () => seen.push(i));
    for (const f of fns) s.addEventListener('abort', f);
    s.removeEventListener('abort', fns[0]);
    s.removeEventListener('abort', fns[2]);
    s.removeEventListener('abort', () => undefined); // unknown: ignored
    s.abort(1);
    expect(seen).toEqual([1, 3]);
  });

  it('adding the same listener twice calls it once; adding after the abort calls nothing', () => {
    const s = new ProbeAbort();
    let n = 0;
    const f = (): void => {
      n++;
    };
    s.addEventListener('abort', f);
    s.addEventListener('abort', f);
    s.abort(1);
    s.addEventListener('abort', f);
    expect(n).toBe(1);
  });

  it('a listener that throws does not stop the others and does not escape abort()', () => {
    const s = new ProbeAbort();
    const seen: string[] = [];
    s.addEventListener('abort', () => {
      throw new Error('boom');
    });
    s.addEventListener('abort', () => seen.push('after'));
    expect(() => s.abort(1)).not.toThrow();
    expect(seen).toEqual(['after']);
  });

  it('toAbortSignal follows it, whether asked before or after the abort', () => {
    const early = new ProbeAbort();
    const native = early.toAbortSignal();
    expect(early.toAbortSignal()).toBe(native);
    expect(native.aborted).toBe(false);
    early.abort('why');
    expect(native.aborted).toBe(true);
    expect(native.reason).toBe('why');

    const late = new ProbeAbort();
    late.abort('late');
    expect(late.toAbortSignal().aborted).toBe(true);
    expect(late.toAbortSignal().reason).toBe('late');
  });

  it('abortSignalOf: a real signal as is; any other ProbeSignal followed by a new one', () => {
    const c = new AbortController();
    expect(abortSignalOf(c.signal)).toBe(c.signal);
    const listeners: (() => void)[] = [];
    const foreign = {
      aborted: false,
      reason: undefined as unknown,
      addEventListener: (_t: 'abort', fn: () => void) => listeners.push(fn),
      removeEventListener: () => undefined,
    };
    const s = abortSignalOf(foreign);
    expect(s.aborted).toBe(false);
    foreign.aborted = true;
    foreign.reason = 'r';
    for (const fn of listeners) fn();
    expect(s.aborted).toBe(true);
    expect(s.reason).toBe('r');
  });
});
