// The TDS test peer is only trusted because independent clients accept it: tedious, FreeTDS
// tsql and nmap's ms-sql-info. The Browser responder is checked byte for byte against MC-SQLR's
// own example.
import dgram from 'node:dgram';
import { Connection, Request } from 'tedious';
import { startTdsPeer, type TdsPeer, type PeerEncryption, type QueryAnswer } from '../peers/tds/server';
import { DENIED_SERVER_STATE } from '../peers/tds/health';
import { startBrowserPeer } from '../peers/tds/browser';
import { selfSignedCert } from '../peers/tds/cert';
import { patchedNmapDatadir, run } from './tools';

interface TediousOutcome {
  error?: { code?: string; message: string };
  rows: unknown[][];
  errorNumbers: number[];
  /** tedious's type names and lengths of the result's columns. */
  types: string[];
}

function tedious(
  peer: TdsPeer,
  o: { user?: string; password?: string; encrypt?: boolean | 'strict'; sql?: string; batch?: boolean; domain?: string },
): Promise<TediousOutcome> {
  return new Promise((resolve) => {
    const out: TediousOutcome = { rows: [], errorNumbers: [], types: [] };
    const authentication = o.domain
      ? { type: 'ntlm' as const, options: { userName: o.user ?? 'sa', password: o.password ?? 'pw', domain: o.domain } }
      : { type: 'default' as const, options: { userName: o.user ?? 'sa', password: o.password ?? 'pw' } };
    const c = new Connection({
      server: '127.0.0.1',
      authentication,
      options: {
        port: peer.port,
        encrypt: o.encrypt ?? false,
        trustServerCertificate: true,
        // strict mode always verifies the certificate: trust the peer's own.
        cryptoCredentialsDetails: { ca: selfSignedCert().cert },
        connectTimeout: 5000,
        requestTimeout: 5000,
      },
    });
    c.on('errorMessage', (m) => out.errorNumbers.push(m.number));
    c.on('error', () => undefined);
    c.on('connect', (err) => {
      if (err) {
        out.error = { code: (err as { code?: string }).code, message: err.message };
        c.close();
        resolve(out);
        return;
      }
      const r = new Request(o.sql ?? 'select @@version', (qerr) => {
        if (qerr) out.error = { code: (qerr as { code?: string }).code, message: qerr.message };
        c.close();
        resolve(out);
      });
      r.on('row', (cols: { value: unknown }[]) => out.rows.push(cols.map((x) => x.value)));
      r.on('columnMetadata', (cols) => {
        out.types = (Array.isArray(cols) ? cols : Object.values(cols)).map(
          (x: { type: { name: string }; dataLength?: number }) => `${x.type.name}(${x.dataLength})`,
        );
      });
      if (o.batch) c.execSqlBatch(r);
      else c.execSql(r);
    });
    c.connect();
  });
}

const VERSION = { major: 15, minor: 0, build: 4355, subbuild: 3 };

/** The column widths the health pack's answers use (tinyint state, int counts, bigint counters), NULLs included. */
const TYPED_SQL = 'select state, small, n, big, ratio, name from typed';
const TYPED: QueryAnswer = {
  columns: [
    { name: 'state', type: 'tinyint' },
    { name: 'small', type: 'smallint' },
    { name: 'n', type: 'int32' },
    { name: 'big', type: 'int' },
    { name: 'ratio', type: 'float' },
    { name: 'name', type: 'nvarchar' },
  ],
  rows: [
    [6, -300, 2147483647, 8493465600, 0.5, 'archive'],
    [null, null, null, null, null, null],
  ],
};

describe('TDS test peer accepted by tedious', () => {
  const peers: TdsPeer[] = [];
  const peer = async (encryption: PeerEncryption): Promise<TdsPeer> => {
    const p = await startTdsPeer({
      encryption,
      version: VERSION,
      users: { sa: 'pw' },
      queries: {
        'select name, size_mb from dbs': {
          columns: [
            { name: 'name', type: 'nvarchar' },
            { name: 'size_mb', type: 'float' },
          ],
          rows: [
            ['master', 6.5],
            ['tempdb', 16],
          ],
        },
        [TYPED_SQL]: TYPED,
        'select cntr_value from sys.dm_os_performance_counters': DENIED_SERVER_STATE,
      },
    });
    peers.push(p);
    return p;
  };
  afterAll(async () => Promise.all(peers.map((p) => p.close())));

  test('plain login, select @@version (sp_executesql) and a custom query (batch)', async () => {
    const p = await peer('off');
    const v = await tedious(p, {});
    expect(v.error).toBeUndefined();
    expect(String(v.rows[0][0])).toMatch(/^Microsoft SQL Server 2019 - 15\.0\.4355\.3 /);
    const q = await tedious(p, { sql: 'SELECT name, size_mb FROM dbs;', batch: true });
    expect(q.error).toBeUndefined();
    expect(q.rows).toEqual([
      ['master', 6.5],
      ['tempdb', 16],
    ]);
    expect(p.batches).toContain('select name, size_mb from dbs');
  });

  test('encryption required: TLS inside TDS, then login and query', async () => {
    const p = await peer('required');
    const v = await tedious(p, { encrypt: true });
    expect(v.error).toBeUndefined();
    expect(v.rows).toHaveLength(1);
    const refused = await tedious(p, { encrypt: false });
    expect(refused.error?.code).toBe('EENCRYPT');
  });

  test('TDS 8 strict: TLS (ALPN tds/8.0) before PRELOGIN, then login and query', async () => {
    const p = await peer('strict');
    const v = await tedious(p, { encrypt: 'strict' });
    expect(v.error).toBeUndefined();
    expect(String(v.rows[0][0])).toMatch(/^Microsoft SQL Server 2019/);
  });

  test('wrong password: ERROR 18456 and ELOGIN', async () => {
    const p = await peer('off');
    const v = await tedious(p, { password: 'wrong' });
    expect(v.error).toMatchObject({ code: 'ELOGIN', message: "Login failed for user 'sa'." });
    expect(v.errorNumbers).toEqual([18456]);
  });

  test('integrated (NTLM) login is refused with 18452 like a SQL-auth-only server', async () => {
    const p = await peer('off');
    const v = await tedious(p, { domain: 'CORP' });
    expect(v.error?.code).toBe('ELOGIN');
    expect(v.errorNumbers).toEqual([18452]);
  });

  test('tinyint, smallint, int, bigint, float and nvarchar columns, and a row of NULLs', async () => {
    const p = await peer('off');
    const q = await tedious(p, { sql: TYPED_SQL, batch: true });
    expect(q.error).toBeUndefined();
    // Nullable integers travel as INTN of 1, 2, 4 and 8 bytes, as SQL Server sends tinyint, smallint, int and bigint.
    expect(q.types).toEqual(['IntN(1)', 'IntN(2)', 'IntN(4)', 'IntN(8)', 'FloatN(8)', 'NVarChar(8000)']);
    // tedious returns bigint as text.
    expect(q.rows).toEqual([
      [6, -300, 2147483647, '8493465600', 0.5, 'archive'],
      [null, null, null, null, null, null],
    ]);
  });

  test("a denied permission: both of SQL Server's errors (300, then 297) reach the client", async () => {
    const p = await peer('off');
    const q = await tedious(p, { sql: 'select cntr_value from sys.dm_os_performance_counters', batch: true });
    expect(q.errorNumbers).toEqual([300, 297]);
    expect(q.error).toBeDefined();
  });

  test('unknown query: server error 208 surfaces as a request error', async () => {
    const p = await peer('off');
    const v = await tedious(p, { sql: 'select * from nowhere', batch: true });
    expect(v.error?.code).toBe('EREQUEST');
    expect(v.error?.message).toMatch(/Invalid object name/);
  });
});

describe('TDS test peer accepted by FreeTDS tsql', () => {
  let p: TdsPeer;
  afterEach(async () => p?.close());
  const tsql = (password: string): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    run('tsql', ['-H', '127.0.0.1', '-p', String(p.port), '-U', 'sa', '-P', password], {
      input: 'select @@version\ngo\nexit\n',
      env: { TDSVER: 'auto' },
    });

  test.each(['off', 'required', 'not_supported'] as PeerEncryption[])(
    'encryption %s: logs in and runs a query',
    async (encryption) => {
      p = await startTdsPeer({ encryption, version: VERSION, users: { sa: 'pw' } });
      const r = await tsql('pw');
      expect(r.stdout).toContain('Microsoft SQL Server 2019 - 15.0.4355.3');
      expect(r.stdout).toContain('(1 row affected)');
      expect(p.logins).toEqual(['sa']);
      expect(p.batches).toContain('select @@version');
    },
  );

  test('tinyint, smallint, int, bigint, float and nvarchar columns, and a row of NULLs', async () => {
    p = await startTdsPeer({ version: VERSION, users: { sa: 'pw' }, queries: { [TYPED_SQL]: TYPED } });
    const r = await run('tsql', ['-H', '127.0.0.1', '-p', String(p.port), '-U', 'sa', '-P', 'pw'], {
      input: `${TYPED_SQL}\ngo\nexit\n`,
      env: { TDSVER: 'auto' },
    });
    const lines = r.stdout.split('\n').map((l) => l.trim().split('\t'));
    const header = lines.findIndex((l) => l[0].endsWith('state') && l[5] === 'name');
    expect(header).toBeGreaterThanOrEqual(0);
    expect(lines[header + 1]).toEqual(['6', '-300', '2147483647', '8493465600', '0.5', 'archive']);
    expect(lines[header + 2]).toEqual(['NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL']);
    expect(r.stdout).toContain('(2 rows affected)');
  });

  test("a denied permission: tsql prints both of SQL Server's messages, 300 then 297", async () => {
    const sql = 'select cntr_value from sys.dm_os_performance_counters';
    p = await startTdsPeer({ version: VERSION, users: { sa: 'pw' }, queries: { [sql]: DENIED_SERVER_STATE } });
    const r = await run('tsql', ['-H', '127.0.0.1', '-p', String(p.port), '-U', 'sa', '-P', 'pw'], {
      input: `${sql}\ngo\nexit\n`,
      env: { TDSVER: 'auto' },
    });
    const out = `${r.stdout}${r.stderr}`;
    const m300 = out.indexOf('Msg 300 (severity 14');
    const m297 = out.indexOf('Msg 297 (severity 16');
    expect(m300).toBeGreaterThanOrEqual(0);
    expect(m297).toBeGreaterThan(m300);
    expect(out).toContain("VIEW SERVER STATE permission was denied on object 'server', database 'master'.");
  });

  test('wrong password: login refused', async () => {
    p = await startTdsPeer({ version: VERSION, users: { sa: 'pw' } });
    const r = await tsql('nope');
    expect(`${r.stdout}${r.stderr}`).toMatch(/Login failed for user 'sa'/);
    expect(p.batches).toEqual([]);
  });
});

describe('TDS test peer accepted by nmap ms-sql-info', () => {
  test('reads the version the peer advertises in PRELOGIN', async () => {
    const p = await startTdsPeer({ version: { major: 16, minor: 0, build: 4135, subbuild: 4 } });
    const data = patchedNmapDatadir();
    try {
      const r = await run(
        'nmap',
        [
          '--datadir',
          data.dir,
          '-Pn',
          '-n',
          '-p',
          String(p.port),
          '--script',
          'ms-sql-info',
          '--script-args',
          `mssql.instance-port=${p.port}`,
          '127.0.0.1',
        ],
        { timeoutMs: 60000 },
      );
      expect(r.stdout).toContain('number: 16.00.4135.04');
      expect(r.stdout).toContain('Product: Microsoft SQL Server 2022');
    } finally {
      data.cleanup();
      await p.close();
    }
  });
});

describe('Browser responder', () => {
  const ask = (port: number, req: Buffer): Promise<Buffer | undefined> =>
    new Promise((resolve) => {
      const s = dgram.createSocket('udp4');
      const t = setTimeout(() => {
        s.close();
        resolve(undefined);
      }, 300);
      s.on('message', (m) => {
        clearTimeout(t);
        s.close();
        resolve(m);
      });
      s.send(req, port, '127.0.0.1');
    });

  test('answers CLNT_UCAST_INST exactly like MC-SQLR 4.2, and stays silent for hidden or unknown instances', async () => {
    const b = await startBrowserPeer({
      serverName: 'ILSUNG1',
      instances: [
        { name: 'YUKONSTD', tcpPort: 57137, version: '9.00.1399.06' },
        { name: 'SECRET', tcpPort: 2433, hidden: true },
      ],
    });
    try {
      // MC-SQLR 4.2, the CLNT_UCAST_INST response, as printed in the specification.
      const spec = Buffer.from(
        `05 58 00 53 65 72 76 65 72 4e 61 6d 65 3b 49 4c 53 55 4e 47 31 3b 49 6e 73 74 61 6e 63 65 4e 61
         6d 65 3b 59 55 4b 4f 4e 53 54 44 3b 49 73 43 6c 75 73 74 65 72 65 64 3b 4e 6f 3b 56 65 72 73 69
         6f 6e 3b 39 2e 30 30 2e 31 33 39 39 2e 30 36 3b 74 63 70 3b 35 37 31 33 37 3b 3b`.replace(/\s+/g, ''),
        'hex',
      );
      const answer = await ask(b.port, Buffer.from('0459554b4f4e53544400', 'hex'));
      expect(answer?.toString('hex')).toBe(spec.toString('hex'));
      expect(await ask(b.port, Buffer.from('0453454352455400', 'hex'))).toBeUndefined();
      expect(await ask(b.port, Buffer.from('044e4f4e4500', 'hex'))).toBeUndefined();
      const list = await ask(b.port, Buffer.from([0x03]));
      expect(list?.toString('latin1')).not.toContain('SECRET');
    } finally {
      await b.close();
    }
  });
});
