// SQL Server verdicts the way networks fail: nftables in a network namespace the test creates,
// dropping and rejecting each rung in both directions (TCP 1433 connect, the PRELOGIN, LOGIN7 and
// the version query on the established connection, UDP 1434 to the Browser and its reply). Each
// fault is probed twenty times in a row and must give the same reason every time; silence after
// the handshake must never read as the dropped SYN's timeout and firewall advice.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { createNetns, tsNodeArgv, type Netns } from '../helpers/netns';
import { clearRules, setRules } from '../helpers/netns-mssql';

jest.setTimeout(120_000);

const RUNS = 20;
const TIMEOUT_MS = 400;

interface Outcome {
  success: boolean;
  phases: string[];
  failure?: { phase: string; reason: string; message: string };
  advice?: string;
}

let ns: Netns;
let runner: ChildProcessWithoutNullStreams;
let answers: AsyncIterator<string>;

beforeAll(async () => {
  ns = createNetns('mssql');
  const [cmd, ...args] = tsNodeArgv(path.join(__dirname, 'netns-runner.ts'));
  runner = spawn('ip', ['netns', 'exec', ns.name, cmd, ...args]);
  let stderr = '';
  runner.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  answers = readline.createInterface({ input: runner.stdout })[Symbol.asyncIterator]();
  const first = await answers.next();
  if (first.done || !(JSON.parse(first.value) as { ready?: boolean }).ready)
    throw new Error(`the netns runner did not start: ${stderr}`);
});

afterAll(async () => {
  runner?.stdin.end();
  if (runner && runner.exitCode === null) {
    await new Promise((resolve) => {
      runner.once('exit', resolve);
      setTimeout(() => runner.kill('SIGKILL'), 5000).unref();
    });
  }
  ns?.remove();
});

afterEach(() => clearRules(ns));

async function probeN(settings: Record<string, unknown>, address = '127.0.0.1:1433'): Promise<Outcome[]> {
  runner.stdin.write(`${JSON.stringify({ count: RUNS, timeoutMs: TIMEOUT_MS, address, settings })}\n`);
  const line = await answers.next();
  if (line.done) throw new Error('the netns runner ended');
  return (JSON.parse(line.value) as { results: Outcome[] }).results;
}

const creds = { username: 'monitor', password: 's3cr3t-pw' };
const instance = { instance: 'SQLEXPRESS' };

/** TDS payloads: byte 0 of a packet is its type, byte 8 the first token or option of the message. */
const PAYLOAD = {
  login7: '@ih,0,8 0x10',
  loginAnswer: '@ih,64,8 0xe3', // LOGINACK answers start with ENVCHANGE (database)
  versionQuery: '@ih,240,32 0x53004500', // "SE" in UTF-16 after the 22-byte ALL_HEADERS: the SELECT, not tedious's lower-case SETs
  queryAnswer: '@ih,64,8 0x81', // COLMETADATA
  any: 'ip length > 64', // a segment with data (on loopback, 52 bytes are headers)
};
const NOT_SYN = 'tcp flags & (syn | rst) == 0';

interface Fault {
  name: string;
  rules: string[];
  settings: Record<string, unknown>;
  address?: string;
  phase: string;
  reason: string;
  advice: RegExp;
  message?: RegExp;
}

const FAULTS: Fault[] = [
  // TCP 1433: the SYN and its SYN-ACK
  {
    name: 'TCP 1433 SYN dropped',
    rules: ['tcp dport 1433 tcp flags syn drop'],
    settings: {},
    phase: 'connect',
    reason: 'timeout',
    advice: /firewall drops/,
  },
  {
    name: 'TCP 1433 SYN rejected (port unreachable)',
    rules: ['tcp dport 1433 tcp flags syn reject'],
    settings: {},
    phase: 'connect',
    reason: 'refused',
    advice: /Connection refused on 1433/,
  },
  {
    name: 'TCP 1433 SYN rejected (admin prohibited)',
    rules: ['tcp dport 1433 tcp flags syn reject with icmpx type admin-prohibited'],
    settings: {},
    phase: 'connect',
    reason: 'unreachable',
    advice: /no route/,
  },
  {
    name: 'TCP 1433 SYN-ACK dropped',
    rules: ['tcp sport 1433 tcp flags & (syn | ack) == syn | ack drop'],
    settings: {},
    phase: 'connect',
    reason: 'timeout',
    advice: /firewall drops/,
  },
  {
    name: 'TCP 1433 SYN-ACK rejected (reset to the server)',
    rules: ['tcp sport 1433 tcp flags & (syn | ack) == syn | ack reject with tcp reset'],
    settings: {},
    phase: 'connect',
    reason: 'timeout',
    advice: /firewall drops/,
  },
  // PRELOGIN on the established connection
  {
    name: 'PRELOGIN dropped',
    rules: [`tcp dport 1433 ${NOT_SYN} ${PAYLOAD.any} drop`],
    settings: {},
    phase: 'prelogin',
    reason: 'no_response',
    advice: /network path is fine/,
  },
  {
    name: 'PRELOGIN rejected (reset)',
    rules: [`tcp dport 1433 ${NOT_SYN} ${PAYLOAD.any} reject with tcp reset`],
    settings: {},
    phase: 'prelogin',
    reason: 'reset',
    advice: /accepts connections but drops them/,
  },
  {
    name: 'PRELOGIN answer dropped',
    rules: [`tcp sport 1433 ${NOT_SYN} ${PAYLOAD.any} drop`],
    settings: {},
    phase: 'prelogin',
    reason: 'no_response',
    advice: /network path is fine/,
  },
  {
    name: 'PRELOGIN answer rejected (reset to the server)',
    rules: [`tcp sport 1433 ${NOT_SYN} ${PAYLOAD.any} reject with tcp reset`],
    settings: {},
    phase: 'prelogin',
    reason: 'no_response',
    advice: /network path is fine/,
  },
  // LOGIN7 after a valid PRELOGIN
  {
    name: 'LOGIN7 dropped',
    rules: [`tcp dport 1433 ${PAYLOAD.login7} drop`],
    settings: creds,
    phase: 'login',
    reason: 'stalled',
    advice: /logon trigger/,
  },
  {
    name: 'LOGIN7 rejected (reset)',
    rules: [`tcp dport 1433 ${PAYLOAD.login7} reject with tcp reset`],
    settings: creds,
    phase: 'login',
    reason: 'reset',
    advice: /ERRORLOG/,
  },
  {
    name: 'LOGIN7 answer dropped',
    rules: [`tcp sport 1433 ${PAYLOAD.loginAnswer} drop`],
    settings: creds,
    phase: 'login',
    reason: 'stalled',
    advice: /logon trigger/,
  },
  // The server's side is aborted: the client's retransmission then meets a closed connection.
  {
    name: 'LOGIN7 answer rejected (reset to the server)',
    rules: [`tcp sport 1433 ${PAYLOAD.loginAnswer} reject with tcp reset`],
    settings: creds,
    phase: 'login',
    reason: 'reset',
    advice: /ERRORLOG/,
  },
  // The version query after a good login
  {
    name: 'SELECT @@VERSION dropped',
    rules: [`tcp dport 1433 ${PAYLOAD.versionQuery} drop`],
    settings: creds,
    phase: 'query',
    reason: 'stalled',
    advice: /accepted the login, then did not answer/,
  },
  {
    name: 'SELECT @@VERSION rejected (reset)',
    rules: [`tcp dport 1433 ${PAYLOAD.versionQuery} reject with tcp reset`],
    settings: creds,
    phase: 'query',
    reason: 'reset',
    advice: /ERRORLOG/,
  },
  {
    name: 'query answer dropped',
    rules: [`tcp sport 1433 ${PAYLOAD.queryAnswer} drop`],
    settings: creds,
    phase: 'query',
    reason: 'stalled',
    advice: /accepted the login, then did not answer/,
  },
  {
    name: 'query answer rejected (reset to the server)',
    rules: [`tcp sport 1433 ${PAYLOAD.queryAnswer} reject with tcp reset`],
    settings: creds,
    phase: 'query',
    reason: 'reset',
    advice: /ERRORLOG/,
  },
  // UDP 1434: the Browser request and its reply
  {
    name: 'Browser request dropped',
    rules: ['udp dport 1434 drop'],
    settings: instance,
    address: '127.0.0.1',
    phase: 'browser',
    reason: 'browser_no_answer',
    advice: /UDP 1434/,
    message: /^no answer/,
  },
  {
    name: 'Browser request rejected',
    rules: ['udp dport 1434 reject'],
    settings: instance,
    address: '127.0.0.1',
    phase: 'browser',
    reason: 'browser_no_answer',
    advice: /UDP 1434/,
    message: /ICMP port unreachable/,
  },
  {
    name: 'Browser reply dropped',
    rules: ['udp sport 1434 drop'],
    settings: instance,
    address: '127.0.0.1',
    phase: 'browser',
    reason: 'browser_no_answer',
    advice: /UDP 1434/,
  },
  {
    name: 'Browser reply rejected',
    rules: ['udp sport 1434 reject'],
    settings: instance,
    address: '127.0.0.1',
    phase: 'browser',
    reason: 'browser_no_answer',
    advice: /UDP 1434/,
  },
];

test('without rules every rung passes (the rules below are what breaks them)', async () => {
  for (const settings of [{}, creds, { ...creds, ...instance }]) {
    const out = await probeN(settings, 'instance' in settings ? '127.0.0.1' : '127.0.0.1:1433');
    expect(out.map((o) => o.failure ?? 'ok')).toEqual(Array(RUNS).fill('ok'));
  }
});

test.each(FAULTS.map((f) => [f.name, f] as const))('%s: the same verdict twenty times', async (_name, f) => {
  setRules(ns, f.rules);
  const out = await probeN(f.settings, f.address);
  const verdicts = out.map((o) => (o.failure ? `${o.failure.phase}/${o.failure.reason}` : 'success'));
  expect(verdicts).toEqual(Array(RUNS).fill(`${f.phase}/${f.reason}`));
  for (const o of out) expect(o.advice).toMatch(f.advice);
  // Silence after a completed handshake never borrows the dropped SYN's words.
  if (f.phase !== 'connect' && f.phase !== 'browser') {
    for (const o of out) {
      expect(o.failure?.reason).not.toBe('timeout');
      expect(o.advice).not.toMatch(/firewall drops/);
    }
  }
  if (f.message) for (const o of out) expect(o.failure?.message).toMatch(f.message);
  // For the report: fault -> reason -> first line of advice.
  console.log(`${f.name} -> ${f.phase}/${f.reason} -> ${out[0].advice?.split(/(?<=[.:?])\s/)[0]}`);
});
