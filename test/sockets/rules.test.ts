// The pure parts around the parser: settings schema and checks, expectations, allow lists, the
// cardinality cap, TCP states, /proc/net/netstat and the systeminformation mapping.
import fs from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { evaluate, type OwnedListener, type SocketTable } from '../../exporters/sockets/evaluate';
import { listenQueueCounters, parseNetstat } from '../../exporters/sockets/netstat';
import { SOCKETS_METRICS } from '../../exporters/sockets/metrics';
import {
  SOCKETS_DEFAULTS,
  SOCKETS_SETTINGS_SCHEMA,
  parsePortRange,
  validateSocketsSettings,
  type SocketsSettings,
} from '../../exporters/sockets/settings';
import { fromSiConnections, normalizeAddress, type SiConnection } from '../../exporters/sockets/sysinfo';
import type { Fact } from '../../exporters/types';

const settings = (over: Partial<SocketsSettings> = {}): SocketsSettings => ({ ...SOCKETS_DEFAULTS, ...over });

let inode = 100;
function listener(protocol: 'tcp' | 'udp', address: string, port: number, name?: string, pid = 1): OwnedListener {
  return {
    protocol,
    family: address.includes(':') ? 6 : 4,
    address,
    port,
    inode: inode++,
    uid: 0,
    owner: name === undefined ? null : { pid, name },
  };
}

const table = (...listeners: OwnedListener[]): SocketTable => ({ listeners, tcpStates: new Array<number>(16).fill(0) });
const of = (facts: Fact[], metric: string): Fact[] => facts.filter((f) => f.metric === metric);
const value = (facts: Fact[], metric: string, labels: Record<string, string> = {}): number | undefined =>
  facts.find((f) => f.metric === metric && Object.entries(labels).every(([k, v]) => f.labels?.[k] === v))?.value;

describe('settings', () => {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  const validate = ajv.compile(SOCKETS_SETTINGS_SCHEMA);

  test('the defaults and a full example are valid; unknown keys are not', () => {
    expect(validate(SOCKETS_DEFAULTS)).toBe(true);
    const full = {
      enabled: true,
      interval: '1m30s',
      source: 'procfs',
      procfs: '/host/proc',
      include_process: false,
      ipv6: false,
      tcp_states: true,
      expect: [
        { port: 1433, protocol: 'tcp', address: '0.0.0.0', process: 'sqlservr' },
        { port: 53, protocol: 'udp' },
      ],
      allow: { ports: [22, '32768-60999'], processes: ['sshd'] },
      max_unexpected_series: 50,
    };
    expect(validate(full)).toBe(true);
    expect(validate({ ...full, colour: 'red' })).toBe(false);
    expect(validate({ expect: [{ port: 22, proto: 'tcp' }] })).toBe(false);
    expect(validate({ allow: { ports: ['a-b'] } })).toBe(false);
    expect(validate({ interval: '15' })).toBe(false);
    expect(validate({ expect: [{ port: 70000 }] })).toBe(false);
  });

  test('every object in the schema is closed and every node described (it is published for editors)', () => {
    const walk = (node: unknown, where: string): void => {
      if (typeof node !== 'object' || node === null) return;
      const n = node as Record<string, unknown>;
      if (n.type === 'object') expect([where, n.additionalProperties]).toEqual([where, false]);
      if (n.properties || n.items || n.type) expect([where, typeof n.description]).toEqual([where, 'string']);
      for (const [k, v] of Object.entries(n.properties ?? {})) walk(v, `${where}.${k}`);
      if (n.items) walk(n.items, `${where}[]`);
    };
    walk(SOCKETS_SETTINGS_SCHEMA, 'sockets');
  });

  test('semantic checks name the field', () => {
    expect(validateSocketsSettings(SOCKETS_DEFAULTS)).toEqual([]);
    const problems = validateSocketsSettings(
      settings({
        procfs: 'proc',
        interval: '500ms',
        allow: { ports: ['9000-8000', 70000, '1-70000'], processes: [] },
        expect: [
          { port: 22, address: 'localhost' },
          { port: 22, protocol: 'tcp', process: 'a-very-long-daemon-name' },
          { port: 53, protocol: 'udp' },
          { port: 53, protocol: 'udp' },
        ],
      }),
    );
    expect(problems).toEqual([
      'allow.ports[0]: "9000-8000" starts after it ends',
      'allow.ports[1]: 70000 is not a port (0-65535)',
      'allow.ports[2]: "1-70000" is outside 0-65535',
      'expect[0].address: "localhost" is not an IP address such as 0.0.0.0 or ::1',
      'expect[1].process: "a-very-long-daemon-name" is longer than the 15 characters the kernel keeps; use "a-very-long-dae"',
      'expect[3]: same listener as expect[2]',
      'interval: must be at least 1s, got 500ms',
      'procfs: "proc" must be an absolute path such as /proc',
    ]);
  });

  test('port ranges', () => {
    expect(parsePortRange(22)).toEqual({ from: 22, to: 22 });
    expect(parsePortRange('8000-8099')).toEqual({ from: 8000, to: 8099 });
    expect(parsePortRange('443')).toEqual({ from: 443, to: 443 });
    expect(typeof parsePortRange('x')).toBe('string');
  });

  test('metric families follow naming practice', () => {
    for (const m of SOCKETS_METRICS) {
      expect(m.name).toMatch(/^portprobe_[a-z_]+$/);
      if (m.type === 'counter') expect(m.name).toMatch(/_total$/);
      else expect(m.name).not.toMatch(/_total$/);
      expect(m.help.length).toBeGreaterThan(10);
    }
  });
});

describe('evaluate', () => {
  test('expectations: up when a listener matches port, protocol, address and process', () => {
    const t = table(
      listener('tcp', '0.0.0.0', 1433, 'sqlservr'),
      listener('udp', '0.0.0.0', 1434, 'sqlservr'),
      listener('tcp', '::', 80, 'nginx'),
    );
    const ev = evaluate(
      t,
      settings({
        expect: [
          { port: 1433, protocol: 'tcp', address: '0.0.0.0', process: 'sqlservr' },
          { port: 1434, protocol: 'udp' },
          { port: 1434 }, // tcp by default: not listening
          { port: 80, address: '0:0::0' }, // same address written differently
          { port: 80, address: '0.0.0.0' }, // a v6 wildcard is not this v4 address
          { port: 1433, process: 'postgres' },
        ],
      }),
    );
    expect(of(ev.facts, 'portprobe_listener_up').map((f) => [f.labels, f.value])).toEqual([
      [{ protocol: 'tcp', port: '1433', address: '0.0.0.0' }, 1],
      [{ protocol: 'udp', port: '1434', address: '*' }, 1],
      [{ protocol: 'tcp', port: '1434', address: '*' }, 0],
      [{ protocol: 'tcp', port: '80', address: '::' }, 1],
      [{ protocol: 'tcp', port: '80', address: '0.0.0.0' }, 0],
      [{ protocol: 'tcp', port: '1433', address: '*' }, 0],
    ]);
    expect(ev.expectations[5].note).toBe('a listener exists but belongs to "sqlservr" (pid 1)');
    expect(ev.unexpected).toEqual([]);
  });

  test('expectation addresses in any spelling match the canonical listener address', () => {
    const ev = evaluate(
      table(listener('tcp', '::ffff:127.0.0.1', 8443), listener('udp', 'fe80::1', 547)),
      settings({
        expect: [
          { port: 8443, address: '::FFFF:127.0.0.1' },
          { port: 547, protocol: 'udp', address: 'FE80:0:0:0:0:0:0:1' },
        ],
      }),
    );
    expect(of(ev.facts, 'portprobe_listener_up').map((f) => [f.labels?.address, f.value])).toEqual([
      ['::ffff:127.0.0.1', 1],
      ['fe80::1', 1],
    ]);
  });

  test('an expected process whose owner is unknown is down, with a note saying why', () => {
    const ev = evaluate(table(listener('tcp', '0.0.0.0', 21)), settings({ expect: [{ port: 21, process: 'vsftpd' }] }));
    expect(value(ev.facts, 'portprobe_listener_up')).toBe(0);
    expect(ev.expectations[0].note).toMatch(/process is unknown.*root/);
    // ... and the listener itself is then unexpected, with an empty process label.
    expect(value(ev.facts, 'portprobe_unexpected_listener_info', { port: '21', process: '' })).toBe(1);
  });

  test('port classes: every protocol x class series, counted per socket', () => {
    const ev = evaluate(
      table(
        listener('tcp', '0.0.0.0', 22),
        listener('tcp', '::', 22),
        listener('tcp', '127.0.0.1', 8080),
        listener('udp', '0.0.0.0', 50000),
      ),
      settings(),
    );
    expect(
      of(ev.facts, 'portprobe_listening_sockets').map(
        (f) => `${f.labels?.protocol} ${f.labels?.port_class} ${f.value}`,
      ),
    ).toEqual([
      'tcp well_known 2',
      'tcp registered 1',
      'tcp dynamic 0',
      'udp well_known 0',
      'udp registered 0',
      'udp dynamic 1',
    ]);
  });

  test('unexpected: allow by port, range and process; duplicates collapse; sorted', () => {
    const ev = evaluate(
      table(
        listener('tcp', '0.0.0.0', 22, 'sshd'),
        listener('tcp', '0.0.0.0', 8080, 'java'),
        listener('tcp', '0.0.0.0', 8080, 'java', 2), // SO_REUSEPORT sibling
        listener('tcp', '0.0.0.0', 9100, 'node_exporter'),
        listener('udp', '0.0.0.0', 40000, 'chronyd'),
        listener('tcp', '0.0.0.0', 54321, 'nc'),
        listener('tcp', '127.0.0.1', 5432, 'postgres'),
        listener('udp', '::', 5353, 'avahi-daemon'),
      ),
      settings({
        expect: [{ port: 5432, protocol: 'tcp', address: '127.0.0.1' }],
        allow: { ports: [22, '9000-9199'], processes: ['chronyd'] },
      }),
    );
    expect(of(ev.facts, 'portprobe_unexpected_listener_info').map((f) => f.labels)).toEqual([
      { protocol: 'tcp', address: '0.0.0.0', port: '8080', port_class: 'registered', process: 'java' },
      { protocol: 'tcp', address: '0.0.0.0', port: '54321', port_class: 'dynamic', process: 'nc' },
      { protocol: 'udp', address: '::', port: '5353', port_class: 'registered', process: 'avahi-daemon' },
    ]);
    expect(value(ev.facts, 'portprobe_unexpected_listeners')).toBe(3);
    expect(value(ev.facts, 'portprobe_unexpected_listeners_truncated')).toBe(0);
  });

  test('cardinality cap: at most max_unexpected_series, the truncated flag and the full count', () => {
    const many = Array.from({ length: 1000 }, (_, i) => listener('tcp', '0.0.0.0', 50000 + i, 'worker'));
    const ev = evaluate(table(...many), settings({ max_unexpected_series: 10 }));
    const info = of(ev.facts, 'portprobe_unexpected_listener_info');
    expect(info).toHaveLength(10);
    expect(info.map((f) => f.labels?.port)).toEqual(Array.from({ length: 10 }, (_, i) => String(50000 + i)));
    expect(value(ev.facts, 'portprobe_unexpected_listeners_truncated')).toBe(1);
    expect(value(ev.facts, 'portprobe_unexpected_listeners')).toBe(1000);
    const none = evaluate(table(...many), settings({ max_unexpected_series: 0 }));
    expect(of(none.facts, 'portprobe_unexpected_listener_info')).toHaveLength(0);
    expect(value(none.facts, 'portprobe_unexpected_listeners_truncated')).toBe(1);
  });

  test('TCP states: all eleven, new_syn_recv folded into syn_recv; off when tcp_states is false', () => {
    const states = new Array<number>(16).fill(0);
    states[1] = 5;
    states[3] = 1;
    states[6] = 7;
    states[10] = 2;
    states[12] = 3;
    const ev = evaluate({ listeners: [], tcpStates: states }, settings());
    expect(of(ev.facts, 'portprobe_tcp_connection_states').map((f) => `${f.labels?.state}=${f.value}`)).toEqual([
      'established=5',
      'syn_sent=0',
      'syn_recv=4',
      'fin_wait1=0',
      'fin_wait2=0',
      'time_wait=7',
      'close=0',
      'close_wait=0',
      'last_ack=0',
      'listen=2',
      'closing=0',
    ]);
    expect(
      of(
        evaluate({ listeners: [], tcpStates: states }, settings({ tcp_states: false })).facts,
        'portprobe_tcp_connection_states',
      ),
    ).toEqual([]);
  });

  test('every declared family except the listen-queue counters appears even on an empty host', () => {
    const ev = evaluate(table(), settings({ expect: [{ port: 22 }], max_unexpected_series: 5 }));
    const seen = new Set(ev.facts.map((f) => f.metric));
    // Per-listener series need a listener; the scan's own series come from the collector.
    const declared = SOCKETS_METRICS.map((m) => m.name).filter(
      (n) =>
        !/listen_(overflows|drops)_total|unexpected_listener_info|scan_(success|duration|source)|accept_queue|listener_connections/.test(
          n,
        ),
    );
    for (const n of declared) expect(seen).toContain(n);
  });
});

describe('/proc/net/netstat', () => {
  const text = fs.readFileSync(path.join(__dirname, 'fixtures', 'netstat.txt'), 'latin1');
  test('pairs of name and value lines', () => {
    const groups = parseNetstat(text);
    expect([...groups.keys()]).toEqual(['TcpExt', 'IpExt']);
    expect(groups.get('IpExt')?.get('InOctets')).toBe(123456);
    expect(listenQueueCounters(text)).toEqual({ overflows: 17, drops: 23 });
  });
  test('absent or mismatched: undefined, not zero', () => {
    expect(listenQueueCounters('IpExt: A\nIpExt: 1\n')).toBeUndefined();
    expect(listenQueueCounters('TcpExt: ListenOverflows ListenDrops\nTcpExt: 1\n')).toBeUndefined();
    expect(listenQueueCounters('')).toBeUndefined();
  });
});

describe('systeminformation mapping', () => {
  const row = (over: Partial<SiConnection>): SiConnection => ({
    protocol: 'tcp',
    localAddress: '0.0.0.0',
    localPort: '22',
    peerAddress: '0.0.0.0',
    peerPort: '*',
    state: 'LISTEN',
    pid: 10,
    process: 'sshd',
    ...over,
  });

  test('listeners, UDP without a peer, states, and odd rows counted', () => {
    const t = fromSiConnections([
      row({}),
      row({ protocol: 'tcp6', localAddress: '::', localPort: '80', pid: null, process: '' }),
      row({ localPort: '22', peerAddress: '10.0.0.2', peerPort: '50000', state: 'ESTABLISHED' }),
      row({ state: 'TIME_WAIT', localPort: '40000', peerPort: '443' }),
      row({ protocol: 'udp4', localAddress: '*', localPort: '5353', peerAddress: '*', state: '' }),
      row({ protocol: 'udp', localPort: '40001', peerAddress: '8.8.8.8', peerPort: '53', state: '' }),
      row({ localAddress: 'garbage', localPort: '1' }),
      row({ protocol: 'sctp' }),
    ]);
    expect(t.listeners.map((l) => `${l.protocol}${l.family} ${l.address} ${l.port} ${l.owner?.name ?? '-'}`)).toEqual([
      'tcp4 0.0.0.0 22 sshd',
      'tcp6 :: 80 -',
      'udp4 0.0.0.0 5353 sshd',
    ]);
    expect(t.tcpStates[1]).toBe(1);
    expect(t.tcpStates[6]).toBe(1);
    expect(t.tcpStates[10]).toBe(2);
    expect(t.badLines).toBe(2);
  });

  test('address text from ss and netstat in the canonical form', () => {
    expect(normalizeAddress('[::1]', 6)).toBe('::1');
    expect(normalizeAddress('127.0.0.53%lo', 4)).toBe('127.0.0.53');
    expect(normalizeAddress('*', 6)).toBe('::');
    expect(normalizeAddress('*', 4)).toBe('0.0.0.0');
    expect(normalizeAddress('::FFFF:127.0.0.1', 6)).toBe('::ffff:127.0.0.1');
    expect(normalizeAddress('2001:DB8:0:0:0:0:0:5', 6)).toBe('2001:db8::5');
    expect(normalizeAddress('fe80::1%eth0', 6)).toBe('fe80::1');
    expect(normalizeAddress('nope', 4)).toBeUndefined();
  });
});

describe('per-listener accept queue and connections', () => {
  const L = (
    address: string,
    port: number,
    q: number | undefined,
    limit: number | undefined,
    conns: number | undefined,
    protocol: 'tcp' | 'udp' = 'tcp',
  ): OwnedListener => ({
    protocol,
    family: address.includes(':') ? 6 : 4,
    address,
    port,
    inode: port,
    uid: 0,
    owner: null,
    acceptQueue: q,
    acceptQueueLimit: limit,
    connections: conns,
  });
  const series = (facts: Fact[]) =>
    facts
      .filter((f) => /accept_queue|listener_connections/.test(f.metric))
      .map((f) => `${f.metric}{${f.labels?.address}:${f.labels?.port}} ${f.value}`);

  test('expected and capped unexpected listeners get them, summed over a SO_REUSEPORT group; UDP and the rest do not', () => {
    const listeners = [
      L('0.0.0.0', 1433, 3, 128, 10),
      L('0.0.0.0', 1433, 2, 128, 0),
      L('::', 80, 0, 4096, 2),
      L('127.0.0.1', 9000, 1, 16, 1),
      L('127.0.0.1', 9001, 9, 16, 9),
      L('0.0.0.0', 53, undefined, undefined, undefined, 'udp'),
    ];
    const ev = evaluate(
      { listeners },
      settings({
        expect: [{ port: 1433 }, { port: 53, protocol: 'udp' }],
        allow: { ports: [80], processes: [] },
        max_unexpected_series: 1,
      }),
    );
    expect(series(ev.facts)).toEqual([
      'portprobe_listener_accept_queue{0.0.0.0:1433} 5',
      'portprobe_listener_accept_queue_limit{0.0.0.0:1433} 256',
      'portprobe_listener_connections{0.0.0.0:1433} 10',
      'portprobe_listener_accept_queue{127.0.0.1:9000} 1',
      'portprobe_listener_accept_queue_limit{127.0.0.1:9000} 16',
      'portprobe_listener_connections{127.0.0.1:9000} 1',
    ]);
    expect(ev.facts.find((f) => f.metric === 'portprobe_listener_accept_queue')?.labels).toEqual({
      protocol: 'tcp',
      address: '0.0.0.0',
      port: '1433',
    });
  });

  test('a source without the backlog (/proc) gives no limit series', () => {
    const ev = evaluate({ listeners: [L('0.0.0.0', 22, 0, undefined, 4)] }, settings({ expect: [{ port: 22 }] }));
    expect(series(ev.facts)).toEqual([
      'portprobe_listener_accept_queue{0.0.0.0:22} 0',
      'portprobe_listener_connections{0.0.0.0:22} 4',
    ]);
  });
});
