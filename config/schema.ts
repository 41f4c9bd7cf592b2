// The agent's configuration schema, assembled from each prober's own fragment. The same object
// validates configs at load time and is written to config/portprobe.schema.json for editors.
import { COLLECTORS, PROBERS } from '../exporters';
import type { JsonSchema } from '../exporters/types';
import { DURATION_PATTERN, DURATION_WORDS } from '../exporters/duration';

export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$';
export const LABEL_NAME_PATTERN = '^[a-zA-Z_][a-zA-Z0-9_]*$';

/** Human wording for the patterns ajv reports, keyed by the pattern itself. */
export const PATTERN_WORDS: Record<string, string> = {
  [DURATION_PATTERN]: DURATION_WORDS,
  [NAME_PATTERN]: 'a name of letters, digits and _ . : - (starting with a letter or digit, at most 128)',
  [LABEL_NAME_PATTERN]: 'a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)',
  '^\\$2[abxy]?\\$[0-9]{2}\\$[./A-Za-z0-9]{53}$': 'a bcrypt hash such as `htpasswd -nBC 10 USER` prints',
  '^\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}$':
    'an environment reference such as ${FTP_PASSWORD} (inline secrets are not accepted; or use password_file)',
};

const duration = (description: string): JsonSchema => ({
  type: 'string',
  pattern: DURATION_PATTERN,
  description,
});

export function buildSchema(): JsonSchema {
  const moduleProps: Record<string, JsonSchema> = {
    prober: { enum: Object.keys(PROBERS), description: 'Which prober runs this module.' },
    timeout: duration('Deadline of one probe with this module (default: global.timeout).'),
    ping: {
      type: 'object',
      description:
        'Ping the host before the ladder (the icmp rung). A failed ping is reported in probe_phase_duration_seconds{phase="icmp"} and the probe_icmp_* series, and stops the ladder only when required.',
      additionalProperties: false,
      properties: {
        required: {
          type: 'boolean',
          description: 'Fail the probe at the icmp rung when the host does not answer (default false).',
        },
        packets: { type: 'integer', minimum: 1, maximum: 10, description: 'Echo requests (default 2).' },
      },
    },
  };
  for (const [name, def] of Object.entries(PROBERS)) moduleProps[name] = def.schema;

  const properties: Record<string, JsonSchema> = {
    global: {
      type: 'object',
      description: 'Defaults for every target.',
      additionalProperties: false,
      properties: {
        interval: duration('How often each target is probed (default 30s).'),
        timeout: duration('Default probe deadline (default 10s).'),
        concurrency: {
          type: 'integer',
          minimum: 1,
          maximum: 100000,
          description: 'Most probes running at once (default 256).',
        },
      },
    },
    modules: {
      type: 'object',
      description: 'Named, reusable probe settings; targets refer to them by name.',
      propertyNames: { pattern: NAME_PATTERN },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['prober'],
        properties: moduleProps,
      },
    },
    targets: {
      type: 'array',
      description: 'What to probe, on a schedule.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'module', 'address'],
        properties: {
          name: { type: 'string', pattern: NAME_PATTERN, description: 'Unique name; the `target` label.' },
          module: { type: 'string', description: 'Name of a module under `modules:`.' },
          address: { type: 'string', minLength: 1, maxLength: 1024, description: 'host:port, [v6]:port or host.' },
          interval: duration('Probe interval for this target (default: global.interval).'),
          schedule: {
            type: 'string',
            maxLength: 200,
            description: 'Cron expression (node-cron syntax, seconds optional) instead of an interval.',
          },
          labels: {
            type: 'object',
            description: 'Extra labels on every series of this target.',
            propertyNames: { pattern: LABEL_NAME_PATTERN },
            additionalProperties: { type: 'string', maxLength: 1024 },
          },
        },
      },
    },
  };
  properties.probe_api = {
    type: 'object',
    description: 'The /probe endpoint. By default it runs only targets named in this file.',
    additionalProperties: false,
    properties: {
      allowed_addresses: {
        type: 'array',
        description:
          'Regular expressions (anchored) of addresses /probe?target=ADDRESS&module=M may reach besides the configured targets. Empty (the default) allows none.',
        items: { type: 'string', minLength: 1, maxLength: 512 },
      },
      max_concurrent: {
        type: 'integer',
        minimum: 1,
        maximum: 10000,
        description: 'Most /probe requests running at once; more get 503 (default 16).',
      },
    },
  };
  for (const [name, def] of Object.entries(COLLECTORS)) properties[name] = def.schema;

  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://github.com/portprobe/portprobe/config/portprobe.schema.json',
    title: 'portprobe configuration',
    type: 'object',
    additionalProperties: false,
    properties,
  };
}
