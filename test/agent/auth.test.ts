// Issue 22, items 3 and 4, in-process: the bcrypt work BasicAuth does for each kind of request.
// The timing and the flood themselves are measured in bench/abuse.bench.ts and tried against a
// running agent in test/security/abuse.test.ts.
import bcrypt from 'bcryptjs';
import { BasicAuth, type VerifyFn } from '../../agent/web-config';

const header = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const costOf = (h: string): number => Number(/^\$2[abxy]?\$(\d{2})\$/.exec(h)?.[1]);

describe('BasicAuth', () => {
  const real = bcrypt.hashSync('right', 6);
  const users = new Map([['prometheus', real]]);

  it('compares an unknown user against a hash of the same cost as a real one', async () => {
    const calls: { pass: string; hash: string }[] = [];
    const verify: VerifyFn = async (pass, hash) => {
      calls.push({ pass, hash });
      return bcrypt.compare(pass, hash);
    };
    const auth = new BasicAuth(users, { verify });
    expect(await auth.check(header('nobody', 'guess'))).toBe('denied');
    expect(await auth.check(header('prometheus', 'guess'))).toBe('denied');
    expect(calls).toHaveLength(2);
    expect(costOf(calls[0].hash)).toBe(6);
    expect(calls[0].hash).not.toBe(real);
    expect(costOf(calls[1].hash)).toBe(6);
    const slow = new BasicAuth(
      new Map([
        ['a', bcrypt.hashSync('x', 4)],
        ['b', '$2y$12$' + 'A'.repeat(53)],
      ]),
      { verify },
    );
    expect(costOf(slow.dummyHash)).toBe(12);
  });

  it('checks a pair once: good and bad pairs are remembered, by hash only', async () => {
    let n = 0;
    const verify: VerifyFn = async (pass, hash) => {
      n++;
      return bcrypt.compare(pass, hash);
    };
    const auth = new BasicAuth(users, { verify });
    for (let i = 0; i < 3; i++) expect(await auth.check(header('prometheus', 'right'))).toBe('ok');
    for (let i = 0; i < 3; i++) expect(await auth.check(header('prometheus', 'wrong'))).toBe('denied');
    for (let i = 0; i < 3; i++) expect(await auth.check(header('ghost', 'wrong'))).toBe('denied');
    expect(n).toBe(3);
    expect(JSON.stringify(auth)).not.toContain('right');
  });

  it('answers busy at once when too many comparisons are waiting, and remembered pairs still pass', async () => {
    const release: (() => void)[] = [];
    let n = 0;
    const verify: VerifyFn = (pass, hash) => {
      n++;
      if (pass === 'right') return bcrypt.compare(pass, hash);
      return new Promise((resolve) => release.push(() => resolve(false)));
    };
    const auth = new BasicAuth(users, { verify, maxPending: 4, maxPendingPerSource: 2 });
    expect(await auth.check(header('prometheus', 'right'), '10.0.0.1')).toBe('ok');
    const flood = [
      auth.check(header('prometheus', 'bad0'), '10.6.6.6'),
      auth.check(header('prometheus', 'bad1'), '10.6.6.6'),
    ];
    // One source has its share: its next attempt is turned away, another source still gets in.
    expect(await auth.check(header('prometheus', 'bad2'), '10.6.6.6')).toBe('busy');
    flood.push(
      auth.check(header('prometheus', 'bad3'), '10.6.6.7'),
      auth.check(header('prometheus', 'bad4'), '10.6.6.8'),
    );
    // The whole queue is full now.
    expect(await auth.check(header('prometheus', 'bad5'), '10.6.6.9')).toBe('busy');
    expect(await auth.check(header('prometheus', 'right'), '10.0.0.1')).toBe('ok');
    expect(n).toBe(5);
    for (const r of release) r();
    expect(await Promise.all(flood)).toEqual(['denied', 'denied', 'denied', 'denied']);
  });

  it('gives the right answers with its default verifier (bcrypt on a worker thread)', async () => {
    const auth = new BasicAuth(new Map([['prometheus', bcrypt.hashSync('right', 8)]]));
    const outcomes = await Promise.all([
      auth.check(header('prometheus', 'right')),
      auth.check(header('prometheus', 'wrong')),
      auth.check(header('nobody', 'wrong')),
      auth.check('Basic !!!'),
      auth.check(undefined),
    ]);
    expect(outcomes).toEqual(['ok', 'denied', 'denied', 'denied', 'denied']);
  });
});
