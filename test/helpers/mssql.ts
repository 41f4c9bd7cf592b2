// What the SQL Server tests share: peers closed after each test, started with the one login the
// tests use (monitor / s3cr3t-pw) unless a test's options say otherwise.
import { startTdsPeer, type TdsPeer, type TdsPeerOptions } from '../peers/tds/server';

/** A list of closers that afterEach runs, last first, until it is empty. */
export function cleanupsAfterEach(): (() => Promise<void>)[] {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await (cleanups.pop() as () => Promise<void>)();
  });
  return cleanups;
}

/** Starts TDS peers whose closing is pushed onto `cleanups`. */
export function tdsPeers(cleanups: (() => Promise<void>)[]): (o?: TdsPeerOptions) => Promise<TdsPeer> {
  return async (o = {}) => {
    const p = await startTdsPeer({ users: { monitor: 's3cr3t-pw' }, ...o });
    cleanups.push(() => p.close());
    return p;
  };
}
