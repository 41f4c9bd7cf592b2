// Silence after a completed TCP handshake is the service's, not the network's: each rung that
// can go quiet gets its own reason and SQL Server advice, apart from a SYN nobody answers
// (timeout at connect, the firewall advice). The nftables versions are in netns.test.ts.
import net from 'node:net';
import { mssqlProber, type MssqlSettings } from '../../exporters/mssql';
import { Secret } from '../../exporters/secret';
import type { ProbeResult } from '../../exporters/types';
import { runProber } from '../helpers/context';
import { cleanupsAfterEach, tdsPeers } from '../helpers/mssql';

const cleanups = cleanupsAfterEach();
const peer = tdsPeers(cleanups);

const creds = { username: 'monitor', password: new Secret('s3cr3t-pw') };
const probe = (port: number, s: Partial<MssqlSettings> = {}): Promise<ProbeResult> =>
  runProber(mssqlProber, `127.0.0.1:${port}`, s, 700);

test('PRELOGIN never answered: no_response, advice names a hung service, another service or a TLS-only listener', async () => {
  const p = await peer({ stallPrelogin: true });
  const r = await probe(p.port);
  expect(r.failure).toMatchObject({ phase: 'prelogin', reason: 'no_response' });
  expect(r.failure?.advice).toMatch(/network path is fine/);
  expect(r.failure?.advice).toMatch(/hung/);
  expect(r.failure?.advice).toMatch(/TLS-only listener/);
});

test('a PRELOGIN answer that stops half-way: stalled at prelogin', async () => {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    // A TDS header announcing 40 bytes, and 12 of them.
    s.once('data', () =>
      s.write(Buffer.from([0x04, 0x01, 0x00, 0x28, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10, 0x00])),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const held = new Set<net.Socket>();
  server.on('connection', (s) => held.add(s));
  cleanups.push(
    () =>
      new Promise((resolve) => {
        for (const s of held) s.destroy();
        server.close(() => resolve());
      }),
  );
  const r = await probe((server.address() as net.AddressInfo).port);
  expect(r.failure).toMatchObject({
    phase: 'prelogin',
    reason: 'stalled',
    message: 'the PRELOGIN answer stopped after 12 bytes',
  });
});

test('LOGIN7 never answered after a valid PRELOGIN: stalled at login, advice names the login trigger and the authentication backend', async () => {
  const p = await peer({ stallLogin: true });
  const r = await probe(p.port, creds);
  expect(r.failure).toMatchObject({
    phase: 'login',
    reason: 'stalled',
    message: 'LOGIN7 got no answer before the deadline',
  });
  expect(r.failure?.advice).toMatch(/hung or overloaded/);
  expect(r.failure?.advice).toMatch(/logon trigger/);
  expect(r.failure?.advice).toMatch(/authentication backend/);
});

test('the version query never answered after a good login: stalled at query', async () => {
  const p = await peer({ stallSql: (sql) => sql === 'select @@version' });
  const r = await probe(p.port, creds);
  expect(r.failure).toMatchObject({
    phase: 'query',
    reason: 'stalled',
    message: 'no answer to SELECT @@VERSION before the deadline',
  });
  expect(r.failure?.advice).toMatch(/accepted the login, then did not answer the query/);
});

test("tedious's session settings after LOGINACK never answered: stalled at login, naming that step", async () => {
  const p = await peer({ stallSql: (sql) => sql.startsWith('set ') });
  const r = await probe(p.port, creds);
  expect(r.failure).toMatchObject({
    phase: 'login',
    reason: 'stalled',
    message: 'the session settings sent after LOGINACK got no answer before the deadline',
  });
});

test('a custom query past its own timeout stays query_error (the server answered the cancel); the probe goes on', async () => {
  const p = await peer({
    queries: { 'waitfor delay': { delayMs: 5000, result: { columns: [{ name: 'n', type: 'int' }], rows: [[1]] } } },
  });
  const r = await runProber(
    mssqlProber,
    `127.0.0.1:${p.port}`,
    {
      ...creds,
      queries: [{ name: 'mssql_slow', help: 'Slow.', value_column: 'n', query: 'waitfor delay', timeout: '100ms' }],
    },
    2000,
  );
  expect(r.failure).toMatchObject({ phase: 'query', reason: 'query_error' });
  expect(r.failure?.message).toMatch(/mssql_slow/);
});
