// Silence after a completed connect is not a dropped SYN. Against real peers, the FTP greeting and
// the TCP prober's expect_banner must name what holds the port: a hung service (no_greeting), an
// HTTP server (banner_unexpected, named), an implicit-TLS port (tls_expected); a SYN that a
// firewall drops stays timeout at connect, and one it rejects is refused. Each fault gives the
// same reason twenty times in a row.
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ftpProber } from '../../exporters/ftp';
import { tcpProber } from '../../exporters/tcp';
import { adviceFor } from '../../exporters/advice';
import type { ProbeResult, ProberDef } from '../../exporters/types';
import { runProber } from '../helpers/context';
import { listen, openFdCount, selfSignedCert } from '../helpers/net';
import { createNetns, tsNodeArgv } from '../helpers/netns';
import {
  firewallSyn,
  startPythonHttp,
  startTarpit,
  startTarpitIn,
  startTlsServer,
  type SilencePeer,
} from '../peers/silence';
import type { Verdict } from '../peers/silence-cli';

jest.setTimeout(180000);

const TIMES = 20;

type Kind = 'tcp' | 'ftp';
const PROBER: Record<Kind, ProberDef<never>> = {
  tcp: tcpProber as unknown as ProberDef<never>,
  ftp: ftpProber as unknown as ProberDef<never>,
};
const SETTINGS: Record<Kind, Record<string, unknown>> = { tcp: { expect_banner: '^SSH-' }, ftp: {} };
// Long enough that the second look (a third of the deadline in) has most of the deadline left to
// hear the answer.
const LOOK_TIMEOUT_MS: Record<Kind, number> = { tcp: 900, ftp: 1200 };
const SILENT_TIMEOUT_MS = 300;

/** Runs the same probe TIMES times in a row; returns each "phase/reason" and the last result. */
async function series(kind: Kind, port: number, timeoutMs: number): Promise<{ verdicts: string[]; last: ProbeResult }> {
  const verdicts: string[] = [];
  let last: ProbeResult | undefined;
  for (let i = 0; i < TIMES; i++) {
    last = await runProber(PROBER[kind], `127.0.0.1:${port}`, SETTINGS[kind] as never, timeoutMs);
    verdicts.push(`${last.failure?.phase}/${last.failure?.reason}`);
  }
  return { verdicts, last: last as ProbeResult };
}

const advice = (kind: Kind, r: ProbeResult): string => (r.failure ? (adviceFor(kind, r.failure) ?? '') : '');

describe.each(['tcp', 'ftp'] as Kind[])('%s: silence after connect', (kind) => {
  test('a python3 tarpit (accepts, never writes): no_greeting at banner, not the firewall advice', async () => {
    const peer = await startTarpit();
    try {
      const { verdicts, last } = await series(kind, peer.port, SILENT_TIMEOUT_MS);
      expect(verdicts).toEqual(Array(TIMES).fill('banner/no_greeting'));
      expect(advice(kind, last)).toMatch(/handshake completed, so the network path is fine/);
      expect(advice(kind, last)).not.toMatch(/firewall dropping|traceroute|ping/);
    } finally {
      peer.stop();
    }
  });

  test('the second look changes nothing for a tarpit (still no_greeting, the look heard nothing either) nor for a late greeting (still passes)', async () => {
    const peer = await startTarpit();
    try {
      // Twenty in a row are above; five here show what the look adds to the message.
      for (let i = 0; i < 5; i++) {
        const r = await runProber(
          PROBER[kind],
          `127.0.0.1:${peer.port}`,
          SETTINGS[kind] as never,
          LOOK_TIMEOUT_MS[kind],
        );
        expect(`${r.failure?.phase}/${r.failure?.reason}`).toBe('banner/no_greeting');
        expect(r.failure?.message).toContain('a second connection got no answer either');
      }
    } finally {
      peer.stop();
    }
    // A greeting that comes after the look was taken: the probe's own connection still gets it.
    // 220 for FTP (then the probe goes on to login, which this peer does not answer); SSH for tcp.
    const text = kind === 'ftp' ? '220 late but fine\r\n' : 'SSH-2.0-late_but_fine\r\n';
    const delayMs = kind === 'ftp' ? 800 : 500;
    const l = await listen((s) => {
      const t = setTimeout(() => s.write(text), delayMs);
      s.on('close', () => clearTimeout(t));
    });
    try {
      for (let i = 0; i < 3; i++) {
        const r = await runProber(PROBER[kind], `127.0.0.1:${l.port}`, SETTINGS[kind] as never, 1500);
        expect(r.phases.map((p) => p.phase)).toContain('banner');
        expect(r.failure?.phase).not.toBe('banner');
        if (kind === 'tcp') expect(r.success).toBe(true);
      }
    } finally {
      await l.close();
    }
  });

  test('python3 -m http.server on the port: banner_unexpected naming an HTTP server', async () => {
    const peer = await startPythonHttp(mkdtempSync(path.join(tmpdir(), 'portprobe-http-')));
    try {
      const { verdicts, last } = await series(kind, peer.port, LOOK_TIMEOUT_MS[kind]);
      expect(verdicts).toEqual(Array(TIMES).fill('banner/banner_unexpected'));
      expect(last.failure?.message).toContain('an HTTP server answers on this port');
      expect(advice(kind, last)).toMatch(/^Another service holds this port/);
    } finally {
      peer.stop();
    }
  });

  test("Node's http server on the port: banner_unexpected naming an HTTP server and its status line", async () => {
    const server = http.createServer((_q, res) => res.end('hello'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const { verdicts, last } = await series(kind, (server.address() as net.AddressInfo).port, LOOK_TIMEOUT_MS[kind]);
      expect(verdicts).toEqual(Array(TIMES).fill('banner/banner_unexpected'));
      expect(last.failure?.message).toContain('an HTTP server answers on this port (HTTP/1.1 400 Bad Request)');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('an implicit-TLS port probed in clear text: tls_expected', async () => {
    const cert = selfSignedCert(5);
    const peer = await startTlsServer(cert.certFile, cert.keyFile);
    try {
      const { verdicts, last } = await series(kind, peer.port, LOOK_TIMEOUT_MS[kind]);
      expect(verdicts).toEqual(Array(TIMES).fill('banner/tls_expected'));
      expect(last.failure?.message).toContain('it speaks TLS from the first byte');
      expect(advice(kind, last)).toMatch(kind === 'ftp' ? /tls: implicit/ : /tls: true/);
    } finally {
      await peer.close();
    }
  });

  test('part of a greeting, then silence: stalled, and no descriptor left open', async () => {
    const before = openFdCount();
    const l = await listen((s) => s.write(kind === 'ftp' ? '220-hello\r\n220-still' : 'SSH-2.0-'));
    try {
      for (let i = 0; i < 3; i++) {
        const r = await runProber(PROBER[kind], `127.0.0.1:${l.port}`, SETTINGS[kind] as never, SILENT_TIMEOUT_MS);
        expect(`${r.failure?.phase}/${r.failure?.reason}`).toBe('banner/stalled');
      }
    } finally {
      await l.close();
    }
    for (let i = 0; i < 50 && openFdCount() > before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(openFdCount()).toBeLessThanOrEqual(before);
  });
});

describe('tcp with send: a request that is never answered', () => {
  test('the python3 tarpit: no_response at banner, twenty times, with advice about the service', async () => {
    const peer = await startTarpit();
    try {
      for (let i = 0; i < TIMES; i++) {
        const r = await runProber(
          tcpProber,
          `127.0.0.1:${peer.port}`,
          { send: 'PING\r\n', expect_banner: '^PONG' },
          SILENT_TIMEOUT_MS,
        );
        expect(`${r.failure?.phase}/${r.failure?.reason}`).toBe('banner/no_response');
        if (i === TIMES - 1) expect(advice('tcp', r)).toMatch(/^The TCP handshake completed and the request was sent/);
      }
    } finally {
      peer.stop();
    }
  });
});

describe('the same tarpit in a network namespace: silence, then a dropped SYN, then a rejected one', () => {
  test('no_greeting in the clear; timeout at connect with the firewall advice behind drop; refused behind reject', async () => {
    const ns = createNetns('silence');
    let peer: SilencePeer | undefined;
    try {
      const port = 2121;
      peer = await startTarpitIn(ns.name, port);
      const run = async (): Promise<Verdict[][]> => {
        const jobs = (['tcp', 'ftp'] as Kind[]).map((k) => ({
          prober: k,
          address: `127.0.0.1:${port}`,
          timeoutMs: SILENT_TIMEOUT_MS,
          count: TIMES,
          settings: SETTINGS[k],
        }));
        const out = await ns.exec(
          tsNodeArgv(path.join(__dirname, '..', 'peers', 'silence-cli.ts'), [JSON.stringify(jobs)]),
          120000,
        );
        expect(out.stderr).toBe('');
        return JSON.parse(out.stdout) as Verdict[][];
      };
      const verdicts = (v: Verdict[][]): string[][] => v.map((s) => s.map((x) => `${x.phase}/${x.reason}`));

      firewallSyn(ns.name, port, 'none');
      const clear = await run();
      expect(verdicts(clear)).toEqual([
        Array(TIMES).fill('banner/no_greeting'),
        Array(TIMES).fill('banner/no_greeting'),
      ]);

      firewallSyn(ns.name, port, 'drop');
      const dropped = await run();
      expect(verdicts(dropped)).toEqual([Array(TIMES).fill('connect/timeout'), Array(TIMES).fill('connect/timeout')]);
      for (const s of dropped)
        expect(s[0].advice).toMatch(/^No answer before the deadline: a firewall dropping packets/);
      for (const s of clear) expect(s[0].advice).toMatch(/so the network path is fine/);

      firewallSyn(ns.name, port, 'reject');
      const rejected = await run();
      expect(verdicts(rejected)).toEqual([Array(TIMES).fill('connect/refused'), Array(TIMES).fill('connect/refused')]);
    } finally {
      peer?.stop();
      ns.remove();
    }
  });
});
