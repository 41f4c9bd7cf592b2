import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { tcpProber } from '../../exporters/tcp';
import { parseHostPort, LineReader } from '../../exporters/net';
import { runProber, probeContext } from '../helpers/context';
import { closedPort, listen, selfSignedCert } from '../helpers/net';
import { createNetns, dropTcpPort, tsNodeArgv } from '../helpers/netns';
import type { ProbeResult } from '../../exporters/types';

const phase = (r: ProbeResult, name: string): number | undefined => r.phases.find((p) => p.phase === name)?.seconds;

describe('tcp prober against real loopback sockets', () => {
  it('open port: success with timed resolve and connect phases', async () => {
    const l = await listen();
    try {
      const r = await runProber(tcpProber, `127.0.0.1:${l.port}`);
      expect(r.failure).toBeUndefined();
      expect(r.success).toBe(true);
      expect(r.ipProtocol).toBe(4);
      expect(r.phases.map((p) => p.phase)).toEqual(['resolve', 'connect']);
      expect(phase(r, 'connect')).toBeGreaterThan(0);
      expect(r.durationSeconds).toBeGreaterThanOrEqual(phase(r, 'connect') as number);
    } finally {
      await l.close();
    }
  });

  it('closed port: fails at connect with reason refused', async () => {
    const port = await closedPort();
    const r = await runProber(tcpProber, `127.0.0.1:${port}`);
    expect(r.success).toBe(false);
    expect(r.failure).toMatchObject({ phase: 'connect', reason: 'refused' });
  });

  it('IPv6 loopback with ip6 preferred', async () => {
    const l = await listen(undefined, '::1');
    try {
      const r = await runProber(tcpProber, `[::1]:${l.port}`, { preferred_ip_protocol: 'ip6' });
      expect(r.success).toBe(true);
      expect(r.ipProtocol).toBe(6);
    } finally {
      await l.close();
    }
  });

  it('localhost resolves to the preferred IP version', async () => {
    const l = await listen(undefined, '127.0.0.1');
    try {
      const r = await runProber(tcpProber, `localhost:${l.port}`, { preferred_ip_protocol: 'ip4' });
      expect(r.success).toBe(true);
      expect(r.ipProtocol).toBe(4);
    } finally {
      await l.close();
    }
  });

  it('an IPv4 literal with ip6 required and no fallback: dns_error at resolve', async () => {
    const r = await runProber(tcpProber, '127.0.0.1:9', { preferred_ip_protocol: 'ip6', ip_protocol_fallback: false });
    expect(r.failure).toMatchObject({ phase: 'resolve', reason: 'dns_error' });
  });

  it('a listener whose accept queue is full: timeout within deadline + 100 ms', async () => {
    // backlog 1 in a process whose event loop is blocked: nothing is ever accepted, and once the
    // accept queue is full the kernel drops further SYNs, so connect() hangs.
    const fillers: net.Socket[] = [];
    const { spawn } = await import('node:child_process');
    const child = spawn(
      process.execPath,
      [
        '-e',
        `
      const net = require('net');
      const s = net.createServer(); s.listen({port: 0, host: '127.0.0.1', backlog: 1}, () => {
        process.stdout.write(String(s.address().port) + '\\n');
        // Block the event loop so nothing is ever accepted.
        const end = Date.now() + 15000; while (Date.now() < end) {}
      });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const childPort = await new Promise<number>((resolve) =>
        child.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim()))),
      );
      for (let i = 0; i < 4; i++) {
        const s = net.connect(childPort, '127.0.0.1');
        s.on('error', () => undefined);
        fillers.push(s);
      }
      await new Promise((r) => setTimeout(r, 200));
      const timeoutMs = 700;
      const t0 = performance.now();
      const r = await runProber(tcpProber, `127.0.0.1:${childPort}`, {}, timeoutMs);
      const elapsed = performance.now() - t0;
      expect(r.failure).toMatchObject({ phase: 'connect', reason: 'timeout' });
      expect(elapsed).toBeGreaterThanOrEqual(timeoutMs - 5);
      expect(elapsed).toBeLessThan(timeoutMs + 100);
    } finally {
      for (const s of fillers) s.destroy();
      child.kill('SIGKILL');
    }
  });

  it('a blackholed port inside a network namespace: timeout within deadline + 100 ms', async () => {
    const ns = createNetns('blackhole');
    try {
      dropTcpPort(ns, 9999);
      const timeoutMs = 800;
      const out = await ns.exec(
        tsNodeArgv(path.join(__dirname, '..', 'helpers', 'probe-cli.ts'), [
          JSON.stringify({ prober: 'tcp', address: '127.0.0.1:9999', timeoutMs }),
        ]),
      );
      expect(out.stderr).toBe('');
      const { result, elapsedMs } = JSON.parse(out.stdout) as { result: ProbeResult; elapsedMs: number };
      expect(result.failure).toMatchObject({ phase: 'connect', reason: 'timeout' });
      expect(elapsedMs).toBeGreaterThanOrEqual(timeoutMs - 5);
      expect(elapsedMs).toBeLessThan(timeoutMs + 100);
    } finally {
      ns.remove();
    }
  });

  describe('TLS', () => {
    const cert = selfSignedCert(20);
    let server: tls.Server;
    let port: number;
    beforeAll(async () => {
      server = tls.createServer({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) }, (s) => {
        s.on('error', () => undefined);
        s.end('hello over tls\r\n');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      port = (server.address() as net.AddressInfo).port;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    it('reports the certificate expiry and TLS version', async () => {
      const r = await runProber(tcpProber, `127.0.0.1:${port}`, {
        tls: true,
        tls_config: { ca_file: cert.certFile, server_name: 'localhost' },
        expect_banner: '^hello',
      });
      expect(r.failure).toBeUndefined();
      expect(r.facts).toContainEqual({
        metric: 'probe_tls_cert_not_after_timestamp_seconds',
        value: cert.notAfterSeconds,
      });
      expect(r.facts).toContainEqual({ metric: 'probe_tls_version_info', value: 1, labels: { version: 'TLSv1.3' } });
      expect(r.phases.map((p) => p.phase)).toEqual(['resolve', 'connect', 'tls', 'banner']);
    });

    it("verifies an IP target against the certificate's IP SAN", async () => {
      const r = await runProber(tcpProber, `127.0.0.1:${port}`, { tls: true, tls_config: { ca_file: cert.certFile } });
      expect(r.failure).toBeUndefined();
    });

    it('a server name the certificate does not carry fails at tls', async () => {
      const r = await runProber(tcpProber, `127.0.0.1:${port}`, {
        tls: true,
        tls_config: { ca_file: cert.certFile, server_name: 'db.example.org' },
      });
      expect(r.failure).toMatchObject({ phase: 'tls', reason: 'tls_error' });
    });

    it('an untrusted certificate fails at tls with tls_error', async () => {
      const r = await runProber(tcpProber, `127.0.0.1:${port}`, { tls: true });
      expect(r.failure).toMatchObject({ phase: 'tls', reason: 'tls_error' });
    });

    it('TLS against a plain-text port fails at tls', async () => {
      const l = await listen((s) => s.end('SSH-2.0-OpenSSH_9.2\r\n'));
      try {
        const r = await runProber(tcpProber, `127.0.0.1:${l.port}`, {
          tls: true,
          tls_config: { insecure_skip_verify: true },
        });
        expect(r.failure).toMatchObject({ phase: 'tls', reason: 'tls_error' });
      } finally {
        await l.close();
      }
    });
  });

  describe('banner', () => {
    it('matches the expected banner', async () => {
      const l = await listen((s) => s.write('SSH-2.0-OpenSSH_9.2\r\n'));
      try {
        const r = await runProber(tcpProber, `127.0.0.1:${l.port}`, { expect_banner: '^SSH-2\\.0-' });
        expect(r.success).toBe(true);
        expect(r.details?.banner).toBe('SSH-2.0-OpenSSH_9.2');
      } finally {
        await l.close();
      }
    });

    it('another service on the port: banner_unexpected', async () => {
      const l = await listen((s) => s.write('220 ftp.example.org FTP ready\r\n'));
      try {
        const r = await runProber(tcpProber, `127.0.0.1:${l.port}`, { expect_banner: '^SSH-' });
        expect(r.failure).toMatchObject({ phase: 'banner', reason: 'banner_unexpected' });
      } finally {
        await l.close();
      }
    });

    it('sends the configured bytes first', async () => {
      const l = await listen((s) => s.once('data', (d) => s.write(`echo:${String(d)}`)));
      try {
        const r = await runProber(tcpProber, `127.0.0.1:${l.port}`, { send: 'PING\r\n', expect_banner: '^echo:PING$' });
        expect(r.success).toBe(true);
      } finally {
        await l.close();
      }
    });

    it('a peer that never sends a newline cannot grow memory: protocol_error', async () => {
      const chunk = Buffer.alloc(64 * 1024, 0x41);
      const l = await listen((s) => {
        const pump = (): void => {
          while (!s.destroyed && s.write(chunk)) {
            /* keep writing until the socket pushes back */
          }
          if (!s.destroyed) s.once('drain', pump);
        };
        pump();
      });
      try {
        const r = await runProber(tcpProber, `127.0.0.1:${l.port}`, { expect_banner: '.' });
        expect(r.failure).toMatchObject({ phase: 'banner', reason: 'protocol_error' });
        expect(r.failure?.message).toContain('longer than 4096 bytes');
      } finally {
        await l.close();
      }
    });

    it('a silent peer: no_greeting at banner (the handshake completed)', async () => {
      const l = await listen();
      try {
        const r = await runProber(tcpProber, `127.0.0.1:${l.port}`, { expect_banner: '.' }, 300);
        expect(r.failure).toMatchObject({ phase: 'banner', reason: 'no_greeting' });
      } finally {
        await l.close();
      }
    });

    it('a peer that closes at once: reset at banner', async () => {
      const l = await listen((s) => s.destroy());
      try {
        const r = await runProber(tcpProber, `127.0.0.1:${l.port}`, { expect_banner: '.' });
        expect(r.failure).toMatchObject({ phase: 'banner', reason: 'reset' });
      } finally {
        await l.close();
      }
    });
  });

  it('a shutdown abort is reported as aborted, not timeout', async () => {
    const l = await listen();
    const p = probeContext(tcpProber, `127.0.0.1:${l.port}`, { expect_banner: '.' }, 5000);
    try {
      const pending = tcpProber.run(p.ctx);
      setTimeout(p.abort, 50);
      const r = await pending;
      expect(r.failure).toMatchObject({ phase: 'banner', reason: 'aborted' });
    } finally {
      p.dispose();
      await l.close();
    }
  });
});

describe('parseHostPort', () => {
  it.each([
    ['db.example.org:1433', undefined, { host: 'db.example.org', port: 1433 }],
    ['[2001:db8::1]:443', undefined, { host: '2001:db8::1', port: 443 }],
    ['2001:db8::1', 21, { host: '2001:db8::1', port: 21 }],
    ['ftp.example.org', 21, { host: 'ftp.example.org', port: 21 }],
    ['ftp://user@ftp.example.org:2121/pub', 21, { host: 'ftp.example.org', port: 2121 }],
  ])('%s', (addr, def, want) => {
    expect(parseHostPort(addr, def)).toEqual(want);
  });
  it.each([
    ['', 'address is empty'],
    ['host', '"host": a port is required (host:port)'],
    ['host:0', '"host:0": port 0 is out of range 1-65535'],
    ['host:http', '"host:http": port "http" is not a number'],
    ['[::1', '"[::1": missing "]" after IPv6 address'],
    ['bad host:1', '"bad host:1": "bad host" is not a valid host name or address'],
  ])('rejects %j', (addr, msg) => {
    expect(parseHostPort(addr)).toBe(msg);
  });
});

describe('LineReader', () => {
  it('splits CRLF and LF lines across chunk boundaries', async () => {
    const l = await listen((s) => {
      s.write('220-first\r');
      setTimeout(() => s.write('\n220 second\nthird\r\n'), 20);
    });
    const sock = net.connect(l.port, '127.0.0.1');
    try {
      const r = new LineReader(sock);
      const signal = AbortSignal.timeout(2000);
      expect(await r.readLine(signal)).toBe('220-first');
      expect(await r.readLine(signal)).toBe('220 second');
      expect(await r.readLine(signal)).toBe('third');
    } finally {
      sock.destroy();
      await l.close();
    }
  });
});
