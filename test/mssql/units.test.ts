// Pure parts of the SQL Server prober: version naming, patch advisory, tedious error mapping,
// rows to samples, settings validation and the published schema.
import Ajv2020 from 'ajv/dist/2020';
import { advise, formatBuild, nameVersion, parseBuild } from '../../exporters/mssql/versions';
import {
  MSSQL_SETTINGS_SCHEMA,
  mapTediousError,
  mssqlProber,
  rowsToFacts,
  validateMssql,
  validateMssqlAddress,
  type MssqlSettings,
} from '../../exporters/mssql';
import { Secret } from '../../exporters/secret';

const v = (s: string) => parseBuild(s) as NonNullable<ReturnType<typeof parseBuild>>;

describe('version knowledge', () => {
  test.each([
    ['8.0.194', 'SQL Server 2000 RTM'],
    ['8.0.760', 'SQL Server 2000 SP3'],
    ['8.0.2039', 'SQL Server 2000 SP4'],
    ['8.0.2305', 'SQL Server 2000 SP4+'],
    ['9.0.5000', 'SQL Server 2005 SP4'],
    ['10.0.6000', 'SQL Server 2008 SP4'],
    ['10.50.6000', 'SQL Server 2008 R2 SP3'],
    ['11.0.7001', 'SQL Server 2012 SP4'],
    ['12.0.6024', 'SQL Server 2014 SP3'],
    ['13.0.6300', 'SQL Server 2016 SP3'],
    ['14.0.3456', 'SQL Server 2017 CU31'],
    ['15.0.2000', 'SQL Server 2019 RTM'],
    ['15.0.4355', 'SQL Server 2019 CU25'],
    ['15.0.4360', 'SQL Server 2019 CU25+'],
    ['16.0.4135', 'SQL Server 2022 CU14'],
    ['17.0.1000', 'SQL Server 2025 RTM'],
    ['17.0.1050', 'SQL Server 2025 RTM+'],
    ['15.0.1900', 'SQL Server 2019 pre-release'],
    ['18.0.1000', 'SQL Server (unknown major 18)'],
  ])('%s is %s', (build, name) => {
    expect(nameVersion(v(build)).name).toBe(name);
  });

  test('build text', () => {
    expect(formatBuild(v('8.0.760'))).toBe('8.00.760');
    expect(parseBuild('15.00.4355.3')).toEqual({ major: 15, minor: 0, build: 4355, subbuild: 3 });
    expect(parseBuild('15.0')).toBeUndefined();
    expect(parseBuild('15.0.99999')).toBeUndefined();
  });

  test('advisory rules', () => {
    expect(advise(v('8.0.534'))).toMatchObject({ below: true, refusesRemote: true });
    expect(advise(v('8.0.760'))).toMatchObject({
      below: true,
      refusesRemote: false,
      message: expect.stringMatching(/apply Service Pack 4/),
    });
    expect(advise(v('8.0.2039'))).toEqual({ below: false, message: '', refusesRemote: false });
    expect(advise(v('16.0.4135'))).toMatchObject({ below: false });
    expect(advise(v('16.0.4135'), { '16': '16.0.4145' })).toMatchObject({ below: true });
    expect(advise(v('16.0.4145.1'), { '16': '16.0.4145' })).toMatchObject({ below: false });
    expect(advise(v('15.0.4000'), { '16': '16.0.4145' })).toMatchObject({ below: false });
    expect(advise(v('8.0.2039'), { '8': '8.0.2305' })).toMatchObject({ below: true });
  });
});

describe('tedious errors map to reasons', () => {
  const signal = new AbortController().signal;
  const ctx = { port: 1433, signal };
  const err = (code: string, message = 'x', cause?: unknown) => Object.assign(new Error(message), { code, cause });
  const errno = (code: string) => Object.assign(new Error(code), { code });
  test.each([
    ['ELOGIN', 'login', 'protocol_error'], // no ERROR token came with it: see the next test
    ['EFEDAUTH', 'login', 'auth_failed'],
    ['EENCRYPT', 'login', 'encryption_mismatch'],
    ['ETIMEOUT', 'login', 'timeout'],
    ['ETIMEOUT', 'query', 'query_error'],
    ['EINSTLOOKUP', 'login', 'instance_not_found'],
    ['ETDS', 'login', 'protocol_error'],
    ['EINTERFACENOTSUPP', 'login', 'protocol_error'],
    ['EREQUEST', 'query', 'query_error'],
    ['ECANCEL', 'query', 'query_error'],
    ['ECANCEL', 'login', 'timeout'],
    ['ECLOSE', 'login', 'reset'],
    ['EALREADYCONNECTED', 'login', 'internal_error'],
    ['EINVALIDSTATE', 'query', 'internal_error'],
    ['EPARAM', 'query', 'internal_error'],
  ] as const)('%s during %s -> %s', (code, phase, reason) => {
    expect(mapTediousError(err(code), phase, ctx).reason).toBe(reason);
  });

  test.each([
    ['ECONNREFUSED', 'refused'],
    ['ECONNRESET', 'reset'],
    ['ETIMEDOUT', 'timeout'],
    ['EHOSTUNREACH', 'unreachable'],
    ['ENOTFOUND', 'dns_error'],
  ])('ESOCKET caused by %s -> %s', (cause, reason) => {
    expect(mapTediousError(err('ESOCKET', 'Failed to connect', errno(cause)), 'login', ctx).reason).toBe(reason);
  });

  test('certificate trouble, old servers, the deadline and unknown errors', () => {
    expect(
      mapTediousError(err('ESOCKET', 'self-signed certificate', errno('DEPTH_ZERO_SELF_SIGNED_CERT')), 'login', ctx)
        .reason,
    ).toBe('tls_error');
    const old = { ...ctx, advisory: advise(v('8.0.194')) };
    expect(mapTediousError(err('ESOCKET', 'lost', errno('ECONNRESET')), 'login', old).reason).toBe(
      'version_refuses_remote',
    );
    const aborted = new AbortController();
    aborted.abort();
    expect(mapTediousError(err('ELOGIN'), 'login', { port: 1433, signal: aborted.signal }).reason).toBe('stalled');
    expect(
      mapTediousError(err('ELOGIN'), 'login', {
        ...ctx,
        serverError: { number: 18456, state: 8, class: 14, message: '' },
      }).reason,
    ).toBe('auth_failed');
    expect(mapTediousError(new Error('weird'), 'login', ctx).reason).toBe('internal_error');
    expect(mapTediousError(new Error('weird'), 'query', ctx).reason).toBe('query_error');
    expect(mapTediousError('a string', 'login', ctx).reason).toBe('internal_error');
    const withNumber = mapTediousError(err('ELOGIN', "Login failed for user 'a'."), 'login', {
      ...ctx,
      serverError: { number: 18456, state: 8, class: 14, message: '' },
    });
    expect(withNumber.message).toBe("Login failed for user 'a'. (server error 18456, state 8)");
  });
});

describe('rows to samples', () => {
  const q = { name: 'm', key_labels: ['db'], value_column: 'Size' };
  test('labels from key columns (case-insensitive), values from the value column', () => {
    expect(
      rowsToFacts(q, {
        columns: ['DB', 'size'],
        rows: [
          ['a', 1],
          ['b', '2.5'],
          ['c', BigInt(3)],
          ['d', true],
        ],
      }).facts,
    ).toEqual([
      { metric: 'm', labels: { db: 'a' }, value: 1 },
      { metric: 'm', labels: { db: 'b' }, value: 2.5 },
      { metric: 'm', labels: { db: 'c' }, value: 3 },
      { metric: 'm', labels: { db: 'd' }, value: 1 },
    ]);
    expect(rowsToFacts({ name: 'n', key_labels: [], value_column: 'x' }, { columns: ['x'], rows: [[4]] })).toEqual({
      facts: [{ metric: 'n', value: 4 }],
      skipped: 0,
    });
  });
  test('the NULL rule: a row with a NULL value has no sample and is counted; the other rows stay', () => {
    expect(
      rowsToFacts(q, {
        columns: ['db', 'size'],
        rows: [
          ['a', null],
          ['b', 2],
          ['c', undefined],
          ['d', 4],
        ],
      }),
    ).toEqual({
      facts: [
        { metric: 'm', labels: { db: 'b' }, value: 2 },
        { metric: 'm', labels: { db: 'd' }, value: 4 },
      ],
      skipped: 2,
    });
  });
  test.each([
    [{ columns: ['db'], rows: [['a']] }, /no column Size/],
    [{ columns: ['size'], rows: [[1]] }, /no column db/],
    [
      {
        columns: ['db', 'size'],
        rows: [
          ['a', 1],
          ['b', 'lots'],
        ],
      },
      /column Size of row 2 holds "lots", not a number/,
    ],
    [{ columns: ['db', 'size'], rows: [['a', ' ']] }, /column Size of row 1 holds " ", not a number/],
    [{ columns: ['db', 'size'], rows: [['a', Buffer.from('x')]] }, /row 1 .* not a number/],
    [
      {
        columns: ['db', 'size'],
        rows: [
          ['a', 1],
          ['a', 2],
        ],
      },
      /same key_labels/,
    ],
  ])('bad results are query errors: %#', (rows, message) => {
    expect(() => rowsToFacts(q, rows)).toThrow(message);
  });
  const multi = { name: 'mssql_io', key_labels: ['db'], values: ['Reads', 'writes'], value_label: 'kind' };
  test('several value columns: one sample each, told apart by value_label (the column as configured); NULLs skipped one by one', () => {
    expect(
      rowsToFacts(multi, {
        columns: ['db', 'reads', 'WRITES'],
        rows: [
          ['a', 1, 2],
          ['b', null, 3],
          ['c', null, null],
        ],
      }),
    ).toEqual({
      facts: [
        { metric: 'mssql_io', labels: { db: 'a', kind: 'Reads' }, value: 1 },
        { metric: 'mssql_io', labels: { db: 'a', kind: 'writes' }, value: 2 },
        { metric: 'mssql_io', labels: { db: 'b', kind: 'writes' }, value: 3 },
      ],
      skipped: 3,
    });
  });
  test('several value columns without key labels still carry value_label', () => {
    expect(
      rowsToFacts({ name: 'm', values: ['x', 'y'], value_label: 'col' }, { columns: ['x', 'y'], rows: [[1, '2.5']] })
        .facts,
    ).toEqual([
      { metric: 'm', labels: { col: 'x' }, value: 1 },
      { metric: 'm', labels: { col: 'y' }, value: 2.5 },
    ]);
  });
  test.each([
    [{ columns: ['db', 'reads'], rows: [['a', 1]] }, /no column writes/],
    [
      { columns: ['db', 'reads', 'writes'], rows: [['a', 1, 'many']] },
      /column writes of row 1 holds "many", not a number/,
    ],
    [
      {
        columns: ['db', 'reads', 'writes'],
        rows: [
          ['a', 1, 2],
          ['a', 3, 4],
        ],
      },
      /same key_labels/,
    ],
  ])('several value columns, bad results: %#', (rows, message) => {
    expect(() => rowsToFacts(multi, rows)).toThrow(message);
  });
});

describe('settings', () => {
  const base = mssqlProber.defaults;
  const query = {
    name: 'mssql_x',
    help: 'x',
    type: 'gauge' as const,
    key_labels: [],
    value_column: 'v',
    query: 'select 1 as v',
    timeout: '5s',
  };
  test('valid settings have no errors', () => {
    expect(validateMssql(base)).toEqual([]);
    expect(
      validateMssql({
        ...base,
        username: 'u',
        password: new Secret('p'),
        queries: [query],
        min_build: { '15': '15.0.4355' },
      }),
    ).toEqual([]);
  });
  test.each([
    [{ password: new Secret('p') }, 'username: required when a password or domain is set'],
    [{ username: 'u' }, 'password: a username needs password_file or password: ${VAR}'],
    [{ queries: [query] }, 'queries: need a username and password to log in'],
    [
      { username: 'u', password: new Secret('p'), queries: [{ ...query, name: 'probe_mssql_version_info' }] },
      'queries[0].name: "probe_mssql_version_info" is reserved for the exporter\'s own metrics',
    ],
    [
      { username: 'u', password: new Secret('p'), queries: [query, query] },
      'queries[1].name: "mssql_x" is already used by queries[0]',
    ],
    [
      { username: 'u', password: new Secret('p'), queries: [{ ...query, key_labels: ['target'] }] },
      'queries[0].key_labels[0]: "target" is reserved',
    ],
    [
      { username: 'u', password: new Secret('p'), queries: [{ ...query, key_labels: ['v'] }] },
      'queries[0].value_column: "v" is also a key label',
    ],
    [{ min_build: { '15': '16.0.1000' } }, 'min_build.15: build 16.0.1000 belongs to major version 16'],
    [
      { username: 'u', password: new Secret('p'), queries: [{ ...query, values: ['v'] }] },
      'queries[0]: needs either value_column or values (not both)',
    ],
    [
      { username: 'u', password: new Secret('p'), queries: [{ ...query, value_column: undefined }] },
      'queries[0]: needs either value_column or values (not both)',
    ],
    [
      {
        username: 'u',
        password: new Secret('p'),
        queries: [{ ...query, value_column: undefined, values: ['a', 'b'] }],
      },
      'queries[0].value_label: needed to tell the 2 values apart (e.g. value_label: column)',
    ],
    [
      {
        username: 'u',
        password: new Secret('p'),
        queries: [{ ...query, value_column: undefined, values: ['a', 'a'], value_label: 'c' }],
      },
      'queries[0].values[1]: "a" is listed twice',
    ],
    [
      {
        username: 'u',
        password: new Secret('p'),
        queries: [{ ...query, key_labels: ['db'], value_column: undefined, values: ['db'] }],
      },
      'queries[0].values[0]: "db" is also a key label',
    ],
    [
      {
        username: 'u',
        password: new Secret('p'),
        queries: [{ ...query, value_column: undefined, values: ['a', 'b'], value_label: 'query' }],
      },
      'queries[0].value_label: "query" is reserved',
    ],
    [
      {
        username: 'u',
        password: new Secret('p'),
        queries: [{ ...query, key_labels: ['c'], value_column: undefined, values: ['a', 'b'], value_label: 'c' }],
      },
      'queries[0].value_label: "c" is also a key label',
    ],
    [{ query_packs: ['health'] }, 'query_packs: need a username and password to log in'],
    [
      {
        username: 'u',
        password: new Secret('p'),
        query_packs: ['health'],
        queries: [{ ...query, name: 'mssql_database_state' }],
      },
      'queries[0].name: "mssql_database_state" is a metric of query_packs health',
    ],
    [
      { encrypt: 'strict', trust_server_certificate: true },
      'trust_server_certificate: strict encryption always verifies the certificate; use ca_file for a private or self-signed one',
    ],
  ] as [Partial<MssqlSettings>, string][])('%#: %s', (patch, message) => {
    expect(validateMssql({ ...base, ...patch })).toContain(message);
  });
  test('addresses', () => {
    expect(validateMssqlAddress('db.example.org')).toBeUndefined();
    expect(validateMssqlAddress('db.example.org:2433')).toBeUndefined();
    expect(validateMssqlAddress('[::1]:1433')).toBeUndefined();
    expect(validateMssqlAddress('db:99999')).toMatch(/out of range/);
    expect(validateMssqlAddress('bad host')).toMatch(/not a valid host/);
  });
});

describe('schema (as the config loader compiles it)', () => {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  const check = ajv.compile(MSSQL_SETTINGS_SCHEMA);
  test('accepts a full module and rejects inline passwords and unknown keys', () => {
    expect(
      check({
        instance: 'SQLEXPRESS',
        username: 'monitor',
        password: '${MSSQL_PASSWORD}',
        encrypt: true,
        queries: [{ name: 'a', help: 'b', query: 'c', value_column: 'd', timeout: '2s' }],
        min_build: { '16': '16.0.4135' },
      }),
    ).toBe(true);
    expect(check({ password_file: '/run/secrets/mssql' })).toBe(true);
    expect(check({ encrypt: 'strict' })).toBe(true);
    expect(check({ encrypt: 'yes' })).toBe(false);
    expect(check({ password: 'hunter2' })).toBe(false);
    expect(check({ pasword: 'x' })).toBe(false);
    expect(check({ queries: [{ name: '1bad', help: 'b', query: 'c', value_column: 'd' }] })).toBe(false);
    expect(check({ min_build: { sixteen: '16.0.1' } })).toBe(false);
    expect(
      check({
        query_packs: ['health'],
        queries: [{ name: 'a', help: 'b', query: 'c', values: ['d', 'e'], value_label: 'f', min_interval: '5m' }],
      }),
    ).toBe(true);
    expect(check({ query_packs: ['wealth'] })).toBe(false);
    expect(check({ query_packs: ['health', 'health'] })).toBe(false);
    expect(check({ queries: [{ name: 'a', help: 'b', query: 'c', values: [] }] })).toBe(false);
    expect(check({ queries: [{ name: 'a', help: 'b', query: 'c', values: ['d'], value_label: 'bad-label' }] })).toBe(
      false,
    );
    expect(
      check({ queries: [{ name: 'a', help: 'b', query: 'c', value_column: 'd', min_interval: '5 minutes' }] }),
    ).toBe(false);
  });
  test('every property has a description (the schema is published for editors)', () => {
    const walk = (node: Record<string, unknown>, path: string): string[] => {
      const missing: string[] = [];
      const props = (node.properties ?? {}) as Record<string, Record<string, unknown>>;
      for (const [k, p] of Object.entries(props)) {
        if (typeof p.description !== 'string') missing.push(`${path}.${k}`);
        missing.push(...walk(p, `${path}.${k}`));
        if (p.items) missing.push(...walk(p.items as Record<string, unknown>, `${path}.${k}[]`));
      }
      return missing;
    };
    expect(walk(MSSQL_SETTINGS_SCHEMA as unknown as Record<string, unknown>, 'mssql')).toEqual([]);
  });
});
