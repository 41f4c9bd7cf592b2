// scanSockDiag with a fake netlink source (reply bytes made here, parsed by the addon's C parser
// as a real scan's are): what is asked of the kernel (the state filter, both TCP families in one
// dump), how its refusals are handled (no IPv6, no UDP diag module, no permission, no
// both-families request), and how the tables are put together (TIME_WAIT from sockstat,
// connections per listener, IPv4 before IPv6, cut or interrupted dumps).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  SockDiagError,
  loadSockDiag,
  scanSockDiag,
  sockstatInUse,
  sockstatTimeWait,
  type SockDiagScan,
} from '../../exporters/sockets/netlink';
import { errorFrame, reply, type RecordSpec } from './sockdiag-frames';

interface Call {
  family: 0 | 4 | 6;
  protocol: number;
  states: number;
}

const { parse } = loadSockDiag();

/**
 * A scan that answers from replies keyed "tcp0" (both families), "tcp4", "udp6"..., parsed by
 * the addon, and records what it was asked.
 */
function fake(answers: Record<string, Buffer | Error>): { dump: SockDiagScan; calls: Call[] } {
  const calls: Call[] = [];
  const dump: SockDiagScan = (family, protocol, states) => {
    calls.push({ family, protocol, states });
    const a = answers[`${protocol === 6 ? 'tcp' : 'udp'}${family}`] ?? reply([]);
    if (a instanceof Error) throw a;
    return parse(a, protocol, family);
  };
  return { dump, calls };
}

const L = (over: Partial<RecordSpec>): RecordSpec => ({
  family: 4,
  state: 10,
  sport: 1433,
  src: '0.0.0.0',
  rqueue: 2,
  wqueue: 128,
  inode: 1,
  ...over,
});

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portprobe-sockdiag-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const SOCKSTAT = 'sockets: used 200\nTCP: inuse 12 orphan 0 tw 104211 alloc 20 mem 3\nUDP: inuse 2 mem 1\n';

test('sockstat: the tw field of the TCP line, or undefined', () => {
  expect(sockstatTimeWait(SOCKSTAT)).toBe(104211);
  expect(sockstatTimeWait('UDP: inuse 2 tw 9\n')).toBeUndefined();
  expect(sockstatTimeWait('')).toBeUndefined();
});

test('with sockstat readable, TIME_WAIT is left out of the request and counted from sockstat', () => {
  fs.writeFileSync(path.join(dir, 'sockstat'), SOCKSTAT);
  // One dump for both families, in the kernel's order: IPv6 and IPv4 mixed.
  const { dump, calls } = fake({
    tcp0: reply(
      [
        L({ family: 6, src: '::', sport: 22, rqueue: 0, wqueue: 4096 }),
        L({}),
        L({ state: 1, sport: 1433, src: '10.0.0.1' }),
        L({ family: 6, state: 1, src: '::ffff:10.0.0.1', sport: 22 }),
        L({ state: 1, sport: 1433, src: '10.0.0.1' }),
        L({ state: 1, sport: 40000, src: '10.0.0.1' }),
      ],
      2,
      18,
    ),
    udp4: reply([L({ state: 7, sport: 53, src: '127.0.0.53' })]),
  });
  const t = scanSockDiag(dump, { ipv6: true, tcpStates: true, sockstat: path.join(dir, 'sockstat'), procNet: dir });
  expect(calls).toEqual([
    { family: 0, protocol: 6, states: 0x1ffe & ~(1 << 6) },
    { family: 4, protocol: 17, states: 1 << 7 },
    { family: 6, protocol: 17, states: 1 << 7 },
  ]);
  expect(t.timeWaitFrom).toBe('sockstat');
  expect(t.tcpStates[6]).toBe(104211);
  expect(t.tcpStates[1]).toBe(4);
  expect(t.tcpStates[10]).toBe(2);
  // IPv4 listeners first, as with one dump per family.
  expect(
    t.listeners.map((l) => [l.protocol, l.address, l.port, l.acceptQueue, l.acceptQueueLimit, l.connections]),
  ).toEqual([
    ['tcp', '0.0.0.0', 1433, 2, 128, 2],
    ['tcp', '::', 22, 0, 4096, 1],
    ['udp', '127.0.0.53', 53, undefined, undefined, undefined],
  ]);
  expect(t.truncatedTables).toEqual([]);
});

test('without sockstat, TIME_WAIT rows are dumped; with tcp_states off only listeners and established ones', () => {
  const { dump, calls } = fake({ tcp4: reply([L({ state: 6 }), L({ state: 6 })]) });
  const t = scanSockDiag(dump, { ipv6: false, tcpStates: true, sockstat: path.join(dir, 'missing') });
  expect(calls.map((c) => c.states)).toEqual([0x1ffe, 1 << 7]);
  expect([t.timeWaitFrom, t.tcpStates[6]]).toEqual(['dump', 2]);
  const off = fake({});
  expect(scanSockDiag(off.dump, { ipv6: false, tcpStates: false }).timeWaitFrom).toBe('none');
  expect(off.calls.map((c) => c.states)).toEqual([(1 << 1) | (1 << 10), 1 << 7]);
});

test('a kernel without IPv6 (tcp6 refused) gives the IPv4 tables; a refused tcp4 is an error', () => {
  const v6less = fake({ tcp0: reply([L({})]), udp6: errorFrame(97) });
  expect(scanSockDiag(v6less.dump, { ipv6: true, tcpStates: false }).listeners).toHaveLength(1);
  const refused = fake({ tcp0: errorFrame(1), tcp4: errorFrame(1) });
  expect(() => scanSockDiag(refused.dump, { ipv6: true, tcpStates: false })).toThrow(
    new SockDiagError('sock_diag tcp dump refused by the kernel (errno 1)'),
  );
});

test('a kernel that refuses the both-families request is asked once per family', () => {
  const { dump, calls } = fake({
    tcp0: errorFrame(22),
    tcp4: reply([L({}), L({ state: 1, src: '10.0.0.2' })]),
    tcp6: reply([L({ family: 6, src: '::1', sport: 8080, inode: 2 })]),
  });
  const t = scanSockDiag(dump, { ipv6: true, tcpStates: false });
  expect(calls.map((c) => `${c.protocol === 6 ? 'tcp' : 'udp'}${c.family}`)).toEqual([
    'tcp0',
    'tcp4',
    'tcp6',
    'udp4',
    'udp6',
  ]);
  expect(t.listeners.map((l) => [l.address, l.port, l.connections])).toEqual([
    ['0.0.0.0', 1433, 1],
    ['::1', 8080, 0],
  ]);
  expect(t.tcpStates[1]).toBe(1);
  const v6less = fake({ tcp0: errorFrame(22), tcp4: reply([L({})]), tcp6: errorFrame(97) });
  expect(scanSockDiag(v6less.dump, { ipv6: true, tcpStates: false }).listeners).toHaveLength(1);
});

test('no UDP diag module (ENOENT): UDP comes from /proc/net/udp*', () => {
  fs.writeFileSync(
    path.join(dir, 'udp'),
    '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n' +
      '  1: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 4242 2 0000000000000000 0\n',
  );
  const { dump } = fake({ udp4: errorFrame(2), udp6: errorFrame(2) });
  const t = scanSockDiag(dump, { ipv6: true, tcpStates: false, procNet: dir });
  expect(t.udpFromProc).toBe(true);
  expect(t.listeners.map((l) => [l.protocol, l.address, l.port, l.inode, l.uid])).toEqual([
    ['udp', '127.0.0.53', 53, 4242, 101],
  ]);
  const noProc = fake({ udp4: errorFrame(2) });
  expect(() =>
    scanSockDiag(noProc.dump, { ipv6: false, tcpStates: false, procNet: path.join(dir, 'nothing') }),
  ).toThrow(/the kernel has no UDP sock_diag and .*nothing\/udp cannot be read/);
});

test('a dump that cannot be made (no permission) throws with its code', () => {
  const e = Object.assign(new Error('sock_diag socket: Operation not permitted (EPERM)'), { code: 'EPERM' });
  const { dump } = fake({ tcp4: e });
  let caught: unknown;
  try {
    scanSockDiag(dump, { ipv6: false, tcpStates: false });
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(SockDiagError);
  expect((caught as SockDiagError).code).toBe('EPERM');
  expect((caught as SockDiagError).message).toBe('sock_diag socket: Operation not permitted (EPERM)');
});

test('a cut dump is reported as a truncated table, an interrupted one as interrupted', () => {
  const whole = reply([L({}), L({ sport: 1434 })]);
  const { dump } = fake({
    tcp4: whole.subarray(0, whole.length - 30),
    udp4: reply([L({ state: 7, sport: 53 })], 2 | 0x10),
  });
  const t = scanSockDiag(dump, { ipv6: false, tcpStates: false });
  expect(t.truncatedTables).toEqual(['tcp']);
  expect(t.interrupted).toBe(true);
  expect(t.listeners.map((l) => l.port)).toEqual([1433, 53]);
});

test('sockstat6 with no IPv6 sockets of a protocol: that dump is skipped (unless TIME_WAIT rows must be dumped)', () => {
  const six = 'TCP6: inuse 0\nUDP6: inuse 2\nUDPLITE6: inuse 0\n';
  expect([sockstatInUse(six, 'TCP6'), sockstatInUse(six, 'UDP6'), sockstatInUse(six, 'RAW6')]).toEqual([
    0,
    2,
    undefined,
  ]);
  fs.writeFileSync(path.join(dir, 'sockstat'), SOCKSTAT);
  fs.writeFileSync(path.join(dir, 'sockstat6'), six);
  const a = fake({});
  scanSockDiag(a.dump, {
    ipv6: true,
    tcpStates: true,
    sockstat: path.join(dir, 'sockstat'),
    sockstat6: path.join(dir, 'sockstat6'),
  });
  expect(a.calls.map((c) => `${c.protocol === 6 ? 'tcp' : 'udp'}${c.family}`)).toEqual(['tcp4', 'udp4', 'udp6']);
  const b = fake({});
  scanSockDiag(b.dump, {
    ipv6: true,
    tcpStates: true,
    sockstat: path.join(dir, 'missing'),
    sockstat6: path.join(dir, 'sockstat6'),
  });
  expect(b.calls.map((c) => `${c.protocol === 6 ? 'tcp' : 'udp'}${c.family}`)).toEqual(['tcp0', 'udp4', 'udp6']);
  const c = fake({});
  scanSockDiag(c.dump, { ipv6: true, tcpStates: false, sockstat6: path.join(dir, 'unreadable') });
  expect(c.calls).toHaveLength(3);
});
