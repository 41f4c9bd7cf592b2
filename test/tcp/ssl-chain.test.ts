// blackbox_exporter's certificate series wherever a TLS rung runs: probe_ssl_earliest_cert_expiry
// (earliest notAfter among the certificates the peer sent) and
// probe_ssl_last_chain_expiry_timestamp_seconds (earliest notAfter along the verified chain, which
// reaches into the trust store; absent without verification). The peers serve a real three-level
// chain: leaf and intermediate sent, root trusted through ca_file.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../agent/logger';
import { chainExpiries, type ChainLink } from '../../exporters/net/chain';
import { tcpProber } from '../../exporters/tcp/prober';
import { ftpProber } from '../../exporters/ftp/prober';
import { mssqlProber } from '../../exporters/mssql';
import type { ProbeResult } from '../../exporters/types';
import { runProber } from '../helpers/context';
import { makeCertChain, type CertChain } from '../helpers/cert-chain';
import { startAgentHttp } from '../helpers/agent-http';
import { assertExposition } from '../helpers/exposition-check';
import { cleanupsAfterEach, tdsPeers } from '../helpers/mssql';
import { makeFixture } from '../peers/ftp/common';
import { pyftpdlibUser, startPyftpdlib } from '../peers/ftp/pyftpdlib';
import { startVsftpd } from '../peers/ftp/vsftpd';

const EARLIEST = 'probe_ssl_earliest_cert_expiry';
const LAST_CHAIN = 'probe_ssl_last_chain_expiry_timestamp_seconds';
const fact = (r: ProbeResult, metric: string): number | undefined => r.facts.find((f) => f.metric === metric)?.value;

// The root expires first, then the intermediate, then the leaf: the sent certificates' earliest
// is the intermediate, the verified chain's is the root.
let chain: CertChain;
// An intermediate that expired yesterday.
let expired: CertChain;
beforeAll(() => {
  chain = makeCertChain({ root: 60, intermediate: 120, leaf: 200 });
  expired = makeCertChain({ root: 300, intermediate: -1, leaf: 200 });
});
afterAll(() => {
  chain?.cleanup();
  expired?.cleanup();
});

async function tlsServer(c: CertChain): Promise<{ address: string; close: () => void }> {
  const srv = tls.createServer({ cert: c.served, key: c.leafKey }, (s) => s.end('hello\n'));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { address: `127.0.0.1:${(srv.address() as AddressInfo).port}`, close: () => srv.close() };
}

describe('chainExpiries (pure)', () => {
  const link = (fp: string, iso: string, issuer?: ChainLink): ChainLink => ({
    fingerprint256: fp,
    valid_to: iso,
    issuerCertificate: issuer,
  });
  const root = link('R', '2030-01-01T00:00:00Z');
  root.issuerCertificate = root; // self-signed: Node links a root to itself
  const int = link('I', '2031-01-01T00:00:00Z', root);
  const leaf = link('L', '2032-01-01T00:00:00Z', int);
  const s = (iso: string): number => Date.parse(iso) / 1000;

  test.each([
    ['root from the store, verified', new Set(['R']), true, s('2031-01-01T00:00:00Z'), s('2030-01-01T00:00:00Z')],
    [
      'nothing trusted in the chain (root sent by the peer), verified',
      new Set<string>(),
      true,
      s('2030-01-01T00:00:00Z'),
      s('2030-01-01T00:00:00Z'),
    ],
    ['root from the store, not verified', new Set(['R']), false, s('2031-01-01T00:00:00Z'), undefined],
    [
      'intermediate and root trusted: only the leaf was sent',
      new Set(['R', 'I']),
      true,
      s('2032-01-01T00:00:00Z'),
      s('2030-01-01T00:00:00Z'),
    ],
  ])('%s', (_name, trusted, verified, earliest, last) => {
    expect(chainExpiries(leaf, verified, (c) => trusted.has(c.fingerprint256))).toEqual({
      earliestSeconds: earliest,
      lastChainSeconds: last,
    });
  });

  test('the leaf counts as sent even when it is itself the trust anchor', () => {
    const self = link('S', '2029-06-01T00:00:00Z');
    self.issuerCertificate = self;
    expect(chainExpiries(self, true, (c) => c.fingerprint256 === 'S')).toEqual({
      earliestSeconds: s('2029-06-01T00:00:00Z'),
      lastChainSeconds: s('2029-06-01T00:00:00Z'),
    });
  });

  test('no certificate, or no readable date: nothing', () => {
    expect(chainExpiries(undefined, false, () => false)).toEqual({
      earliestSeconds: undefined,
      lastChainSeconds: undefined,
    });
    expect(chainExpiries(link('X', 'not a date'), true, () => false)).toEqual({
      earliestSeconds: undefined,
      lastChainSeconds: undefined,
    });
  });
});

describe('tcp prober, tls: true, against a Node TLS server sending leaf + intermediate', () => {
  test("verified against the root (ca_file): earliest is the intermediate, the chain's is the root", async () => {
    const s = await tlsServer(chain);
    try {
      const r = await runProber(tcpProber, s.address, {
        tls: true,
        tls_config: { ca_file: chain.root.file, server_name: 'localhost' },
      });
      expect(r.failure).toBeUndefined();
      expect(chain.root.notAfter).toBeLessThan(chain.intermediate.notAfter);
      expect(fact(r, EARLIEST)).toBe(chain.intermediate.notAfter);
      expect(fact(r, LAST_CHAIN)).toBe(chain.root.notAfter);
      expect(fact(r, 'probe_tls_cert_not_after_timestamp_seconds')).toBe(chain.leaf.notAfter);
    } finally {
      s.close();
    }
  });

  test("ca_file holding other certificates too: the root is still recognised as the store's", async () => {
    const s = await tlsServer(chain);
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-bundle-'));
    try {
      const bundle = path.join(dir, 'bundle.pem');
      writeFileSync(bundle, expired.root.pem + chain.root.pem);
      const r = await runProber(tcpProber, s.address, {
        tls: true,
        tls_config: { ca_file: bundle, server_name: 'localhost' },
      });
      expect(r.failure).toBeUndefined();
      expect(fact(r, EARLIEST)).toBe(chain.intermediate.notAfter);
      expect(fact(r, LAST_CHAIN)).toBe(chain.root.notAfter);
    } finally {
      s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('insecure_skip_verify: no verified chain, so no last-chain series; earliest still reported', async () => {
    const s = await tlsServer(chain);
    try {
      const r = await runProber(tcpProber, s.address, { tls: true, tls_config: { insecure_skip_verify: true } });
      expect(r.failure).toBeUndefined();
      expect(fact(r, EARLIEST)).toBe(chain.intermediate.notAfter);
      expect(fact(r, LAST_CHAIN)).toBeUndefined();
    } finally {
      s.close();
    }
  });

  test('an expired intermediate: verification fails at the tls rung; unverified, earliest is its past notAfter', async () => {
    const s = await tlsServer(expired);
    try {
      const verified = await runProber(tcpProber, s.address, {
        tls: true,
        tls_config: { ca_file: expired.root.file, server_name: 'localhost' },
      });
      expect(verified.failure).toMatchObject({ phase: 'tls', reason: 'tls_error' });
      expect(verified.failure?.message).toMatch(/expired/i);
      expect(fact(verified, EARLIEST)).toBeUndefined();
      const skipped = await runProber(tcpProber, s.address, { tls: true, tls_config: { insecure_skip_verify: true } });
      expect(skipped.failure).toBeUndefined();
      expect(expired.intermediate.notAfter).toBeLessThan(Date.now() / 1000);
      expect(fact(skipped, EARLIEST)).toBe(expired.intermediate.notAfter);
      expect(fact(skipped, LAST_CHAIN)).toBeUndefined();
    } finally {
      s.close();
    }
  });

  test("through the agent's /probe: both families, accepted by the strict checker and promtool", async () => {
    const s = await tlsServer(chain);
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-sslchain-'));
    const file = path.join(dir, 'portprobe.yml');
    writeFileSync(
      file,
      [
        'modules:',
        `  tls_verified: {prober: tcp, tcp: {tls: true, tls_config: {ca_file: "${chain.root.file}", server_name: localhost}}}`,
        'probe_api: {allowed_addresses: ["127\\\\.0\\\\.0\\\\.1:[0-9]+"]}',
        'targets: []',
        '',
      ].join('\n'),
    );
    const h = await startAgentHttp({
      configFile: file,
      logger: createLogger('error', 'json', { write: () => true }),
      build: { version: 't', revision: 't' },
    });
    try {
      const res = await fetch(`${h.base}/probe?module=tls_verified&target=${s.address}`);
      const text = await res.text();
      expect({ status: res.status, text: res.status === 200 ? '' : text }).toEqual({ status: 200, text: '' });
      assertExposition(text);
      expect(text).toContain('probe_success 1\n');
      expect(text).toContain(`# TYPE ${EARLIEST} gauge\n`);
      expect(text).toContain(`\n${EARLIEST} ${chain.intermediate.notAfter}\n`);
      expect(text).toContain(`\n${LAST_CHAIN} ${chain.root.notAfter}\n`);
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(check.stdout + check.stderr).toBe('');
      expect(check.status).toBe(0);
    } finally {
      await h.stop();
      s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('FTP TLS rungs', () => {
  /** An FTP fixture whose certificate files are the three-level chain. */
  function chainFixture(prefix: string) {
    const fx = makeFixture(prefix);
    copyFileSync(chain.servedFile, fx.certFile);
    copyFileSync(chain.keyFile, fx.keyFile);
    return fx;
  }
  const tlsConfig = () => ({ ca_file: chain.root.file, server_name: 'localhost' });

  test('explicit TLS (AUTH TLS) against pyftpdlib', async () => {
    const fx = chainFixture('sslchain-explicit');
    const peer = await startPyftpdlib(fx, { tls: 'explicit' }, pyftpdlibUser());
    try {
      const r = await runProber(
        ftpProber,
        `127.0.0.1:${peer.port}`,
        { tls: 'explicit', tls_config: tlsConfig(), data_channel: ['pasv'] },
        5000,
      );
      expect(r.failure).toBeUndefined();
      expect(fact(r, EARLIEST)).toBe(chain.intermediate.notAfter);
      expect(fact(r, LAST_CHAIN)).toBe(chain.root.notAfter);
    } finally {
      await peer.stop();
      fx.cleanup();
    }
  });

  test('implicit TLS against vsftpd', async () => {
    const fx = chainFixture('sslchain-implicit');
    const peer = await startVsftpd(fx, { tls: 'implicit' });
    try {
      const r = await runProber(
        ftpProber,
        `${peer.host}:${peer.port}`,
        { tls: 'implicit', tls_config: tlsConfig(), data_channel: ['pasv'] },
        5000,
      );
      expect(r.failure).toBeUndefined();
      expect(fact(r, EARLIEST)).toBe(chain.intermediate.notAfter);
      expect(fact(r, LAST_CHAIN)).toBe(chain.root.notAfter);
    } finally {
      await peer.stop();
      fx.cleanup();
    }
  });
});

describe('SQL Server encryption', () => {
  const cleanups = cleanupsAfterEach();
  const peer = tdsPeers(cleanups);

  test('encryption required, TLS inside TDS, verified with ca_file', async () => {
    const p = await peer({ encryption: 'required', certificate: { cert: chain.served, key: chain.leafKey } });
    const r = await runProber(
      mssqlProber,
      `127.0.0.1:${p.port}`,
      { encrypt: true, ca_file: chain.root.file, server_name: 'localhost' },
      3000,
    );
    expect(r.failure).toBeUndefined();
    expect(r.phases.map((x) => x.phase)).toContain('tls');
    expect(fact(r, EARLIEST)).toBe(chain.intermediate.notAfter);
    expect(fact(r, LAST_CHAIN)).toBe(chain.root.notAfter);
  });

  test('strict encryption (TDS 8, TLS first)', async () => {
    const p = await peer({ encryption: 'strict', certificate: { cert: chain.served, key: chain.leafKey } });
    const r = await runProber(
      mssqlProber,
      `127.0.0.1:${p.port}`,
      { encrypt: 'strict', ca_file: chain.root.file, server_name: 'localhost' },
      3000,
    );
    expect(r.failure).toBeUndefined();
    expect(fact(r, EARLIEST)).toBe(chain.intermediate.notAfter);
    expect(fact(r, LAST_CHAIN)).toBe(chain.root.notAfter);
  });

  test('untrusted (no ca_file, no credentials): looked at, not enforced; no verified chain', async () => {
    const p = await peer({ encryption: 'required', certificate: { cert: chain.served, key: chain.leafKey } });
    const r = await runProber(mssqlProber, `127.0.0.1:${p.port}`, {}, 3000);
    expect(r.findings?.map((f) => f.code)).toContain('mssql_certificate_untrusted');
    expect(fact(r, EARLIEST)).toBe(chain.intermediate.notAfter);
    expect(fact(r, LAST_CHAIN)).toBeUndefined();
  });
});
