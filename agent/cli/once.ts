// --once: probe every configured target (and run the enabled collectors) once, print the
// exposition to stdout and exit 0. Suitable for node_exporter's textfile collector.
import { Agent, type BuildInfo } from '../agent';
import type { Flags } from '../flags';
import type { AgentLogger } from '../logger';

export async function runOnce(flags: Flags, logger: AgentLogger, build: BuildInfo): Promise<number> {
  const agent = new Agent({
    configFile: flags.configFile,
    logger,
    build,
    shard: { index: flags.shardIndex, count: flags.shardCount },
  });
  const loaded = agent.reload();
  if (!loaded.ok) {
    process.stderr.write(`${loaded.errors.join('\n')}\n`);
    await agent.stop();
    return 2;
  }
  await agent.scheduler.runAllOnce();
  await agent.stop();
  // Only probe results and collector series: process metrics would clash with node_exporter's own.
  process.stdout.write(agent.store.exposition());
  return 0;
}
