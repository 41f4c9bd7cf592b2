// diagnose where the network misbehaves: inside a namespace this test creates, nftables drops
// ICMP echo requests and the SYNs to one port. The built CLI runs there as a user would run it.
// One verdict (text, JSON, exit code) for an optional and a required ping, and the whole run,
// ping included, ends within --timeout.
import { execFileSync } from 'node:child_process';
import { MAIN } from '../helpers/agent-process';
import { createNetns } from '../helpers/netns';

jest.setTimeout(60000);

const SERVED = 7001; // a listener runs here
const DROPPED = 7002; // SYNs to this port are dropped

describe('diagnose in a namespace that drops ICMP and the SYNs to one port', () => {
  const ns = createNetns('diag');
  beforeAll(() => {
    execFileSync('ip', ['netns', 'exec', ns.name, 'nft', '-f', '-'], {
      input: [
        'table inet pp_diag {',
        '  chain out {',
        '    type filter hook output priority 0; policy accept;',
        '    icmp type echo-request drop',
        `    tcp dport ${DROPPED} drop`,
        '  }',
        '}',
        '',
      ].join('\n'),
    });
  });
  afterAll(() => ns.remove());

  /** Runs `portprobe diagnose ARGS` in the namespace, with a listener on SERVED; wall time measured there. */
  async function diagnoseInNs(args: string[]): Promise<{ code: number; out: string; ms: number }> {
    const quoted = args.map((a) => `'${a}'`).join(' ');
    const script = [
      `${process.execPath} -e "require('net').createServer(()=>{}).listen(${SERVED},'127.0.0.1')" &`,
      'sleep 0.5',
      't0=$(date +%s%N)',
      `${process.execPath} ${MAIN} diagnose ${quoted}`,
      'rc=$?',
      't1=$(date +%s%N)',
      'kill %1',
      'echo "@@rc=$rc ms=$(( (t1 - t0) / 1000000 ))"',
    ].join('\n');
    const r = await ns.exec(['bash', '-c', script], 40000);
    const m = /@@rc=(\d+) ms=(\d+)/.exec(r.stdout);
    if (!m) throw new Error(`no result line:\n${r.stdout}\n${r.stderr}`);
    return { code: Number(m[1]), out: r.stdout.slice(0, m.index), ms: Number(m[2]) };
  }

  it("--ping, not answered, service up: the ping is reported, the verdict is the service's, and all three agree", async () => {
    const text = await diagnoseInNs([`tcp://127.0.0.1:${SERVED}`, '--ping', '--timeout=3s']);
    expect(text.out).toMatch(/✗ icmp .*no answer.*\(ping not required: the ladder went on\)/);
    expect(text.out).toMatch(/✓ connect/);
    expect(text.out).not.toContain('FAILED');
    expect(text.out).toContain('result: every rung passed');
    expect(text.code).toBe(0);
    const json = await diagnoseInNs([`tcp://127.0.0.1:${SERVED}`, '--ping', '--timeout=3s', '--output=json']);
    expect(json.code).toBe(0);
    const j = JSON.parse(json.out) as {
      success: boolean;
      phases: { phase: string; status: string; optional?: boolean }[];
    };
    expect(j.success).toBe(true);
    expect(j.phases[0]).toMatchObject({ phase: 'icmp', status: 'failed', optional: true });
  });

  it('--ping=required, not answered: FAILED at icmp, exit 1, JSON success false', async () => {
    const text = await diagnoseInNs([`tcp://127.0.0.1:${SERVED}`, '--ping=required', '--timeout=3s']);
    expect(text.out).toContain('result: FAILED at icmp (timeout)');
    expect(text.out).toMatch(/· connect +not reached/);
    expect(text.code).toBe(1);
    const json = await diagnoseInNs([`tcp://127.0.0.1:${SERVED}`, '--ping=required', '--timeout=3s', '--output=json']);
    expect(json.code).toBe(1);
    expect((JSON.parse(json.out) as { success: boolean }).success).toBe(false);
  });

  it('a dropped SYN with --ping: the whole run ends within --timeout', async () => {
    const r = await diagnoseInNs([`tcp://127.0.0.1:${DROPPED}`, '--ping', '--timeout=3s']);
    expect(r.out).toContain('result: FAILED at connect (timeout)');
    expect(r.code).toBe(1);
    // 3 s for the run, plus a generous allowance for starting node on a busy machine.
    expect(r.ms).toBeLessThan(3000 + 1500);
  });
});
