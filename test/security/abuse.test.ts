// Issue 22, items 1, 2 and 4, against a running agent: idle keep-alive connections, slowloris
// clients and silent TLS connections beyond the connection cap do not keep an authenticated
// scrape out, and a flood of wrong passwords for a real user does not starve it. How many such
// connections and requests per second the agent absorbs is measured by bench/abuse.bench.ts.
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { startAgent, type AgentProcess } from '../helpers/agent-process';
import { listen, selfSignedCert } from '../helpers/net';

jest.setTimeout(90000);

const HELD = 600; // above the agent's 512-connection cap
const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-abuse-'));
const write = (name: string, text: string): string => {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
};
const hash = bcrypt.hashSync('correct horse', 10);
const auth = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const GOOD = auth('prometheus', 'correct horse');
const hash2 = bcrypt.hashSync('battery staple', 10);

/** Opens `n` connections to the port, each set up by `prime`, and keeps them open. */
async function hold(port: number, n: number, prime: (s: net.Socket) => Promise<void>): Promise<net.Socket[]> {
  const socks: net.Socket[] = [];
  for (let i = 0; i < n; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, async () => {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => undefined);
        socks.push(s);
        await new Promise<void>((r) => s.once('connect', () => r()));
        await prime(s);
      }),
    );
  }
  return socks;
}

/** Sends one request and waits for its whole (small) answer; the connection stays open. */
function oneRequest(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString();
      if (/\r\n\r\n[\s\S]*\n$/.test(got)) {
        s.off('data', onData);
        resolve();
      }
    };
    s.on('data', onData);
    s.once('close', () => resolve());
    s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
  });
}

/**
 * A scrape as Prometheus makes it, with its default 10 s scrape timeout, on a new connection
 * (a kept-alive one may be the longest idle, closed to make room: Prometheus then reconnects).
 */
function scrape(base: string, authorization = GOOD): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}/metrics`, { headers: { authorization }, agent: false, timeout: 10000 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        if (res.statusCode === 200) expect(text).toContain('portprobe_build_info');
        resolve(res.statusCode ?? 0);
      });
    });
    req.on('timeout', () => req.destroy(new Error('scrape timed out')));
    req.on('error', reject);
  });
}

describe('plain HTTP with basic auth', () => {
  let agent: AgentProcess;
  let target: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    target = await listen();
    const cfg = write(
      'agent.yml',
      `modules: {t: {prober: tcp}}\ntargets: [{name: a, module: t, address: "127.0.0.1:${target.port}"}]\n`,
    );
    agent = await startAgent(cfg, [
      `--web.config.file=${write('web.yml', `basic_auth_users:\n  prometheus: "${hash}"\n  grafana: "${hash2}"\n`)}`,
    ]);
  });
  afterAll(async () => {
    await agent.stop();
    await target.close();
  });

  it(`an authenticated scrape gets through while ${HELD} connections sit idle after a 401`, async () => {
    const socks = await hold(agent.port, HELD, oneRequest);
    try {
      expect(await scrape(agent.base)).toBe(200);
      expect(await scrape(agent.base)).toBe(200);
    } finally {
      for (const s of socks) s.destroy();
    }
  });

  it(`an authenticated scrape gets through while ${HELD} slowloris clients dribble headers`, async () => {
    const socks = await hold(agent.port, HELD, async (s) => {
      s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
    });
    const drip = setInterval(() => {
      for (const s of socks) if (!s.destroyed) s.write('X-a: b\r\n');
    }, 1000);
    try {
      expect(await scrape(agent.base)).toBe(200);
    } finally {
      clearInterval(drip);
      for (const s of socks) s.destroy();
    }
  });

  it('scrapes succeed while 150 clients from another address send wrong passwords for the real user', async () => {
    expect(await scrape(agent.base)).toBe(200); // Prometheus has been scraping all along
    let stop = false;
    const answers = new Map<number, number>();
    const pool = new http.Agent({ keepAlive: true, maxSockets: 150 });
    const once = (i: number, k: number): Promise<void> =>
      new Promise((resolve) => {
        const req = http.get(
          `${agent.base}/metrics`,
          { agent: pool, localAddress: '127.0.0.2', headers: { authorization: auth('prometheus', `wrong-${i}-${k}`) } },
          (res) => {
            res.resume();
            res.on('end', () => {
              answers.set(res.statusCode ?? 0, (answers.get(res.statusCode ?? 0) ?? 0) + 1);
              resolve();
            });
          },
        );
        req.on('error', () => resolve());
      });
    const flooders = Array.from({ length: 150 }, async (_, i) => {
      for (let k = 0; !stop; k++) await once(i, k);
    });
    try {
      await new Promise((r) => setTimeout(r, 1000));
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push(await scrape(agent.base));
      // A scraper whose credentials the agent has not seen yet, arriving in the middle of the flood.
      statuses.push(await scrape(agent.base, auth('grafana', 'battery staple')));
      expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    } finally {
      stop = true;
      await Promise.all(flooders);
      pool.destroy();
    }
    expect([...answers.keys()].every((s) => s === 401 || s === 503)).toBe(true);
    expect(answers.get(401) ?? 0).toBeGreaterThan(0);
  });
});

describe('HTTPS', () => {
  let agent: AgentProcess;
  let target: Awaited<ReturnType<typeof listen>>;
  let ca: Buffer;
  beforeAll(async () => {
    target = await listen();
    const cert = selfSignedCert();
    ca = readFileSync(cert.certFile);
    const cfg = write(
      'agent-tls.yml',
      `modules: {t: {prober: tcp}}\ntargets: [{name: a, module: t, address: "127.0.0.1:${target.port}"}]\n`,
    );
    const web = write(
      'web-tls.yml',
      `tls_server_config:\n  cert_file: ${cert.certFile}\n  key_file: ${cert.keyFile}\nbasic_auth_users:\n  prometheus: "${hash}"\n`,
    );
    agent = await startAgent(cfg, [`--web.config.file=${web}`]);
  });
  afterAll(async () => {
    await agent.stop();
    await target.close();
  });

  const tlsScrape = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = https.get(
        `https://localhost:${agent.port}/metrics`,
        { ca, headers: { authorization: GOOD }, agent: false, timeout: 20000 },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
    });

  it(`an authenticated scrape gets through while ${HELD} connections never send a ClientHello`, async () => {
    const socks = await hold(agent.port, HELD, async () => undefined);
    try {
      expect(await tlsScrape()).toBe(200);
    } finally {
      for (const s of socks) s.destroy();
    }
  });

  it('closes a connection that never starts its TLS handshake (the handshake has a deadline)', async () => {
    const [s] = await hold(agent.port, 1, async () => undefined);
    // Jest's timeout bounds the wait: the old 120 s handshake timeout never came within it.
    await new Promise<void>((resolve) => s.once('close', () => resolve()));
    expect(s.destroyed).toBe(true);
    expect(await tlsScrape()).toBe(200);
  }, 40000);
});
