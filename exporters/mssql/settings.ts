// Settings of `modules.<name>.mssql`: type, JSON Schema (published for editors), defaults and
// the semantic checks the schema cannot express.
import { IP_PROTOCOL_PROPERTIES, parseHostPort, type IpPreference } from '../net';
import { SECRET_REF_PATTERN, type Secret } from '../secret';
import { DURATION_PATTERN } from '../duration';
import { MAX_INSTANCE_NAME_BYTES } from './browser';
import { parseBuild } from './versions';
import { MSSQL_METRICS } from './metrics';
import { QUERY_PACKS, packMetricNames, type QueryPackName } from './pack';

export interface MssqlQuery {
  /** Metric name of the gauge (or counter) this query feeds. */
  name: string;
  help: string;
  /** Default gauge. */
  type?: 'gauge' | 'counter';
  /** Result columns that become labels, one series per row. */
  key_labels?: string[];
  /** Result column holding the sample value (or `values`). */
  value_column?: string;
  /** Several result columns holding sample values, one series each; `value_label` tells them apart. */
  values?: string[];
  /** Label whose value is the column name of each of `values` (required with more than one). */
  value_label?: string;
  query: string;
  /** Duration text, e.g. "5s" (default 5s); bounded by the probe's own deadline. */
  timeout?: string;
  /** Duration text: results younger than this are exported again instead of running the query. */
  min_interval?: string;
}

export interface MssqlSettings {
  preferred_ip_protocol: IpPreference;
  ip_protocol_fallback: boolean;
  /** Named instance, resolved to a TCP port through the SQL Server Browser. */
  instance?: string;
  browser_port: number;
  username?: string;
  /** Resolved by the config loader from `password_file` or a `${ENV}` reference. */
  password?: Secret;
  password_file?: string;
  /** Windows domain: switches login to NTLM. */
  domain?: string;
  database?: string;
  /** true: TLS inside TDS after PRELOGIN; 'strict': TDS 8, TLS before any TDS byte. */
  encrypt: boolean | 'strict';
  trust_server_certificate: boolean;
  /** Name expected in the server certificate (default: the target host when it is a name). */
  server_name?: string;
  /** PEM file of CA certificates that sign the server's certificate. */
  ca_file?: string;
  queries: MssqlQuery[];
  /** Built-in query packs run on the probe's login, e.g. ["health"]. */
  query_packs: QueryPackName[];
  /** Minimum build per major version, e.g. {"15": "15.0.4355", "16": "16.0.4135"}. */
  min_build: Record<string, string>;
}

const METRIC_NAME = '^[a-zA-Z_:][a-zA-Z0-9_:]*$';
const LABEL_NAME = '^[a-zA-Z_][a-zA-Z0-9_]*$';
const ENV_REF = SECRET_REF_PATTERN;

export const MSSQL_SETTINGS_SCHEMA = {
  type: 'object',
  description: 'SQL Server probe: Browser, PRELOGIN version and encryption, optional TLS, login and queries.',
  additionalProperties: false,
  properties: {
    ...IP_PROTOCOL_PROPERTIES,
    instance: {
      type: 'string',
      minLength: 1,
      maxLength: MAX_INSTANCE_NAME_BYTES,
      pattern: '^[A-Za-z0-9_$#-]+$',
      description: 'Named instance (e.g. SQLEXPRESS), resolved to a port through the SQL Server Browser on UDP.',
    },
    browser_port: {
      type: 'integer',
      minimum: 1,
      maximum: 65535,
      description: 'UDP port of the SQL Server Browser (default 1434).',
    },
    username: {
      type: 'string',
      minLength: 1,
      maxLength: 128,
      description: 'Login name. Without it the probe stops after PRELOGIN (and TLS): no credentials needed.',
    },
    password_file: { type: 'string', minLength: 1, description: 'File holding the password (one line).' },
    password: {
      type: 'string',
      pattern: ENV_REF,
      description:
        'Environment reference holding the password, such as ${MSSQL_PASSWORD}; inline passwords are rejected.',
    },
    domain: {
      type: 'string',
      minLength: 1,
      maxLength: 255,
      description: 'Windows domain: log in with NTLM as DOMAIN\\username instead of SQL authentication.',
    },
    database: {
      type: 'string',
      minLength: 1,
      maxLength: 128,
      description: "Database to log in to (default: the login's default).",
    },
    encrypt: {
      enum: [true, false, 'strict'],
      description:
        'Encrypt the connection: true for TLS negotiated in PRELOGIN (needed when the server forces encryption), ' +
        'strict for TDS 8 (TLS first, as SQL Server 2022 "Force Strict Encryption" requires; the certificate is always verified).',
    },
    trust_server_certificate: {
      type: 'boolean',
      description: 'Accept the server certificate without verifying it (self-signed certificates).',
    },
    server_name: { type: 'string', minLength: 1, description: 'Name expected in the server certificate.' },
    ca_file: {
      type: 'string',
      minLength: 1,
      description: 'PEM file of CA certificates that sign the server certificate.',
    },
    queries: {
      type: 'array',
      maxItems: 50,
      description: 'Custom queries whose result columns become metrics, one series per row.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'help', 'query'],
        properties: {
          name: {
            type: 'string',
            pattern: METRIC_NAME,
            maxLength: 200,
            description: 'Metric name, e.g. mssql_database_size_bytes.',
          },
          help: { type: 'string', minLength: 1, maxLength: 500, description: 'HELP text of the metric.' },
          type: { enum: ['gauge', 'counter'], description: 'Metric type (default gauge).' },
          key_labels: {
            type: 'array',
            maxItems: 10,
            items: { type: 'string', pattern: LABEL_NAME },
            description: 'Columns whose values become labels of the same name.',
          },
          value_column: { type: 'string', minLength: 1, description: 'Column holding the numeric value (or values).' },
          values: {
            type: 'array',
            minItems: 1,
            maxItems: 20,
            items: { type: 'string', minLength: 1 },
            description: 'Several columns holding numeric values, one series each, told apart by value_label.',
          },
          value_label: {
            type: 'string',
            pattern: LABEL_NAME,
            description: 'Label holding the column name of each of values (required with more than one).',
          },
          query: { type: 'string', minLength: 1, maxLength: 10000, description: 'The SQL batch to run.' },
          timeout: {
            type: 'string',
            pattern: DURATION_PATTERN,
            description: 'Deadline of this query (default 5s), within the probe timeout.',
          },
          min_interval: {
            type: 'string',
            pattern: DURATION_PATTERN,
            description:
              'Run the query at most this often; probes in between export its last result again (default: every probe).',
          },
        },
      },
    },
    query_packs: {
      type: 'array',
      uniqueItems: true,
      items: { enum: [...QUERY_PACKS] },
      description:
        'Built-in queries run on the same login: health (connections, database state, backups, log, files, blocking, Agent jobs, availability groups, counters).',
    },
    min_build: {
      type: 'object',
      description:
        'Minimum build per major version ("15": "15.0.4355"); older builds set probe_mssql_patch_advisory 1.',
      additionalProperties: false,
      patternProperties: {
        '^[0-9]{1,2}$': {
          type: 'string',
          pattern: '^[0-9]+\\.[0-9]+\\.[0-9]+(\\.[0-9]+)?$',
          description: 'A build such as 15.0.4355.',
        },
      },
    },
  },
} as const;

const RESERVED_LABELS = new Set(['target', 'module', 'query', 'instance', 'sql_instance', 'job', 'le', 'quantile']);

export const MSSQL_DEFAULTS: MssqlSettings = {
  preferred_ip_protocol: 'ip4',
  ip_protocol_fallback: true,
  browser_port: 1434,
  encrypt: false,
  trust_server_certificate: false,
  queries: [],
  query_packs: [],
  min_build: {},
};

export function validateMssql(s: MssqlSettings): string[] {
  const errors: string[] = [];
  if (s.username === undefined && (s.password !== undefined || s.domain !== undefined)) {
    errors.push('username: required when a password or domain is set');
  }
  if (s.username !== undefined && s.password === undefined) {
    errors.push('password: a username needs password_file or password: ${VAR}');
  }
  if (s.encrypt === 'strict' && s.trust_server_certificate) {
    errors.push(
      'trust_server_certificate: strict encryption always verifies the certificate; use ca_file for a private or self-signed one',
    );
  }
  if (s.queries.length > 0 && s.username === undefined) {
    errors.push('queries: need a username and password to log in');
  }
  const packs = s.query_packs ?? [];
  if (packs.length > 0 && s.username === undefined) {
    errors.push('query_packs: need a username and password to log in');
  }
  const packNames = packMetricNames(packs);
  const builtin = new Set(MSSQL_METRICS.map((m) => m.name));
  const seen = new Map<string, number>();
  s.queries.forEach((q, i) => {
    if (builtin.has(q.name) || q.name.startsWith('probe_') || q.name.startsWith('portprobe_')) {
      errors.push(`queries[${i}].name: "${q.name}" is reserved for the exporter's own metrics`);
    }
    if (packNames.has(q.name))
      errors.push(`queries[${i}].name: "${q.name}" is a metric of query_packs ${packs.join(', ')}`);
    const prev = seen.get(q.name);
    if (prev !== undefined) errors.push(`queries[${i}].name: "${q.name}" is already used by queries[${prev}]`);
    seen.set(q.name, i);
    const labels = q.key_labels ?? [];
    labels.forEach((k, j) => {
      if (RESERVED_LABELS.has(k)) errors.push(`queries[${i}].key_labels[${j}]: "${k}" is reserved`);
      if (labels.indexOf(k) !== j) errors.push(`queries[${i}].key_labels[${j}]: "${k}" is listed twice`);
    });
    if ((q.value_column === undefined) === (q.values === undefined)) {
      errors.push(`queries[${i}]: needs either value_column or values (not both)`);
    }
    const values = q.values ?? (q.value_column !== undefined ? [q.value_column] : []);
    const field = q.values ? 'values' : 'value_column';
    values.forEach((v, j) => {
      const at = q.values ? `${field}[${j}]` : field;
      if (labels.includes(v)) errors.push(`queries[${i}].${at}: "${v}" is also a key label`);
      if (values.indexOf(v) !== j) errors.push(`queries[${i}].${at}: "${v}" is listed twice`);
    });
    if (values.length > 1 && q.value_label === undefined) {
      errors.push(
        `queries[${i}].value_label: needed to tell the ${values.length} values apart (e.g. value_label: column)`,
      );
    }
    if (q.value_label !== undefined) {
      if (RESERVED_LABELS.has(q.value_label)) errors.push(`queries[${i}].value_label: "${q.value_label}" is reserved`);
      if (labels.includes(q.value_label))
        errors.push(`queries[${i}].value_label: "${q.value_label}" is also a key label`);
    }
  });
  for (const [major, build] of Object.entries(s.min_build ?? {})) {
    const b = parseBuild(build);
    if (!b) errors.push(`min_build.${major}: "${build}" is not a build number such as 15.0.4355`);
    else if (String(b.major) !== major)
      errors.push(`min_build.${major}: build ${build} belongs to major version ${b.major}`);
  }
  return errors;
}

export function validateMssqlAddress(address: string): string | undefined {
  const hp = parseHostPort(address, 1433);
  return typeof hp === 'string' ? hp : undefined;
}
