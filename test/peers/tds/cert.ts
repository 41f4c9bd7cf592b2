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
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '30',
        '-keyout', key, '-out', cert, '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    cached = { cert: readFileSync(cert), key: readFileSync(key) };
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
