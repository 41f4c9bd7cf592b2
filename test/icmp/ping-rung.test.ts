import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseConfig, ConfigError, mergeDefaults } from '../../config/load';
import { runProbe } from '../../agent/runner';
import { PROBERS } from '../../exporters';
import type { ProbeResult } from '../../exporters/types';
import { silentLogger } from '../helpers/context';
import { listen } from '../helpers/net';
import { createNetns, tsNodeArgv } from '../helpers/netns';

jest.setTimeout(30000);

describe('the optional ping rung before a ladder', () => {
  it('is configured per module, and not on icmp modules', () => {
    const cfg = parseConfig(
      'modules: {m: {prober: tcp, ping: {required: true}}, n: {prober: ftp, ping: {}}}\n',
      'p.yml',
    );
    expect(cfg.modules.get('m')?.ping).toEqual({ required: true, packets: 2 });
    expect(cfg.modules.get('n')?.ping).toEqual({ required: false, packets: 2 });
    expect(() => parseConfig('modules: {i: {prober: icmp, ping: {}}}\n', 'p.yml')).toThrow(ConfigError);
  });

  it('pings first, then climbs the ladder', async () => {
    const l = await listen();
    try {
      const r = await runProbe({
        target: { name: 't', address: `127.0.0.1:${l.port}`, labels: {} },
        module: {
          name: 'm',
          prober: 'tcp',
          timeoutSeconds: 5,
          ping: { required: false, packets: 2 },
          settings: mergeDefaults(PROBERS.tcp.defaults as Record<string, unknown>, {}),
        },
        logger: silentLogger,
      });
      expect(r.success).toBe(true);
      expect(r.phases.map((p) => p.phase)).toEqual(['icmp', 'resolve', 'connect']);
      expect(r.facts).toContainEqual({ metric: 'probe_icmp_packets_received', value: 2 });
    } finally {
      await l.close();
    }
  });

  describe('inside a namespace that drops ICMP but serves TCP', () => {
    const ns = createNetns('pingrung');
    beforeAll(() => {
      execFileSync('ip', ['netns', 'exec', ns.name, 'nft', '-f', '-'], {
        input:
          'table inet pp {\n chain out {\n  type filter hook output priority 0; policy accept;\n  icmp type echo-request drop\n }\n}\n',
      });
    });
    afterAll(() => ns.remove());

    const probeInNs = async (required: boolean): Promise<ProbeResult> => {
      const cli = tsNodeArgv(path.join(__dirname, '..', 'helpers', 'probe-cli.ts'), [
        JSON.stringify({ prober: 'tcp', address: '127.0.0.1:7001', timeoutMs: 3000, ping: { required, packets: 1 } }),
      ])
        .map((a) => `'${a}'`)
        .join(' ');
      const script = `${process.execPath} -e "require('net').createServer(()=>{}).listen(7001,'127.0.0.1')" & sleep 0.5; ${cli}; kill %1`;
      const out = await ns.exec(['bash', '-c', script]);
      return (JSON.parse(out.stdout) as { result: ProbeResult }).result;
    };

    it('not required: the ping fails, is reported, and the service still counts as up', async () => {
      const r = await probeInNs(false);
      expect(r.success).toBe(true);
      expect(r.phases[0].phase).toBe('icmp');
      expect(r.facts).toContainEqual({ metric: 'probe_icmp_packets_received', value: 0 });
      expect(r.details?.ping).toMatch(/^no answer/);
    });

    it('required: the ladder stops at the icmp rung', async () => {
      const r = await probeInNs(true);
      expect(r.success).toBe(false);
      expect(r.failure).toMatchObject({ phase: 'icmp', reason: 'timeout' });
      expect(r.phases.map((p) => p.phase)).toEqual(['icmp']);
    });
  });
});
