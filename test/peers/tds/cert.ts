// A throw-away self-signed certificate for the TDS peer, made by the system's openssl in a
// temporary directory (removed on exit of the process).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface CertPair {
  cert: Buffer;
  key: Buffer;
}

let cached: CertPair | undefined;

export function selfSignedCert(): CertPair {
  if (cached) return cached;
  const dir = mkdtempSync(path.join(tmpdir(), 'tds-peer-cert-'));
  try {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-sha256',
        '-days',
        '30',
        '-keyout',
        key,
        '-out',
        cert,
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    cached = { cert: readFileSync(cert), key: readFileSync(key) };
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const byDays = new Map<number, CertPair>();

/**
 * A self-signed certificate for CN=localhost that expires in `days` days (-1: expired yesterday),
 * for the certificate-expiry findings.
 */
export function selfSignedCertExpiringIn(days: number): CertPair {
  const hit = byDays.get(days);
  if (hit) return hit;
  const dir = mkdtempSync(path.join(tmpdir(), 'tds-peer-cert-'));
  try {
    const key = path.join(dir, 'key.pem');
    const csr = path.join(dir, 'req.csr');
    const cert = path.join(dir, 'cert.pem');
    const quiet = { stdio: ['ignore', 'ignore', 'pipe'] as ('ignore' | 'pipe')[] };
    execFileSync(
      'openssl',
      ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=localhost'],
      quiet,
    );
    execFileSync(
      'openssl',
      ['x509', '-req', '-in', csr, '-signkey', key, '-sha256', '-days', String(days), '-out', cert],
      quiet,
    );
    const pair = { cert: readFileSync(cert), key: readFileSync(key) };
    byDays.set(days, pair);
    return pair;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
