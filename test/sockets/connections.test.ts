// The /proc parser's accept queues and established counts, and how connections are given to
// listeners (exact address first, then the family's wildcard, SO_REUSEPORT groups once).
import { attributeConnections } from '../../exporters/sockets/connections';
import { parseProcNet, type Listener } from '../../exporters/sockets/procnet';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const row = (sl: number, local: string, remote: string, st: string, queues: string, inode: number): string =>
  `  ${sl}: ${local} ${remote} ${st} ${queues} 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 100 0 0 10 0\n`;

test("/proc: a listener's rx_queue is its accept queue; established rows are counted by local end", () => {
  const text =
    HEADER +
    row(0, '0100007F:0599', '00000000:0000', '0A', '00000000:00000005', 11) +
    row(1, '0100007F:0599', '0100007F:C350', '01', '00000000:00000000', 12) +
    row(2, '0100007F:0599', '0100007F:C351', '01', '00000000:00000000', 13) +
    row(3, '0100007F:C350', '0100007F:0599', '01', '00000000:00000000', 14) +
    row(4, '0100007F:0599', '0100007F:C352', '06', '00000000:00000000', 0);
  const t = parseProcNet(text, 'tcp', 4);
  expect(t.badLines).toBe(0);
  expect(t.listeners).toEqual([
    { protocol: 'tcp', family: 4, address: '127.0.0.1', port: 1433, inode: 11, uid: 0, owner: null, acceptQueue: 5 },
  ]);
  expect([...t.established]).toEqual([
    ['4 127.0.0.1 1433', 2],
    ['4 127.0.0.1 50000', 1],
  ]);
  expect(t.states[6]).toBe(1);
});

test('/proc: a listener row without a queue field is a bad line, not a listener', () => {
  const t = parseProcNet(HEADER + '  0: 0100007F:0599 00000000:0000 0A 5 00:00000000 00000000 0 0 11 1\n', 'tcp', 4);
  expect(t.listeners).toEqual([]);
  expect(t.badLines).toBe(1);
});

test('connections go to the exact address first, then the wildcard of their family, once per label set', () => {
  const l = (family: 4 | 6, address: string, port: number): Listener => ({
    protocol: 'tcp',
    family,
    address,
    port,
    inode: 0,
    uid: 0,
    owner: null,
  });
  const listeners = [
    l(4, '0.0.0.0', 80),
    l(4, '0.0.0.0', 80),
    l(4, '10.0.0.5', 8080),
    l(6, '::', 80),
    l(6, '::1', 443),
    { ...l(4, '0.0.0.0', 53), protocol: 'udp' as const },
  ];
  attributeConnections(listeners, [
    new Map([
      ['4 10.0.0.5 80', 3],
      ['4 127.0.0.1 80', 2],
      ['4 10.0.0.5 8080', 4],
      ['4 10.0.0.6 8080', 9],
      ['4 127.0.0.1 53', 1],
    ]),
    new Map([
      ['6 ::ffff:10.0.0.5 80', 5],
      ['6 ::1 443', 6],
      ['6 fe80::1 443', 7],
    ]),
  ]);
  expect(listeners.map((x) => x.connections)).toEqual([5, 0, 4, 5, 6, undefined]);
});
