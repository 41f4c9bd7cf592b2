// A server that answers PRELOGIN validly and then sends token bytes tedious cannot parse must
// fail the probe with protocol_error at the rung it was on, and never end the process.
import { mssqlProber } from '../../exporters/mssql';
import { Secret } from '../../exporters/secret';
import type { ProbeResult } from '../../exporters/types';
import { runProber } from '../helpers/context';
import { cleanupsAfterEach, tdsPeers } from '../helpers/mssql';
import { COLLATION, done, DoneStatus, envChangeString } from '../peers/tds/tokens';
import { validLoginStream } from '../peers/tds/hostile';
import { containTokenErrors } from '../../exporters/mssql/contain';

const cleanups = cleanupsAfterEach();
const peer = tdsPeers(cleanups);

const creds = { username: 'monitor', password: new Secret('s3cr3t-pw') };
const probe = (port: number): Promise<ProbeResult> => runProber(mssqlProber, `127.0.0.1:${port}`, creds, 3000);

/** 0x10 is no token type of MS-TDS 2.2.7. */
const UNKNOWN_TOKEN = Buffer.from([0x10, 0x00, 0x00, 0x00]);

describe('token streams tedious cannot parse', () => {
  test('LOGIN7 answered with an unknown token: protocol_error at login', async () => {
    const p = await peer({ loginReply: () => UNKNOWN_TOKEN });
    const r = await probe(p.port);
    expect(r.failure).toMatchObject({ phase: 'login', reason: 'protocol_error' });
    expect(r.failure?.message).toMatch(/Unknown type: 16/);
    expect(p.logins).toEqual(['(hostile)']);
  });

  test('a SQL batch answered with an unknown token after a good login: protocol_error at query', async () => {
    const p = await peer({ batchReply: (sql) => (sql === 'select @@version' ? UNKNOWN_TOKEN : undefined) });
    const r = await probe(p.port);
    expect(r.failure).toMatchObject({ phase: 'query', reason: 'protocol_error' });
    expect(r.failure?.message).toMatch(/Unknown type: 16/);
    expect(r.phases.map((x) => x.phase)).toEqual(['resolve', 'connect', 'prelogin', 'login', 'query']);
  });

  test("tedious's SET batch after LOGINACK answered with an unknown token: protocol_error at login", async () => {
    const p = await peer({ batchReply: (sql) => (sql.startsWith('set ') ? UNKNOWN_TOKEN : undefined) });
    const r = await probe(p.port);
    expect(r.failure).toMatchObject({ phase: 'login', reason: 'protocol_error' });
  });

  test('a token the login state does not expect (a ROW without COLMETADATA): protocol_error at login', async () => {
    const p = await peer({
      loginReply: () => Buffer.concat([Buffer.from([0xd1, 0x01]), done(DoneStatus.FINAL, 0, 0, 0x74000004)]),
    });
    const r = await probe(p.port);
    expect(r.failure).toMatchObject({ phase: 'login', reason: 'protocol_error' });
  });

  test('a login answer with neither LOGINACK nor an error: protocol_error, not auth_failed', async () => {
    const p = await peer({ loginReply: () => done(DoneStatus.FINAL, 0, 0, 0x74000004) });
    const r = await probe(p.port);
    expect(r.failure).toMatchObject({ phase: 'login', reason: 'protocol_error' });
  });

  test.each(['0', '8', 'x', '40', '99999'])(
    'an ENVCHANGE packet size of %p (tedious would loop splitting messages): protocol_error at login',
    async (size) => {
      const stream = Buffer.concat([envChangeString(4, size, '4096'), validLoginStream().subarray(0)]);
      const p = await peer({ loginReply: () => stream });
      const r = await probe(p.port);
      expect(r.failure).toMatchObject({ phase: 'login', reason: 'protocol_error' });
      expect(r.failure?.message).toMatch(/packet size/);
    },
  );

  test('an answer larger than the cap (a 40 MiB nvarchar(max) value for @@VERSION): protocol_error at query, not a heap that grows to the deadline', async () => {
    const chunk = Buffer.alloc(1 << 20, 0x41);
    const plp: Buffer[] = [];
    for (let i = 0; i < 40; i++) {
      const len = Buffer.alloc(4);
      len.writeUInt32LE(chunk.length);
      plp.push(len, chunk);
    }
    const colmeta = Buffer.concat([
      Buffer.from([0x81, 0x01, 0x00, 0, 0, 0, 0, 0x01, 0x00, 0xe7, 0xff, 0xff]),
      COLLATION,
      Buffer.from([0x00]), // no column name
    ]);
    const answer = Buffer.concat([
      colmeta,
      Buffer.from([0xd1, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // ROW, PLP of unknown length
      ...plp,
      Buffer.alloc(4), // PLP terminator
      done(DoneStatus.COUNT, 0xc1, 1, 0x74000004),
    ]);
    const p = await peer({ batchReply: (sql) => (sql === 'select @@version' ? answer : undefined) });
    const r = await runProber(mssqlProber, `127.0.0.1:${p.port}`, creds, 10000);
    expect(r.failure).toMatchObject({ phase: 'query', reason: 'protocol_error' });
    expect(r.failure?.message).toMatch(/more than 32 MiB/);
  });

  test('the process survives ten hostile logins in a row and the next good probe succeeds', async () => {
    const bad = await peer({ loginReply: () => UNKNOWN_TOKEN });
    for (let i = 0; i < 10; i++) expect((await probe(bad.port)).failure?.reason).toBe('protocol_error');
    const good = await peer({});
    const r = await probe(good.port);
    expect(r.failure).toBeUndefined();
    expect(r.success).toBe(true);
  });
});

test('the tedious hook containment relies on is there (an upgrade that moves it fails here)', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Connection } = require('tedious') as typeof import('tedious');
  const c = new Connection({ server: '127.0.0.1', options: { port: 1 } });
  expect(containTokenErrors(c, () => undefined)).toBe(true);
});
