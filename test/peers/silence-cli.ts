// Runs series of probes through the agent's runner and prints, per series, each probe's failing
// rung, reason and first line of advice as JSON. Tests start it inside network namespaces:
//   silence-cli.ts '[{"prober":"tcp","address":"127.0.0.1:9","timeoutMs":300,"count":20}]'
import { PROBERS } from '../../exporters';
import { adviceFor } from '../../exporters/advice';
import { mergeDefaults } from '../../config/load';
import { runProbe } from '../../agent/runner';
import { silentLogger } from '../helpers/context';

export interface Series {
  prober: string;
  address: string;
  timeoutMs: number;
  count: number;
  settings?: Record<string, unknown>;
}

export interface Verdict {
  phase?: string;
  reason?: string;
  advice?: string;
}

async function cli(): Promise<void> {
  const all = JSON.parse(process.argv[2]) as Series[];
  const out: Verdict[][] = [];
  for (const s of all) {
    const def = PROBERS[s.prober];
    const verdicts: Verdict[] = [];
    for (let i = 0; i < s.count; i++) {
      const result = await runProbe({
        target: { name: 'netns-target', address: s.address, labels: {} },
        module: {
          name: 'netns',
          prober: s.prober,
          timeoutSeconds: s.timeoutMs / 1000,
          settings: mergeDefaults(def.defaults as Record<string, unknown>, s.settings ?? {}),
        },
        logger: silentLogger,
      });
      const f = result.failure;
      verdicts.push(f ? { phase: f.phase, reason: f.reason, advice: adviceFor(s.prober, f) } : {});
    }
    out.push(verdicts);
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

void cli();
