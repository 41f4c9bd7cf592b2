// PASV (227) and EPSV (229) replies, PORT/EPRT arguments, port ranges, host comparison.
import {
  formatEprt,
  formatPort,
  ipv4Kind,
  parseEpsv,
  parsePasv,
  parsePortRange,
  sameHost,
} from '../../exporters/ftp/passive';

describe('parsePasv', () => {
  test.each([
    ['Entering Passive Mode (127,0,0,1,79,202).', '127.0.0.1', 79 * 256 + 202],
    ['Entering Passive Mode (10,0,0,5,195,80)', '10.0.0.5', 195 * 256 + 80],
    ['PASV OK (127,0,0,2,4,1)', '127.0.0.2', 1025],
    ['=192,168,1,2,0,21', '192.168.1.2', 21],
    ['Entering Passive Mode 1,2,3,4,255,255', '1.2.3.4', 65535],
    ['Entering Passive Mode (1, 2, 3, 4, 0, 1)', '1.2.3.4', 1],
  ])('%s', (text, host, port) => {
    expect(parsePasv(text)).toEqual({ host, port });
  });

  test.each([
    ['Entering Passive Mode'],
    ['Entering Passive Mode (1,2,3,4,5)'],
    ['(256,0,0,1,1,1)'],
    ['(1,2,3,4,0,0)'],
    ['(1,2,3,4,1,999)'],
  ])('rejects %s', (text) => {
    expect(typeof parsePasv(text)).toBe('string');
  });
});

describe('parseEpsv', () => {
  test.each([
    ['Entering Extended Passive Mode (|||6446|)', 6446],
    ['Entering Extended Passive Mode (!!!1!)', 1],
    ['EPSV ok (###65535#)', 65535],
  ])('%s', (text, port) => {
    expect(parseEpsv(text)).toBe(port);
  });

  test.each([
    ['Entering Extended Passive Mode'],
    ['(|||6446)'],
    ['(|||0|)'],
    ['(|||65536|)'],
    ['(||1|6446|)'],
    ['(|1|2|6446|)'],
    ['(111644611)'],
    ['( |||6446| )'],
    ['(|||port|)'],
  ])('rejects %s', (text) => {
    expect(typeof parseEpsv(text)).toBe('string');
  });
});

test('formatPort / formatEprt', () => {
  expect(formatPort('127.0.0.1', 40000)).toBe('127,0,0,1,156,64');
  expect(formatEprt('127.0.0.1', 40000)).toBe('|1|127.0.0.1|40000|');
  expect(formatEprt('::1', 21)).toBe('|2|::1|21|');
  expect(() => formatPort('::1', 21)).toThrow();
  expect(() => formatPort('127.0.0.1', 0)).toThrow();
  expect(() => formatEprt('example.com', 21)).toThrow();
});

test('PORT round-trips through the PASV parser', () => {
  expect(parsePasv(`(${formatPort('10.1.2.3', 51234)})`)).toEqual({ host: '10.1.2.3', port: 51234 });
});

test('parsePortRange', () => {
  expect(parsePortRange('50000-50100')).toEqual({ from: 50000, to: 50100 });
  expect(parsePortRange('2121')).toEqual({ from: 2121, to: 2121 });
  expect(typeof parsePortRange('50100-50000')).toBe('string');
  expect(typeof parsePortRange('0-10')).toBe('string');
  expect(typeof parsePortRange('1-70000')).toBe('string');
  expect(typeof parsePortRange('a-b')).toBe('string');
});

test('sameHost treats IPv4-mapped IPv6 as IPv4', () => {
  expect(sameHost('10.0.0.5', '::ffff:10.0.0.5')).toBe(true);
  expect(sameHost('127.0.0.2', '127.0.0.1')).toBe(false);
  expect(sameHost('::1', '::1')).toBe(true);
});

test.each([
  ['10.0.0.5', 'private'],
  ['172.16.0.1', 'private'],
  ['172.32.0.1', 'public'],
  ['192.168.1.1', 'private'],
  ['127.0.0.2', 'loopback'],
  ['169.254.1.1', 'link-local'],
  ['0.0.0.0', 'unspecified'],
  ['100.64.0.1', 'shared (CGNAT)'],
  ['203.0.113.7', 'public'],
  ['::1', 'invalid'],
])('ipv4Kind(%s) = %s', (ip, kind) => {
  expect(ipv4Kind(ip)).toBe(kind);
});
