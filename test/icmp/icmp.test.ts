import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { icmpProber, parsePingOutput, classifyPingError, validateIcmpAddress } from '../../exporters/icmp';
import type { ProbeResult } from '../../exporters/types';
import { runProber } from '../helpers/context';
import { createNetns, tsNodeArgv } from '../helpers/netns';

const OK = `PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.
64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.081 ms
64 bytes from 127.0.0.1: icmp_seq=2 ttl=64 time=0.047 ms

--- 127.0.0.1 ping statistics ---
2 packets transmitted, 2 received, 0% packet loss, time 201ms
rtt min/avg/max/mdev = 0.047/0.064/0.081/0.017 ms
`;
const PARTIAL = `--- 10.0.0.1 ping statistics ---
4 packets transmitted, 1 received, 75% packet loss, time 3006ms
rtt min/avg/max/mdev = 12.500/12.500/12.500/0.000 ms
`;
const NONE = `--- 10.0.0.1 ping statistics ---
3 packets transmitted, 0 received, 100% packet loss, time 2030ms
`;
const ERRORS = `3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2040ms`;

describe('ping output parser', () => {
  it('reads counts and round-trip statistics in seconds', () => {
    expect(parsePingOutput(OK)).toEqual({
      transmitted: 2,
      received: 2,
      rtt: { min: 0.000047, avg: 0.000064, max: 0.000081, mdev: 0.000017 },
    });
  });
  it('partial and total loss', () => {
    expect(parsePingOutput(PARTIAL)).toMatchObject({ transmitted: 4, received: 1, rtt: { avg: 0.0125 } });
    expect(parsePingOutput(NONE)).toEqual({ transmitted: 3, received: 0 });
    expect(parsePingOutput(ERRORS)).toEqual({ transmitted: 3, received: 0 });
  });
  it('no summary: undefined', () => {
    expect(parsePingOutput('ping: socket: Operation not permitted')).toBeUndefined();
    expect(parsePingOutput('')).toBeUndefined();
  });
  it.each([
    ['ping: socket: Operation not permitted', 'unavailable'],
    ['ping: nonexistent.example: Name or service not known', 'dns'],
    ['ping: connect: Network is unreachable', 'unreachable'],
    ['something else entirely', 'other'],
  ])('classifies %j as %s', (text, kind) => {
    expect(classifyPingError(text).kind).toBe(kind);
  });
  it('rejects addresses ping could read as options', () => {
    expect(validateIcmpAddress('-c')).toBe('"-c": expected a host name or IP address, without a port');
    expect(validateIcmpAddress('host:21')).toBe('"host:21": expected a host name or IP address, without a port');
    expect(validateIcmpAddress('a b')).toBeDefined();
    expect(validateIcmpAddress('::1')).toBeUndefined();
    expect(validateIcmpAddress('[::1]')).toBeUndefined();
    expect(validateIcmpAddress('db.example.org')).toBeUndefined();
  });
});

describe('icmp prober with the real ping', () => {
  it('127.0.0.1 answers: success with packet counts and rtt', async () => {
    const r = await runProber(icmpProber, '127.0.0.1', { packets: 2 }, 5000);
    expect(r.failure).toBeUndefined();
    expect(r.ipProtocol).toBe(4);
    expect(r.facts).toContainEqual({ metric: 'probe_icmp_packets_sent', value: 2 });
    expect(r.facts).toContainEqual({ metric: 'probe_icmp_packets_received', value: 2 });
    const avg = r.facts.find((f) => f.metric === 'probe_icmp_rtt_seconds' && f.labels?.stat === 'avg');
    expect(avg?.value).toBeGreaterThan(0);
    expect(avg?.value).toBeLessThan(0.1);
  });

  it('::1 answers over IPv6', async () => {
    const r = await runProber(icmpProber, '::1', { packets: 1, preferred_ip_protocol: 'ip6' }, 5000);
    expect(r.failure).toBeUndefined();
    expect(r.ipProtocol).toBe(6);
  });

  it('no ping binary: icmp_unavailable, cleanly', async () => {
    const r = await runProber(icmpProber, '127.0.0.1', { ping_path: '/nonexistent/ping' }, 3000);
    expect(r.failure).toMatchObject({ phase: 'icmp', reason: 'icmp_unavailable' });
    expect(r.failure?.advice).toContain('iputils-ping');
  });

  it('a shutdown abort kills ping and reports aborted', async () => {
    const { probeContext } = await import('../helpers/context');
    const p = probeContext(icmpProber, '127.0.0.1', { packets: 20, interval_seconds: 0.5 }, 20000);
    try {
      const pending = icmpProber.run(p.ctx);
      setTimeout(p.abort, 300);
      const t0 = Date.now();
      const r = await pending;
      expect(r.failure).toMatchObject({ phase: 'icmp', reason: 'aborted' });
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      p.dispose();
    }
  });
});

describe('icmp through nftables inside a network namespace', () => {
  const ns = createNetns('icmp');
  afterAll(() => ns.remove());
  const probe = async (settings: Record<string, unknown>, timeoutMs: number): Promise<ProbeResult> => {
    const out = await ns.exec(
      tsNodeArgv(path.join(__dirname, '..', 'helpers', 'probe-cli.ts'), [
        JSON.stringify({ prober: 'icmp', address: '127.0.0.1', timeoutMs, settings }),
      ]),
    );
    return (JSON.parse(out.stdout) as { result: ProbeResult }).result;
  };

  it('every other echo request dropped: packet_loss with the counts', async () => {
    execFileSync('ip', ['netns', 'exec', ns.name, 'nft', '-f', '-'], {
      input:
        'table inet pp_icmp {\n chain out {\n  type filter hook output priority 0; policy accept;\n  icmp type echo-request numgen inc mod 2 == 1 drop\n }\n}\n',
    });
    const r = await probe({ packets: 4 }, 5000);
    expect(r.failure).toMatchObject({ phase: 'icmp', reason: 'packet_loss' });
    expect(r.facts).toContainEqual({ metric: 'probe_icmp_packets_sent', value: 4 });
    expect(r.facts).toContainEqual({ metric: 'probe_icmp_packets_received', value: 2 });
    const tolerant = await probe({ packets: 4, max_loss_ratio: 0.5 }, 5000);
    expect(tolerant.success).toBe(true);
  });

  it('all echo requests dropped: timeout (no reply) within the deadline', async () => {
    execFileSync('ip', [
      'netns',
      'exec',
      ns.name,
      'nft',
      'add',
      'rule',
      'inet',
      'pp_icmp',
      'out',
      'icmp',
      'type',
      'echo-request',
      'drop',
    ]);
    const r = await probe({ packets: 2 }, 1500);
    expect(r.failure).toMatchObject({ phase: 'icmp', reason: 'timeout' });
    // The probe ends at its deadline instead of waiting for ping's own: its duration, measured by
    // the prober itself (not the wall clock around a node start-up in the namespace), stays
    // within the 1.5 s deadline plus a margin for a loaded machine.
    expect(r.durationSeconds).toBeLessThan(1.5 + 1.5);
  });
});
