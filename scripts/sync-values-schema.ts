// Copies the agent's configuration schema (config/schema.ts, the same one the agent validates
// with) into the chart's values.schema.json, so `helm install` rejects a bad `config:` or
// `daemonset.config:` before a pod starts. chart.test.ts fails while the copy is stale.
//
//   npm run schema   (or: npx ts-node --transpile-only scripts/sync-values-schema.ts)
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema } from '../config/schema';

export const VALUES_SCHEMA = path.resolve(__dirname, '..', 'helm', 'portprobe', 'values.schema.json');

/** The agent's schema as a draft-07 definition: no $schema, $id or title of its own. */
export function agentConfigDefinition(): Record<string, unknown> {
  const { $schema: _s, $id: _i, title: _t, ...rest } = buildSchema() as Record<string, unknown>;
  return rest;
}

export function syncedValuesSchema(text: string): string {
  type Obj = Record<string, unknown>;
  const schema = JSON.parse(text) as Obj & {
    definitions?: Obj;
    properties: { config: Obj; daemonset: { properties: { config: Obj } } };
  };
  schema.definitions = { ...(schema.definitions ?? {}), portprobeConfig: agentConfigDefinition() };
  schema.properties.config = {
    description: "The agent's configuration file, as config/portprobe.schema.json in the repository defines it.",
    $ref: '#/definitions/portprobeConfig',
  };
  schema.properties.daemonset.properties.config = {
    description: "The DaemonSet's agent configuration (same schema; sockets.procfs is set by the chart).",
    $ref: '#/definitions/portprobeConfig',
  };
  return `${JSON.stringify(schema, null, 2)}\n`;
}

if (require.main === module) {
  writeFileSync(VALUES_SCHEMA, syncedValuesSchema(readFileSync(VALUES_SCHEMA, 'utf8')));
  process.stdout.write(`updated ${VALUES_SCHEMA}\n`);
}
