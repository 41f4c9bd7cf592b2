// evaluate() with an EvaluationMemo (the worker's, kept between scans) gives exactly what it gives
// without one, scan after scan: when the listener objects and owners are the same (the sort is
// reused), when an owner becomes known, when listeners come and go, when queues change.
import { EvaluationMemo, evaluate } from '../../exporters/sockets/evaluate';
import type { Listener } from '../../exporters/sockets/procnet';
import { SOCKETS_DEFAULTS, type SocketsSettings } from '../../exporters/sockets/settings';

const settings: SocketsSettings = { ...SOCKETS_DEFAULTS, max_unexpected_series: 3, expect: [{ port: 22 }] };

function listener(port: number, address = '0.0.0.0', owner: Listener['owner'] = null): Listener {
  return {
    protocol: 'tcp',
    family: 4,
    address,
    port,
    inode: port,
    uid: 0,
    owner,
    acceptQueue: 0,
    acceptQueueLimit: 128,
    connections: 0,
  };
}

test('the same evaluation with and without the memo, over changing scans', () => {
  const memo = new EvaluationMemo();
  const ls = [listener(9000), listener(22), listener(80, '127.0.0.1'), listener(443), listener(8080), listener(53)];
  const check = (listeners: Listener[]): void => {
    const table = { listeners, tcpStates: new Array<number>(16).fill(1) };
    // A copy of each listener for the evaluation without the memo, so nothing is shared.
    const fresh = { ...table, listeners: listeners.map((l) => ({ ...l })) };
    expect(evaluate(table, settings, memo)).toEqual(evaluate(fresh, settings));
  };
  check(ls);
  ls[0].acceptQueue = 7; // same objects, new numbers: the sort is reused
  const sorted = memo.sorted;
  check(ls);
  expect(memo.sorted).toBe(sorted);
  ls[3] = { ...ls[3], owner: { pid: 1, name: 'a' } }; // a new object for a socket
  check(ls);
  ls[4].owner = { pid: 2, name: 'zz' }; // an owner becomes known on the same object
  check(ls);
  expect(memo.sorted).not.toBe(sorted);
  // Twins on one port and address, told apart by their owners only when those become known.
  const twins = [listener(80), listener(80)];
  check([...ls, ...twins]);
  twins[0].owner = { pid: 9, name: 'zeta' };
  twins[1].owner = { pid: 8, name: 'alpha' };
  check([...ls, ...twins]);
  check(ls.slice(1));
  check([...ls, listener(1), listener(65000, '::', { pid: 3, name: 'b' })]);
  check([]);
});
