// Runs one probe through the agent's runner and prints the result as JSON. Tests start it inside
// network namespaces: `probe-cli.ts '{"prober":"tcp","address":"127.0.0.1:9","timeoutMs":500}'`.
import { performance } from 'node:perf_hooks';
import { PROBERS } from '../../exporters';
import { mergeDefaults } from '../../config/load';
import { runProbe } from '../../agent/runner';
import { silentLogger } from './context';

interface Args {
  prober: string;
  address: string;
  timeoutMs: number;
  settings?: Record<string, unknown>;
  ping?: { required: boolean; packets: number };
}

async function cli(): Promise<void> {
  const args = JSON.parse(process.argv[2]) as Args;
  const def = PROBERS[args.prober];
  const t0 = performance.now();
  const result = await runProbe({
    target: { name: 'netns-target', address: args.address, labels: {} },
    module: {
      name: 'netns',
      prober: args.prober,
      timeoutSeconds: args.timeoutMs / 1000,
      ping: args.ping,
      settings: mergeDefaults(def.defaults as Record<string, unknown>, args.settings ?? {}),
    },
    logger: silentLogger,
  });
  process.stdout.write(`${JSON.stringify({ result, elapsedMs: performance.now() - t0 })}\n`);
}

void cli();
